"""The shortest path through the product: generate against the emulator, a real MP4."""

from __future__ import annotations

import hashlib
from pathlib import Path

from wanvid.emulator import load_fixture


def test_generate_i2v_saves_the_emulators_video_byte_identical(emulator, wv, images,
                                                              tmp_path: Path) -> None:
    emu = emulator()
    r = wv("generate", str(images["first"]), "-p", "waves", base_url=emu.base_url)
    assert r.code == 0, r.err
    path = tmp_path / "work" / r.out.strip()  # printed relative to the working directory
    assert path.is_file() and r.out.count("\n") == 1
    assert hashlib.sha256(path.read_bytes()).hexdigest() == hashlib.sha256(load_fixture()).hexdigest()
    assert emu.stats()["submits"] == 1
