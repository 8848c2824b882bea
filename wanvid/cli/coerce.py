"""A fast path for Typer's parameter coercion.

Typer (0.2x with its vendored click) coerces every parameter through a pydantic
``TypeAdapter``; importing pydantic and building the adapters costs about 0.2 s, half of a
command's fixed cost, although wanvid's parameters are plain ``str``/``int``/``float``/``bool``
values that need no schema. ``install()`` wraps Typer's per-parameter runtime coercion so
that the common, unambiguous cases (a ``str``, a decimal integer or plain decimal number
within the option's min/max, a flag, a list of strings, a missing value) are answered
directly, and anything else (a clamp, a custom parser or click type, choices, paths, a
value the fast path cannot read, a number outside the option's min/max) goes to Typer's
own adapter, built on first use, so messages for bad values stay Typer's. If this Typer
has no such internals, ``install()`` does nothing.
"""

from __future__ import annotations

import re
import types
import typing
from typing import Protocol

_INT = re.compile(r"[+-]?[0-9]+\Z")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)\Z")
_MISS = object()


class _Runtime(Protocol):
    def coerce(self, value: object, param: object, ctx: object) -> object: ...


def _plain(annotation: object) -> type | None:
    """``str``, ``int``, ``float``, ``bool`` (or one of them ``| None``), else None."""
    if annotation in (str, int, float, bool):
        return annotation  # type: ignore[return-value]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and args[0] in (str, int, float, bool):
            return args[0]  # type: ignore[no-any-return]
    return None


def _is_str_list(annotation: object) -> bool:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) != 1:
            return False
        annotation = args[0]
    return typing.get_origin(annotation) is list and typing.get_args(annotation) == (str,)


def fast_value(annotation: object, value: object) -> object:
    """The coerced value for the unambiguous cases, or ``_MISS`` to let Typer decide."""
    kind = _plain(annotation)
    if kind is str and isinstance(value, str):
        return value
    if kind is bool and isinstance(value, bool):
        return value
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and _INT.match(value):
            return int(value)
    if kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _FLOAT.match(value):
            return float(value)
    if _is_str_list(annotation) and isinstance(value, (list, tuple)) \
            and all(isinstance(v, str) for v in value):
        return list(value)
    return _MISS


def _within(info: object, value: object) -> bool:
    """``value`` is inside the option's ``min``/``max`` (when it has them); outside, Typer's
    own adapter answers, with its message."""
    lo, hi = getattr(info, "min", None), getattr(info, "max", None)
    if value is None or (lo is None and hi is None):
        return True
    if not isinstance(value, (int, float)):
        return False
    return (lo is None or value >= lo) and (hi is None or value <= hi)


def install() -> bool:
    """Wrap Typer's runtime coercion; True when installed."""
    try:
        from typer import core as tcore
        from typer._coercion import RuntimeParam, build_runtime_param
    except ImportError:
        return False
    cls = getattr(tcore, "_TyperParameter", None)
    if cls is None or getattr(cls, "_wanvid_fast", False) \
            or not hasattr(cls, "get_runtime_param"):
        return cls is not None and getattr(cls, "_wanvid_fast", False)

    class Lazy(RuntimeParam):  # type: ignore[misc]
        """Answers plain values itself; builds Typer's adapter only when needed."""

        def _coerce_value(self, value: object, param: object, ctx: object) -> object:
            got = fast_value(self.annotation, value)
            if got is not _MISS and _within(self.parameter_info, got):
                return got
            real = self.__dict__.get("_real")
            if real is None:
                real = build_runtime_param(param.type_descriptor)  # type: ignore[attr-defined]
                object.__setattr__(self, "_real", real)
            return real._coerce_value(value, param=param, ctx=ctx)

    def get_runtime_param(self: object) -> _Runtime:
        if self._runtime_param is None:  # type: ignore[attr-defined]
            desc = self.type_descriptor  # type: ignore[attr-defined]
            info = desc.parameter_info
            simple = (desc.file_annotation is None and info.parser is None
                      and getattr(info, "click_type", None) is None
                      and ((info.min is None and info.max is None)
                           or _plain(desc.annotation) in (int, float))
                      and not getattr(info, "clamp", False)
                      and not desc.is_choice
                      and (_plain(desc.annotation) is not None
                           or _is_str_list(desc.annotation)))
            self._runtime_param = (  # type: ignore[attr-defined]
                Lazy(parameter_info=info, annotation=desc.annotation) if simple
                else build_runtime_param(desc))
        return self._runtime_param  # type: ignore[attr-defined,no-any-return]

    cls.get_runtime_param = get_runtime_param
    cls._wanvid_fast = True
    return True
