"""Issue 15's kill loop: kill -9 at random (seeded, so reproducible) moments during
`wanvid generate` and `wanvid batch` against an emulator whose submits answer late (the task
exists before the client hears of it), each kill followed by `wait --pending` (generate) or
the batch run again. At the end no task the emulator created is lost (each is journaled and
its video saved, byte-identical to what the emulator served), and no job has two tasks.

Two lanes run side by side, each with its own emulator (its own account: another client's
tasks on one account are outside what wanvid promises), journal and directory: most of a
round is waiting (the submit's latency, the intent's settle time, the task), so the kills
come twice as fast without changing what each lane sees.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.conftest import WANVID
from wanvid.emulator import load_fixture, task_video

SEED = 15
LANES = 2
KILLS = 10  # per lane
MAX_ROUNDS = 40  # per lane: on an idle machine more commands end before their kill
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


@dataclass
class Lane:
    name: str
    work: Path
    env: dict[str, str]
    kills: int = 0
    in_post: int = 0  # kills that left a submit intent open
    rounds: int = 0
    batch_jobs: int = 0
    failure: str | None = None

    @property
    def journal(self) -> Path:
        return Path(self.env["WANVID_STATE_DIR"]) / "journal.db"

    def wanvid(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(WANVID), *args], env=self.env, cwd=self.work, text=True,
                              capture_output=True, stdin=subprocess.DEVNULL, timeout=120)

    def run(self, rng: random.Random, img: str) -> None:
        while self.kills < KILLS and self.rounds < MAX_ROUNDS:
            self.rounds += 1
            job = f"{self.name}{self.rounds}"
            if rng.random() < 0.5:
                cmd = ["generate", img, "-p", job, "-o", f"{job}.mp4", "-q"]
                again = ["wait", "--pending"]
            else:
                jobs = self.work / f"{job}.jsonl"
                jobs.write_text("".join(json.dumps({"image": img, "prompt": f"{job}-{i}",
                                                    "output": f"{job}-{i}.mp4"}) + "\n"
                                        for i in range(3)))
                self.batch_jobs += 3
                cmd = ["batch", jobs.name, "-j", "3", "-q"]
                again = cmd
            proc = subprocess.Popen([str(WANVID), *cmd], env=self.env, cwd=self.work,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            try:
                proc.wait(timeout=rng.uniform(0.2, 1.6))  # finished before its kill
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                self.kills += 1
                self.in_post += _open_intents(self.journal) > 0
            r = self.wanvid(*again)
            if r.returncode != 0 or _open_intents(self.journal):
                self.failure = f"{cmd} then {again}: exit {r.returncode}: {r.stderr}"
                return

    def saved(self) -> dict[str, bytes | None]:
        """Every journaled task: its saved video's bytes (None: not downloaded)."""
        with sqlite3.connect(self.journal) as db:
            rows = list(db.execute("SELECT task_id, path, downloaded_at FROM tasks"))
        out: dict[str, bytes | None] = {}
        for tid, path, done in rows:
            p = self.work / path  # the journal's path: absolute, or relative to work
            out[tid] = p.read_bytes() if done is not None and p.is_file() else None
        return out


def test_kill_loop_loses_no_task_and_pays_for_no_job_twice(emulator, wv_env, images,
                                                           tmp_path: Path) -> None:
    rng = random.Random(SEED)
    emus, lanes = [], []
    for n in range(LANES):
        emu = emulator(pending=0.1, running=0.2)
        _admin(emu, f"config?submit_latency={round(rng.uniform(0.3, 0.8), 2)}", "POST")
        work, state = tmp_path / f"work{n}", tmp_path / f"state{n}"
        work.mkdir()
        emus.append(emu)
        lanes.append(Lane(chr(ord("a") + n), work,
                          {**wv_env, "DASHSCOPE_HTTP_BASE_URL": emu.base_url,
                           "WANVID_STATE_DIR": str(state), "WANVID_INTENT_SETTLE": SETTLE}))
    started = time.monotonic()
    threads = [threading.Thread(target=lane.run, args=(random.Random(SEED + i),
                                                       str(images["first"])))
               for i, lane in enumerate(lanes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for lane in lanes:
        assert lane.failure is None, lane.failure
        r = lane.wanvid("wait", "--pending")
        assert r.returncode == 0, r.stderr
    elapsed = time.monotonic() - started

    created = [t for emu in emus for t in _admin(emu, "tasks")["tasks"]]
    fixture = bytes(load_fixture())
    saved: dict[str, bytes | None] = {}
    for lane in lanes:
        saved.update(lane.saved())
    lost = [t["task_id"] for t in created if saved.get(t["task_id"]) != task_video(fixture, t["task_id"])]
    per_job = Counter(t["prompt"] for t in created)
    duplicates = sum(n - 1 for n in per_job.values())
    kills = sum(lane.kills for lane in lanes)
    in_post = sum(lane.in_post for lane in lanes)
    rounds = sum(lane.rounds for lane in lanes)
    print(f"\nkill loop: {kills} kills in {rounds} rounds ({in_post} left a submit intent "
          f"open), {len(created)} tasks, {len(lost)} lost, {duplicates} duplicates, "
          f"{elapsed:.1f} s")
    assert kills >= LANES * KILLS
    assert lost == []
    assert duplicates == 0, [p for p, n in per_job.items() if n > 1]
    batch_done = sum(1 for p in per_job if "-" in p)
    assert batch_done == sum(lane.batch_jobs for lane in lanes)  # every batch job, once
    assert in_post > 0  # the loop really hit the window the issue is about
