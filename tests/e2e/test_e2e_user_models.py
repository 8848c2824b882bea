"""A model only the user's models.toml defines, end to end: the installed CLI lists it as
`user`, and generates a video with it from an emulator given the same file
(`wanvid emulator --models FILE`); an emulator without the file refuses the model, as the
service would refuse a name it does not know."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

HH11 = """
[[model]]
name = "happyhorse-1.1-i2v"
protocol = "media"
resolutions = ["720P", "1080P"]
default_resolution = "720P"
durations = "3..15"
audio_mode = "always"
source = "e2e: a model wanvid does not ship"
"""


def user_catalogue(wv_env: dict[str, str]) -> Path:
    p = Path(wv_env["WANVID_CONFIG_DIR"]) / "models.toml"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(HH11, encoding="utf-8")
    return p


def test_a_user_model_generates_a_video(emulator: Callable[..., Any], wv: Callable[..., Any],
                                        wv_env: dict[str, str], images: dict[str, Path],
                                        tmp_path: Path) -> None:
    path = user_catalogue(wv_env)
    r = wv("models", "--path")
    assert r.code == 0 and r.out.strip() == str(path)
    r = wv("models", "--json")
    got = {m["name"]: m for m in json.loads(r.out)["data"]}
    assert got["happyhorse-1.1-i2v"]["origin"] == "user"
    emu = emulator(models=str(path))
    r = wv("generate", str(images["first"]), "-m", "happyhorse-1.1-i2v", "-p", "a horse",
           "-d", "4", "-o", "hh.mp4", "--json", base_url=emu.base_url)
    assert r.code == 0, r.err
    video = tmp_path / "work" / "hh.mp4"
    assert video.is_file() and video.stat().st_size > 0
    sidecar = json.loads((tmp_path / "work" / "hh.json").read_text(encoding="utf-8"))
    assert sidecar["model"] == "happyhorse-1.1-i2v"
    assert sidecar["parameters"]["duration"] == 4
    assert sidecar["parameters"]["resolution"] == "720P"


def test_an_emulator_without_the_file_refuses_the_model(emulator: Callable[..., Any],
                                                        wv: Callable[..., Any],
                                                        wv_env: dict[str, str],
                                                        images: dict[str, Path]) -> None:
    user_catalogue(wv_env)
    emu = emulator()
    r = wv("submit", str(images["first"]), "-m", "happyhorse-1.1-i2v", "-p", "x",
           base_url=emu.base_url)
    assert r.code == 4, r.err  # the service's 404 ModelNotFound
    assert r.err.count("\n") == 1 and "ModelNotFound" in r.err
    assert "check the name (`wanvid models`) and that the region you call (--region)" in r.err
    assert emu.stats()["submits"] == 0
