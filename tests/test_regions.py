"""Regions, workspace hosts and per-model availability (wan-api-2026 §1)."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import responses

from tests.conftest import Result
from wanvid import models
from wanvid.config import check_workspace, resolve
from wanvid.context import Environment
from wanvid.errors import BadInputError
from wanvid.models import check_model_region, find_model, region_id

Run = Callable[..., Result]

INTL = "https://dashscope-intl.aliyuncs.com/api/v1"
CN = "https://dashscope.aliyuncs.com/api/v1"
LOCAL = "http://127.0.0.1:8000/api/v1"
PATH = "/services/aigc/video-generation/video-synthesis"
IMG = "https://example.com/cat.png"
CREATED = {"request_id": "r-1", "output": {"task_id": "t-1", "task_status": "PENDING"}}


def make_env(**vars: str) -> Environment:
    environ = dict(os.environ)
    environ.update(vars)
    return Environment(environ=environ, stdin=io.StringIO(), stdout=io.StringIO(),
                       stderr=io.StringIO(), stdin_isatty=False, stderr_isatty=False)


def write_cfg(**data: Any) -> None:
    p = Path(os.environ["WANVID_CONFIG_DIR"]) / "config.toml"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in data.items()))


# --- region names ------------------------------------------------------------------------------


@pytest.mark.parametrize(("given", "want"), [
    ("intl", "intl"), ("Singapore", "intl"), ("ap-southeast-1", "intl"),
    ("cn", "cn"), ("beijing", "cn"), ("CN-Beijing", "cn"),
    ("us", "us"), ("virginia", "us"), ("us-east-1", "us"),
    ("eu", "eu"), ("Frankfurt", "eu"), ("eu-central-1", "eu"),
    ("mars", None), ("", None),
])
def test_region_id_accepts_city_and_cloud_names(given: str, want: str | None) -> None:
    assert region_id(given) == want


def test_cloud_region_spelling_chooses_the_shared_host() -> None:
    assert resolve(make_env(), region="cn-beijing").base_url == CN


# --- workspace hosts ---------------------------------------------------------------------------


@pytest.mark.parametrize(("region", "cloud"), [
    ("intl", "ap-southeast-1"), ("cn", "cn-beijing"), ("us", "us-east-1"),
    ("eu", "eu-central-1"),
])
def test_workspace_flag_builds_the_workspace_host(region: str, cloud: str) -> None:
    s = resolve(make_env(), region=region, workspace="llm-Abc123")
    assert s.base_url == f"https://llm-abc123.{cloud}.maas.aliyuncs.com/api/v1"
    assert (s.region, s.workspace) == (region, "llm-abc123")


def test_workspace_default_region_is_singapore() -> None:
    s = resolve(make_env(), workspace="ws1")
    assert s.base_url == "https://ws1.ap-southeast-1.maas.aliyuncs.com/api/v1"


@pytest.mark.parametrize("var", ["DASHSCOPE_WORKSPACE_ID", "DASHSCOPE_WORKSPACE"])
def test_workspace_from_environment(var: str) -> None:
    s = resolve(make_env(**{var: "ws-env"}, WANVID_REGION="cn"))
    assert s.base_url == "https://ws-env.cn-beijing.maas.aliyuncs.com/api/v1"


def test_workspace_id_variable_beats_workspace_variable() -> None:
    s = resolve(make_env(DASHSCOPE_WORKSPACE_ID="first", DASHSCOPE_WORKSPACE="second"))
    assert s.workspace == "first"


def test_workspace_from_config_file() -> None:
    write_cfg(workspace="wsfile", region="eu")
    s = resolve(make_env())
    assert s.base_url == "https://wsfile.eu-central-1.maas.aliyuncs.com/api/v1"


def test_flag_workspace_beats_config_base_url() -> None:
    write_cfg(base_url=LOCAL)
    s = resolve(make_env(), workspace="ws1")
    assert s.base_url == "https://ws1.ap-southeast-1.maas.aliyuncs.com/api/v1"


def test_explicit_base_url_beats_workspace_in_the_same_layer() -> None:
    s = resolve(make_env(), workspace="ws1", base_url=LOCAL)
    assert s.base_url == LOCAL


@pytest.mark.parametrize("bad", ["evil.com/x", "a b", "ws_1", "-ws", "ws-", "x" * 64,
                                 "attacker.example.com#", "w\ns"])
def test_workspace_id_must_be_one_dns_label(bad: str) -> None:
    with pytest.raises(BadInputError) as ei:
        resolve(make_env(), workspace=bad)
    assert ei.value.message.startswith("workspace (flag): ")
    assert "is not a workspace id" in ei.value.message


def test_check_workspace_lowercases() -> None:
    assert check_workspace(" LLM-x1 ", "w") == "llm-x1"


def test_frankfurt_without_workspace_is_one_clear_error() -> None:
    with pytest.raises(BadInputError) as ei:
        resolve(make_env(), region="eu")
    assert "Frankfurt" in ei.value.message and "--workspace ID" in ei.value.message


def test_frankfurt_with_an_explicit_base_url_needs_no_workspace() -> None:
    assert resolve(make_env(), region="eu", base_url=LOCAL).base_url == LOCAL


def test_frankfurt_without_workspace_cli_exit_2_nothing_sent(run: Run) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        r = run(["--region", "frankfurt", "submit", IMG, "-m", "wan2.2-i2v-plus"])
        assert len(rsps.calls) == 0
    assert r.code == 2 and r.out == ""
    assert r.err.count("\n") == 1 and "--workspace" in r.err


def test_cli_workspace_option_sends_to_the_workspace_host(run: Run) -> None:
    url = "https://ws9.cn-beijing.maas.aliyuncs.com/api/v1" + PATH
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, url, json=CREATED)
        r = run(["--region", "cn", "--workspace", "ws9", "submit", IMG])
        assert r.code == 0, r.err
        assert len(rsps.calls) == 1


def test_config_set_workspace_is_checked(run: Run) -> None:
    r = run(["config", "set", "workspace", "bad.host"])
    assert r.code == 2 and "is not a workspace id" in r.err
    assert run(["config", "set", "workspace", "ws1"]).code == 0


# --- per-model availability --------------------------------------------------------------------


def test_every_model_lists_regions_wanvid_knows() -> None:
    for m in models.MODELS:
        assert m.regions or m.regions_unconfirmed, m.name
        assert set(m.regions) | set(m.regions_unconfirmed) <= set(models.REGION_IDS), m.name
        assert not set(m.regions) & set(m.regions_unconfirmed), m.name


def test_model_outside_its_regions_is_refused_naming_the_ones_that_do() -> None:
    m = find_model("wan2.2-i2v-plus")
    assert m is not None
    with pytest.raises(BadInputError) as ei:
        check_model_region(m, "us")
    msg = ei.value.message
    assert msg.startswith("wan2.2-i2v-plus is not offered in region us (Virginia)")
    assert "intl (Singapore)" in msg and "cn (Beijing)" in msg and "--region" in msg


def test_unconfirmed_region_is_allowed_and_named_in_the_refusal() -> None:
    m = find_model("wan2.2-i2v-flash")
    assert m is not None and "intl" in m.regions_unconfirmed
    check_model_region(m, "intl")  # "?" in the availability table: not refused
    check_model_region(m, "cn")
    with pytest.raises(BadInputError) as ei:
        check_model_region(m, "eu")
    assert "unconfirmed: intl (Singapore)" in ei.value.message


def test_no_region_is_never_refused() -> None:
    m = replace(models.MODELS[0], regions=("cn",), regions_unconfirmed=())
    check_model_region(m, None)


def test_cli_refuses_model_not_in_region_exit_2_nothing_sent(run: Run) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        r = run(["--region", "us", "submit", IMG, "-m", "wan2.2-i2v-plus"])
        assert len(rsps.calls) == 0
    assert r.code == 2 and r.out == "" and r.err.count("\n") == 1
    assert "not offered in region us" in r.err


def test_named_region_is_enforced_even_with_a_base_url(run: Run) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        r = run(["--region", "us", "--base-url", LOCAL, "submit", IMG, "-m", "wan2.2-i2v-plus"])
        assert len(rsps.calls) == 0
    assert r.code == 2 and "not offered in region us" in r.err


def test_default_region_is_not_enforced_under_an_explicit_base_url() -> None:
    # An emulator or a proxy: the region is only the default guess, so it is not enforced.
    assert resolve(make_env(DASHSCOPE_HTTP_BASE_URL=LOCAL)).enforce_region is False
    assert resolve(make_env()).enforce_region is True
    assert resolve(make_env(WANVID_REGION="cn", DASHSCOPE_HTTP_BASE_URL=LOCAL)).enforce_region
