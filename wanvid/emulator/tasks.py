"""Task lifecycle on the emulator clock: a task's status at an instant, the payload a task
query answers, its usage, and the task list's filters and pages."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from wanvid.emulator.wire import (
    CANCELED,
    FAIL_CODE,
    FAIL_MESSAGE,
    FAILED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    TASK_FAULTS,
    UNKNOWN,
    first,
    fmt_time,
    invalid,
    parse_time,
    rid,
)
from wanvid.models import Model, find_model

TASK_TTL = 86400.0  # task ids (and their results) live 24 h


@dataclass
class Task:
    task_id: str
    seq: int
    model: Model
    model_name: str  # as sent
    request_id: str
    created: float  # emulator clock
    fails: bool
    prompt: str | None
    prompt_extend: bool
    resolution: str
    duration: int
    canceled_at: float | None = None
    fail_code: str = FAIL_CODE  # what a failing task ends with (wire.TASK_FAULTS)
    template: str | None = None
    audio: bool | None = None  # parameters.audio as sent
    clip_seconds: float | None = None  # the first_clip's length (None: no clip)


@dataclass(frozen=True)
class Lifecycle:
    """How long tasks stay PENDING and RUNNING, and which of them fail."""

    pending: float
    running: float
    fail_rate: float

    def fails(self, seq: int) -> bool:
        """Task ``seq`` (1-based) fails when ``floor(seq * fail_rate)`` steps up."""
        rate = self.fail_rate
        return math.floor(seq * rate + 1e-9) > math.floor((seq - 1) * rate + 1e-9)

    def status(self, task: Task, now: float) -> str:
        if now - task.created >= TASK_TTL:
            return UNKNOWN
        if task.canceled_at is not None:
            return CANCELED
        elapsed = now - task.created
        if elapsed < self.pending:
            return PENDING
        if elapsed < self.pending + self.running:
            return RUNNING
        return FAILED if task.fails else SUCCEEDED

    def ended_at(self, task: Task) -> float:
        return task.created + self.pending + self.running


# Models whose usage has no input/output split (the Nov 2025 shapes); every other model
# (wan2.6, wan2.7, HappyHorse and any newer one) answers the 2026 shape.
_OLD_USAGE = ("wan2.1", "wanx2.1", "wan2.2", "wan2.5")


def _num(x: float) -> int | float:
    return int(x) if float(x).is_integer() else round(x, 3)


def usage(task: Task) -> dict[str, Any]:
    """The task's ``usage``, shaped per model (wan-api-2026 §5): wan2.1 ``video_duration`` +
    ``video_ratio``; wan2.2/2.5 ``duration`` + ``SR``; newer models also
    ``input_video_duration`` (the first_clip's seconds) and ``output_video_duration`` (the
    new seconds; ``duration`` is their sum, the billed seconds), and ``audio`` on the models
    with an audio switch (wan2.6-i2v-flash)."""
    name = task.model.name
    if name.startswith(("wan2.1", "wanx2.1")):
        return {"video_duration": task.duration, "video_ratio": "standard", "video_count": 1}
    out: dict[str, Any] = {"duration": task.duration, "video_count": 1,
                           "SR": int(task.resolution.rstrip("P"))}
    if name.startswith(_OLD_USAGE):
        return out
    clip = min(task.clip_seconds or 0.0, float(task.duration))
    out["input_video_duration"] = _num(clip)
    out["output_video_duration"] = _num(task.duration - clip)
    if task.model.audio_mode == "optional_flag":
        out["audio"] = task.audio is not False
    return out


ACTUAL_PROMPT_TAIL = ("The camera pushes in slowly while soft light moves across the scene; "
                      "the motion is smooth and natural.")


def task_payload(task: Task, now: float, life: Lifecycle, wall: Callable[[float], float],
                 video_url: Callable[[], str]) -> dict[str, Any]:
    """The answer to ``GET /tasks/{id}`` at emulator instant ``now``; ``wall`` maps an
    emulator instant to the epoch shown, ``video_url`` signs the result URL."""
    status = life.status(task, now)
    out: dict[str, Any] = {"task_id": task.task_id, "task_status": status}
    payload: dict[str, Any] = {"request_id": rid(), "output": out}
    if status == UNKNOWN:
        return payload
    out["submit_time"] = fmt_time(wall(task.created))
    if status == CANCELED:
        assert task.canceled_at is not None
        out["end_time"] = fmt_time(wall(task.canceled_at))
        return payload
    if status == PENDING:
        return payload
    out["scheduled_time"] = fmt_time(wall(task.created + life.pending))
    if status == RUNNING:
        return payload
    out["end_time"] = fmt_time(wall(life.ended_at(task)))
    if task.prompt is not None:  # once the task has finished, as on the service
        out["orig_prompt"] = task.prompt
    if status == FAILED:
        out["code"] = task.fail_code
        out["message"] = TASK_FAULTS.get(task.fail_code, FAIL_MESSAGE)
        return payload
    out["video_url"] = video_url()
    # wan2.6 never returns actual_prompt (S1); with a template the prompt is not used.
    if task.prompt_extend and task.template is None and not task.model.name.startswith(
            "wan2.6"):
        lead = f"{task.prompt} " if task.prompt else ""
        out["actual_prompt"] = lead + ACTUAL_PROMPT_TAIL
    payload["usage"] = usage(task)
    return payload


@dataclass(frozen=True)
class ListQuery:
    """The task list's query: a submit-time window (epoch, either end open; sent as
    ``YYYYMMDDhhmmss`` as documented, or ``YYYY-MM-DD HH:mm:ss``, Beijing time), filters,
    page."""

    start: float | None
    end: float | None
    model_name: str
    status: str
    page_no: int
    page_size: int

    @classmethod
    def parse(cls, query: dict[str, list[str]]) -> ListQuery:
        def number(name: str, default: int, lo: int, hi: int) -> int:
            raw = first(query, name)
            if raw is None or raw == "":
                return default
            try:
                value = int(raw)
            except ValueError:
                raise invalid(f"Parameter '{name}' must be an integer.") from None
            if not lo <= value <= hi:
                raise invalid(f"Parameter '{name}' must be between {lo} and {hi}.")
            return value

        page_no = number("page_no", 1, 1, 1 << 30)
        page_size = number("page_size", 10, 1, 100)
        bounds: list[float | None] = []
        for name in ("start_time", "end_time"):
            raw = first(query, name)
            if raw:
                try:
                    bounds.append(parse_time(raw))
                except ValueError:
                    raise invalid(f"Parameter '{name}' must look like "
                                  "'YYYYMMDDhhmmss'.") from None
            else:
                bounds.append(None)
        return cls(start=bounds[0], end=bounds[1],
                   model_name=(first(query, "model_name") or "").strip(),
                   status=(first(query, "status") or "").strip().upper(),
                   page_no=page_no, page_size=page_size)


def list_rows(tasks: Iterable[Task], q: ListQuery, now: float, life: Lifecycle,
              wall: Callable[[float], float]) -> list[dict[str, Any]]:
    """The rows of every task ``q`` selects, newest first. Without a time window the list
    covers the last 24 h, like the service."""
    start, end = q.start, q.end
    if start is None and end is None:
        start = wall(now) - TASK_TTL
    want_model = find_model(q.model_name) if q.model_name else None
    rows = []
    for task in sorted(tasks, key=lambda t: t.seq, reverse=True):
        st = life.status(task, now)
        if st == UNKNOWN:
            continue
        submitted = wall(task.created)
        if (start is not None and submitted < start) or (end is not None and submitted > end):
            continue
        if q.model_name and not (task.model is want_model
                                 or task.model_name.lower() == q.model_name.lower()):
            continue
        if q.status and st != q.status:
            continue
        out = task_payload(task, now, life, wall, lambda: "")["output"]
        # The documented row (``status``, ``gmt_create`` in epoch ms) plus the fetch
        # answer's names (``task_status``, ``submit_time``), which older SDKs read.
        row = {"task_id": task.task_id, "status": st, "task_status": st,
               "model_name": task.model_name, "request_id": task.request_id,
               "gmt_create": int(submitted * 1000), "submit_time": out["submit_time"]}
        for k in ("scheduled_time", "end_time"):
            if k in out:
                row[k] = out[k]
        rows.append(row)
    return rows


def list_page(rows: list[dict[str, Any]], q: ListQuery) -> dict[str, Any]:
    total = len(rows)
    page = rows[(q.page_no - 1) * q.page_size: q.page_no * q.page_size]
    return {"request_id": rid(), "data": page, "total": total,
            "total_page": math.ceil(total / q.page_size), "page_no": q.page_no,
            "page_size": q.page_size}
