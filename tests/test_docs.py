"""docs/cli.md is every command's --help, regenerated: a change to a command's help that
is not carried into the docs fails here."""

from __future__ import annotations

from pathlib import Path

from wanvid.cli.docs import command_paths, help_text, render

DOCS = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def test_docs_cli_md_is_up_to_date() -> None:
    assert DOCS.read_text(encoding="utf-8") == render(), (
        "docs/cli.md is stale: run `python -m wanvid.cli.docs`")


def test_every_command_has_a_section() -> None:
    text = DOCS.read_text(encoding="utf-8")
    paths = command_paths()
    assert ("submit",) in paths and ("config", "set") in paths
    for path in paths:
        assert f"## `{' '.join(['wanvid', *path])}`" in text


def test_help_text_is_the_commands_own_help() -> None:
    assert "Usage: wanvid wait" in help_text(("wait",))
    assert "--pending" in help_text(("wait",))
