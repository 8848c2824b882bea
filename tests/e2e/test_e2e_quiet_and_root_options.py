"""Root options after the command name, and -q that is quiet, through the installed CLI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.e2e.conftest import EmulatorProc, Run


def test_status_takes_base_url_after_the_command(emulator: Callable[..., EmulatorProc],
                                                 wv: Callable[..., Run],
                                                 images: dict[str, Path]) -> None:
    emu = emulator()
    sub = wv("--base-url", emu.base_url, "submit", str(images["first"]), "-p", "x")
    assert sub.code == 0, sub.err
    tid = sub.out.strip()
    r = wv("status", "--base-url", emu.base_url, tid, "--debug")
    assert r.code == 0, r.err
    assert r.out.startswith(tid)
    assert "wanvid: debug:" in r.err  # --debug after the id works too


def test_generate_and_submit_quiet_print_only_results(emulator: Callable[..., EmulatorProc],
                                                      wv: Callable[..., Run],
                                                      images: dict[str, Path]) -> None:
    emu = emulator()
    r = wv("generate", str(images["first"]), "-p", "--debug", "-q", "-o", "v.mp4",
           base_url=emu.base_url)
    assert r.code == 0, r.err
    assert r.err == ""
    assert r.out.strip().endswith("v.mp4")
    s = wv("submit", "-q", str(images["first"]), base_url=emu.base_url)
    assert s.code == 0 and s.err == "" and s.out.strip()


def test_quiet_still_prints_errors(wv: Callable[..., Run], tmp_path: Path) -> None:
    r = wv("generate", str(tmp_path / "missing.png"), "-q")
    assert r.code == 2
    assert r.err.startswith("wanvid: error:")


def test_demo_quiet_prints_only_the_path(wv: Callable[..., Run], tmp_path: Path) -> None:
    r = wv("demo", "-q", "-o", "d.mp4")
    assert r.code == 0, r.err
    assert r.err == ""
    assert r.out.strip().endswith("d.mp4")


def test_demo_saves_in_the_cache_and_never_pays_for_an_unwritable_output(
        wv: Callable[..., Run], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    r = wv("demo", "-q", env={"XDG_CACHE_HOME": str(cache)})
    assert r.code == 0, r.err
    assert Path(r.out.strip()) == cache / "wanvid" / "demo" / "wanvid-demo.mp4"
    assert Path(r.out.strip()).stat().st_size > 0
    assert not [p for p in (tmp_path / "work").iterdir()]  # nothing in the current directory
    again = wv("demo", "-q", "-o", "d.mp4")
    assert again.code == 0, again.err
    before = (tmp_path / "work" / "d.mp4").read_bytes()
    refused = wv("demo", "-q", "-o", "d.mp4")
    assert refused.code == 2
    assert "nothing was sent" in refused.err and "--force" in refused.err
    assert (tmp_path / "work" / "d.mp4").read_bytes() == before
    assert wv("demo", "-q", "-o", "d.mp4", "--force").code == 0
