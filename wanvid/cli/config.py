"""wanvid config: show and change settings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from wanvid.cli.app import app
from wanvid.cli.common import _state
from wanvid.cli.options import QuietOpt
from wanvid.errors import BadInputError

if TYPE_CHECKING:
    from wanvid.config import Settings

config_app = typer.Typer(help="Show and change settings (API key, region, defaults).\n\n"
                         "Example: wanvid config set region cn && wanvid config list",
                         no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("path")
def config_path_cmd(ctx: typer.Context) -> None:
    """Print the config file's path.

    Example: cat "$(wanvid config path)"
    """
    from wanvid.config import config_path

    st = _state(ctx)
    st.env.out(str(config_path(st.env)))


@config_app.command("list")
def config_list(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Show the effective settings and where the key comes from (the key is redacted).

    Example: wanvid config list --json | jq -r .data.region
    """
    from wanvid.cli.common import json_out as _json

    jo = _json(ctx, "config list", json_out)
    st = _state(ctx)
    data = effective(st.service.settings)
    if jo is not None:
        jo.result(data)
        return
    for k, v in data.items():
        st.env.out(f"{k} = {shown(v)}")


def effective(s: Settings) -> dict[str, object]:
    """The settings in effect (flags, environment, file, defaults merged), as ``config list``
    and ``config get`` both show them; the key redacted one way wherever it came from."""
    from wanvid.config import redact

    return {
        "api_key": redact(s.api_key), "api_key_source": s.api_key_source,
        "region": s.region, "workspace": s.workspace, "base_url": s.base_url,
        "model": s.model, "kf2v_model": s.kf2v_model, "output_dir": str(s.output_dir or "."),
        "poll_interval": s.poll_interval, "max_qps": s.max_qps, "jobs": s.jobs,
        "downloads": s.downloads, "fit": s.fit,
        "upload": s.upload, "sidecar": s.sidecar, "max_seconds": s.max_seconds,
        "max_download_mb": s.max_download >> 20,
        "prices": s.prices if isinstance(s.prices, dict) else {},
    }


def shown(value: object) -> str:
    """A value as text: TOML's spelling for booleans, "(not set)" for nothing."""
    if value is None:
        return "(not set)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return ", ".join(f"{k} = {shown(v)}" for k, v in value.items()) or "(none)"
    return str(value)


@config_app.command("get")
def config_get(ctx: typer.Context, key: Annotated[str, typer.Argument(help="Config key.")]) -> None:
    """Print one setting in effect, as `config list` shows it (api_key redacted).

    Example: wanvid config get region
    """
    from wanvid.config import CONFIG_KEYS, price_key

    st = _state(ctx)
    model = price_key(key)
    if key not in CONFIG_KEYS and model is None:
        raise BadInputError(f"unknown config key {key!r}; known keys: {', '.join(CONFIG_KEYS)}")
    data = effective(st.service.settings)
    prices = data["prices"]
    value = data.get(key) if model is None else (
        prices.get(model) if isinstance(prices, dict) else None)
    if value is None or value == {} or (key == "api_key" and not st.service.settings.api_key):
        raise BadInputError(f"{key} is not set (and has no default)")
    st.env.out(shown(value))


@config_app.command("set")
def config_set(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="api_key, region, workspace, base_url, model, "
                                       "kf2v_model, "
                                       "output_dir, poll_interval, max_qps, jobs, fit, sidecar, "
                                       "prices.MODEL")],
    value: Annotated[str | None, typer.Argument(help="The value. For api_key leave it out: "
                                                "it is read from a hidden prompt or stdin.")] = None,
    quiet: QuietOpt = False,
) -> None:
    """Store a setting in the config file (mode 0600).

    Example: wanvid config set region cn;  printf %s "$KEY" | wanvid config set api_key
    """
    from wanvid.config import config_path, load_file, parse_value, save_file, store

    st = _state(ctx)
    st.env.quiet = st.env.quiet or quiet
    if value is None or value == "-":
        if key != "api_key" and value is None:
            raise BadInputError(f"config set {key}: give a value")
        if st.env.stdin_isatty:
            import getpass

            value = getpass.getpass(f"{key}: ", stream=st.env.stderr)
        else:
            value = st.env.stdin.readline()
    elif key == "api_key":
        st.env.warn("a key typed on the command line stays in your shell history; next time "
                    "pipe it in: printf %s \"$KEY\" | wanvid config set api_key")
    parsed = parse_value(key, value)
    path = config_path(st.env)
    data = load_file(path)
    store(data, key, parsed)
    save_file(path, data)
    st.env.note(f"{key} saved in {path}")


@config_app.command("unset")
def config_unset(ctx: typer.Context, key: Annotated[str, typer.Argument(help="Config key.")]) -> None:
    """Remove a setting from the config file.

    Example: wanvid config unset api_key
    """
    from wanvid.config import config_path, load_file, remove, save_file

    st = _state(ctx)
    path = config_path(st.env)
    data = load_file(path)
    if remove(data, key) is None:
        raise BadInputError(f"{key} is not set in {path}")
    save_file(path, data)
