"""wanvid usage: the sums, the groupings, the user's prices, through the CLI."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest

from tests import envelope_schema
from wanvid import usage
from wanvid.errors import BadInputError
from wanvid.journal import Journal

T0 = 1_800_000_000.0  # 2027-01-15 08:00 UTC (the fake clock's start)
DAY = 86400.0


def journal_with(tasks: list[tuple[str, str, dict[str, Any], float]], *,
                 downloaded: set[str] = frozenset()) -> Journal:  # type: ignore[assignment]
    """(task_id, model, params, submitted_at) tasks; status in params['_status']."""
    path = Path(os.environ["WANVID_STATE_DIR"]) / "journal.db"
    now = [T0]
    j = Journal(path, now=lambda: now[0])
    for tid, model, params, at in tasks:
        status = params.pop("_status", "SUCCEEDED")
        now[0] = at
        j.record_submit(tid, model=model, base_url="https://x/api/v1", params=params, inputs=[])
        j.update_status(tid, status)
        if tid in downloaded:
            j.record_download(tid, path=f"{tid}.mp4", size=1, sha256="0" * 64)
    return j


def p(duration: Any = 5, resolution: str = "720P", **kw: Any) -> dict[str, Any]:
    return {"duration": duration, "resolution": resolution, **kw}


ROUND = [
    ("a", "wan2.2-i2v-flash", p(5, "720P"), T0),
    ("b", "wan2.2-i2v-flash", p(5, "480P"), T0 + 60),
    ("c", "wan2.5-i2v-preview", p(10, "1080P"), T0 + DAY),
    ("d", "wan2.5-i2v-preview", p(10, "1080P", _status="FAILED"), T0 + DAY),  # not billed
    ("e", "wan2.5-i2v-preview", p(5, "1080P", _status="EXPIRED"), T0 + DAY),  # billed, unsaved
    ("f", "wan2.2-i2v-flash", p(5, "720P", _status="RUNNING"), T0 + DAY),  # in flight
    ("g", "wan2.2-i2v-flash", p(5, "720P", _status="CANCELED"), T0 + DAY),
    ("h", "wanx2.1-i2v-turbo", p(3, "480P"), T0 + 2 * DAY),  # journaled under an alias
]


def test_total_counts_only_billed_tasks() -> None:
    j = journal_with([(t, m, dict(pa), at) for t, m, pa, at in ROUND], downloaded={"a", "c"})
    r = usage.summarize(j.list())
    t = r.total
    assert (t.videos, t.billed_seconds, t.saved) == (5, 5 + 5 + 10 + 5 + 3, 2)
    assert (t.in_flight, t.in_flight_seconds) == (1, 5)
    assert t.cost is None and r.groups == []


def test_by_model_day_resolution_sum_to_the_total() -> None:
    j = journal_with([(t, m, dict(pa), at) for t, m, pa, at in ROUND])
    recs = j.list()
    by_model = {g.key: (g.videos, g.billed_seconds) for g in usage.summarize(recs, by="model").groups}
    assert by_model == {"wan2.2-i2v-flash": (2, 10), "wan2.5-i2v-preview": (2, 15),
                        "wanx2.1-i2v-turbo": (1, 3)}
    by_day = {g.key: (g.videos, g.billed_seconds)
              for g in usage.summarize(recs, by="day", tz=dt.UTC).groups}
    assert by_day == {"2027-01-15": (2, 10), "2027-01-16": (2, 15), "2027-01-17": (1, 3)}
    by_res = {g.key: g.billed_seconds for g in usage.summarize(recs, by="resolution").groups}
    assert by_res == {"1080P": 15, "480P": 8, "720P": 5}
    for by in usage.GROUPINGS:
        rep = usage.summarize(recs, by=by, tz=dt.UTC)
        assert sum(g.billed_seconds for g in rep.groups) == rep.total.billed_seconds == 28
        assert sum(g.videos for g in rep.groups) == rep.total.videos == 5


def test_prices_turn_seconds_into_money_aliases_folded_partial_marked() -> None:
    j = journal_with([(t, m, dict(pa), at) for t, m, pa, at in ROUND])
    prices = usage.price_table({"wan2.2-i2v-flash": 0.02, "wan2.1-i2v-turbo": 0.01})
    r = usage.summarize(j.list(), by="model", prices=prices)
    cost = {g.key: g.cost for g in r.groups}
    assert cost["wan2.2-i2v-flash"] == pytest.approx(10 * 0.02)
    assert cost["wanx2.1-i2v-turbo"] == pytest.approx(3 * 0.01)  # the alias has the price
    assert cost["wan2.5-i2v-preview"] is None
    assert r.total.cost == pytest.approx(0.23) and r.total.unpriced == 2
    lines = usage.text_lines(r)
    assert lines[-1] == "# + partial: 2 video(s) of models with no price"
    assert "at your prices" in lines[-2]
    assert lines[-4].split()[-1] == "0.23+"  # the total row


def test_unknown_duration_is_counted_not_summed() -> None:
    j = journal_with([("x", "wan2.2-i2v-flash", {}, T0), ("y", "wan2.2-i2v-flash", p(5), T0)])
    t = usage.summarize(j.list()).total
    assert (t.videos, t.billed_seconds, t.unknown) == (2, 5, 1)


@pytest.mark.parametrize("raw", [{"wan2.2-i2v-flash": "cheap"}, {"wan2.2-i2v-flash": -1},
                                 {"wan2.2-i2v-flash": True}, {"wan2.2-i2v-flash": float("nan")},
                                 [1, 2], "0.05"])
def test_bad_price_tables(raw: Any) -> None:
    with pytest.raises(BadInputError):
        usage.price_table(raw)


def test_since_accepts_durations_and_dates() -> None:
    assert usage.parse_since("2h", T0) == T0 - 7200
    assert usage.parse_since("2027-01-15", T0, tz=dt.UTC) == T0 - 8 * 3600
    assert usage.parse_since("2027-01-15T09:00", T0, tz=dt.UTC) == T0 + 3600
    with pytest.raises(BadInputError):
        usage.parse_since("last tuesday", T0)


# -- through the CLI ------------------------------------------------------------------------


def test_cli_usage_json_and_since(run: Any) -> None:
    journal_with([(t, m, dict(pa), at) for t, m, pa, at in ROUND]).close()
    r = run(["usage", "--json"])
    assert r.code == 0, r.err
    d = envelope_schema.data(r.out)
    assert d["total"]["billed_seconds"] == 28 and d["total"]["videos"] == 5
    assert d["prices"] is None and d["by"] is None
    # --since counts from the journal's submit times (a group with only a task in flight
    # or canceled still shows, at 0 s)
    r = run(["usage", "--since", "2027-01-16T00:00+00:00", "--by", "model", "--json"])
    d = envelope_schema.data(r.out)
    assert {g["key"]: g["billed_seconds"] for g in d["groups"]} == {
        "wan2.2-i2v-flash": 0, "wan2.5-i2v-preview": 15, "wanx2.1-i2v-turbo": 3}
    assert d["since"] == "2027-01-16T00:00:00Z"


def test_cli_usage_text_with_config_prices(run: Any) -> None:
    journal_with([(t, m, dict(pa), at) for t, m, pa, at in ROUND]).close()
    assert run(["config", "set", "prices.wan2.5-i2v-preview", "0.05"]).code == 0
    assert run(["config", "set", "prices.wan2.2-i2v-flash", "0.02"]).code == 0
    assert run(["config", "set", "prices.wanx2.1-i2v-turbo", "0.01"]).code == 0
    r = run(["usage", "--by", "model"])
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].split() == ["MODEL", "VIDEOS", "SAVED", "BILLED_S", "COST*"]
    rows = {ln.split()[0]: ln.split()[1:] for ln in lines[1:] if not ln.startswith("#")}
    assert rows["wan2.5-i2v-preview"] == ["2", "0", "15", "0.75"]
    assert rows["wan2.2-i2v-flash"] == ["2", "0", "10", "0.20"]
    assert rows["total"] == ["5", "0", "28", "0.98"]
    assert lines[-1] == "# * cost at your prices (config [prices]), not the service's bill"
    assert r.err == ""


def test_cli_usage_without_a_journal_is_zero(run: Any) -> None:
    r = run(["usage", "--json"])
    assert r.code == 0 and envelope_schema.data(r.out)["total"]["videos"] == 0
    assert not (Path(os.environ["WANVID_STATE_DIR"]) / "journal.db").exists()


@pytest.mark.parametrize("args,message", [
    (["usage", "--by", "week"], "--by 'week': use one of model, day, resolution"),
    (["usage", "--since", "soon"], "--since 'soon': use a duration like 2h or 7d"),
    (["config", "set", "prices.wan9", "1"], "config prices.wan9: unknown model 'wan9'"),
    (["config", "set", "prices.wan2.2-i2v-flash", "free"],
     "config prices.wan2.2-i2v-flash: expected a price per billed second"),
])
def test_cli_usage_bad_input_exit_2_one_line(run: Any, args: list[str], message: str) -> None:
    r = run(args)
    assert r.code == 2
    assert r.err.startswith(f"wanvid: error: {message}") and r.err.count("\n") == 1


def test_cli_bad_prices_table_in_the_file_is_exit_2(run: Any) -> None:
    cfg = Path(os.environ["WANVID_CONFIG_DIR"])
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "config.toml").write_text('[prices]\n"wan2.2-i2v-flash" = "cheap"\n')
    r = run(["usage"])
    assert r.code == 2 and "config [prices]: 'wan2.2-i2v-flash' = 'cheap'" in r.err


def test_config_prices_set_get_unset(run: Any) -> None:
    import tomllib

    cfg = Path(os.environ["WANVID_CONFIG_DIR"]) / "config.toml"
    assert run(["config", "set", "prices.wanx2.1-i2v-turbo", "0.01"]).code == 0
    assert tomllib.loads(cfg.read_text()) == {"prices": {"wan2.1-i2v-turbo": 0.01}}
    assert run(["config", "get", "prices.wan2.1-i2v-turbo"]).out == "0.01\n"
    assert run(["config", "unset", "prices.wan2.1-i2v-turbo"]).code == 0
    assert tomllib.loads(cfg.read_text()) == {}
    r = run(["config", "set", "prices", "1"])
    assert r.code == 2 and "prices.wan2.2-i2v-flash" in r.err
