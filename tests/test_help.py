"""Every command's --help works, without a key, and shows an example."""

from __future__ import annotations

import pytest

COMMANDS = [["submit"], ["status"], ["wait"], ["download"], ["models"], ["generate"],
            ["batch"], ["tasks"], ["cancel"], ["emulator"], ["demo"], ["completions"], ["usage"],
            ["gallery"],
            ["config", "set"], ["config", "get"], ["config", "list"], ["config", "path"],
            ["config", "unset"]]


@pytest.mark.parametrize("cmd", COMMANDS, ids=" ".join)
def test_help_has_an_example(run, capsys: pytest.CaptureFixture[str], cmd: list[str]) -> None:
    r = run([*cmd, "--help"], key=None)
    out = r.out + capsys.readouterr().out  # help is printed by Typer itself
    assert r.code == 0
    assert "Example" in out and f"wanvid {cmd[0]}" in out


def test_every_command_is_listed_here() -> None:
    import typer

    from wanvid.cli import app

    group = typer.main.get_command(app)
    names = set(group.commands)  # type: ignore[attr-defined]
    assert names == {c[0] for c in COMMANDS}


def test_version(run, capsys: pytest.CaptureFixture[str]) -> None:
    from wanvid import __version__

    r = run(["--version"], key=None)
    assert r.code == 0 and capsys.readouterr().out.strip() == f"wanvid {__version__}"
