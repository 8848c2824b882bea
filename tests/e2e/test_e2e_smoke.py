"""The shortest path through the product: generate against the emulator, a real MP4."""

from __future__ import annotations

import hashlib
from pathlib import Path

from wanvid.emulator import load_fixture, task_video


def test_generate_i2v_saves_the_emulators_video_byte_identical(emulator, wv, images,
                                                              tmp_path: Path) -> None:
    emu = emulator()
    r = wv("generate", str(images["first"]), "-p", "waves", base_url=emu.base_url)
    assert r.code == 0, r.err
    path = tmp_path / "work" / r.out.strip()  # printed relative to the working directory
    assert path.is_file() and r.out.count("\n") == 1
    served = task_video(load_fixture(), path.stem)  # the default name is the task id
    assert hashlib.sha256(path.read_bytes()).hexdigest() == hashlib.sha256(served).hexdigest()
    assert emu.stats()["submits"] == 1


def test_demo_generates_a_video_with_no_key(wv, tmp_path: Path) -> None:
    # README's first command: `wanvid demo` on a bare machine (no key, no emulator started)
    r = wv("demo", env={"DASHSCOPE_API_KEY": ""})
    assert r.code == 0, r.err
    assert "internal error" not in r.err and "Traceback" not in r.err
    [line] = r.out.splitlines()
    saved = Path(line)
    assert saved.is_absolute() and saved.name == "wanvid-demo.mp4"
    assert saved.is_file() and saved.read_bytes()[4:8] == b"ftyp"
    assert not list((tmp_path / "work").iterdir())  # nothing left in the current directory
