"""The Typer application, its root options, and ``main()``: the one place where outcomes
become exit codes.

stdout carries only results (task ids, paths, JSON); everything for humans goes to stderr.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from wanvid import __version__, runner
from wanvid.cli import coerce
from wanvid.cli.common import State, _state
from wanvid.cli.helptext import Group
from wanvid.context import Environment
from wanvid.errors import ExitStatus, Terminated, exit_status_of
from wanvid.runner import Errors

if TYPE_CHECKING:
    from typer._click.core import Command  # typer's own click

HELP = """Turn a still image (or a first and a last frame) into a video with Alibaba Cloud
Model Studio's Wan models.

Example (no key, a local emulator): wanvid demo

Example (set DASHSCOPE_API_KEY first): wanvid generate photo.png -p "the cat turns its head"
"""

coerce.install()  # plain values without importing pydantic (see wanvid/cli/coerce.py)

app = typer.Typer(help=HELP, add_completion=False, no_args_is_help=True, cls=Group,
                  pretty_exceptions_enable=False, rich_markup_mode=None,
                  context_settings={"help_option_names": ["-h", "--help"]})


def _version(value: bool) -> None:
    if value:
        print(f"wanvid {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    ctx: typer.Context,
    region: Annotated[str | None, typer.Option(
        "--region", help="intl (Singapore, default), cn (Beijing), us (Virginia) or eu "
        "(Frankfurt, with --workspace).", envvar=None)] = None,
    workspace: Annotated[str | None, typer.Option(
        "--workspace", help="Workspace id: send to https://ID.REGION.maas.aliyuncs.com/api/v1 "
        "(env DASHSCOPE_WORKSPACE_ID).")] = None,
    base_url: Annotated[str | None, typer.Option(
        "--base-url", help="API root, e.g. http://127.0.0.1:8765/api/v1 (overrides --region; "
        "env DASHSCOPE_HTTP_BASE_URL).")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Log requests (never the key) and show "
                                        "tracebacks.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    st = _state(ctx)
    st.region, st.base_url, st.debug, st.workspace = region, base_url, debug, workspace
    from wanvid.service import GUARDED

    if ctx.invoked_subcommand in GUARDED and not {"--help", "-h"} & set(st.argv):
        warning = st.service.expiring_warning()
        if warning:
            st.env.warn(warning)
    if debug:
        import logging

        logging.basicConfig(level=logging.DEBUG, stream=st.env.stderr,
                            format="wanvid: debug: %(name)s: %(message)s")



def _is_click_exception(e: BaseException) -> bool:
    return hasattr(e, "exit_code") and hasattr(e, "format_message")


class _OnlyInvoked:
    """Build only the invoked command: Typer turns every registered command into a click
    command (reading each function's signature and type hints) on every run, which costs
    tens of milliseconds for commands that are not run. With no recognisable command name
    in ``args`` (``wanvid --help``, a typo), every command is built as usual, and so for
    the commands that describe the whole app (``completions``)."""

    WHOLE = frozenset({"completions"})

    def __init__(self, args: list[str]) -> None:
        self.saved: tuple[list[typer.models.CommandInfo], list[typer.models.TyperInfo]] | None \
            = None
        cmds = {c.name or (c.callback.__name__ if c.callback else ""): c
                for c in app.registered_commands}
        groups = {g.name: g for g in app.registered_groups}
        self.keep: tuple[list[typer.models.CommandInfo], list[typer.models.TyperInfo]] | None \
            = None
        for a in args:
            if a == "--":
                break
            if a in cmds:
                if a not in self.WHOLE:
                    self.keep = ([cmds[a]], [])
                break
            if a in groups:
                self.keep = ([], [groups[a]])
                break

    def __enter__(self) -> None:
        if self.keep is not None:
            self.saved = (app.registered_commands, app.registered_groups)
            app.registered_commands, app.registered_groups = self.keep

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            app.registered_commands, app.registered_groups = self.saved


def main(argv: list[str] | None = None, env: Environment | None = None) -> int:
    """Run the CLI; map every outcome to an exit code in this one place (``_run``)."""
    env = env or Environment()
    from wanvid.catalogue import use_user_catalogue

    use_user_catalogue(env.config_dir / "models.toml")  # the user's catalogue (wanvid.catalogue)
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        args = ["--help"]  # `wanvid` alone: the help, exit 0
    from wanvid.cli.argv import command_of, json_command, normalize, spec_of

    with _OnlyInvoked(args):  # built once (only the invoked command): for normalize and the run
        command = typer.main.get_command(app)
    spec = spec_of(command)
    args = normalize(args, spec)
    state = State(env=env, argv=args)
    jc = json_command(args, spec)
    if jc is not None:
        from wanvid.envelope import JsonOut

        state.json = JsonOut(env, jc, streaming=None if "--dry-run" not in args else False)
    runner.begin(" ".join(command_of(args, spec)[0]))
    previous = runner.install_sigterm() if argv is None else None
    code: int
    try:
        code, errors = _run(command, args, state)
        code = runner.finish_json(state.json, code, errors)
    except KeyboardInterrupt as e:  # a second Ctrl-C / SIGTERM while finishing
        code = int(ExitStatus.TERMINATED if isinstance(e, Terminated)
                   else ExitStatus.INTERRUPTED)
    finally:
        runner.restore_sigterm(previous)
    if argv is None:
        sys.exit(code)
    return code


def _run(command: Command, args: list[str], state: State) -> tuple[int, Errors]:
    """Run the command: its exit status and the envelope's errors, every exception mapped
    to its documented code (``wanvid.runner``; its one line written to stderr)."""
    env = state.env
    try:
        rv = command(args=args, prog_name="wanvid", standalone_mode=False, obj=state)
        code = int(rv) if isinstance(rv, int) else 0
        if code == ExitStatus.INTERRUPTED:  # Typer turns Ctrl-C into a returned 130
            sig = (Terminated() if ExitStatus.TERMINATED in runner.signalled
                   else KeyboardInterrupt())
            code = runner.interrupted(env, exit_status_of(sig))
            return code, [runner.exception_error(sig, code)]
        return code, []
    except typer.Exit as e:
        return int(getattr(e, "exit_code", 0) or 0), []
    except typer.Abort:
        if ExitStatus.TERMINATED in runner.signalled:
            code = runner.interrupted(env, ExitStatus.TERMINATED)
            return code, [runner.exception_error(Terminated(), code)]
        env.err("wanvid: aborted")
        return int(ExitStatus.INTERRUPTED), [
            runner.exception_error(KeyboardInterrupt(), ExitStatus.INTERRUPTED)]
    except SystemExit as e:
        # click's answer to a closed stdout it met itself (help into `| head -1`) is
        # sys.exit(1) after wrapping sys.stdout; it is the documented 141, like every other
        # closed stdout. Any other SystemExit goes on as it was.
        if e.code != 1 or type(sys.stdout).__name__ != "PacifyFlushWrapper":
            raise
        state.json = None
        return int(ExitStatus.STDOUT_CLOSED), []
    except (Exception, KeyboardInterrupt) as e:
        known = runner.failure(e, env)
        if known is not None:
            if known[0] == ExitStatus.STDOUT_CLOSED:
                state.json = None  # nobody is reading
            return known
        assert isinstance(e, Exception)  # a KeyboardInterrupt is known
        if _is_click_exception(e):
            return _usage_error(e, env)
        unexpected = runner.internal(e, env, args)
        if unexpected is None:
            raise
        return unexpected


def _usage_error(e: Exception, env: Environment) -> tuple[int, Errors]:
    """A click usage error (unknown option, bad value): one line naming the help, exit 2."""
    from wanvid.envelope import error

    msg = e.format_message()  # type: ignore[attr-defined]
    cmd = getattr(getattr(e, "ctx", None), "command_path", "wanvid")
    line = f"{msg} (see `{cmd} --help`)"
    env.err(f"wanvid: error: {line}")
    code = int(ExitStatus.BAD_INPUT)
    return code, [error(code, line)]
