"""``docs/cli.md``: every command's ``--help``, generated (``python -m wanvid.cli.docs``
rewrites it; a test fails when it is stale)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

HEADER = """# wanvid command reference

Generated from each command's `--help` by `python -m wanvid.cli.docs`; do not edit by hand
(`tests/test_docs.py` fails when this file is stale).
"""


def command_paths() -> list[tuple[str, ...]]:
    """(), ("batch",), ..., ("config", "get"), ...: every command, from the app's tree."""
    from wanvid.cli.completion import CommandSpec, command_tree

    paths: list[tuple[str, ...]] = []

    def walk(spec: CommandSpec) -> None:
        paths.append(spec.path)
        for sub in spec.subcommands:
            walk(sub)

    walk(command_tree())
    return paths


def help_text(path: tuple[str, ...]) -> str:
    from typer.testing import CliRunner

    from wanvid.cli import app

    runner = CliRunner()
    env = {"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb", "_TYPER_FORCE_DISABLE_TERMINAL": "1"}
    res = runner.invoke(app, [*path, "--help"], prog_name="wanvid", env=env, color=False)
    lines = [ln.rstrip() for ln in res.output.splitlines()]
    return "\n".join(lines).strip("\n")


def render() -> str:
    parts = [HEADER]
    for path in command_paths():
        title = " ".join(["wanvid", *path])
        parts.append(f"## `{title}`\n\n```text\n{help_text(path)}\n```\n")
    return "\n".join(parts)


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/cli.md")
    os.makedirs(out.parent, exist_ok=True)
    out.write_text(render(), encoding="utf-8")
    print(out)


if __name__ == "__main__":
    main()
