"""Issue 15's kill loop: kill -9 at random (seeded, so reproducible) moments during
`wanvid generate` and `wanvid batch` against an emulator whose submits answer late (the task
exists before the client hears of it), each kill followed by `wait --pending` (generate) or
the batch run again. At the end no task the emulator created is lost (each is journaled and
its video saved, byte-identical to what the emulator served), and no job has two tasks.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from tests.e2e.conftest import WANVID
from wanvid.emulator import load_fixture

SEED = 15
KILLS = 20
MAX_ROUNDS = 40
SETTLE = "1.5"  # s: a submit's request reaches the local emulator well within this


def _admin(emu: Any, route: str, method: str = "GET") -> dict[str, Any]:
    req = urllib.request.Request(emu.root + "/_emulator/" + route, method=method,
                                 data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=10) as r:
        return dict(json.loads(r.read()))


def _open_intents(journal: Path) -> int:
    if not journal.exists():
        return 0
    with sqlite3.connect(journal) as db:
        try:
            return int(db.execute("SELECT COUNT(*) FROM intents WHERE state = 'open'")
                       .fetchone()[0])
        except sqlite3.OperationalError:  # killed before the journal had its tables
            return 0


def test_kill_loop_loses_no_task_and_pays_for_no_job_twice(emulator, wv, wv_env,
                                                           images, tmp_path: Path) -> None:
    emu = emulator(pending=0.2, running=0.3)
    rng = random.Random(SEED)
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    env = {**wv_env, "DASHSCOPE_HTTP_BASE_URL": emu.base_url, "WANVID_INTENT_SETTLE": SETTLE}
    journal = Path(wv_env["WANVID_STATE_DIR"]) / "journal.db"
    img = str(images["first"])
    kills = in_post = rounds = 0
    started = time.monotonic()
    while kills < KILLS and rounds < MAX_ROUNDS:
        rounds += 1
        latency = round(rng.uniform(0.3, 1.0), 2)
        _admin(emu, f"config?submit_latency={latency}", "POST")
        if rng.random() < 0.5:
            cmd = ["generate", img, "-p", f"g{rounds}", "-o", f"g{rounds}.mp4", "-q"]
            again = ["wait", "--pending"]
        else:
            jobs = work / f"b{rounds}.jsonl"
            jobs.write_text("".join(json.dumps({"image": img, "prompt": f"b{rounds}-{i}",
                                                "output": f"b{rounds}-{i}.mp4"}) + "\n"
                                    for i in range(3)))
            cmd = ["batch", jobs.name, "-j", "2", "-q"]
            again = cmd
        proc = subprocess.Popen([str(WANVID), *cmd], env=env, cwd=work,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=rng.uniform(0.2, 2.2))  # finished before its kill: no kill
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += 1
            in_post += _open_intents(journal) > 0
        r = wv(*again, base_url=emu.base_url, env={"WANVID_INTENT_SETTLE": SETTLE})
        assert r.code == 0, (cmd, r.err)
        assert _open_intents(journal) == 0, r.err
    r = wv("wait", "--pending", base_url=emu.base_url)
    assert r.code == 0, r.err
    elapsed = time.monotonic() - started

    created = _admin(emu, "tasks")["tasks"]
    served = bytes(load_fixture())
    with sqlite3.connect(journal) as db:
        rows = {tid: (path, done) for tid, path, done in db.execute(
            "SELECT task_id, path, downloaded_at FROM tasks")}
    lost = [t["task_id"] for t in created
            if t["task_id"] not in rows or rows[t["task_id"]][1] is None
            or Path(rows[t["task_id"]][0]).read_bytes() != served]
    per_job = Counter(t["prompt"] for t in created)
    duplicates = sum(n - 1 for n in per_job.values())
    batch_jobs = {f"b{n}-{i}" for n in range(1, rounds + 1) if (work / f"b{n}.jsonl").exists()
                  for i in range(3)}
    print(f"\nkill loop: {kills} kills in {rounds} rounds ({in_post} left a submit intent "
          f"open), {len(created)} tasks, {len(lost)} lost, {duplicates} duplicates, "
          f"{elapsed:.1f} s")
    assert kills >= KILLS
    assert lost == []
    assert duplicates == 0, [p for p, n in per_job.items() if n > 1]
    assert all(per_job[j] == 1 for j in batch_jobs)  # every batch job done, once
    assert in_post > 0  # the loop really hit the window the issue is about
