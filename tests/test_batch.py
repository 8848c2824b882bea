"""wanvid batch: parsing (JSON Lines and CSV, line numbers, aliases, coercion), validation of
every line before anything is sent, the shared backoff on 429, and re-runs that skip done
jobs. Unit level: the CLI runs in-process with a fake clock and ``responses`` as the service.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import responses

from tests import envelope_schema
from tests.conftest import FakeClock, Result
from tests.fixtures_media import png_bytes
from wanvid.batch import FIELDS, parse_jobs, read_jobs
from wanvid.errors import BadInputError
from wanvid.journal import Journal

Run = Callable[..., Result]

INTL = "https://dashscope-intl.aliyuncs.com/api/v1"
I2V_URL = INTL + "/services/aigc/video-generation/video-synthesis"
KF2V_URL = INTL + "/services/aigc/image2video/video-synthesis"
TASK_RE = re.compile(re.escape(INTL) + r"/tasks/([^/?]+)$")
OSS = "https://dashscope-result-sh.oss-cn-shanghai.aliyuncs.com"
VIDEO_RE = re.compile(re.escape(OSS) + r"/.*")
NOW = 1_800_000_000.0  # the fake clock's start


def mp4() -> bytes:
    from wanvid.emulator import load_fixture

    return load_fixture()


def images(*names: str) -> None:
    """Distinct valid PNGs in the working directory (distinct content: distinct jobs)."""
    for i, name in enumerate(names):
        Path(name).write_bytes(png_bytes(640 + 8 * i, 480))


def jsonl(*objs: dict[str, Any]) -> str:
    return "".join(json.dumps(o) + "\n" for o in objs)


def json_rows(out: str) -> list[dict[str, Any]]:
    """The job envelopes' data (each with its exit_code; null values left out), validated
    against the schema."""
    return [{k: v for k, v in row.items() if v is not None}
            for row in envelope_schema.rows(out, "batch")]


class Service:
    """The API as ``responses`` callbacks.

    ``submit_plan``: HTTP statuses for successive submit calls (then 200 for ever);
    ``states``: per task id, the statuses successive queries return (default SUCCEEDED).
    """

    def __init__(self, rsps: responses.RequestsMock, *, submit_plan: list[int] | None = None,
                 states: dict[str, list[str]] | None = None) -> None:
        self.submit_plan = list(submit_plan or [])
        self.states = states or {}
        self.submit_calls = 0
        self.created: list[str] = []
        self.bodies: list[dict[str, Any]] = []
        for url in (I2V_URL, KF2V_URL):
            rsps.add_callback(responses.POST, url, callback=self._submit)
        rsps.add_callback(responses.GET, TASK_RE, callback=self._query)
        rsps.add(responses.GET, VIDEO_RE, body=mp4(), content_type="video/mp4")
        # The task list (resolving a submit whose answer proved nothing): no other task.
        rsps.add(responses.GET, INTL + "/tasks", json={"request_id": "r", "data": [],
                                                       "total": 0, "total_page": 0})

    def _submit(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.submit_calls += 1
        status = self.submit_plan.pop(0) if self.submit_plan else 200
        if status == 429:
            return 429, {}, json.dumps({"request_id": "r", "code": "Throttling.RateQuota",
                                        "message": "Requests rate limit exceeded."})
        if status != 200:
            return status, {}, json.dumps({"request_id": "r", "code": "InternalError",
                                           "message": "boom"})
        tid = f"t-{len(self.created) + 1}"
        self.created.append(tid)
        self.bodies.append(json.loads(request.body))
        return 200, {}, json.dumps({"request_id": "r", "output": {"task_id": tid,
                                                                  "task_status": "PENDING"}})

    def _query(self, request: Any) -> tuple[int, dict[str, str], str]:
        tid = TASK_RE.match(request.url.split("?")[0]).group(1)  # type: ignore[union-attr]
        plan = self.states.get(tid, [])
        status = plan.pop(0) if plan else (self.states.get("*") or ["SUCCEEDED"])[0]
        out: dict[str, Any] = {"task_id": tid, "task_status": status}
        body: dict[str, Any] = {"request_id": "r", "output": out}
        if status == "SUCCEEDED":
            out["video_url"] = f"{OSS}/{tid}.mp4?Expires={int(NOW) + 86400}&Signature=abc"
            body["usage"] = {"duration": 5, "video_count": 1, "SR": 720}
        elif status == "FAILED":
            out.update(code="InternalError.Algo", message="the algorithm failed")
        return 200, {}, json.dumps(body)


# --- parse_jobs: JSON Lines -----------------------------------------------------------------


def test_jsonl_jobs_carry_their_physical_line_numbers() -> None:
    text = ("# a batch of three\n"
            "\n"
            '{"image": "a.png", "prompt": "waves"}\n'
            "   # indented comment\n"
            '{"image": "b.png", "duration": 5}\n'
            "\n"
            '  {"image": "c.png", "seed": 7}  \n')
    jobs, bad = parse_jobs(text)
    assert bad == []
    assert [j.line for j in jobs] == [3, 5, 7]
    assert [j.fields for j in jobs] == [
        {"image": "a.png", "prompt": "waves"},
        {"image": "b.png", "duration": 5},
        {"image": "c.png", "seed": 7},
    ]


def test_jsonl_bad_lines_are_reported_with_their_numbers_and_the_rest_kept() -> None:
    text = ('{"image": "a.png"}\n'
            "# comment\n"
            '{"image": "b.png",\n'          # 3: broken JSON
            '["c.png"]\n'                   # 4: not an object
            '{"image": "d.png"}\n')         # 5: fine
    jobs, bad = parse_jobs(text)
    assert [j.line for j in jobs] == [1, 5]
    assert [j.line for j in bad] == [3, 4]
    assert bad[0].error.startswith("line 3: not valid JSON")
    assert bad[1].error == "line 4: expected a JSON object"
    assert all(j.state == "invalid" for j in bad)


def test_empty_input_and_only_comments_give_no_jobs() -> None:
    assert parse_jobs("") == ([], [])
    assert parse_jobs("\n# nothing\n\n   \n") == ([], [])


# --- parse_jobs: CSV ------------------------------------------------------------------------


def test_csv_header_quoted_commas_comments_blank_lines_and_line_numbers() -> None:
    text = ("# jobs for the spring campaign\n"
            "image,prompt,duration,seed\n"
            'a.png,"waves, slowly, at dusk",5,1\n'
            "\n"
            "# b is the hero shot\n"
            'b.png,"she says ""hi""",,\n'
            "c.png,plain,5,3\n")
    jobs, bad = parse_jobs(text)
    assert bad == []
    assert [j.line for j in jobs] == [3, 6, 7]
    assert jobs[0].fields == {"image": "a.png", "prompt": "waves, slowly, at dusk",
                              "duration": 5, "seed": 1}
    # empty cells are "not given", not empty strings
    assert jobs[1].fields == {"image": "b.png", "prompt": 'she says "hi"', "duration": None,
                              "seed": None}
    assert jobs[2].fields["seed"] == 3


