"""A batch and generate processes sharing one journal share the account's limits
(wanvid.leases): against an emulator enforcing 2 concurrent tasks, no submit is throttled
and every video is saved; a killed generate's task keeps its slot while it runs."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from tests.e2e.conftest import WANVID

MODELS_TOML = '[[model]]\nname = "wan2.2-i2v-flash"\nconcurrent_tasks = 2\n'


def test_a_batch_beside_generates_is_never_throttled(emulator, wv_env, tmp_path: Path,
                                                     images) -> None:
    emu = emulator(max_concurrent=2, pending=0.3, running=1.2)
    config = Path(wv_env["WANVID_CONFIG_DIR"])
    config.mkdir(parents=True, exist_ok=True)
    (config / "models.toml").write_text(MODELS_TOML, encoding="utf-8")
    env = dict(wv_env, DASHSCOPE_HTTP_BASE_URL=emu.base_url)
    out = tmp_path / "videos"
    jobs = "".join(json.dumps({"image": str(images["first"]), "prompt": f"batch {i}",
                               "model": "wan2.2-i2v-flash",
                               "output": str(out / f"b{i}.mp4")}) + "\n" for i in range(4))

    def start(*args: str, stdin: int | None = subprocess.DEVNULL) -> subprocess.Popen[str]:
        return subprocess.Popen([str(WANVID), *args, "-q", "--no-sidecar"], env=env,
                                cwd=tmp_path, text=True, stdin=stdin,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    batch = start("batch", "-", stdin=subprocess.PIPE)
    assert batch.stdin is not None
    batch.stdin.write(jobs)
    batch.stdin.close()
    # The generates start once the batch has planned (a batch resolves the journal's open
    # submit intents first, and would take a generate's POST in flight for an interrupted
    # one: left alone, see the report of issue 19).
    deadline = time.monotonic() + 60
    while emu.stats()["submits"] < 1:
        assert time.monotonic() < deadline and batch.poll() is None, batch.stderr
        time.sleep(0.05)
    gens = [start("generate", str(images["first"]), "-p", f"gen {i}", "-m",
                  "wan2.2-i2v-flash", "-o", str(out / f"g{i}.mp4")) for i in range(3)]
    batch.stdin = None  # written and closed above
    b_out, b_err = batch.communicate(timeout=120)
    results = [g.communicate(timeout=120) for g in gens]
    assert batch.returncode == 0, b_err
    assert all(g.returncode == 0 for g in gens), [e for _, e in results]
    assert sorted(p.name for p in out.glob("*.mp4")) == sorted(
        [f"b{i}.mp4" for i in range(4)] + [f"g{i}.mp4" for i in range(3)])
    stats = emu.stats()
    assert stats["submits"] == 7
    assert stats["concurrent_throttled"] == 0 and stats["throttled"] == 0
    assert stats["max_in_flight"] <= 2


def test_a_killed_generates_task_keeps_its_slot(emulator, wv_env, tmp_path: Path,
                                                images) -> None:
    """`generate` killed -9 once its task is created: the task runs on at the service
    (one slot: --max-concurrent 1). The next generate used to see the holder gone and
    submit at once, to be throttled until the task ended; it waits for the orphaned
    slot, asks the service about that task itself, and submits once it has ended."""
    import os
    import signal
    import sqlite3

    emu = emulator(max_concurrent=1, pending=0.3, running=3)
    config = Path(wv_env["WANVID_CONFIG_DIR"])
    config.mkdir(parents=True, exist_ok=True)
    (config / "models.toml").write_text(MODELS_TOML.replace("= 2", "= 1"), encoding="utf-8")
    env = dict(wv_env, DASHSCOPE_HTTP_BASE_URL=emu.base_url)
    out = tmp_path / "videos"
    journal = Path(wv_env["WANVID_STATE_DIR"]) / "journal.db"

    def start(name: str) -> subprocess.Popen[str]:
        return subprocess.Popen([str(WANVID), "generate", str(images["first"]), "-p", name,
                                 "-m", "wan2.2-i2v-flash", "-o", str(out / f"{name}.mp4"),
                                 "--no-sidecar"], env=env, cwd=tmp_path, text=True,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)

    def journaled() -> int:
        if not journal.exists():
            return 0
        db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=10)
        try:
            return int(db.execute("SELECT COUNT(*) FROM tasks").fetchone()[0])
        except sqlite3.OperationalError:  # no tables yet
            return 0
        finally:
            db.close()

    first = start("killed")
    deadline = time.monotonic() + 60
    while journaled() < 1:  # its task is created, and journaled: killed while it runs
        assert time.monotonic() < deadline and first.poll() is None, first.communicate()
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGKILL)
    first.communicate(timeout=30)
    second = start("next")
    _, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert (out / "next.mp4").exists()
    stats = emu.stats()
    assert stats["concurrent_throttled"] == 0 and stats["throttled"] == 0, err
    assert stats["submits"] == 2 and stats["max_in_flight"] <= 1
    assert "left by a wanvid process that exited" in err


def test_readmes_submit_loop_on_a_two_task_model_loses_no_job(emulator, wv_env,
                                                               tmp_path: Path) -> None:
    """README's bash-loop recipe, three images, the emulator enforcing the catalogue's 2
    concurrent tasks of the default model (wan2.2-i2v-flash) with tasks that outlast the
    submits (review F13): each `submit` gave its slot back as soon as its POST was
    answered, so the third was throttled, ended in exit 7 after its retries and c.png was
    silently never made (the pipeline's status is wait's). Its task now keeps the slot:
    the third submit waits until one of the two is seen to end."""
    import os
    import sys

    from tests.e2e.test_readme_recipes import recipes
    from tests.fixtures_media import png_bytes

    emu = emulator(max_concurrent=2, pending=0.3, running=3)
    d = tmp_path / "loop"
    d.mkdir()
    for i, stem in enumerate("abc"):
        (d / f"{stem}.png").write_bytes(png_bytes(640 + 8 * i, 480))
    env = dict(wv_env, DASHSCOPE_HTTP_BASE_URL=emu.base_url,
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    body = recipes()["bash-loop"][1]
    p = subprocess.run(["bash", "-o", "pipefail", "-c", body], cwd=d, env=env, text=True,
                       capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    assert sorted(p.stdout.splitlines()) == ["a.mp4", "b.mp4", "c.mp4"]
    assert all((d / f"{s}.mp4").stat().st_size > 0 for s in "abc")
    stats = emu.stats()
    assert stats["concurrent_throttled"] == 0 and stats["throttled"] == 0, p.stderr
    assert stats["submits"] == 3 and stats["max_in_flight"] <= 2
    assert "waiting for one to end (nothing sent yet)" in p.stderr
