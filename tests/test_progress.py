"""The progress display: one size unit, rows that fit the width, colour rules, errors above
the rows, and the plain heartbeat on an injected clock (no sleeping)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from wanvid.context import Environment
from wanvid.progress import (
    PlainReporter,
    QuietReporter,
    RichReporter,
    Row,
    make_reporter,
    row_cells,
)
from wanvid.units import human_pair, human_rate, human_size

TID = "0a1b2c3d-4e5f-6789-abcd-ef0123456789"
SGR_COLOUR = re.compile(r"\x1b\[[0-9;]*(3[0-7]|9[0-7]|38;)[0-9;]*m")


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.mark.parametrize(("n", "shown"), [
    (None, "?"), (0, "0 B"), (512, "512 B"), (1023, "1023 B"), (1024, "1.0 KiB"),
    (int(19.5 * 1024), "19.5 KiB"), (200 << 20, "200.0 MiB"), (3 << 30, "3.0 GiB"),
])
def test_one_binary_unit_for_sizes(n: int | None, shown: str) -> None:
    assert human_size(n) == shown


def test_pairs_and_rates_share_the_unit() -> None:
    assert human_pair(12 << 20, 200 << 20) == "12.0/200.0 MiB"
    assert human_pair(300, 900) == "300/900 B"
    assert human_pair(5 << 10, None) == "5.0 KiB"
    assert human_rate(3.2 * (1 << 20)) == "3.2 MiB/s"


def test_no_decimal_unit_is_printed_anywhere_by_the_reporters() -> None:
    err = io.StringIO()
    plain = PlainReporter(Environment(environ={"CI": "true"}, stderr=err))
    plain.download_done(TID, Path("a.mp4"), 209_715_200, False)
    plain.upload_done("clip.mp4", 20_000, False, 0.5)
    assert err.getvalue() == (f"wanvid: {TID} saved a.mp4 (200.0 MiB)\n"
                              "wanvid: uploaded clip.mp4 (19.5 KiB, 0.5 s)\n")


def _row(name: str = "cat", status: str = "RUNNING", **kw: object) -> Row:
    return Row(name=name, tid=TID, status=status, started=0.0, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("width", [40, 60, 80, 100, 200])
@pytest.mark.parametrize("name", ["cat", "a-very-long-input-file-name-that-never-ends" * 2])
def test_rows_fit_the_width_and_name_the_input(width: int, name: str) -> None:
    saving = _row(name, "SAVING", saving=True, done=12 << 20, total=200 << 20)
    saving.samples.extend([(0.0, 0), (4.0, 12 << 20)])
    for row in (_row(name), _row(name, "FAILED"), saving):
        text = "".join(t for t, _ in row_cells(row, now=75.0, width=width))
        assert len(text) <= width - 1, text
        assert text.startswith(name[:3])
        if width >= 80:
            assert TID[:8] in text and row.status in text and "1m15s" in text
    text = "".join(t for t, _ in row_cells(saving, now=75.0, width=80))
    assert "12.0/200.0 MiB" in text and "3.0 MiB/s" in text and "━" in text
    if len(name) > 24:
        assert "…" in text


def test_status_colours_tell_saved_from_failed() -> None:
    styles = {st: dict((t.strip(), s) for t, s in row_cells(_row(status=st), 1.0, 80))[st]
              for st in ("SAVED", "FAILED", "RUNNING")}
    assert styles["SAVED"] != styles["FAILED"]
    assert "red" in styles["FAILED"] and "green" in styles["SAVED"]


def _terminal_env(err: io.StringIO, **environ: str) -> Environment:
    return Environment(environ={"TERM": "xterm", **environ}, stderr=err, stderr_isatty=True,
                       stdout=io.StringIO(), stdout_isatty=False)


@pytest.mark.parametrize(("no_color", "environ"), [
    (False, {}), (True, {"NO_COLOR": "1"}), (False, {"NO_COLOR": ""})])  # empty: unset
def test_live_rows_colour_only_without_no_color(no_color: bool, environ: dict[str, str],
                                                ) -> None:
    err = io.StringIO()
    env = _terminal_env(err, **environ)
    rep = RichReporter(env, namer=lambda tid: "beach")
    rep.add_task(TID)
    rep.status(TID, "FAILED", 3.0)
    rep.live.refresh()
    rep.close()
    drawn = err.getvalue()
    assert "beach" in drawn and "FAILED" in drawn
    assert bool(SGR_COLOUR.search(drawn)) is not no_color


def test_lines_written_to_stderr_during_the_display_go_above_the_rows() -> None:
    err = io.StringIO()
    env = _terminal_env(err)
    rep = RichReporter(env, namer=lambda tid: "beach")
    rep.add_task(TID)
    rep.status(TID, "FAILED", 3.0)
    env.err(f"wanvid: error: {TID} FAILED: DataInspectionFailed: the input was refused")
    rep.close()
    assert env.stderr is err  # put back
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", err.getvalue())
    lines = [ln for ln in re.split(r"[\r\n]", plain) if ln.strip()]
    errors = [ln for ln in lines if "DataInspectionFailed" in ln]
    assert errors and all(ln.startswith("wanvid: error:") for ln in errors)  # never in a row
    assert lines[-1].startswith("beach")  # the rows are drawn last, below


def test_saved_row_shows_the_output_files_stem() -> None:
    err = io.StringIO()
    rep = RichReporter(_terminal_env(err), namer=lambda tid: "beach")
    rep.download_progress(TID, 1 << 20, 2 << 20)
    rep.download_done(TID, Path("/tmp/out/beach-7.mp4"), 2 << 20, False)
    assert rep.rows[TID].name == "beach-7"
    rep.download_done(TID, Path(f"/tmp/out/{TID}.mp4"), 2 << 20, True)
    assert rep.rows[TID].name == "beach-7"  # "{task_id}.mp4" says no more than the id
    rep.close()
    assert f"{TID} saved /tmp/out/beach-7.mp4 (2.0 MiB)" in err.getvalue()


def _plain(clock: Clock) -> tuple[PlainReporter, io.StringIO]:
    err = io.StringIO()
    return PlainReporter(Environment(environ={"CI": "true"}, stderr=err), clock=clock), err


def test_heartbeat_one_line_per_unfinished_task_every_30_seconds() -> None:
    clock = Clock()
    rep, err = _plain(clock)
    rep.add_task("t1")
    rep.add_task("t2")
    rep.status("t1", "RUNNING", 0.0)
    err.truncate(0), err.seek(0)
    clock.t += 29.9
    rep.beat()
    assert err.getvalue() == ""
    clock.t += 0.1
    rep.beat()
    assert err.getvalue() == ("wanvid: t1 still RUNNING (30s elapsed)\n"
                              "wanvid: t2 still QUERYING (30s elapsed)\n")
    rep.beat()  # once per 30 s, not once per call
    clock.t += 15
    rep.status("t2", "FAILED", 45.0)  # finished: no more heartbeat for it
    err.truncate(0), err.seek(0)
    clock.t += 15
    rep.beat()
    assert err.getvalue() == "wanvid: t1 still RUNNING (1m00s elapsed)\n"


def test_heartbeat_during_a_long_download_names_its_progress() -> None:
    clock = Clock()
    rep, err = _plain(clock)
    rep.status("t1", "SUCCEEDED", 10.0)
    rep.download_progress("t1", 3 << 20, 10 << 20)
    err.truncate(0), err.seek(0)
    clock.t += 30
    rep.beat()
    assert err.getvalue() == "wanvid: t1 still downloading: 3.0/10.0 MiB so far (40s elapsed)\n"
    rep.download_done("t1", Path("v.mp4"), 10 << 20, False)
    clock.t += 60
    err.truncate(0), err.seek(0)
    rep.beat()
    assert err.getvalue() == ""


def test_heartbeat_of_wanvid_download_says_downloading_not_querying() -> None:
    # `wanvid download ID`: the task is added (QUERYING while its status is asked), then
    # the download reports from its request on, before the storage host has answered.
    clock = Clock()
    rep, err = _plain(clock)
    rep.add_task("t1")
    clock.t += 2
    rep.download_progress("t1", 0, None)  # the request is out; no answer yet
    clock.t += 30
    rep.beat()
    assert err.getvalue() == "wanvid: t1 still downloading: nothing received yet (32s elapsed)\n"
    err.truncate(0), err.seek(0)
    rep.download_progress("t1", 1 << 20, None)  # no Content-Length: no total
    clock.t += 30
    rep.beat()
    assert err.getvalue() == "wanvid: t1 still downloading: 1.0 MiB so far (1m02s elapsed)\n"
    err.truncate(0), err.seek(0)
    rep.download_progress("t1", 0, 4 << 20)  # a fresh 200 with its length
    clock.t += 30
    rep.beat()
    assert err.getvalue() == ("wanvid: t1 still downloading: 0.0/4.0 MiB so far "
                              "(1m32s elapsed)\n")


def test_heartbeat_thread_stops_on_close() -> None:
    rep, _ = _plain(Clock())
    rep.start()
    assert rep.thread is not None and rep.thread.is_alive()
    rep.close()
    assert not rep.thread.is_alive()


def test_quiet_has_no_heartbeat_and_terminals_get_the_live_rows() -> None:
    env = Environment(environ={"CI": "true"}, stderr=io.StringIO())
    assert type(make_reporter(env, quiet=True)) is QuietReporter
    rep = make_reporter(env)
    assert isinstance(rep, PlainReporter) and rep.thread is not None
    rep.close()


@pytest.mark.parametrize(("raw", "seconds"), [
    (None, 30.0), ("5", 5.0), ("0", float("inf")), ("-1", float("inf")), ("x", 30.0)])
def test_heartbeat_interval_from_the_environment(raw: str | None, seconds: float) -> None:
    from wanvid.progress import heartbeat_seconds

    environ = {} if raw is None else {"WANVID_HEARTBEAT": raw}
    assert heartbeat_seconds(Environment(environ=environ)) == seconds


def test_one_live_display_at_a_time_the_second_reporter_prints_above() -> None:
    err = io.StringIO()
    env = _terminal_env(err)
    rep = RichReporter(env)
    with pytest.raises(RuntimeError):
        RichReporter(env)  # the caller (an upload during a batch) falls back to plain lines
    PlainReporter(env).upload_done("clip.mp4", 3 << 20, False, 0.5)
    rep.close()
    assert "wanvid: uploaded clip.mp4 (3.0 MiB, 0.5 s)" in err.getvalue()
