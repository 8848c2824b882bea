"""Root options anywhere (``wanvid.cli.argv.normalize``) and -q on every command."""

from __future__ import annotations

import io

import pytest
import typer

from wanvid.cli import app, main
from wanvid.cli.argv import Spec, command_of, json_command, json_commands, normalize, spec_of
from wanvid.context import Environment

ROOT = spec_of(typer.main.get_command(app))


@pytest.mark.parametrize(("args", "expected"), [
    (["status", "--base-url", "U", "ID"], ["--base-url", "U", "status", "ID"]),
    (["status", "ID", "--base-url=U"], ["--base-url=U", "status", "ID"]),
    (["status", "ID", "--region", "cn", "--debug"], ["--region", "cn", "--debug", "status", "ID"]),
    (["--region", "cn", "status", "ID"], ["--region", "cn", "status", "ID"]),
    # a prompt that looks like a root option is the prompt
    (["generate", "a.png", "-p", "--debug"], ["generate", "a.png", "-p", "--debug"]),
    (["generate", "a.png", "--prompt", "--region"], ["generate", "a.png", "--prompt", "--region"]),
    (["generate", "a.png", "-qp", "--debug"], ["generate", "a.png", "-qp", "--debug"]),
    (["generate", "a.png", "-p--debug", "--debug"], ["--debug", "generate", "a.png", "-p--debug"]),
    # nothing after -- moves
    (["status", "--", "--debug"], ["status", "--", "--debug"]),
    (["status", "--debug", "--", "--region", "x"], ["--debug", "status", "--", "--region", "x"]),
    # nested groups
    (["config", "list", "--debug", "--json"], ["--debug", "config", "list", "--json"]),
    (["config", "--debug", "get", "model"], ["--debug", "config", "get", "model"]),
    # a command's own flags before its name go after it
    (["-q", "generate", "a.png"], ["generate", "-q", "a.png"]),
    (["--json", "--debug", "status", "ID"], ["--debug", "status", "--json", "ID"]),
    (["--json", "config", "list"], ["config", "list", "--json"]),
    # left alone: no command, unknown things, help, version
    (["--debug"], ["--debug"]),
    (["--help"], ["--help"]),
    (["status", "--help"], ["status", "--help"]),
    (["nosuch", "--debug"], ["nosuch", "--debug"]),
    (["status", "--bogus", "ID"], ["status", "--bogus", "ID"]),
    (["status", "ID", "--region"], ["--region", "status", "ID"]),  # click: needs a value
    (["batch", "-", "-o", "--debug"], ["batch", "-", "-o", "--debug"]),
])
def test_normalize(args: list[str], expected: list[str]) -> None:
    assert normalize(args, ROOT) == expected


def test_normalize_is_pure_and_works_on_any_spec() -> None:
    root = Spec(valued=frozenset({"--base-url"}), flags=frozenset({"--debug"}),
                subcommands={"run": Spec(valued=frozenset({"-x"}), flags=frozenset({"-q"}))})
    args = ["run", "-x", "--debug", "--base-url", "u", "-q"]
    assert normalize(args, root) == ["--base-url", "u", "run", "-x", "--debug", "-q"]
    assert args == ["run", "-x", "--debug", "--base-url", "u", "-q"]


QUIET_COMMANDS = [["submit", "x.png"], ["generate", "x.png"], ["demo"], ["models"],
                  ["status", "x"], ["tasks"], ["cancel", "x"], ["config", "list"],
                  ["download", "x"], ["wait", "x"], ["batch", "-"]]


@pytest.mark.parametrize("cmd", QUIET_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_every_command_takes_quiet(cmd: list[str]) -> None:
    node = ROOT
    for name in cmd:
        if name in node.subcommands:
            node = node.subcommands[name]
    assert {"-q", "--quiet"} <= node.flags


def test_quiet_silences_notes_not_warnings() -> None:
    err = io.StringIO()
    env = Environment(environ={}, stdin=io.StringIO(""), stdout=io.StringIO(), stderr=err,
                      quiet=True)
    env.note("submitted x")
    env.warn("careful")
    assert err.getvalue() == "wanvid: warning: careful\n"


def test_models_after_and_before_root_options(tmp_path: object) -> None:
    out, err = io.StringIO(), io.StringIO()
    env = Environment(environ={"WANVID_CONFIG_DIR": str(tmp_path)}, stdin=io.StringIO(""),
                      stdout=out, stderr=err)
    assert main(["models", "--region", "cn", "-q", "--debug"], env) == 0, err.getvalue()
    assert "wan2.2-i2v-flash" in out.getvalue()


@pytest.mark.parametrize(("args", "expected"), [
    (["status", "--json", "ID"], "status"),
    (["--region", "intl", "--base-url", "http://h/api/v1", "wait", "--json"], "wait"),
    (["--region", "status", "tasks", "--json"], "tasks"),   # "status" is --region's value
    (["config", "list", "--json"], "config list"),
    (["--json", "config", "list"], "config list"),
    (["config", "--json"], None),                            # the group has no --json
    (["status", "--json", "--help"], None),
    (["status", "--", "--json"], None),                      # after --: an argument
    (["demo", "--json"], None),                              # no --json: a usage error
    (["status", "ID"], None),
])
def test_json_command_reads_the_real_commands(args: list[str], expected: str | None) -> None:
    assert json_command(args, ROOT) == expected


def test_command_of_walks_groups_and_stops_at_the_leaf() -> None:
    root = Spec(valued=frozenset({"--base-url"}), flags=frozenset({"--debug"}),
                subcommands={"g": Spec(subcommands={"run": Spec(flags=frozenset({"--json"}))})})
    assert command_of(["--base-url", "g", "g", "run", "run"], root)[0] == ("g", "run")
    assert command_of(["--debug"], root) == ((), root)
    assert json_commands(root) == {"g run"}


def test_json_commands_are_the_commands_with_a_json_option() -> None:
    cmds = json_commands(ROOT)
    assert {"submit", "generate", "status", "wait", "batch", "config list"} <= cmds
    assert not {"demo", "config", "completions"} & cmds
