"""Everything the service sends is untrusted: this module makes it safe to show and to use.

* ``terminal(text)`` escapes control characters (C0, DEL, C1), line and paragraph
  separators and the invisible bidirectional / zero-width formatting characters, as
  ``\\u001b``-style escapes, so an answer can neither move the cursor, retitle the window,
  clear the screen nor start a new line that looks like one of ours. The escapes are valid
  inside a JSON string too, so a JSON line stays JSON.
* ``one_line(text)`` is ``terminal`` with newlines and tabs escaped as well, and a cap on
  the length: for a service's message inside one of our lines.
* ``is_task_id`` / ``task_id`` check a task id against a safe pattern before it is
  printed, journaled or used in a path or URL (the service's ids are UUIDs).

* ``scrub_secret(body, key)`` takes the API key out of an answer before anything reads
  it, so a server that echoes the key back (in an error or a task's message) cannot make
  wanvid print or journal it.

File names made from service values go through ``wanvid.outputs.sanitize``.
"""

from __future__ import annotations

import re

# Characters a terminal acts on or that hide/reorder text: C0 controls, DEL, C1 controls,
# line/paragraph separators, bidi embeddings/overrides/isolates, zero-width characters and
# the byte-order mark.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
TASK_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
MESSAGE_MAX = 500


class ProtocolError(Exception):
    """Raised by ``task_id`` for a value that is no usable task id (callers wrap it)."""


def _escape(m: re.Match[str]) -> str:
    return f"\\u{ord(m.group()):04x}"


def terminal(text: object, *, keep: str = "") -> str:
    """``text`` with every unsafe character escaped, except those listed in ``keep``."""
    s = text if isinstance(text, str) else str(text)
    if not keep:
        return _UNSAFE.sub(_escape, s)
    return _UNSAFE.sub(lambda m: m.group() if m.group() in keep else _escape(m), s)


def one_line(text: object, limit: int = MESSAGE_MAX) -> str:
    """A service value fit for the middle of one line: escaped, at most ``limit`` chars."""
    s = terminal(text)
    return s if len(s) <= limit else s[:limit] + "…"


def is_task_id(value: object) -> bool:
    return isinstance(value, str) and TASK_ID_RE.fullmatch(value) is not None


def describe(value: object) -> str:
    """What a bad value is, for an error message (never the value in full)."""
    if value is None:
        return "missing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {one_line(value, 60)!r}" if value else "empty"
    return type(value).__name__


def task_id(value: object) -> str:
    """``value`` if it is a safe task id; otherwise ``ProtocolError`` saying what it is."""
    if is_task_id(value):
        return value  # type: ignore[return-value]
    raise ProtocolError(describe(value))


SECRET_REDACTED = "[API key redacted]"
_SECRET_MIN = 8  # a shorter "key" is no secret worth a search (and would mangle answers)


def scrub_secret(body: bytes, secret: str) -> bytes:
    """``body`` with every copy of ``secret`` replaced by ``[API key redacted]``; ``body``
    itself (the same object) when it holds none.

    A JSON body with escapes is checked decoded too (``\\u0073k-...`` is the key once
    parsed): when the decoded form holds the key, the body is the JSON re-encoded with the
    key replaced."""
    if len(secret) < _SECRET_MIN:
        return body
    raw = secret.encode("utf-8")
    out = body.replace(raw, SECRET_REDACTED.encode()) if raw in body else body
    if b"\\" in out:
        import json

        try:
            text = json.dumps(json.loads(out), ensure_ascii=False)
        except (ValueError, RecursionError):
            return out
        if secret in text:
            out = text.replace(secret, SECRET_REDACTED).encode("utf-8")
    return out
