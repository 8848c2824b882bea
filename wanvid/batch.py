"""Batch jobs: read JSON Lines or CSV, validate everything up front, run with at most N
tasks in flight, skip what an earlier run already finished.

A job has the same fields as the submit options (``image``, ``last_frame``, ``prompt``,
``negative_prompt``, ``model``, ``resolution``, ``duration``, ``seed``, ``audio``,
``no_audio``, ``prompt_extend``, ``watermark``, ``fit``, ``fit_background``) plus
``output`` (a path or template for that job's video).

Re-running a batch file skips jobs already done: a job's fingerprint (model, parameters
and the content of its input files) is journaled with its task; a job whose task is
downloaded (and the file still there) is skipped, one whose task is still pending is
waited for instead of submitted again, and one that failed is submitted again.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wanvid.errors import BadInputError, WanvidError
from wanvid.params import PreparedSubmit, SubmitOptions

FIELDS: dict[str, type] = {
    "image": str, "last_frame": str, "prompt": str, "negative_prompt": str, "model": str,
    "resolution": str, "duration": int, "seed": int, "audio": str, "no_audio": bool,
    "prompt_extend": bool, "watermark": bool, "fit": bool, "fit_background": str,
    "output": str,
}
ALIASES = {"first_frame": "image", "img_url": "image", "first_frame_url": "image",
           "last_frame_url": "last_frame", "audio_url": "audio", "o": "output"}


@dataclass
class Job:
    line: int
    fields: dict[str, Any]
    options: SubmitOptions | None = None
    output: str | None = None
    prepared: PreparedSubmit | None = None
    fingerprint: str | None = None
    error: str | None = None
    # filled while running
    task_id: str | None = None
    dest: Path | None = None  # where its video goes, when known before submitting
    state: str = "queued"  # queued | skipped | submitted | invalid | error
    result: dict[str, Any] = field(default_factory=dict)


def _coerce(name: str, value: Any, line: int) -> Any:
    typ = FIELDS[name]
    if value is None or value == "":
        return None
    if typ is bool:
        if isinstance(value, bool):
            return value
        low = str(value).strip().lower()
        if low in ("true", "1", "yes", "on"):
            return True
        if low in ("false", "0", "no", "off"):
            return False
        raise BadInputError(f"line {line}: {name}: expected true or false, got {value!r}")
    if typ is int:
        if isinstance(value, bool):
            raise BadInputError(f"line {line}: {name}: expected a whole number, got {value!r}")
        if isinstance(value, int) and abs(value) <= 2**53:
            return value
        try:
            f = float(value)
            whole = math.isfinite(f) and f == int(f)
        except (TypeError, ValueError, OverflowError):
            whole = False
        if not whole:
            raise BadInputError(f"line {line}: {name}: expected a whole number, got {value!r}")
        return int(f)
    if not isinstance(value, str):
        raise BadInputError(f"line {line}: {name}: expected text, got {value!r}")
    return value


def _normalise(raw: dict[str, Any], line: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in raw.items():
        if k is None:
            raise BadInputError(f"line {line}: more values than header columns")
        key = ALIASES.get(k.strip().lower().replace("-", "_"), k.strip().lower().replace("-", "_"))
        if key not in FIELDS:
            raise BadInputError(f"line {line}: unknown field {k!r}; fields: {', '.join(FIELDS)}")
        out[key] = _coerce(key, v, line)
    if not out.get("image"):
        raise BadInputError(f"line {line}: no image (every job needs an \"image\")")
    return out


def parse_jobs(text: str, *, name: str = "-") -> tuple[list[Job], list[Job]]:
    """(jobs, invalid): JSON Lines (a line starting with '{') or CSV with a header row.
    Blank lines and lines starting with '#' are ignored. Line numbers are 1-based."""
    jobs: list[Job] = []
    bad: list[Job] = []
    stripped = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    is_jsonl = bool(stripped) and stripped[0].lstrip().startswith("{")
    if is_jsonl:
        for i, ln in enumerate(text.splitlines(), 1):
            s = ln.strip()
            if not s or s.startswith("#"):
                continue
            try:
                obj = json.loads(s)
                if not isinstance(obj, dict):
                    raise BadInputError(f"line {i}: expected a JSON object")
                jobs.append(Job(i, _normalise(obj, i)))
            except json.JSONDecodeError as e:
                bad.append(Job(i, {}, error=f"line {i}: not valid JSON ({e.msg})", state="invalid"))
            except BadInputError as e:
                bad.append(Job(i, {}, error=e.message, state="invalid"))
        return jobs, bad
    # CSV: the reader sees the raw text (quoted cells may span lines); a record whose
    # first cell starts with '#' is a comment; line numbers are where each record starts.
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    start = 1
    for row in reader:
        lineno, start = start, reader.line_num + 1
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        if header is None:
            header = [c.strip() for c in row]
            continue
        try:
            if len(row) > len(header):
                raise BadInputError(f"line {lineno}: more values than header columns")
            jobs.append(Job(lineno, _normalise(dict(zip(header, row, strict=False)), lineno)))
        except BadInputError as e:
            bad.append(Job(lineno, {}, error=e.message, state="invalid"))
    return jobs, bad


def read_jobs(source: str, stdin: Any) -> tuple[list[Job], list[Job]]:
    if source == "-":
        return parse_jobs(stdin.read().removeprefix("\ufeff"), name="stdin")
    p = Path(source)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise BadInputError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise BadInputError(f"{source}: is a directory, not a jobs file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BadInputError(f"{source}: cannot read ({e})") from None
    return parse_jobs(text, name=source)


def prepare_jobs(jobs: list[Job], prepare: Callable[[SubmitOptions], PreparedSubmit],
                 *, base_dir: Path | None = None) -> list[Job]:
    """Validate every job; returns the invalid ones (error set, state 'invalid')."""
    bad: list[Job] = []
    for job in jobs:
        f = dict(job.fields)
        job.output = f.pop("output", None)
        if base_dir is not None:
            for k in ("image", "last_frame", "audio"):
                v = f.get(k)
                if v and "://" not in v and not v.startswith("data:") and not Path(v).is_absolute():
                    f[k] = str(base_dir / v)
        try:
            job.options = SubmitOptions(**{k: v for k, v in f.items() if v is not None})
            job.prepared = prepare(job.options)
            job.fingerprint = job.prepared.fingerprint()
        except BadInputError as e:
            job.error = f"line {job.line}: {e.message}"
            job.state = "invalid"
            bad.append(job)
        except WanvidError as e:
            job.error = f"line {job.line}: {e.message}"
            job.state = "invalid"
            bad.append(job)
    return bad


@dataclass
class Summary:
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    invalid: int = 0
    unsubmitted: int = 0
    billed_seconds: int = 0

    def line(self) -> str:
        return (f"{self.succeeded} succeeded, {self.failed} failed, {self.skipped} skipped"
                + (f", {self.invalid} invalid" if self.invalid else "")
                + (f", {self.unsubmitted} not submitted" if self.unsubmitted else "")
                + f"; {self.billed_seconds} s billed")
