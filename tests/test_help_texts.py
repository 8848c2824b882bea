"""Help texts render as written: no type noise, no markup loss, pasteable examples."""

from __future__ import annotations

import pytest

from wanvid.cli.docs import command_paths, help_text

PATHS = command_paths()


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "wanvid")
def test_help_has_no_noise_and_an_example(path: tuple[str, ...]) -> None:
    text = help_text(path)
    for noise in ("<bool>", "<str>", "<int>", "<float", "[x>=", "[x<="):
        assert noise not in text, f"{noise} in `wanvid {' '.join(path)} --help`"
    assert "Example" in text
    usage = text.split("\n", 1)[0]
    assert "{" not in usage and "[[" not in usage, usage  # KEY, [DIR], TASK_ID...: classic


def _click_command(path: tuple[str, ...]):  # type: ignore[no-untyped-def]
    import typer.main

    from wanvid.cli import app

    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]  # type: ignore[attr-defined]
    return cmd


@pytest.mark.parametrize("path", [p for p in PATHS if p], ids=" ".join)
def test_every_help_string_is_shown_as_written(path: tuple[str, ...]) -> None:
    # No markup: brackets ([fit], [default]), braces ({task_id}) and backquotes survive.
    # (the wrapper may break a line after a hyphen: "--fail-" / "rate")
    shown = " ".join(help_text(path).split()).replace("- ", "-")
    for p in _click_command(path).params:
        text = " ".join((getattr(p, "help", None) or "").split()).replace("- ", "-")
        assert text in shown, f"{p.name}: {text!r} not in `wanvid {' '.join(path)} --help`"


def test_examples_are_never_broken_across_lines() -> None:
    text = help_text(("batch",))
    assert r"""printf '%s\n' '{"image": "a.png", "prompt": "waves"}' | wanvid batch - -j 2""" in text
    gen = help_text(("generate",))
    assert ('Example: wanvid generate cat.png -p "the cat turns its head" '
            '-o "{stem}-{seed}.mp4" --seed 7') in gen


def test_demo_states_its_real_default() -> None:
    assert "wanvid-demo.mp4 in wanvid's cache directory" in " ".join(help_text(("demo",)).split())


def test_usage_lines_name_arguments_the_classic_way() -> None:
    assert help_text(("config", "get")).startswith("Usage: wanvid config get [OPTIONS] KEY\n")
    assert help_text(("config", "set")).startswith(
        "Usage: wanvid config set [OPTIONS] KEY [VALUE]\n")
    assert help_text(("gallery",)).startswith("Usage: wanvid gallery [OPTIONS] [DIR]\n")
    assert help_text(("cancel",)).startswith("Usage: wanvid cancel [OPTIONS] TASK_ID...\n")
    assert help_text(("wait",)).startswith("Usage: wanvid wait [OPTIONS] [TASK_ID]...\n")


def test_root_help_examples_are_whole_lines() -> None:
    assert 'wanvid generate photo.png -p "the cat turns its head"\n' in help_text(())


# Commands that print nothing on stderr but results and errors (or are a server) need no -q.
NO_NOTES = {(), ("completions",), ("config",), ("config", "get"), ("config", "path"),
            ("config", "unset"), ("emulator",)}


def test_every_command_that_prints_notes_takes_quiet() -> None:
    without = {p for p in command_paths() if "--quiet" not in help_text(p)}
    assert without == NO_NOTES, "give these -q/--quiet (QuietOpt), or list them in NO_NOTES"
