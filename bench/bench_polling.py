"""Polling figures, against the local emulator, in real time.

1. One task that takes 90 s: `wanvid wait ID --no-download` (default settings) against the
   official SDK's `VideoSynthesis.wait()` on an identical task (its own emulator, run at the
   same time). Target: no more queries than the SDK, completion noticed within 15 s.
2. 200 tasks at once: `wanvid wait` on all of them (default settings). Target: <= 5 task
   queries per second, under 5 % of one core while waiting.

    python bench/bench_polling.py [--task-seconds 90] [--tasks 200] [--sdk-venv DIR]

The SDK lives in a throwaway venv (created on first use, see bench_startup.py); it is
never a dependency of wanvid.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from importlib.resources import files
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_startup import sdk_python  # noqa: E402

from wanvid.emulator import Emulator, EmulatorConfig  # noqa: E402

KEY = "sk-bench-polling"
WANVID = str(Path(sys.executable).parent / "wanvid")


def submit(base: str) -> str:
    img = base64.b64encode(files("wanvid").joinpath("data/demo.jpg").read_bytes()).decode()
    body = json.dumps({"model": "wan2.2-i2v-flash",
                       "input": {"img_url": f"data:image/jpeg;base64,{img}", "prompt": "x"},
                       "parameters": {"resolution": "480P"}}).encode()
    req = urllib.request.Request(base + "/services/aigc/video-generation/video-synthesis",
                                 data=body, method="POST",
                                 headers={"Authorization": f"Bearer {KEY}",
                                          "X-DashScope-Async": "enable",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())["output"]["task_id"]


def env_for(base: str, state: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "WANVID_"))}
    env.update(DASHSCOPE_HTTP_BASE_URL=base, DASHSCOPE_API_KEY=KEY, WANVID_STATE_DIR=state,
               WANVID_CONFIG_DIR=state, CI="true")
    return env


def one_task(seconds: float, sdk_venv: Path) -> None:
    pending = 5.0
    emu_w = Emulator(EmulatorConfig(pending=pending, running=seconds - pending))
    emu_s = Emulator(EmulatorConfig(pending=pending, running=seconds - pending))
    base_w, base_s = emu_w.start(), emu_s.start()
    sdk_py = sdk_python(sdk_venv)
    with tempfile.TemporaryDirectory() as state:
        tid_w, tid_s = submit(base_w), submit(base_s)
        t0 = time.monotonic()
        sdk_code = ("import dashscope, sys\n"
                    f"dashscope.base_http_api_url = {base_s!r}\n"
                    "from dashscope import VideoSynthesis\n"
                    f"r = VideoSynthesis.wait({tid_s!r}, api_key={KEY!r})\n"
                    "print(r.output.task_status)\n")
        sdk = subprocess.Popen([str(sdk_py), "-c", sdk_code], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
        w = subprocess.Popen([WANVID, "wait", tid_w, "--no-download", "-q"],
                             env=env_for(base_w, state), stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
        done: dict[str, float] = {}
        while len(done) < 2:
            for name, p in (("wanvid", w), ("sdk", sdk)):
                if name not in done and p.poll() is not None:
                    done[name] = time.monotonic() - t0
            time.sleep(0.05)
        qw, qs = emu_w.stats.queries, emu_s.stats.queries
    emu_w.stop()
    emu_s.stop()
    print(f"one {seconds:.0f} s task: wanvid {qw} queries, noticed after {done['wanvid']:.1f} s "
          f"({done['wanvid'] - seconds:+.1f} s); SDK wait() {qs} queries, "
          f"{done['sdk']:.1f} s ({done['sdk'] - seconds:+.1f} s)")
    print(f"  queries wanvid/SDK = {qw / max(qs, 1):.2f} (target <= 1.00); "
          f"noticed within {done['wanvid'] - seconds:.1f} s (target <= 15)")


def many_tasks(n: int, seconds: float) -> None:
    emu = Emulator(EmulatorConfig(pending=5.0, running=seconds - 5.0))
    base = emu.start()
    with tempfile.TemporaryDirectory() as state:
        ids = [submit(base) for _ in range(n)]
        q0 = emu.stats.queries
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        p = subprocess.run([WANVID, "wait", *ids, "--no-download", "-q"],
                           env=env_for(base, state), stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
        wall = time.monotonic() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        queries = emu.stats.queries - q0
    emu.stop()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"{n} tasks of {seconds:.0f} s: exit {p.returncode}, {queries} queries in {wall:.1f} s "
          f"= {queries / wall:.2f} queries/s (target <= 5); wanvid CPU {cpu:.2f} s = "
          f"{100 * cpu / wall:.1f} % of one core (target < 5 %, startup included)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task-seconds", type=float, default=90)
    ap.add_argument("--tasks", type=int, default=200)
    ap.add_argument("--many-seconds", type=float, default=60)
    ap.add_argument("--sdk-venv", default="/tmp/wanvid-bench-sdk")
    ap.add_argument("--skip-sdk", action="store_true")
    args = ap.parse_args()
    if not args.skip_sdk:
        one_task(args.task_seconds, Path(args.sdk_venv))
    many_tasks(args.tasks, args.many_seconds)


if __name__ == "__main__":
    main()