def test_csv_errors_carry_the_physical_line_number() -> None:
    text = ("image,seed\n"
            "# comment\n"
            "a.png,1\n"
            "\n"
            "b.png,abc\n"          # 5: bad seed
            "c.png,2,extra\n"      # 6: too many values
            ",3\n")                # 7: no image
    jobs, bad = parse_jobs(text)
    assert [j.line for j in jobs] == [3]
    assert [(j.line, j.error) for j in bad] == [
        (5, "line 5: seed: expected a whole number, got 'abc'"),
        (6, "line 6: more values than header columns"),
        (7, 'line 7: no image (every job needs an "image", or a "first_clip")'),
    ]


def test_csv_with_windows_line_endings() -> None:
    jobs, bad = parse_jobs("image,prompt\r\na.png,x\r\n\r\nb.png,y\r\n")
    assert bad == []
    assert [(j.line, j.fields["image"]) for j in jobs] == [(2, "a.png"), (4, "b.png")]


def test_csv_quoted_multiline_cell_keeps_its_text_and_later_line_numbers() -> None:
    text = ("image,prompt\n"
            'a.png,"first paragraph\n'
            "\n"
            '# not a comment, part of the prompt"\n'
            "b.png,next\n")
    jobs, bad = parse_jobs(text)
    assert bad == []
    assert jobs[0].fields["prompt"] == "first paragraph\n\n# not a comment, part of the prompt"
    assert [j.line for j in jobs] == [2, 5]


# --- field names and values -----------------------------------------------------------------


def test_field_aliases_case_and_dashes() -> None:
    jobs, bad = parse_jobs(jsonl(
        {"first_frame": "a.png", "last_frame_url": "b.png", "audio_url": "s.mp3", "o": "x.mp4"},
        {"img_url": "c.png", "Negative-Prompt": "blur", "PROMPT": "p"},
        {"first_frame_url": "d.png", "no-audio": True},
    ))
    assert bad == []
    assert jobs[0].fields == {"image": "a.png", "last_frame": "b.png", "audio": "s.mp3",
                              "output": "x.mp4"}
    assert jobs[1].fields == {"image": "c.png", "negative_prompt": "blur", "prompt": "p"}
    assert jobs[2].fields == {"image": "d.png", "no_audio": True}


