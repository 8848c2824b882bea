"""Configuration: precedence, the API key lookup, and `wanvid config`."""

from __future__ import annotations

import getpass
import io
import json
import os
import stat
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import responses

from tests import envelope_schema
from tests.conftest import KEY, Result
from wanvid import config
from wanvid.config import find_api_key, redact, resolve, save_file
from wanvid.context import Environment
from wanvid.errors import AuthError, BadInputError, ExitStatus

Run = Callable[..., Result]

INTL = "https://dashscope-intl.aliyuncs.com/api/v1"
CN = "https://dashscope.aliyuncs.com/api/v1"
US = "https://dashscope-us.aliyuncs.com/api/v1"
LOCAL = "http://127.0.0.1:8000/api/v1"
OTHER = "https://proxy.example.com/api/v1"


def make_env(**vars: str) -> Environment:
    environ = dict(os.environ)
    environ.update(vars)
    return Environment(environ=environ, stdin=io.StringIO(), stdout=io.StringIO(),
                       stderr=io.StringIO(), stdin_isatty=False, stderr_isatty=False)


def cfg_path() -> Path:
    return Path(os.environ["WANVID_CONFIG_DIR"]) / "config.toml"


def write_cfg(**data: Any) -> Path:
    p = cfg_path()
    p.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{k} = {json.dumps(v)}" for k, v in data.items()]
    p.write_text("\n".join(lines) + "\n")
    return p


def read_cfg() -> dict[str, Any]:
    with open(cfg_path(), "rb") as f:
        return tomllib.load(f)


def home() -> Path:
    return Path(os.environ["HOME"])


def one_error_line(r: Result) -> str:
    assert r.out == ""
    assert r.err.endswith("\n") and r.err.count("\n") == 1, r.err
    assert r.err.startswith("wanvid: error: ")
    return r.err


# --- region / base URL precedence: flag > env > file > default -----------------------------------


def test_default_is_singapore() -> None:
    s = resolve(make_env())
    assert (s.region, s.base_url) == ("intl", INTL)


def test_file_region() -> None:
    write_cfg(region="cn")
    s = resolve(make_env())
    assert (s.region, s.base_url) == ("cn", CN)


def test_file_base_url_beats_file_region() -> None:
    write_cfg(region="cn", base_url=LOCAL + "/")
    s = resolve(make_env())
    assert s.base_url == LOCAL
    assert s.region == "cn"  # still names the region (per-region model names)


def test_env_region_beats_file() -> None:
    write_cfg(region="cn", base_url=OTHER)
    s = resolve(make_env(WANVID_REGION="us"))
    assert (s.region, s.base_url) == ("us", US)


def test_env_base_url_overrides_env_region() -> None:
    s = resolve(make_env(WANVID_REGION="cn", DASHSCOPE_HTTP_BASE_URL=LOCAL))
    assert s.base_url == LOCAL
    assert s.region == "cn"


def test_env_base_url_beats_file() -> None:
    write_cfg(base_url=OTHER)
    s = resolve(make_env(DASHSCOPE_HTTP_BASE_URL=LOCAL))
    assert s.base_url == LOCAL


def test_env_base_url_keeps_file_region_name() -> None:
    write_cfg(region="cn")
    s = resolve(make_env(DASHSCOPE_HTTP_BASE_URL=LOCAL))
    assert (s.region, s.base_url) == ("cn", LOCAL)


def test_flag_region_beats_env() -> None:
    write_cfg(region="us")
    s = resolve(make_env(WANVID_REGION="intl", DASHSCOPE_HTTP_BASE_URL=LOCAL), region="cn")
    assert (s.region, s.base_url) == ("cn", CN)


def test_flag_base_url_beats_everything() -> None:
    write_cfg(region="us", base_url=OTHER)
    s = resolve(make_env(WANVID_REGION="intl", DASHSCOPE_HTTP_BASE_URL=CN), base_url=LOCAL)
    assert s.base_url == LOCAL


def test_flag_region_is_case_insensitive() -> None:
    assert resolve(make_env(), region="CN").base_url == CN


