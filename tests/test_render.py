"""Text renderings of results (pure functions of their rows)."""

from __future__ import annotations

from typing import Any

from wanvid.render import fmt_duration, journal_task_lines, remote_task_lines

NOW = 1_800_000_000.0


def _row(**kw: Any) -> dict[str, Any]:
    return {"task_id": "t-1", "status": "SUCCEEDED", "model": "wan2.6-i2v", "path": None,
            "expires_in": None, "code": None, "message": None, "submitted_at": NOW - 90, **kw}


def test_journal_lines_say_where_the_video_is_or_why_not() -> None:
    lines = journal_task_lines([
        _row(path="/v/a.mp4"),
        _row(task_id="t-2", expires_in=3 * 3600 + 60),
        _row(task_id="t-3", expires_in=-5),
        _row(task_id="t-4", status="FAILED", code="DataInspectionFailed", message="no"),
        _row(task_id="t-5", status="RUNNING", model=None, submitted_at=None),
    ], NOW)
    assert lines == [
        "t-1 SUCCEEDED wan2.6-i2v           1m30s ago /v/a.mp4",
        "t-2 SUCCEEDED wan2.6-i2v           1m30s ago not downloaded, expires in 3h01m",
        "t-3 SUCCEEDED wan2.6-i2v           1m30s ago not downloaded, URL expired",
        "t-4 FAILED    wan2.6-i2v           1m30s ago DataInspectionFailed: no",
        "t-5 RUNNING   -                        ? ago",
    ]


def test_remote_lines_are_one_line_each_whatever_the_server_sent() -> None:
    lines = remote_task_lines([
        {"task_id": "t-1", "task_status": "SUCCEEDED", "model_name": "wan2.7-i2v",
         "submit_time": "2026-12-03 10:00:00.000"},
        {"task_id": "t-2\n\x1b[2Jevil", "task_status": None},
    ])
    # Beijing time as the service writes it, shown in UTC as --json and gmt_create are
    assert lines[0] == "t-1 SUCCEEDED wan2.7-i2v 2026-12-03T02:00:00Z"
    assert len(lines) == 2 and "\n" not in lines[1] and "\x1b" not in lines[1]
    assert lines[1].startswith("t-2")


def test_fmt_duration_units() -> None:
    assert [fmt_duration(s) for s in (-3, 0, 59, 61, 3600, 7322)] == [
        "0s", "0s", "59s", "1m01s", "1h00m", "2h02m"]


def test_remote_lines_read_the_documented_task_list_shape_too() -> None:
    # wan-api-2026.md section 5: "status" and gmt_create in epoch milliseconds
    lines = remote_task_lines([{"task_id": "t-9", "status": "RUNNING",
                                "model_name": "wan2.6-i2v", "gmt_create": 1_800_000_000_000}])
    assert lines == ["t-9 RUNNING wan2.6-i2v 2027-01-15T08:00:00Z"]