def test_csv_header_aliases() -> None:
    jobs, bad = parse_jobs("first_frame,last_frame_url,o\na.png,b.png,ab.mp4\n")
    assert bad == []
    assert jobs[0].fields == {"image": "a.png", "last_frame": "b.png", "output": "ab.mp4"}


@pytest.mark.parametrize("raw, expected", [
    ({"duration": "5"}, {"duration": 5}),
    ({"duration": 5.0}, {"duration": 5}),
    ({"seed": "42"}, {"seed": 42}),
    ({"fit": "yes", "watermark": "off", "prompt_extend": "1"},
     {"fit": True, "watermark": False, "prompt_extend": True}),
    ({"no_audio": False}, {"no_audio": False}),
    ({"prompt": None}, {"prompt": None}),
])
def test_values_are_coerced_to_the_field_type(raw: dict[str, Any], expected: dict[str, Any]) -> None:
    jobs, bad = parse_jobs(jsonl({"image": "a.png", **raw}))
    assert bad == []
    assert jobs[0].fields == {"image": "a.png", **expected}


@pytest.mark.parametrize("raw, message", [
    ({"duration": 5.5}, "duration: expected a whole number, got 5.5"),
    ({"duration": True}, "duration: expected a whole number, got True"),
    ({"seed": "abc"}, "seed: expected a whole number, got 'abc'"),
    ({"fit": "maybe"}, "fit: expected true or false, got 'maybe'"),
    ({"prompt": 5}, "prompt: expected text, got 5"),
    ({"image": ["a.png"]}, "image: expected text, got ['a.png']"),
])
def test_coercion_errors_name_line_and_field(raw: dict[str, Any], message: str) -> None:
    jobs, bad = parse_jobs("# header comment\n" + jsonl({"image": "a.png", **raw}))
    assert jobs == []
    assert [j.error for j in bad] == [f"line 2: {message}"]


@pytest.mark.parametrize("text", [
    '{"image": "a.png", "seed": NaN}\n',
    '{"image": "a.png", "duration": Infinity}\n',
    '{"image": "a.png", "seed": ' + "9" * 400 + "}\n",
    "image,seed\na.png,inf\n",
])
def test_non_finite_numbers_are_input_errors_not_crashes(text: str) -> None:
    jobs, bad = parse_jobs(text)
    assert jobs == []
    assert len(bad) == 1 and "expected a whole number" in (bad[0].error or "")


def test_unknown_field_is_named_with_the_allowed_fields() -> None:
    jobs, bad = parse_jobs(jsonl({"image": "a.png"}, {"image": "b.png", "colour": "red"}))
    assert [j.line for j in jobs] == [1]
    assert bad[0].line == 2
    assert bad[0].error.startswith("line 2: unknown field 'colour'; fields: ")
    for name in FIELDS:
        assert name in bad[0].error


@pytest.mark.parametrize("obj", [{"prompt": "no image"}, {"image": ""}, {"image": None}])
def test_a_job_without_image_is_invalid(obj: dict[str, Any]) -> None:
    jobs, bad = parse_jobs(jsonl(obj))
    assert jobs == []
    assert bad[0].error == 'line 1: no image (every job needs an "image", or a "first_clip")'


def test_read_jobs_file_errors_and_bom(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="no such file"):
        read_jobs(str(tmp_path / "nope.jsonl"), None)
    with pytest.raises(BadInputError, match="is a directory"):
        read_jobs(str(tmp_path), None)
    p = tmp_path / "excel.csv"
    p.write_bytes("\ufeffimage,prompt\r\na.png,x\r\n".encode())  # Excel's "CSV UTF-8"
    jobs, bad = read_jobs(str(p), None)
    assert bad == [] and jobs[0].fields == {"image": "a.png", "prompt": "x"}


# --- the batch command: validation before anything is sent ----------------------------------


INVALID_FILE = (
    "# line 1 is a comment\n"
    '{"image": "a.png", "prompt": "fine"}\n'               # 2
    '{"image": "missing.png"}\n'                            # 3: no such file
    "\n"                                                    # 4
    '{"image": "b.png", "duration": 7}\n'                   # 5: flash makes 5 s only
    '{"image": "c.png", "colour": "red"}\n'                 # 6: unknown field
    "this is not json\n"                                    # 7
    '{"image": "c.png", "seed": "abc"}\n'                   # 8
    '{"image": "c.png", "model": "wan9-nope"}\n'            # 9: unknown model
    '{"image": "c.png", "prompt": "fine too"}\n'            # 10
)
BAD_LINES = [3, 5, 6, 7, 8, 9]


