"""README's "Python API" examples, run as written against the emulator."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.e2e.conftest import E2E_KEY
from tests.fixtures_media import png_bytes

README = Path(__file__).resolve().parents[2] / "README.md"


def examples() -> list[str]:
    section = README.read_text(encoding="utf-8").split("## Python API", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def run_python(code: str, cwd: Path, base_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "WANVID_"))}
    env.update(HOME=str(cwd / "home"), DASHSCOPE_API_KEY=E2E_KEY,
               DASHSCOPE_HTTP_BASE_URL=base_url, WANVID_CONFIG_DIR=str(cwd / "config"),
               WANVID_STATE_DIR=str(cwd / "state"), WANVID_POLL_INTERVAL="0.2")
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=120, stdin=subprocess.DEVNULL)


def test_readme_has_the_python_examples() -> None:
    blocks = examples()
    assert len(blocks) == 2
    assert "wanvid.submit(" in blocks[0] and "wanvid.generate(" in blocks[0]


def test_submit_wait_generate_as_in_readme(emulator: Callable[..., Any], tmp_path: Path) -> None:
    emu = emulator()
    (tmp_path / "cat.png").write_bytes(png_bytes(640, 480))
    r = run_python(examples()[0], tmp_path, emu.base_url)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    task_id, status, path = lines[0].split()[:3]
    assert status == "SUCCEEDED"
    assert Path(tmp_path / path).read_bytes()[4:8] == b"ftyp"
    assert Path(tmp_path / path).parent.name == "videos"
    assert lines[1] == "clip.mp4" and (tmp_path / "clip.mp4").stat().st_size > 1000
    # journaled like the CLI's tasks: the CLI's own journal knows both
    from tests.e2e.conftest import WANVID

    env = dict(os.environ, WANVID_STATE_DIR=str(tmp_path / "state"),
               WANVID_CONFIG_DIR=str(tmp_path / "config"), HOME=str(tmp_path / "home"))
    out = subprocess.run([str(WANVID), "tasks", "--json"], env=env, text=True,
                         capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    from tests import envelope_schema

    rows = envelope_schema.data(out.stdout, "tasks")
    assert task_id in {row["task_id"] for row in rows} and len(rows) == 2
    assert emu.stats()["submits"] == 2


def test_errors_carry_the_exit_status(emulator: Callable[..., Any], tmp_path: Path) -> None:
    emu = emulator()
    (tmp_path / "cat.png").write_bytes(png_bytes(640, 480))
    r = run_python(examples()[1], tmp_path, emu.base_url)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("2 ") and "duration" in r.stdout
    assert emu.stats()["submits"] == 0  # nothing was sent