def test_flag_base_url_keeps_env_region_name() -> None:
    s = resolve(make_env(WANVID_REGION="cn"), base_url=LOCAL)
    assert (s.region, s.base_url) == ("cn", LOCAL)


@pytest.mark.parametrize("blank", ["", "   "])
def test_empty_env_vars_count_as_unset(blank: str) -> None:
    write_cfg(region="cn", api_key="sk-from-file-0000")
    s = resolve(make_env(WANVID_REGION=blank, DASHSCOPE_HTTP_BASE_URL=blank, DASHSCOPE_API_KEY=blank))
    assert (s.region, s.base_url) == ("cn", CN)
    assert s.api_key == "sk-from-file-0000"
    assert s.api_key_source == "config file"


def test_bad_env_region() -> None:
    with pytest.raises(BadInputError) as ei:
        resolve(make_env(WANVID_REGION="mars"))
    assert ei.value.message == "region (environment): unknown region 'mars'; use one of: intl, cn, us, eu"


def test_bad_env_base_url() -> None:
    with pytest.raises(BadInputError) as ei:
        resolve(make_env(DASHSCOPE_HTTP_BASE_URL="dashscope.aliyuncs.com"))
    assert ei.value.message.startswith("base URL (environment): 'dashscope.aliyuncs.com' is not "
                                       "an http(s) URL")


def test_broken_config_file_is_bad_input() -> None:
    cfg_path().parent.mkdir(parents=True)
    cfg_path().write_text("region = [oops\n")
    with pytest.raises(BadInputError) as ei:
        resolve(make_env())
    assert ei.value.message.startswith(f"{cfg_path()}: not valid TOML")


def test_cli_region_flag_beats_env(run: Run) -> None:
    r = run(["--region", "cn", "config", "list", "--json"],
            env={"DASHSCOPE_HTTP_BASE_URL": LOCAL, "WANVID_REGION": "us"})
    assert r.code == 0
    d = envelope_schema.data(r.out)
    assert (d["region"], d["base_url"]) == ("cn", CN)


def test_cli_env_region(run: Run) -> None:
    write_cfg(region="cn")
    r = run(["config", "list", "--json"], env={"WANVID_REGION": "us"})
    d = envelope_schema.data(r.out)
    assert (d["region"], d["base_url"]) == ("us", US)


def test_cli_base_url_flag(run: Run) -> None:
    r = run(["--base-url", LOCAL, "config", "list", "--json"], env={"DASHSCOPE_HTTP_BASE_URL": OTHER})
    assert envelope_schema.data(r.out)["base_url"] == LOCAL


def test_cli_bad_region_flag(run: Run) -> None:
    r = run(["--region", "mars", "config", "list"])
    assert r.code == 2
    assert one_error_line(r) == ("wanvid: error: region (flag): unknown region 'mars'; use one "
                                 "of: intl, cn, us, eu\n")


def test_cli_bad_base_url_flag(run: Run) -> None:
    r = run(["--base-url", "ftp://x/api/v1", "config", "list"])
    assert r.code == 2
    assert one_error_line(r).startswith("wanvid: error: base URL (flag): 'ftp://x/api/v1' is not "
                                        "an http(s) URL")


# --- the API key ---------------------------------------------------------------------------------


