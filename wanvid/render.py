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


def emit_models(env: Environment, *, json_mode: bool) -> None:
    """The model catalogue as a table or JSON (``wanvid models``)."""
    from wanvid.models import MODELS

    def text(_: Any) -> list[str]:
        lines = [f"{'MODEL':<20} {'KIND':<5} {'RESOLUTIONS':<17} {'SECONDS':<8} {'AUDIO':<5} FPS"]
        for m in MODELS:
            res = ",".join(r + ("*" if r == m.default_resolution else "") for r in m.resolutions)
            dur = ",".join(str(d) for d in m.durations)
            lines.append(f"{m.name:<20} {m.kind:<5} {res:<17} {dur:<8} "
                         f"{'yes' if m.audio else 'no':<5} {m.fps}")
        lines.append("(* default resolution; aliases: "
                     + ", ".join(a for m in MODELS for a in m.aliases) + ")")
        return lines

    emit(env, [m.to_dict() for m in MODELS], json_mode=json_mode, text=text)
