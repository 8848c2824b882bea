"""The model catalogue against the API reference, and `wanvid models`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests import envelope_schema
from tests.conftest import Result
from wanvid import models
from wanvid.models import (
    DEFAULT_I2V_MODEL,
    DEFAULT_KF2V_MODEL,
    MODELS,
    NEGATIVE_PROMPT_MAX,
    find_model,
    model_names,
    models_by_kind,
    normalize_resolution,
)

Run = Callable[..., Result]

I2V = "/services/aigc/video-generation/video-synthesis"
KF2V = "/services/aigc/image2video/video-synthesis"

# name, kind, endpoint, resolutions, default resolution, durations, default duration,
# audio, prompt limit, fps -- straight from shared/api/*.txt.
EXPECTED: list[tuple[str, str, str, tuple[str, ...], str, tuple[int, ...], int, bool, int, int]] = [
    ("wan2.5-i2v-preview", "i2v", I2V, ("480P", "720P", "1080P"), "1080P", (5, 10), 5, True, 2000, 24),
    # The model table says 480p/720p/1080p; the `resolution` parameter list says 480p/720p
    # (default 720p). The parameter list wins.
    ("wan2.2-i2v-flash", "i2v", I2V, ("480P", "720P"), "720P", (5,), 5, False, 800, 30),
    ("wan2.2-i2v-plus", "i2v", I2V, ("480P", "1080P"), "1080P", (5,), 5, False, 800, 30),
    ("wan2.1-i2v-plus", "i2v", I2V, ("720P",), "720P", (5,), 5, False, 800, 30),
    ("wan2.1-i2v-turbo", "i2v", I2V, ("480P", "720P"), "720P", (3, 4, 5), 5, False, 800, 30),
    ("wan2.2-kf2v-flash", "kf2v", KF2V, ("480P", "720P", "1080P"), "720P", (5,), 5, False, 800, 30),
    ("wan2.1-kf2v-plus", "kf2v", KF2V, ("720P",), "720P", (5,), 5, False, 800, 30),
]
NAMES = [e[0] for e in EXPECTED]


def test_catalogue_lists_exactly_the_reference_models() -> None:
    assert model_names() == NAMES
    assert [m.name for m in MODELS] == NAMES


@pytest.mark.parametrize(
    ("name", "kind", "path", "resolutions", "default_res", "durations", "default_dur", "audio",
     "prompt_max", "fps"),
    EXPECTED, ids=NAMES)
def test_model_spec_matches_reference(name: str, kind: str, path: str, resolutions: tuple[str, ...],
                                      default_res: str, durations: tuple[int, ...], default_dur: int,
                                      audio: bool, prompt_max: int, fps: int) -> None:
    m = find_model(name)
    assert m is not None
    assert m.name == name
    assert m.kind == kind
    assert m.path == path
    assert m.resolutions == resolutions
    assert m.default_resolution == default_res
    assert m.default_resolution in m.resolutions
    assert m.durations == durations
    assert m.default_duration == default_dur
    assert m.default_duration in m.durations
    assert m.audio is audio
    assert m.prompt_max == prompt_max
    assert m.negative_prompt_max == 500
    assert m.fps == fps
    assert set(m.regions) >= {"intl", "cn"}


def test_endpoint_paths() -> None:
    assert models.I2V_PATH == I2V
    assert models.KF2V_PATH == KF2V


def test_negative_prompt_limit_is_500() -> None:
    assert NEGATIVE_PROMPT_MAX == 500


def test_wan22_i2v_flash_has_no_1080p() -> None:
    m = find_model("wan2.2-i2v-flash")
    assert m is not None
    assert "1080P" not in m.resolutions


def test_only_wan25_has_audio() -> None:
    assert [m.name for m in MODELS if m.audio] == ["wan2.5-i2v-preview"]


def test_defaults() -> None:
    assert DEFAULT_I2V_MODEL == "wan2.2-i2v-flash"
    assert DEFAULT_KF2V_MODEL == "wan2.2-kf2v-flash"
    assert [m.name for m in models_by_kind("kf2v")] == ["wan2.2-kf2v-flash", "wan2.1-kf2v-plus"]
    assert [m.name for m in models_by_kind("i2v")] == NAMES[:5]


@pytest.mark.parametrize(("spelling", "canonical"), [
    ("wanx2.1-i2v-plus", "wan2.1-i2v-plus"),
    ("wan2.1-i2v-plus", "wan2.1-i2v-plus"),
    ("wanx2.1-i2v-turbo", "wan2.1-i2v-turbo"),
    ("wan2.1-i2v-turbo", "wan2.1-i2v-turbo"),
    ("wanx2.1-kf2v-plus", "wan2.1-kf2v-plus"),
    ("wan2.1-kf2v-plus", "wan2.1-kf2v-plus"),
    ("WAN2.2-I2V-FLASH", "wan2.2-i2v-flash"),
    ("  wan2.5-i2v-preview ", "wan2.5-i2v-preview"),
])
def test_both_spellings_resolve(spelling: str, canonical: str) -> None:
    m = find_model(spelling)
    assert m is not None
    assert m.name == canonical
    assert m is find_model(canonical)


@pytest.mark.parametrize("name", ["wan2.3-i2v-flash", "wanx2.2-i2v-flash", "", "i2v", "wan2.5"])
def test_unknown_model_is_none(name: str) -> None:
    assert find_model(name) is None


def test_api_name_per_region() -> None:
    # The Beijing table spells the 2.1 kf2v model with the old "wanx" prefix.
    kf = find_model("wan2.1-kf2v-plus")
    assert kf is not None
    assert kf.api_name("cn") == "wanx2.1-kf2v-plus"
    assert kf.api_name("intl") == "wan2.1-kf2v-plus"
    assert kf.api_name(None) == "wan2.1-kf2v-plus"
    flash = find_model("wan2.2-i2v-flash")
    assert flash is not None
    assert flash.api_name("cn") == "wan2.2-i2v-flash"


@pytest.mark.parametrize(("raw", "want"), [
    ("720p", "720P"), ("720P", "720P"), (" 1080p ", "1080P"), ("480", "480P"),
])
def test_normalize_resolution(raw: str, want: str) -> None:
    assert normalize_resolution(raw) == want


# --- wanvid models ----------------------------------------------------------------------------


def _expected_json(e: tuple[Any, ...]) -> dict[str, Any]:
    name, kind, path, res, dres, durs, ddur, audio, pmax, fps = e
    return {"name": name, "kind": kind, "endpoint": path, "resolutions": list(res),
            "default_resolution": dres, "durations": list(durs), "default_duration": ddur,
            "audio": audio, "prompt_max": pmax, "negative_prompt_max": 500, "fps": fps}


def test_models_json(run: Run) -> None:
    r = run(["models", "--json"], key=None)  # needs no key
    assert r.code == 0
    assert r.err == ""
    assert r.out.endswith("\n") and r.out.count("\n") == 1  # one JSON document
    data = envelope_schema.data(r.out)
    assert isinstance(data, list)
    assert [d["name"] for d in data] == NAMES
    for d, e in zip(data, EXPECTED, strict=True):
        want = _expected_json(e)
        assert {k: d[k] for k in want} == want
        assert set(d) >= {"regions", "aliases", "description"}
    by_name = {d["name"]: d for d in data}
    assert by_name["wan2.1-i2v-plus"]["aliases"] == ["wanx2.1-i2v-plus"]
    assert by_name["wan2.1-i2v-turbo"]["aliases"] == ["wanx2.1-i2v-turbo"]
    assert by_name["wan2.1-kf2v-plus"]["aliases"] == ["wanx2.1-kf2v-plus"]
    assert by_name["wan2.2-i2v-flash"]["aliases"] == []


def test_models_text(run: Run) -> None:
    r = run(["models"], key=None)
    assert r.code == 0
    assert r.err == ""
    lines = r.out.splitlines()
    assert lines[0].split() == ["MODEL", "KIND", "RESOLUTIONS", "SECONDS", "AUDIO", "FPS"]
    rows = {line.split()[0]: line.split() for line in lines[1:-1]}
    assert list(rows) == NAMES
    assert rows["wan2.5-i2v-preview"] == ["wan2.5-i2v-preview", "i2v", "480P,720P,1080P*", "5,10",
                                          "yes", "24"]
    assert rows["wan2.2-i2v-flash"] == ["wan2.2-i2v-flash", "i2v", "480P,720P*", "5", "no", "30"]
    assert rows["wan2.2-i2v-plus"] == ["wan2.2-i2v-plus", "i2v", "480P,1080P*", "5", "no", "30"]
    assert rows["wan2.1-i2v-plus"] == ["wan2.1-i2v-plus", "i2v", "720P*", "5", "no", "30"]
    assert rows["wan2.1-i2v-turbo"] == ["wan2.1-i2v-turbo", "i2v", "480P,720P*", "3,4,5", "no", "30"]
    assert rows["wan2.2-kf2v-flash"] == ["wan2.2-kf2v-flash", "kf2v", "480P,720P*,1080P", "5", "no",
                                         "30"]
    assert rows["wan2.1-kf2v-plus"] == ["wan2.1-kf2v-plus", "kf2v", "720P*", "5", "no", "30"]
    footer = lines[-1]
    assert footer.startswith("(* default resolution; aliases: ")
    for alias in ("wanx2.1-i2v-plus", "wanx2.1-i2v-turbo", "wanx2.1-kf2v-plus"):
        assert alias in footer


@pytest.mark.parametrize("args", [["models"], ["models", "--json"]])
def test_fast_entry_point_matches_cli(run: Run, args: list[str], monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """`wanvid models` is answered by wanvid.entry without Typer; same output as the CLI."""
    import sys

    from wanvid import entry

    expected = run(args, key=None).out
    monkeypatch.setattr(sys, "argv", ["wanvid", *args])
    with pytest.raises(SystemExit) as ei:
        entry.main()
    assert ei.value.code == 0
    captured = capsys.readouterr()
    assert captured.out == expected
    assert captured.err == ""