def _key_file(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_key_order_env_first() -> None:
    write_cfg(api_key="sk-file")
    kp = _key_file(home() / "keyfile", "sk-keyfile\n")
    _key_file(home() / ".dashscope" / "api_key", "sk-sdk\n")
    env = make_env(DASHSCOPE_API_KEY="sk-env", DASHSCOPE_API_KEY_FILE_PATH=str(kp))
    assert find_api_key(env, config.load_file(cfg_path())) == ("sk-env", "environment (DASHSCOPE_API_KEY)")


def test_key_order_config_file_second() -> None:
    write_cfg(api_key="  sk-file  ")
    kp = _key_file(home() / "keyfile", "sk-keyfile\n")
    _key_file(home() / ".dashscope" / "api_key", "sk-sdk\n")
    s = resolve(make_env(DASHSCOPE_API_KEY_FILE_PATH=str(kp)))
    assert (s.api_key, s.api_key_source) == ("sk-file", "config file")


def test_key_order_key_file_path_third() -> None:
    kp = _key_file(home() / "keyfile", "  sk-keyfile\n\n")
    _key_file(home() / ".dashscope" / "api_key", "sk-sdk\n")
    s = resolve(make_env(DASHSCOPE_API_KEY_FILE_PATH=str(kp)))
    assert (s.api_key, s.api_key_source) == ("sk-keyfile", "DASHSCOPE_API_KEY_FILE_PATH")


def test_key_order_sdk_file_last() -> None:
    _key_file(home() / ".dashscope" / "api_key", "sk-sdk\n")
    s = resolve(make_env(DASHSCOPE_API_KEY_FILE_PATH=str(home() / "missing")))
    assert (s.api_key, s.api_key_source) == ("sk-sdk", "~/.dashscope/api_key")


def test_empty_key_file_skipped() -> None:
    kp = _key_file(home() / "keyfile", "\n")
    _key_file(home() / ".dashscope" / "api_key", "sk-sdk")
    assert resolve(make_env(DASHSCOPE_API_KEY_FILE_PATH=str(kp))).api_key == "sk-sdk"


def test_no_key_anywhere() -> None:
    s = resolve(make_env())
    assert (s.api_key, s.api_key_source) == (None, None)
    with pytest.raises(AuthError) as ei:
        s.require_key()
    assert ei.value.status == ExitStatus.AUTH
    assert "DASHSCOPE_API_KEY" in ei.value.message
    assert "`wanvid config set api_key`" in ei.value.message


@pytest.mark.parametrize("args", [
    ["status", "t-1"],
    ["cancel", "t-1"],
    ["tasks", "--remote"],
    ["submit", "https://example.com/cat.png", "-p", "a cat"],
], ids=["status", "cancel", "tasks-remote", "submit"])
def test_cli_no_key_exits_3(run: Run, args: list[str]) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        r = run(args, key=None)
        assert len(rsps.calls) == 0
    assert r.code == 3
    line = one_error_line(r)
    assert "DASHSCOPE_API_KEY" in line
    assert "`wanvid config set api_key`" in line


def test_cli_key_from_sdk_file_is_used(run: Run) -> None:
    _key_file(home() / ".dashscope" / "api_key", KEY + "\n")
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, INTL + "/tasks/t-1",
                 json={"output": {"task_id": "t-1", "task_status": "RUNNING"}})
        r = run(["status", "t-1"], key=None)
        assert rsps.calls[0].request.headers["Authorization"] == f"Bearer {KEY}"
    assert r.code == 0


@pytest.mark.parametrize(("key", "shown"), [
    (KEY, "sk-…CRET"), ("sk-0123456789ab", "sk-…89ab"), ("short-key", "***"), (None, "(not set)"),
    ("", "(not set)"),
])
def test_redact(key: str | None, shown: str) -> None:
    assert redact(key) == shown


# --- wanvid config set / get / list / path / unset -----------------------------------------------


def test_config_path(run: Run) -> None:
    r = run(["config", "path"], key=None)
    assert r.code == 0
    assert r.out == f"{cfg_path()}\n"


def test_config_set_writes_toml_mode_0600(run: Run) -> None:
    r = run(["config", "set", "region", "CN"])
    assert r.code == 0
    assert r.out == ""
    assert r.err == f"wanvid: region saved in {cfg_path()}\n"
    assert read_cfg() == {"region": "cn"}
    assert stat.S_IMODE(cfg_path().stat().st_mode) == 0o600
    q = run(["config", "set", "region", "intl", "-q"])
    assert (q.code, q.out, q.err) == (0, "", "")
    assert read_cfg() == {"region": "intl"}


def test_config_set_keeps_other_keys_and_tightens_mode(run: Run) -> None:
    p = write_cfg(region="cn", jobs=3)
    os.chmod(p, 0o644)
    r = run(["config", "set", "base_url", LOCAL + "/"])
    assert r.code == 0
    assert read_cfg() == {"region": "cn", "jobs": 3, "base_url": LOCAL}
    assert stat.S_IMODE(p.stat().st_mode) == 0o600


