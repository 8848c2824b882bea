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

R2_15 = tuple(range(2, 16))
# name, kind, endpoint, resolutions, default resolution, durations, default duration,
# audio (the videos can have sound), prompt limit, fps -- from shared/api/wan-api-2026.md
# (the newest official documents) beside shared/api/*.txt.
EXPECTED: list[tuple[str, str, str, tuple[str, ...], str, tuple[int, ...], int, bool, int, int]] = [
    ("wan2.7-i2v", "i2v", I2V, ("720P", "1080P"), "1080P", R2_15, 5, True, 5000, 30),
    ("wan2.6-i2v-flash", "i2v", I2V, ("720P", "1080P"), "1080P", R2_15, 5, True, 1500, 30),
    ("wan2.6-i2v", "i2v", I2V, ("720P", "1080P"), "1080P", R2_15, 5, True, 1500, 30),
    ("wan2.6-i2v-us", "i2v", I2V, ("720P", "1080P"), "1080P", (5, 10, 15), 5, True, 1500, 30),
    ("happyhorse-1.0-i2v", "i2v", I2V, ("720P", "1080P"), "1080P", tuple(range(3, 16)), 5, True,
     5000, 24),
    ("wan2.5-i2v-preview", "i2v", I2V, ("480P", "720P", "1080P"), "1080P", (5, 10), 5, True, 1500, 24),
    # The Sep 2026 reference lists 1080P for wan2.2-i2v-flash (Nov 2025's parameter list did not).
    ("wan2.2-i2v-flash", "i2v", I2V, ("480P", "720P", "1080P"), "720P", (5,), 5, False, 800, 30),
    ("wan2.2-i2v-plus", "i2v", I2V, ("480P", "1080P"), "1080P", (5,), 5, False, 800, 30),
    ("wan2.1-i2v-plus", "i2v", I2V, ("720P",), "720P", (5,), 5, False, 800, 30),
    ("wan2.1-i2v-turbo", "i2v", I2V, ("480P", "720P"), "720P", (3, 4, 5), 5, False, 800, 30),
    ("wan2.2-kf2v-flash", "kf2v", KF2V, ("480P", "720P", "1080P"), "720P", (5,), 5, False, 800, 30),
    ("wan2.1-kf2v-plus", "kf2v", KF2V, ("720P",), "720P", (5,), 5, False, 800, 30),
]
NAMES = [e[0] for e in EXPECTED]
PROTOCOLS = {"wan2.7-i2v": "media", "happyhorse-1.0-i2v": "media", "wan2.2-kf2v-flash": "kf2v",
             "wan2.1-kf2v-plus": "kf2v"}


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
    assert m.protocol == PROTOCOLS.get(name, "i2v")
    assert m.path == path
    assert m.resolutions == resolutions
    assert m.default_resolution == default_res
    assert m.default_resolution in m.resolutions
    assert m.durations == durations
    assert m.default_duration == default_dur
    assert m.default_duration in m.durations
    assert m.audio is audio
    assert m.prompt_max == prompt_max
    assert m.negative_prompt_max == (0 if name.startswith("happyhorse") else 500)
    assert m.fps == fps
    assert m.regions or m.regions_unconfirmed


def test_endpoint_paths() -> None:
    assert models.I2V_PATH == I2V
    assert models.KF2V_PATH == KF2V


def test_negative_prompt_limit_is_500() -> None:
    assert NEGATIVE_PROMPT_MAX == 500


def test_audio_modes() -> None:
    by = {m.name: m.audio_mode for m in MODELS}
    assert by["wan2.6-i2v-flash"] == "optional_flag"  # the only documented audio=false
    assert by["happyhorse-1.0-i2v"] == "always"
    assert {n for n, a in by.items() if a == "silent"} == set(NAMES[6:])
    assert [m.name for m in MODELS if m.audio_track] == NAMES[:4] + ["wan2.5-i2v-preview"]


