"""Values that once crashed wanvid or reached the service as invalid JSON (the adversarial
review of 2026-12-03): each is one line and exit 2 with nothing sent, or a working run."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import responses

from tests.conftest import Result

Run = Callable[..., Result]
URL = "https://example.com/cat.png"


@pytest.mark.parametrize(("param", "why"), [
    ("x=NaN", "NaN is not a JSON number"),
    ("y=Infinity", "Infinity is not a JSON number"),
    ("z=-Infinity", "-Infinity is not a JSON number"),
    ("duration=1e400", "the number is too large"),
    ("x=" + "[" * 40 + "]" * 40, "nested more than 32 deep"),
    ("x=" + "[" * 100000, "nested more than 32 deep"),
])
def test_a_param_that_is_not_sendable_json_is_refused(run: Run, param: str, why: str) -> None:
    with responses.RequestsMock():  # nothing registered: any request fails the test
        r = run(["submit", URL, "--param", param, "--dry-run"])
    assert r.code == 2 and r.out == "", r.err
    assert why in r.err and r.err.count("\n") == 1 and "nothing was sent" in r.err


def test_a_param_nested_within_the_bound_is_sent(run: Run) -> None:
    r = run(["submit", URL, "--param", "x=" + "[" * 10 + "1" + "]" * 10, "--dry-run",
             "--json"])
    assert r.code == 0, r.err
    body = json.loads(r.out)["data"]["body"]
    assert body["parameters"]["x"] == [[[[[[[[[[1]]]]]]]]]]


def test_an_unknown_resolution_through_param_is_refused_like_the_flag(run: Run,
                                                                      tmp_path: Path) -> None:
    from tests.fixtures_media import png_bytes

    img = tmp_path / "cat.png"
    img.write_bytes(png_bytes(640, 480))
    with responses.RequestsMock():
        r = run(["submit", str(img), "--param", "resolution=4K", "--dry-run", "--json"])
    assert r.code == 2, r.err
    assert r.err == ("wanvid: error: --param resolution=4K: wan2.2-i2v-flash offers 480P, "
                     "720P, 1080P\n")


def test_a_non_finite_number_in_config_falls_back_to_the_default(run: Run) -> None:
    cfg = Path(os.environ["WANVID_CONFIG_DIR"]) / "config.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text("downloads = inf\njobs = nan\n")
    r = run(["config", "list", "--json"])
    assert r.code == 0, r.err
    data = json.loads(r.out)["data"]
    assert data["downloads"] == 4 and data["jobs"] == 2


def test_downloads_from_the_environment_are_capped_like_the_flag(run: Run) -> None:
    r = run(["config", "list", "--json"], env={"WANVID_DOWNLOADS": "1e9"})
    assert r.code == 0, r.err
    assert json.loads(r.out)["data"]["downloads"] == 32