def test_config_set_is_atomic(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file is written to a temp file in the same directory, then renamed over."""
    write_cfg(region="cn")
    replaced: list[tuple[str, str, int, dict[str, Any]]] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        with open(src, "rb") as f:
            content = tomllib.load(f)
        replaced.append((str(src), str(dst), stat.S_IMODE(os.stat(src).st_mode), content))
        assert tomllib.loads(cfg_path().read_text()) == {"region": "cn"}  # untouched until now
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    r = run(["config", "set", "region", "us"])
    assert r.code == 0
    assert len(replaced) == 1
    src, dst, mode, content = replaced[0]
    assert dst == str(cfg_path())
    assert Path(src).parent == cfg_path().parent and src != dst
    assert mode == 0o600
    assert content == {"region": "us"}
    assert sorted(p.name for p in cfg_path().parent.iterdir()) == ["config.toml"]


def test_save_file_failure_leaves_old_file(monkeypatch: pytest.MonkeyPatch) -> None:
    import tomli_w

    p = write_cfg(region="cn")

    def boom(data: Any, f: Any) -> None:
        f.write(b"region = ")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tomli_w, "dump", boom)
    with pytest.raises(OSError):
        save_file(p, {"region": "us"})
    assert read_cfg() == {"region": "cn"}
    assert sorted(x.name for x in p.parent.iterdir()) == ["config.toml"]


def test_save_file_creates_dir(tmp_path: Path) -> None:
    p = tmp_path / "a" / "b" / "config.toml"
    save_file(p, {"jobs": 4})
    assert tomllib.loads(p.read_text()) == {"jobs": 4}
    assert stat.S_IMODE(p.stat().st_mode) == 0o600


def test_config_set_api_key_from_stdin(run: Run) -> None:
    r = run(["config", "set", "api_key"], stdin=KEY + "\n", key=None)
    assert r.code == 0
    assert r.out == ""
    assert r.err == f"wanvid: api_key saved in {cfg_path()}\n"  # no warning
    assert read_cfg() == {"api_key": KEY}
    assert stat.S_IMODE(cfg_path().stat().st_mode) == 0o600


def test_config_set_api_key_dash_reads_stdin(run: Run) -> None:
    r = run(["config", "set", "api_key", "-"], stdin=KEY, key=None)
    assert r.code == 0
    assert read_cfg() == {"api_key": KEY}
    assert "warning" not in r.err


def test_config_set_api_key_prompts_on_tty(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    prompts: list[str] = []

    def fake_getpass(prompt: str = "", stream: Any = None) -> str:
        prompts.append(prompt)
        return KEY

    monkeypatch.setattr(getpass, "getpass", fake_getpass)
    r = run(["config", "set", "api_key"], tty=True, key=None)
    assert r.code == 0
    assert prompts == ["api_key: "]
    assert read_cfg() == {"api_key": KEY}


def test_config_set_api_key_on_command_line_warns(run: Run) -> None:
    r = run(["config", "set", "api_key", "sk-typed-in-0000"], key=None)
    assert r.code == 0
    assert read_cfg() == {"api_key": "sk-typed-in-0000"}
    lines = r.err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("wanvid: warning: a key typed on the command line stays in your "
                               "shell history")
    assert "wanvid config set api_key" in lines[0]
    assert lines[1] == f"wanvid: api_key saved in {cfg_path()}"
    assert "sk-typed-in-0000" not in r.err


def test_config_set_api_key_empty_stdin(run: Run) -> None:
    r = run(["config", "set", "api_key"], stdin="\n", key=None)
    assert r.code == 2
    assert one_error_line(r) == "wanvid: error: config api_key: empty key\n"
    assert not cfg_path().exists()


def test_stored_key_is_used(run: Run) -> None:
    run(["config", "set", "api_key"], stdin=KEY, key=None)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, INTL + "/tasks/t-1",
                 json={"output": {"task_id": "t-1", "task_status": "PENDING"}})
        r = run(["status", "t-1"], key=None)
        assert rsps.calls[0].request.headers["Authorization"] == f"Bearer {KEY}"
    assert r.code == 0


@pytest.mark.parametrize(("key", "value", "stored"), [
    ("region", "us", "us"),
    ("base_url", "http://127.0.0.1:8000/api/v1/", "http://127.0.0.1:8000/api/v1"),
    ("model", "wanx2.1-i2v-turbo", "wan2.1-i2v-turbo"),
    ("kf2v_model", "wan2.1-kf2v-plus", "wan2.1-kf2v-plus"),
    ("output_dir", "~/videos", "~/videos"),
    ("poll_interval", "2.5", 2.5),
    ("max_qps", "3", 3.0),
    ("jobs", "4", 4),
    ("fit", "yes", True),
    ("fit", "off", False),
])
def test_config_set_values(run: Run, key: str, value: str, stored: Any) -> None:
    r = run(["config", "set", key, value])
    assert r.code == 0, r.err
    assert read_cfg() == {key: stored}


I2V_NAMES = ("wan2.7-i2v, wan2.6-i2v-flash, wan2.6-i2v, wan2.6-i2v-us, happyhorse-1.0-i2v, "
             "wan2.5-i2v-preview, wan2.2-i2v-flash, wan2.2-i2v-plus, wan2.1-i2v-plus, "
             "wan2.1-i2v-turbo")


@pytest.mark.parametrize(("args", "message"), [
    (["config", "set", "colour", "red"],
     "unknown config key 'colour'; known keys: api_key, region, workspace, base_url, model, kf2v_model, "
     "output_dir, poll_interval, max_qps, jobs, fit, upload, sidecar, prices, max_seconds, "
     "max_download_mb, downloads"),
    (["config", "set", "region", "mars"],
     "config region: unknown region 'mars'; use one of: intl, cn, us, eu"),
    (["config", "set", "base_url", "dashscope.aliyuncs.com/api/v1"],
     "config base_url: 'dashscope.aliyuncs.com/api/v1' is not an http(s) URL; e.g. "
     "https://dashscope-intl.aliyuncs.com/api/v1"),
    (["config", "set", "model", "wan9-i2v"],
     "config model: 'wan9-i2v' is not a i2v model; one of: " + I2V_NAMES),
    (["config", "set", "model", "wan2.2-kf2v-flash"],
     "config model: 'wan2.2-kf2v-flash' is not a i2v model; one of: " + I2V_NAMES),
    (["config", "set", "kf2v_model", "wan2.2-i2v-flash"],
     "config kf2v_model: 'wan2.2-i2v-flash' is not a kf2v model; one of: wan2.2-kf2v-flash, "
     "wan2.1-kf2v-plus"),
    (["config", "set", "jobs", "0"], "config jobs: must be greater than 0, got '0'"),
    (["config", "set", "poll_interval", "fast"], "config poll_interval: expected a number, got 'fast'"),
    (["config", "set", "fit", "maybe"], "config fit: expected true or false, got 'maybe'"),
    (["config", "set", "region"], "config set region: give a value"),
    (["config", "get", "colour"],
     "unknown config key 'colour'; known keys: api_key, region, workspace, base_url, model, kf2v_model, "
     "output_dir, poll_interval, max_qps, jobs, fit, upload, sidecar, prices, max_seconds, "
     "max_download_mb, downloads"),
])
def test_config_errors_exit_2_one_line(run: Run, args: list[str], message: str) -> None:
    r = run(args)
    assert r.code == 2
    assert one_error_line(r) == f"wanvid: error: {message}\n"
    assert not cfg_path().exists()


def test_config_get(run: Run) -> None:
    write_cfg(region="cn", jobs=3, api_key=KEY)
    assert run(["config", "get", "region"]).out == "cn\n"
    assert run(["config", "get", "jobs"]).out == "3\n"
    r = run(["config", "get", "api_key"])
    assert r.code == 0
    assert r.out == "sk-…CRET\n"
    assert KEY not in r.out + r.err


def test_config_get_unset(run: Run) -> None:
    assert run(["config", "get", "region"]).out == "intl\n"  # the default, as list shows it
    r = run(["config", "get", "max_seconds"])
    assert r.code == 2
    assert one_error_line(r) == "wanvid: error: max_seconds is not set (and has no default)\n"


def test_config_unset(run: Run) -> None:
    write_cfg(region="cn", jobs=3)
    r = run(["config", "unset", "region"])
    assert r.code == 0
    assert read_cfg() == {"jobs": 3}
    assert stat.S_IMODE(cfg_path().stat().st_mode) == 0o600
    r = run(["config", "unset", "region"])
    assert r.code == 2
    assert one_error_line(r) == f"wanvid: error: region is not set in {cfg_path()}\n"


def test_config_list_redacts_key(run: Run) -> None:
    r = run(["config", "list"])
    assert r.code == 0
    assert KEY not in r.out + r.err
    lines = r.out.splitlines()
    assert lines == [
        "api_key = sk-…CRET",
        "api_key_source = environment (DASHSCOPE_API_KEY)",
        "region = intl",
        "workspace = (not set)",
        f"base_url = {INTL}",
        "model = wan2.2-i2v-flash",
        "kf2v_model = wan2.2-kf2v-flash",
        "output_dir = .",
        "poll_interval = 5.0",
        "max_qps = 5.0",
        "jobs = 2",
        "downloads = 4",
        "fit = false",
        "upload = auto",
        "sidecar = true",
        "max_seconds = (not set)",
        "max_download_mb = 2048",
        "prices = (none)",
    ]


def test_config_list_json_key_from_file(run: Run) -> None:
    write_cfg(api_key=KEY, region="cn", model="wan2.5-i2v-preview", jobs=4)
    r = run(["config", "list", "--json"], key=None)
    assert r.code == 0
    assert KEY not in r.out + r.err
    d = envelope_schema.data(r.out)
    assert d["api_key"] == "sk-…CRET"
    assert d["api_key_source"] == "config file"
    assert (d["region"], d["base_url"], d["model"], d["jobs"]) == ("cn", CN, "wan2.5-i2v-preview", 4)


def test_config_list_without_key(run: Run) -> None:
    r = run(["config", "list", "--json"], key=None)
    assert r.code == 0  # listing settings needs no key
    d = envelope_schema.data(r.out)
    assert d["api_key"] == "(not set)"
    assert d["api_key_source"] is None


def test_config_get_agrees_with_config_list(run, capsys) -> None:  # type: ignore[no-untyped-def]
    listed = run(["config", "list"], key="sk-0123456789abcdefWXYZ")
    rows = dict(line.split(" = ", 1) for line in listed.out.splitlines() if " = " in line)
    for key in ("model", "region", "fit", "jobs", "api_key", "sidecar"):
        got = run(["config", "get", key], key="sk-0123456789abcdefWXYZ")
        assert got.code == 0, got.err
        assert got.out.strip() == rows[key], key


@pytest.mark.parametrize(("name", "value"), [
    ("WANVID_DOWNLOADS", "abc"), ("WANVID_DOWNLOADS", "2.5"), ("WANVID_DOWNLOADS", "0"),
    ("WANVID_MAX_QPS", "abc"), ("WANVID_MAX_QPS", "-1"), ("WANVID_POLL_INTERVAL", "fast"),
    ("WANVID_HEARTBEAT", "often"), ("WANVID_MAX_DOWNLOAD_MB", "inf"),
])
def test_a_numeric_environment_variable_that_is_not_a_number_is_refused(
        name: str, value: str) -> None:
    with pytest.raises(BadInputError) as e:
        resolve(make_env(**{name: value}))
    assert e.value.message.startswith(f"{name}={value!r} is not ")
    assert f"unset {name}" in e.value.message


def test_numeric_environment_variables_that_are_numbers_are_taken() -> None:
    s = resolve(make_env(WANVID_DOWNLOADS="3", WANVID_MAX_QPS="2.5", WANVID_HEARTBEAT="0",
                         WANVID_POLL_INTERVAL="7", WANVID_MAX_DOWNLOAD_MB="0.5"))
    assert (s.downloads, s.max_qps, s.poll_interval) == (3, 2.5, 7.0)
    assert s.max_download == 512 * 1024  # half a MiB, not 0
    assert resolve(make_env(WANVID_HEARTBEAT="-1")).downloads  # off: taken, not refused
