"""batch --dry-run prints what a batch would bill; --max-seconds refuses one that bills
too much. Neither sends anything (responses fails on any request)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import responses

from tests import envelope_schema
from tests.fixtures_media import png_bytes


def jobs_file() -> str:
    for i, name in enumerate(("a.png", "b.png", "c.png")):
        Path(name).write_bytes(png_bytes(640 + 8 * i, 480))
    rows = [{"image": "a.png", "prompt": "waves"},  # wan2.2-i2v-flash, 5 s
            {"image": "b.png", "prompt": "waves", "model": "wan2.5-i2v-preview",
             "duration": 10},
            {"image": "c.png", "prompt": "waves", "model": "wan2.5-i2v-preview",
             "duration": 5}]
    Path("jobs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return "jobs.jsonl"


def test_dry_run_prints_the_total_and_sends_nothing(run: Any) -> None:
    src = jobs_file()
    with responses.RequestsMock() as rsps:
        r = run(["batch", src, "--dry-run"])
        assert len(rsps.calls) == 0
    assert r.code == 0, r.err
    assert r.out.splitlines() == [
        "wan2.2-i2v-flash: 1 job(s), 5 s billed",
        "wan2.5-i2v-preview: 2 job(s), 15 s billed",
        "total: 3 job(s) to submit, 20 s billed",
    ]


def test_dry_run_json_with_prices(run: Any) -> None:
    src = jobs_file()
    assert run(["config", "set", "prices.wan2.5-i2v-preview", "0.05"]).code == 0
    with responses.RequestsMock() as rsps:
        r = run(["batch", src, "--dry-run", "--json"])
        assert len(rsps.calls) == 0
    d = envelope_schema.data(r.out)
    assert d["dry_run"] is True and d["jobs"] == 3 and d["billed_seconds"] == 20
    assert d["cost"] == pytest.approx(0.75) and d["unpriced_jobs"] == 1
    assert d["by_model"]["wan2.5-i2v-preview"]["cost"] == pytest.approx(0.75)
    assert d["by_model"]["wan2.2-i2v-flash"]["cost"] is None
    assert "your prices" in d["prices_note"]
    r = run(["batch", src, "--dry-run"])
    assert r.out.splitlines()[-1] == ("total: 3 job(s) to submit, 20 s billed, 0.75 at your "
                                      "prices (partial: 1 job(s) of models with no price)")


@pytest.mark.parametrize("how", ["flag", "config"])
def test_max_seconds_refuses_a_batch_over_the_limit(run: Any, how: str) -> None:
    src = jobs_file()
    args = ["batch", src]
    if how == "flag":
        args += ["--max-seconds", "19"]
    else:
        assert run(["config", "set", "max_seconds", "19"]).code == 0
    with responses.RequestsMock() as rsps:
        r = run(args)
        assert len(rsps.calls) == 0
    assert r.code == 2 and r.err.count("\n") == 1
    flag = "--max-seconds" if how == "flag" else "config max_seconds"
    assert r.err == (f"wanvid: error: jobs.jsonl: the batch would bill 20 s (3 job(s)), over "
                     f"{flag} 19; nothing was sent. Split the batch, or raise the limit\n")


def test_max_seconds_at_the_limit_passes_and_the_flag_beats_the_config(run: Any) -> None:
    src = jobs_file()
    assert run(["config", "set", "max_seconds", "5"]).code == 0
    with responses.RequestsMock() as rsps:
        r = run(["batch", src, "--max-seconds", "20", "--dry-run"])
        assert len(rsps.calls) == 0
    assert r.code == 0 and r.out.splitlines()[-1] == "total: 3 job(s) to submit, 20 s billed"
    assert os.path.exists("jobs.jsonl")
