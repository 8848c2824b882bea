"""Results on stdout: one function renders a result as text or as JSON.

In JSON mode nothing but JSON reaches stdout (human lines go to stderr), failures
included. Shapes are documented in README ("JSON output").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from wanvid.context import Environment


def emit(env: Environment, data: Any, *, json_mode: bool,
         text: Callable[[Any], Iterable[str]] | None = None) -> None:
    """Print ``data``: as one JSON document, or as the lines ``text(data)`` gives."""
    if json_mode:
        env.out(json.dumps(data, ensure_ascii=False, indent=None, default=str))
        return
    if text is None:
        env.out(str(data))
        return
    for line in text(data):
        env.out(line)


def emit_jsonl(env: Environment, items: Iterable[Any]) -> None:
    for item in items:
        env.out(json.dumps(item, ensure_ascii=False, default=str))


def fmt_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h}h{m:02d}m"
    if m:
        return f"{m}m{s:02d}s"
    return f"{s}s"