def test_invalid_lines_are_all_reported_with_numbers_and_nothing_is_sent(run: Run) -> None:
    images("a.png", "b.png", "c.png")
    Path("jobs.jsonl").write_text(INVALID_FILE)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        svc = Service(rsps)
        r = run(["batch", "jobs.jsonl"])
        assert len(rsps.calls) == 0
    assert svc.submit_calls == 0
    assert r.code == 2
    assert r.out == ""
    errors = [ln for ln in r.err.splitlines() if ln.startswith("wanvid: error: jobs.jsonl: line ")]
    assert [int(re.match(r"wanvid: error: jobs\.jsonl: line (\d+):", e).group(1))  # type: ignore[union-attr]
            for e in errors] == BAD_LINES
    assert "missing.png" in errors[0]
    assert "--duration 7" in errors[1]
    assert "unknown field 'colour'" in errors[2]
    assert "not valid JSON" in errors[3]
    assert "wan9-nope" in errors[5]
    assert "6 invalid job(s); nothing was sent" in r.err
    assert "--skip-invalid" in r.err


def test_invalid_csv_lines_are_reported_with_numbers_and_nothing_is_sent(run: Run) -> None:
    images("a.png")
    Path("jobs.csv").write_text("image,resolution\n# c\na.png,720P\na.png,4K\nnope.png,\n")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        Service(rsps)
        r = run(["batch", "jobs.csv", "-j", "3"])
        assert len(rsps.calls) == 0
    assert r.code == 2
    assert "jobs.csv: line 4: --resolution 4K" in r.err
    assert "jobs.csv: line 5:" in r.err and "nope.png" in r.err
    assert "2 invalid job(s); nothing was sent" in r.err


def test_no_jobs_is_a_usage_error(run: Run) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        r = run(["batch", "-"], stdin="# nothing here\n\n")
        assert len(rsps.calls) == 0
    assert r.code == 2 and "no jobs to run" in r.err


@pytest.mark.parametrize("n", [
    "-1",
    "0",
])
def test_jobs_must_be_at_least_one(run: Run, n: str) -> None:
    images("a.png")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        Service(rsps)
        r = run(["batch", "-", "-j", n, "--no-download"], stdin=jsonl({"image": "a.png"}))
        sent = len(rsps.calls)
    assert r.code == 2 and "--jobs must be at least 1" in r.err
    assert sent == 0


def test_skip_invalid_runs_the_valid_jobs_and_counts_the_invalid(run: Run) -> None:
    images("a.png", "b.png", "c.png")
    Path("jobs.jsonl").write_text(INVALID_FILE)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        svc = Service(rsps)
        r = run(["batch", "jobs.jsonl", "--skip-invalid", "--no-download", "--json"])
    assert svc.submit_calls == 2
    rows = json_rows(r.out)
    ran = [row for row in rows if row["status"] != "INVALID"]
    assert sorted(row["line"] for row in ran) == [2, 10]
    assert {row["status"] for row in ran} == {"SUCCEEDED"}
    # the invalid lines are in the JSON too, each with its error (README's jq recipe),
    # the line number only in "line" (the message does not repeat it)
    invalid = [row for row in rows if row["status"] == "INVALID"]
    assert sorted(row["line"] for row in invalid) == sorted(BAD_LINES)
    assert all(row["exit_code"] == 2 and "task_id" not in row and row["message"]
               and not row["message"].startswith("line ") for row in invalid)
    errs = [e for env in envelope_schema.envelopes(r.out, "batch") for e in env["errors"]]
    assert sorted(e["line"] for e in errs) == sorted(BAD_LINES)
    assert not any(e["message"].startswith("line ") for e in errs)
    summary = envelope_schema.last(r.out, "batch", exit_code=r.code)
    assert summary["data"]["invalid"] == 6 and summary["data"]["succeeded"] == 2
    assert sorted(b["input"]["prompt"] for b in svc.bodies) == ["fine", "fine too"]
    for n in BAD_LINES:
        assert f"jobs.jsonl: line {n}:" in r.err
    assert "wanvid: batch: 2 succeeded, 0 failed, 0 skipped, 6 invalid; 10 s billed" in r.err


def test_skip_invalid_exit_code_does_not_claim_nothing_was_sent(run: Run) -> None:
    images("a.png", "b.png", "c.png")
    Path("jobs.jsonl").write_text(INVALID_FILE)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        svc = Service(rsps)
        r = run(["batch", "jobs.jsonl", "--skip-invalid", "--no-download"])
    assert svc.submit_calls == 2
    assert r.code != 2


