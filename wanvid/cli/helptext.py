"""Help texts as people read and paste them.

The app's help is click's plain formatter (no rich markup to swallow ``[fit]``, nothing to
break in a pipe). ``polish`` walks the command tree once it is built and

* names each option's value (``--timeout SECONDS``, ``--output PATH``) instead of Typer's
  ``<float range>``/``<str>``, and drops the ``[x>=0]`` range notes (the help says the
  range in words);
* shows an argument by its name alone (``IMAGE``, not ``IMAGE <str>``), in capitals, and in
  the usage line the classic way: ``KEY`` required, ``[DIR]`` optional, ``TASK_ID...`` many
  (not Typer's ``{key}`` and ``[[DIR]]``);
* keeps every paragraph that starts with ``Example`` as written (click's ``\\b``), so an
  example is never broken across lines and can be pasted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer.core

# The value's name, by option; any other option that takes a value shows its own name.
METAVARS = {
    "--prompt": "TEXT", "--negative-prompt": "TEXT", "--last-frame": "IMAGE",
    "--model": "NAME", "--resolution": "480P|720P|1080P", "--duration": "SECONDS",
    "--seed": "N", "--audio": "FILE|URL", "--fit-background": "COLOUR",
    "--upload": "auto|always|never", "--output": "PATH", "--timeout": "SECONDS",
    "--interval": "SECONDS", "--jobs": "N", "--max-seconds": "SECONDS",
    "--since": "AGE", "--status": "STATUS", "--page": "N", "--page-size": "N",
    "--region": "REGION", "--base-url": "URL", "--by": "model|day|resolution",
    "--first-clip": "VIDEO", "--param": "NAME=VALUE", "--shot": "single|multi",
    "--template": "NAME", "--downloads": "N", "--storage-rate-mb": "MIB",
    "--slow-headers": "SECONDS",
    "--host": "ADDRESS", "--port": "PORT", "--pending": "SECONDS", "--running": "SECONDS",
    "--url-ttl": "SECONDS", "--fail-rate": "SHARE", "--throttle-every": "N",
    "--error-every": "N", "--drop-download-at": "SHARE", "--video-mb": "MIB",
    "--key": "KEY", "--upload-max-mb": "MIB", "--limit": "N", "--forget-older-than": "AGE",
    "--workspace": "ID",
}


def _no_type(ctx: Any = None) -> None:
    return None


def _no_range() -> None:
    return None


def _by_type(opt: Any) -> str | None:
    """A value's name from its type, for options METAVARS does not name: N, NUMBER."""
    desc = getattr(opt, "type_descriptor", None)
    annotation = getattr(desc, "annotation", None)
    if annotation is int:
        return "N"
    if annotation is float:
        return "NUMBER"
    return None


def _usage_name(arg: Any) -> Callable[[], str]:
    def name() -> str:
        shown = str(arg.metavar) if arg.required else f"[{arg.metavar}]"
        return shown + ("..." if arg.nargs != 1 else "")
    return name


def _keep_examples(text: str | None) -> str | None:
    if not text:
        return text
    paras = text.split("\n\n")
    out = []
    for p in paras:
        body = p.strip("\n")
        if body.lstrip().startswith("Example") and not body.startswith("\b"):
            body = "\b\n" + "\n".join(line.strip() for line in body.splitlines())
        out.append(body)
    return "\n\n".join(out)


def polish(cmd: Any) -> None:
    """Adjust a built click command (and its subcommands) in place; see the module doc."""
    cmd.help = _keep_examples(cmd.help)
    for p in cmd.params:
        kind = getattr(p, "param_type_name", "")
        if kind == "argument":
            p.display_type_rich = _no_type
            p.metavar = str(p.metavar or p.name).strip("[]").removesuffix("...").upper()
            p._usage_display_name = _usage_name(p)
        elif kind == "option":
            if not (getattr(p, "is_flag", False) or getattr(p, "count", False)) \
                    and p.metavar is None:
                long = next((o for o in p.opts if o.startswith("--")), p.opts[0])
                p.metavar = METAVARS.get(long) or _by_type(p) or long.lstrip("-").upper()
            p._get_number_range_help_str = _no_range
    for sub in getattr(cmd, "commands", {}).values():
        polish(sub)


class Group(typer.core.TyperGroup):
    """The root group: polishes the whole tree as soon as it is built."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        polish(self)