def test_newer_models_limits() -> None:
    m27 = find_model("wan2.7-i2v")
    hh = find_model("happyhorse-1.0-i2v")
    assert m27 is not None and hh is not None
    lim = m27.image_limits
    assert (lim.min_px, lim.max_px, lim.max_bytes) == (240, 8000, 20 * 1024 * 1024)
    assert (lim.min_aspect, lim.max_aspect) == (0.125, 8.0)
    h = hh.image_limits
    assert h.min_px == 300 and h.max_px is None  # no maximum documented: not enforced
    assert (h.min_aspect, h.max_aspect) == (0.4, 2.5) and "BMP" not in h.formats
    assert m27.clip_limits.formats == ("MP4", "MOV") and m27.clip_limits.max_s == 10
    assert (m27.submits_per_second, m27.concurrent_tasks) == (5, 5)
    assert find_model("wan2.2-i2v-flash").concurrent_tasks == 2  # type: ignore[union-attr]
    assert find_model("wan2.6-i2v-flash").shot_types == ("single", "multi")  # type: ignore[union-attr]
    assert len(m27.media_combinations) == 6


def test_dated_snapshot_is_sent_as_asked() -> None:
    from wanvid.models import request_name

    m = find_model("wan2.7-i2v-2026-04-25")
    assert m is not None and m.name == "wan2.7-i2v" and "wan2.7-i2v-2026-04-25" in m.snapshots
    assert request_name(m, "wan2.7-i2v-2026-04-25", "intl") == "wan2.7-i2v-2026-04-25"
    assert request_name(m, "wan2.7-i2v", "intl") == "wan2.7-i2v"


def test_defaults() -> None:
    assert DEFAULT_I2V_MODEL == "wan2.2-i2v-flash"
    assert DEFAULT_KF2V_MODEL == "wan2.2-kf2v-flash"
    assert [m.name for m in models_by_kind("kf2v")] == ["wan2.2-kf2v-flash", "wan2.1-kf2v-plus"]
    assert [m.name for m in models_by_kind("i2v")] == NAMES[:10]


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
    return {"name": name, "kind": kind, "protocol": PROTOCOLS.get(name, "i2v"), "endpoint": path,
            "resolutions": list(res), "default_resolution": dres, "durations": list(durs),
            "default_duration": ddur, "audio": audio, "prompt_max": pmax, "fps": fps}


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
        assert set(d) >= {"regions", "aliases", "description", "source", "audio_mode",
                          "image_min_px", "image_max_px", "image_max_bytes", "clip_formats",
                          "submits_per_second", "concurrent_tasks", "unconfirmed",
                          "shot_types", "templates", "media", "media_combinations"}
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
    assert lines[0].split() == ["MODEL", "INPUT", "RESOLUTIONS", "SECONDS", "AUDIO", "FPS",
                                "FROM"]
    assert {line.split()[-1] for line in lines[1:-1]} == {"shipped"}
    rows = {line.split()[0]: line.split()[:-1] for line in lines[1:-1]}
    assert list(rows) == NAMES
    assert rows["wan2.7-i2v"] == ["wan2.7-i2v", "media", "720P,1080P*", "2-15", "yes", "30"]
    assert rows["wan2.6-i2v-flash"] == ["wan2.6-i2v-flash", "i2v", "720P,1080P*", "2-15",
                                        "on/off", "30"]
    assert rows["wan2.6-i2v-us"] == ["wan2.6-i2v-us", "i2v", "720P,1080P*", "5,10,15", "yes", "30"]
    assert rows["happyhorse-1.0-i2v"] == ["happyhorse-1.0-i2v", "media", "720P,1080P*", "3-15",
                                          "yes", "24"]
    assert rows["wan2.5-i2v-preview"] == ["wan2.5-i2v-preview", "i2v", "480P,720P,1080P*", "5,10",
                                          "yes", "24"]
    assert rows["wan2.2-i2v-flash"] == ["wan2.2-i2v-flash", "i2v", "480P,720P*,1080P", "5", "no",
                                        "30"]
    assert rows["wan2.2-i2v-plus"] == ["wan2.2-i2v-plus", "i2v", "480P,1080P*", "5", "no", "30"]
    assert rows["wan2.1-i2v-plus"] == ["wan2.1-i2v-plus", "i2v", "720P*", "5", "no", "30"]
    assert rows["wan2.1-i2v-turbo"] == ["wan2.1-i2v-turbo", "i2v", "480P,720P*", "3-5", "no", "30"]
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