@pytest.mark.parametrize("args, job", [
    (["-o", "{nope}.mp4"], {}),
    ([], {"output": "videos/{bogus}.mp4"}),
])
def test_a_bad_output_template_is_rejected_before_anything_is_sent(
        run: Run, args: list[str], job: dict[str, Any]) -> None:
    images("a.png")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        Service(rsps)
        r = run(["batch", "-", *args], stdin=jsonl({"image": "a.png", **job}))
        sent = len(rsps.calls)
    assert r.code == 2
    assert sent == 0


def test_a_bom_on_stdin_is_ignored_like_in_files(run: Run) -> None:
    images("a.png")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        svc = Service(rsps)
        r = run(["batch", "-", "--no-download"], stdin="\ufeff" + jsonl({"image": "a.png"}))
    assert r.code == 0, r.err
    assert svc.submit_calls == 1


# --- the batch command: running ---------------------------------------------------------------


def test_csv_batch_sends_each_row_as_its_own_request(run: Run) -> None:
    images("a.png", "b.png")
    Path("jobs.csv").write_text("image,prompt,resolution\n"
                                'a.png,"waves, then wind",480P\n'
                                "b.png,calm,\n")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        svc = Service(rsps)
        r = run(["batch", "jobs.csv", "--no-download", "--json"])
    assert r.code == 0, r.err
    bodies = sorted(svc.bodies, key=lambda b: b["input"]["prompt"])
    assert [(b["input"]["prompt"], b["parameters"]["resolution"]) for b in bodies] == [
        ("calm", "720P"), ("waves, then wind", "480P")]
    assert all(b["input"]["img_url"].startswith("data:image/png;base64,") for b in bodies)
    assert sorted(row["line"] for row in json_rows(r.out)) == [2, 3]


def test_json_lines_shape_and_summary_on_stderr(run: Run) -> None:
    images("a.png", "b.png")
    Path("jobs.jsonl").write_text(jsonl({"image": "a.png", "prompt": "x"},
                                        {"image": "b.png", "output": "b-own.mp4"}))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        Service(rsps)
        r = run(["batch", "jobs.jsonl", "-o", "{stem}-{seed}.mp4", "--json"])
    assert r.code == 0, r.err
    rows = sorted(json_rows(r.out), key=lambda row: row["line"])
    assert [row["line"] for row in rows] == [1, 2]
    for row in rows:
        assert {"line", "task_id", "status", "exit_code", "path", "size", "sha256"} <= set(row)
        assert row["status"] == "SUCCEEDED" and row["exit_code"] == 0
        assert Path(row["path"]).is_file()
    assert rows[0]["path"] == "a-noseed.mp4"
    assert rows[1]["path"] == "b-own.mp4"  # the job's own output beats -o
    assert r.err.splitlines()[-1] == "wanvid: batch: 2 succeeded, 0 failed, 0 skipped; 10 s billed"


def test_text_mode_prints_one_path_per_job(run: Run) -> None:
    images("a.png", "b.png")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        Service(rsps)
        r = run(["batch", "-", "-o", "out/{stem}.mp4"],
                stdin=jsonl({"image": "a.png"}, {"image": "b.png"}))
    assert r.code == 0, r.err
    assert sorted(r.out.splitlines()) == ["out/a.mp4", "out/b.mp4"]


def test_failed_task_is_reported_with_its_line_and_exit_5(run: Run) -> None:
    images("a.png", "b.png")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        svc = Service(rsps, states={"t-2": ["FAILED"]})
        r = run(["batch", "-", "--no-download", "--json", "-j", "1"],
                stdin=jsonl({"image": "a.png"}, {"image": "b.png"}))
    assert svc.created == ["t-1", "t-2"]
    assert r.code == 5
    rows = {row["line"]: row for row in json_rows(r.out)}
    assert rows[1]["status"] == "SUCCEEDED"
    assert rows[2]["status"] == "FAILED" and rows[2]["code"] == "InternalError.Algo"
    assert rows[2]["exit_code"] == 5
    assert "line 2: t-2 FAILED" in r.err
    assert "1 succeeded, 1 failed, 0 skipped; 5 s billed" in r.err


# --- shared backoff on 429 ------------------------------------------------------------------


