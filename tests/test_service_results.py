"""The newer result fields, read leniently: usage's input_video_duration,
output_video_duration and audio (int, float or numeric string; garbage is None, never a
crash), and the task list under ``data`` (the API reference) or ``tasks`` (SDK 2.0.2)."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import responses

from tests import envelope_schema
from tests.conftest import Result
from wanvid.envelope import task_list
from wanvid.sidecar import usage_summary
from wanvid.usage import lenient_bool, lenient_number, service_usage, usage_seconds

Run = Callable[..., Result]
INTL = "https://dashscope-intl.aliyuncs.com/api/v1"


@pytest.mark.parametrize("value, want", [
    (10, 10), (10.0, 10), (2.5, 2.5), ("10", 10), (" 7.0 ", 7), ("2.5", 2.5), (0, 0),
    (True, None), (None, None), ("", None), ("ten", None), ("nan", None), ("inf", None),
    (math.nan, None), (-1, None), ("-3", None), (1e13, None), ([5], None), ({"a": 1}, None),
    ("9" * 50, None),
])
def test_lenient_number(value: object, want: object) -> None:
    got = lenient_number(value)
    assert got == want and type(got) is type(want)


@pytest.mark.parametrize("value, want", [
    (True, True), (False, False), ("true", True), ("FALSE", False), (1, True), (0, False),
    ("yes", None), (2, None), (None, None), ([], None),
])
def test_lenient_bool(value: object, want: object) -> None:
    assert lenient_bool(value) is want


def test_newer_usage_fields() -> None:
    # wan2.7 continuing a 3 s clip into 8 s: duration is the sum
    u = service_usage({"duration": "11.0", "input_video_duration": 3,
                       "output_video_duration": "8", "SR": "720", "video_count": 1})
    assert (u["billed_seconds"], u["input_video_duration"], u["output_video_duration"],
            u["SR"]) == (11, 3, 8, 720)
    # duration missing: the two parts
    assert usage_seconds({"input_video_duration": 2.5, "output_video_duration": 5}) == 7.5
    # wan2.6-i2v-flash's audio flag, any spelling
    assert service_usage({"duration": 5, "audio": "false"})["audio"] is False
    assert service_usage({"duration": 5, "audio": True})["audio"] is True
    # wan2.1: video_duration; the SDK's default 0 is "not given"
    assert usage_seconds({"video_duration": 5, "video_ratio": "standard"}) == 5
    assert usage_seconds({"video_duration": 0, "video_ratio": ""}) is None


@pytest.mark.parametrize("usage", [
    None, "garbage", [], 5, {"duration": {"x": 1}}, {"duration": "soon", "audio": "maybe",
                                                     "input_video_duration": [1]},
    {"duration": float("nan"), "SR": "HD"},
])
def test_garbage_usage_never_crashes(usage: object) -> None:
    u = service_usage(usage)
    assert u["billed_seconds"] is None and u["audio"] is None
    s = usage_summary(usage if isinstance(usage, dict) else None, {"duration": 5,
                                                                    "resolution": "720P"})
    assert s["billed_seconds"] == 5 and s["resolution"] == "720P"


def test_sidecar_usage_has_the_newer_fields() -> None:
    s = usage_summary({"duration": "13", "input_video_duration": "3.0",
                       "output_video_duration": 10, "SR": 1080.0, "audio": False}, {})
    assert s == {"billed_seconds": 13, "resolution": "1080P", "input_video_seconds": 3,
                 "output_video_seconds": 10, "audio": False}


ROWS = [{"task_id": "t-1", "status": "SUCCEEDED", "model_name": "wan2.7-i2v"},
        {"task_id": "t-2", "task_status": "RUNNING", "model_name": "wan2.6-i2v"}]


@pytest.mark.parametrize("resp", [{"data": ROWS}, {"tasks": ROWS}, {"data": None, "tasks": ROWS},
                                  {"data": [*ROWS, "junk", 3, None]}])
def test_task_list_under_data_or_tasks(resp: dict[str, object]) -> None:
    got = task_list(resp)
    assert [(t["task_id"], t["task_status"]) for t in got] == [("t-1", "SUCCEEDED"),
                                                                ("t-2", "RUNNING")]


@pytest.mark.parametrize("resp", [None, [], "x", {}, {"data": "x"}, {"tasks": {"a": 1}}])
def test_task_list_garbage_is_empty(resp: object) -> None:
    assert task_list(resp) == []


@pytest.mark.parametrize("key", ["data", "tasks"])
def test_tasks_remote_reads_either_key(run: Run, key: str) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, INTL + "/tasks", json={"request_id": "r", "total": 2, key: ROWS})
        r = run(["tasks", "--remote", "--json"])
        text = run(["tasks", "--remote"]) if key == "tasks" else None
    assert r.code == 0, r.err
    assert [(t["task_id"], t["status"], t["model"]) for t in
            envelope_schema.data(r.out, "tasks")] == [("t-1", "SUCCEEDED", "wan2.7-i2v"),
                                                       ("t-2", "RUNNING", "wan2.6-i2v")]
    if text is not None:
        assert text.out.splitlines() == ["t-1 SUCCEEDED wan2.7-i2v", "t-2 RUNNING wan2.6-i2v"]
