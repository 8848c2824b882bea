"""One machine, one account: sixteen ``wanvid generate`` processes started at once against
an emulator that enforces 2 concurrent tasks per model (``--max-concurrent 2``: a submit
over it is 429 Throttling and creates nothing).

The processes share the journal (one ``WANVID_STATE_DIR``), so they share the account's
limits through it (``wanvid.leases``): each waits for a free slot of the model before it
submits. Figures: throttled submits the emulator saw (target 0), videos saved (target 16),
and the wall time against the ideal, 8 rounds of one task's time (target <= 1.2 x).

The model's limit is written in a user ``models.toml`` as well (``concurrent_tasks`` =
the emulator's), so the figure does not hang on the shipped catalogue's value (2 today).

With ``--batch N``, a ``wanvid batch`` of N jobs runs beside the processes (mixed case:
the batch takes the same slots), started first; the generates follow once it has submitted
(a batch's start resolves open submit intents, and would mistake a generate's POST in
flight for an interrupted one). Same figures, over procs + N videos.

    python bench/bench_limits.py [--procs 16] [--task-seconds 20] [--batch 8]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from importlib.resources import files
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_polling import WANVID, env_for  # noqa: E402

from wanvid.emulator import Emulator, EmulatorConfig  # noqa: E402

MODELS_TOML = """\
[[model]]
name = "wan2.2-i2v-flash"
concurrent_tasks = 2
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--procs", type=int, default=16)
    ap.add_argument("--task-seconds", type=float, default=20.0)
    ap.add_argument("--concurrent", type=int, default=2)
    ap.add_argument("--batch", type=int, default=0, help="jobs of a batch run beside them")
    args = ap.parse_args()
    pending = 2.0
    emu = Emulator(EmulatorConfig(pending=pending, running=args.task_seconds - pending,
                                  max_concurrent=args.concurrent))
    base = emu.start()
    state = tempfile.mkdtemp(prefix="wanvid-bench-limits-")
    try:
        (Path(state) / "models.toml").write_text(
            MODELS_TOML.replace("= 2", f"= {args.concurrent}"), encoding="utf-8")
        env = env_for(base, state)
        out = Path(state) / "videos"
        image = str(files("wanvid").joinpath("data/demo.jpg"))
        t0 = time.monotonic()
        batch = None
        if args.batch:
            jobs = "".join(json.dumps({"image": image, "prompt": f"batch {i}",
                                       "model": "wan2.2-i2v-flash", "resolution": "480P",
                                       "output": f"{out}/b{i}.mp4"}) + "\n"
                           for i in range(args.batch))
            batch = subprocess.Popen([WANVID, "batch", "-", "-q", "--no-sidecar"], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
            assert batch.stdin is not None
            batch.stdin.write(jobs)
            batch.stdin.close()
            batch.stdin = None
            while emu.stats.submits < 1 and batch.poll() is None:
                time.sleep(0.05)
        procs = [subprocess.Popen([WANVID, "generate", image, "-p", f"job {i}", "-m",
                                   "wan2.2-i2v-flash", "-r", "480P", "-o",
                                   f"{out}/{i}.mp4", "-q", "--no-sidecar"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True) for i in range(args.procs)]
        errs = [p.communicate()[1] for p in procs]
        if batch is not None:
            errs.append(batch.communicate()[1])
            procs.append(batch)
        wall = time.monotonic() - t0
        codes = [p.returncode for p in procs]
        saved = len(list(out.glob("*.mp4")))
        stats = emu.stats
    finally:
        emu.stop()
        shutil.rmtree(state, ignore_errors=True)
    videos = args.procs + args.batch
    rounds = -(-videos // args.concurrent)
    ideal = rounds * args.task_seconds
    print(f"{args.procs} processes running `wanvid generate`"
          + (f" beside a `wanvid batch` of {args.batch} jobs" if args.batch else "")
          + ", emulator enforcing "
          f"{args.concurrent} concurrent tasks, {args.task_seconds:g} s tasks")
    print(f"  exit codes: {sorted(set(codes))}; videos saved: {saved} (target {videos})")
    print(f"  throttled submits seen by the emulator: {stats.concurrent_throttled} "
          f"(429s in all: {stats.throttled}; target 0); submits {stats.submits}; "
          f"most tasks at once {stats.max_in_flight}")
    print(f"  wall {wall:.1f} s; ideal {rounds} rounds x {args.task_seconds:g} s = {ideal:g} s; "
          f"ratio {wall / ideal:.2f} (target <= 1.20)")
    bad = [e for c, e in zip(codes, errs, strict=True) if c]
    if bad:
        print("  first failure:", bad[0].strip()[-300:])


if __name__ == "__main__":
    main()