def test_throttled_submit_slows_the_batch_down_instead_of_failing(run: Run, clock: FakeClock) -> None:
    """Job 1 is accepted; job 2 meets five 429s in a row (the client's 4 retries exhausted,
    so ThrottledError reaches the batch while a task is in flight): the batch holds off
    until a task finishes, then submits the rest. Every job is created exactly once."""
    images("a.png", "b.png", "c.png")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        svc = Service(rsps, submit_plan=[200, 429, 429, 429, 429, 429],
                      states={"t-1": ["RUNNING", "SUCCEEDED"]})
        r = run(["batch", "-", "--no-download", "--json", "-j", "2"],
                stdin=jsonl({"image": "a.png"}, {"image": "b.png"}, {"image": "c.png"}))
    assert r.code == 0, r.err
    assert svc.submit_calls == 8  # 1 + 5 refused + 2
    assert svc.created == ["t-1", "t-2", "t-3"]
    rows = json_rows(r.out)
    assert sorted(row["line"] for row in rows) == [1, 2, 3]
    assert len({row["task_id"] for row in rows}) == 3
    assert all(row["status"] == "SUCCEEDED" for row in rows)
    # the client's four retries back off on the (fake) clock: >= 0.5 + 1 + 2 + 4 s with jitter
    assert sum(clock.sleeps) >= 7.5
    assert "3 succeeded, 0 failed, 0 skipped; 15 s billed" in r.err


def test_throttled_with_nothing_in_flight_the_batch_waits_with_growing_delays(
        run: Run, clock: FakeClock) -> None:
    images("a.png", "b.png")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        svc = Service(rsps, submit_plan=[429] * 10)
        start = clock.t
        r = run(["batch", "-", "--no-download", "--json", "-j", "1"],
                stdin=jsonl({"image": "a.png"}, {"image": "b.png"}))
    assert r.code == 0, r.err
    assert svc.submit_calls == 12
    assert svc.created == ["t-1", "t-2"]
    waits = [float(m) for m in re.findall(r"throttled by the service; the batch waits (\d+)s",
                                          r.err)]
    assert len(waits) == 2  # two rounds of the client's retries exhausted, two batch waits
    assert clock.t - start >= 2 * (0.5 + 1 + 2 + 4) + 0.5 + 1  # client retries + batch waits
    assert {row["line"] for row in json_rows(r.out)} == {1, 2}


def test_steady_throttling_does_not_starve_one_task(run: Run, clock: FakeClock) -> None:
    """Every second API request answers 429 (like ``wanvid emulator --throttle-every 2``);
    tasks finish 1 s after their submit. The whole batch should take seconds, not minutes."""
    import random

    random.seed(20260601)  # the backoff jitter: one fixed draw
    stems = [f"{c}.png" for c in "abcdef"]
    images(*stems)
    count = 0
    created: dict[str, float] = {}

    def throttled(answer: Callable[[Any], tuple[int, dict[str, str], str]]) -> Callable[..., Any]:
        def cb(request: Any) -> tuple[int, dict[str, str], str]:
            nonlocal count
            count += 1
            if count % 2 == 0:
                return 429, {}, json.dumps({"request_id": "r", "code": "Throttling.RateQuota",
                                            "message": "Requests rate limit exceeded."})
            return answer(request)
        return cb

    def submit(request: Any) -> tuple[int, dict[str, str], str]:
        tid = f"t-{len(created) + 1}"
        created[tid] = clock.t
        return 200, {}, json.dumps({"request_id": "r", "output": {"task_id": tid,
                                                                  "task_status": "PENDING"}})

    def query(request: Any) -> tuple[int, dict[str, str], str]:
        tid = TASK_RE.match(request.url).group(1)  # type: ignore[union-attr]
        done = clock.t - created[tid] >= 1.0
        out: dict[str, Any] = {"task_id": tid, "task_status": "SUCCEEDED" if done else "RUNNING"}
        if done:
            out["video_url"] = f"{OSS}/{tid}.mp4?Expires={int(NOW) + 86400}&Signature=abc"
        return 200, {}, json.dumps({"request_id": "r", "output": out})

    start = clock.t
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback(responses.POST, I2V_URL, callback=throttled(submit))
        rsps.add_callback(responses.GET, TASK_RE, callback=throttled(query))
        r = run(["batch", "-", "--no-download", "-j", "2"],
                stdin=jsonl(*[{"image": s} for s in stems]), env={"WANVID_POLL_INTERVAL": "0.2"})
    assert r.code == 0, r.err
    assert len(created) == 6
    assert clock.t - start < 30


# --- re-runs: skip what is done --------------------------------------------------------------


def test_rerun_skips_downloaded_jobs_and_sends_nothing(run: Run) -> None:
    images("a.png", "b.png")
    Path("jobs.jsonl").write_text(jsonl({"image": "a.png"}, {"image": "b.png"}))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        Service(rsps)
        first = run(["batch", "jobs.jsonl", "-o", "{stem}.mp4", "--json"])
    assert first.code == 0, first.err
    ids = {row["line"]: row["task_id"] for row in json_rows(first.out)}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        Service(rsps)
        again = run(["batch", "jobs.jsonl", "-o", "{stem}.mp4", "--json"])
        assert len(rsps.calls) == 0
    assert again.code == 0, again.err
    rows = sorted(json_rows(again.out), key=lambda row: row["line"])
    assert rows == [
        {"line": 1, "task_id": ids[1], "status": "SKIPPED", "path": "a.mp4", "exit_code": 0},
        {"line": 2, "task_id": ids[2], "status": "SKIPPED", "path": "b.mp4", "exit_code": 0},
    ]
    assert "0 succeeded, 0 failed, 2 skipped; 0 s billed" in again.err


def test_rerun_waits_for_a_submitted_job_instead_of_submitting_it_again(run: Run) -> None:
    images("a.png")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        svc = Service(rsps, states={"*": ["RUNNING"]})
        first = run(["batch", "-", "--no-download", "--timeout", "30"],
                    stdin=jsonl({"image": "a.png"}))
    assert first.code == 6, first.err
    assert svc.created == ["t-1"]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        svc = Service(rsps)
        again = run(["batch", "-", "--no-download", "--json"], stdin=jsonl({"image": "a.png"}))
    assert again.code == 0, again.err
    assert svc.submit_calls == 0
    assert [(row["line"], row["task_id"], row["status"]) for row in json_rows(again.out)] == [
        (1, "t-1", "SUCCEEDED")]
    assert "0 job(s) to submit, 1 already submitted, 0 already done" in again.err


def test_rerun_submits_a_failed_job_again(run: Run) -> None:
    images("a.png")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        Service(rsps, states={"t-1": ["FAILED"]})
        first = run(["batch", "-", "--no-download"], stdin=jsonl({"image": "a.png"}))
    assert first.code == 5
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        svc = Service(rsps)
        svc.created = ["t-1"]  # the service numbers on: the new task is t-2
        again = run(["batch", "-", "--no-download", "--json"], stdin=jsonl({"image": "a.png"}))
    assert again.code == 0, again.err
    assert svc.submit_calls == 1
    assert json_rows(again.out)[0]["task_id"] == "t-2"


def test_rerun_fetches_a_deleted_video_again_without_a_new_task(run: Run) -> None:
    images("a.png")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        Service(rsps)
        assert run(["batch", "-", "-o", "{stem}.mp4"], stdin=jsonl({"image": "a.png"})).code == 0
    Path("a.mp4").unlink()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        svc = Service(rsps)
        again = run(["batch", "-", "-o", "{stem}.mp4"], stdin=jsonl({"image": "a.png"}))
    assert again.code == 0, again.err
    assert svc.submit_calls == 0
    assert again.out == "a.mp4\n" and Path("a.mp4").is_file()


def test_a_changed_image_is_a_new_job(run: Run) -> None:
    images("a.png")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        Service(rsps)
        assert run(["batch", "-", "-o", "{task_id}.mp4"], stdin=jsonl({"image": "a.png"})).code == 0
    Path("a.png").write_bytes(png_bytes(800, 600))  # same name, new content
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        svc = Service(rsps)
        svc.created = ["t-1"]
        again = run(["batch", "-", "-o", "{task_id}.mp4"], stdin=jsonl({"image": "a.png"}))
    assert again.code == 0, again.err
    assert svc.submit_calls == 1


def test_the_fingerprint_is_journaled_with_each_task(run: Run) -> None:
    images("a.png")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        Service(rsps)
        assert run(["batch", "-", "--no-download"], stdin=jsonl({"image": "a.png"})).code == 0
    import os

    journal = Journal(Path(os.environ["WANVID_STATE_DIR"]) / "journal.db")
    rec = journal.get("t-1")
    assert rec is not None and rec.fingerprint and len(rec.fingerprint) == 64
    assert [r.task_id for r in journal.list() if r.fingerprint == rec.fingerprint] == ["t-1"]


def test_rerun_does_not_skip_a_job_because_an_identical_job_is_done(run: Run) -> None:
    images("a.png")
    takes = [{"image": "a.png", "prompt": "same", "output": f"take{i}.mp4"} for i in (1, 2, 3)]
    Path("jobs.jsonl").write_text(jsonl(*takes))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        # the second submit meets a 500, that job ends in ERROR; it created nothing, as
        # the re-run finds in the task list before it submits that job again
        svc = Service(rsps, submit_plan=[200, 500, 200])
        first = run(["batch", "jobs.jsonl", "-j", "1", "--json"])
    assert first.code != 0
    assert svc.created == ["t-1", "t-2"]
    assert sorted(p.name for p in Path().glob("take*.mp4")) == ["take1.mp4", "take3.mp4"]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        svc = Service(rsps)
        svc.created = ["t-1", "t-2"]
        again = run(["batch", "jobs.jsonl", "-j", "1", "--json"])
    rows = {row["line"]: row for row in json_rows(again.out)}
    assert svc.submit_calls == 1
    assert rows[2]["status"] == "SUCCEEDED" and rows[2]["path"] == "take2.mp4"
    assert [rows[n]["path"] for n in (1, 3)] == ["take1.mp4", "take3.mp4"]


# --- outputs are settled before anything is paid for -----------------------------------------


def test_two_jobs_writing_one_file_are_invalid_and_nothing_is_sent(run: Run) -> None:
    images("a.png")
    job = {"image": "a.png", "prompt": "x", "output": "out/{stem}.mp4"}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        svc = Service(rsps)
        r = run(["batch", "-"], stdin=jsonl(job, {**job, "prompt": "y"}))
        sent = len(rsps.calls)
    assert (r.code, sent, svc.submit_calls) == (2, 0, 0)
    assert "line 2: saves to out/a.mp4 like line 1" in r.err


def test_an_existing_output_file_is_refused_before_submitting(run: Run) -> None:
    images("a.png")
    Path("mine.mp4").write_bytes(b"precious")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        svc = Service(rsps)
        r = run(["batch", "-"], stdin=jsonl({"image": "a.png", "output": "mine.mp4"}))
    assert (r.code, svc.submit_calls) == (2, 0)
    assert "mine.mp4 exists; pass --force" in r.err
    assert Path("mine.mp4").read_bytes() == b"precious"


def test_identical_jobs_with_task_id_outputs_each_keep_their_own_task(run: Run) -> None:
    images("a.png")
    job = {"image": "a.png", "prompt": "same", "output": "v/{task_id}.mp4"}
    text = jsonl(job, job)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        svc = Service(rsps)
        first = run(["batch", "-", "--json"], stdin=text)
        again = run(["batch", "-", "--json"], stdin=text)
    assert first.code == 0 and again.code == 0
    assert svc.submit_calls == 2  # the re-run created nothing
    assert sorted(r["status"] for r in json_rows(again.out)) == ["SKIPPED", "SKIPPED"]
    assert len({r["task_id"] for r in json_rows(again.out)}) == 2


def test_jobs_not_submitted_before_the_timeout_are_reported(run: Run) -> None:
    images("a.png", "b.png", "c.png")
    text = jsonl(*({"image": f"{n}.png"} for n in "abc"))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        Service(rsps, states={"*": ["RUNNING"]})
        r = run(["batch", "-", "-j", "1", "--timeout", "10", "--json"], stdin=text)
    rows = {row["line"]: row for row in json_rows(r.out)}
    assert r.code == 6
    assert rows[1]["exit_code"] == 6 and rows[1]["task_id"] == "t-1"
    assert rows[2]["status"] == rows[3]["status"] == "NOT_SUBMITTED"
    # the command as run: its -o and options make the jobs' fingerprints
    assert rows[2]["resume"] == "wanvid batch - -j 1 --timeout 10 --json"
    assert "2 not submitted" in r.err


# --- Plan.check and Plan.budget: refusals before anything is sent -----------------------------

def _plan(queue_seconds: list[int], *, invalid: int = 0) -> Any:
    from wanvid.batch import Job, Plan
    from wanvid.models import find_model
    from wanvid.params import PreparedSubmit

    model = find_model("wan2.6-i2v-flash")
    assert model is not None
    queue = [Job(i + 1, {}, prepared=PreparedSubmit(model, "720P", d, {}))
             for i, d in enumerate(queue_seconds)]
    bad = [Job(100 + i, {}, error=f"line {100 + i}: bad", state="invalid")
           for i in range(invalid)]
    return Plan("jobs.jsonl", queue + bad, bad, [], [], queue)


def test_plan_check_refuses_invalid_lines_unless_skipped() -> None:
    p = _plan([5], invalid=2)
    with pytest.raises(BadInputError, match=r"^jobs.jsonl: 2 invalid job\(s\); nothing was "
                       "sent. Fix them, or pass --skip-invalid"):
        p.check(skip_invalid=False)
    p.check(skip_invalid=True)


def test_plan_check_refuses_a_plan_with_nothing_to_do() -> None:
    with pytest.raises(BadInputError, match="^jobs.jsonl: no jobs to run$"):
        _plan([], invalid=1).check(skip_invalid=True)


def test_plan_budget_refuses_more_seconds_than_the_limit() -> None:
    p = _plan([5, 10, 15])
    assert p.budget(30, flag="--max-seconds")["billed_seconds"] == 30
    assert p.budget(None, flag="--max-seconds")["jobs"] == 3
    with pytest.raises(BadInputError, match=r"would bill 30 s \(3 job\(s\)\), over config "
                       "max_seconds 29; nothing was sent"):
        p.budget(29, flag="config max_seconds")
