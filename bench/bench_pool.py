"""Downloads beside the polling loop: eight finished tasks' videos, the emulator's storage
capped at 2 MiB/s per connection (``--storage-rate-mb 2``), against the same eight
downloads one after another, in the same run.

* figure: ``wanvid wait ID1..ID8 -o DIR`` (default settings: 4 downloads at once);
* reference: the same command with ``--downloads 1``: the same queries, the same eight
  downloads, one after another (what the polling loop did before the pool);
* both minus their fixed cost, ``wanvid wait ID1 --no-download`` (startup, journal, one
  query). Best of N runs of each, alternated (noise only ever adds time to a transfer).

Target: figure / reference <= 0.35. Every run starts from an empty journal and output
directory, so each really downloads all eight videos (checked: eight files, all the same
size as the served video).

    python bench/bench_pool.py [--runs 5] [--video-mb 4] [--rate-mb 2] [--tasks 8]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_polling import WANVID, env_for, submit  # noqa: E402

from wanvid.emulator import Emulator, EmulatorConfig  # noqa: E402

TARGET = 0.35


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])}... exited {p.returncode}: {p.stderr[-500:]}")
    return wall


def run_wait(ids: list[str], base: str, extra: list[str], size: int) -> float:
    state = tempfile.mkdtemp(prefix="wanvid-bench-pool-")
    out = Path(state) / "videos"
    try:
        wall = timed([WANVID, "wait", *ids, "-o", f"{out}/", "-q", "--no-sidecar", *extra],
                     env_for(base, state))
        got = sorted(p.stat().st_size for p in out.glob("*.mp4"))
        if got != [size] * len(ids):
            raise SystemExit(f"expected {len(ids)} videos of {size} bytes, got {got}")
        return wall
    finally:
        shutil.rmtree(state, ignore_errors=True)


def fixed_cost(tid: str, base: str) -> float:
    state = tempfile.mkdtemp(prefix="wanvid-bench-pool-")
    try:
        return timed([WANVID, "wait", tid, "--no-download", "-q"], env_for(base, state))
    finally:
        shutil.rmtree(state, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tasks", type=int, default=8)
    ap.add_argument("--video-mb", type=float, default=4.0)
    ap.add_argument("--rate-mb", type=float, default=2.0)
    args = ap.parse_args()
    emu = Emulator(EmulatorConfig(pending=0.0, running=0.0, video_mb=args.video_mb,
                                  storage_rate_mb=args.rate_mb))
    base = emu.start()
    try:
        ids = [submit(base) for _ in range(args.tasks)]  # finished at once
        size = len(emu.storage.video_bytes())
        fixed_cost(ids[0], base)  # warm-up (byte-compiles)
        best = {"pool": float("inf"), "one at a time": float("inf"), "fixed": float("inf")}
        for _ in range(args.runs):  # alternated, so drift hits both alike
            best["fixed"] = min(best["fixed"], fixed_cost(ids[0], base))
            best["pool"] = min(best["pool"], run_wait(ids, base, [], size))
            best["one at a time"] = min(best["one at a time"],
                                        run_wait(ids, base, ["--downloads", "1"], size))
    finally:
        emu.stop()
    fixed = best["fixed"]
    pool, seq = best["pool"] - fixed, best["one at a time"] - fixed
    ideal = args.tasks * args.video_mb / args.rate_mb
    print(f"{args.tasks} finished tasks, {args.video_mb:g} MiB videos, storage capped at "
          f"{args.rate_mb:g} MiB/s per connection (one video alone: "
          f"{args.video_mb / args.rate_mb:.1f} s); best of {args.runs}")
    print(f"  fixed cost (wait ID --no-download): {fixed:.2f} s")
    print(f"  one after another (--downloads 1): {best['one at a time']:.2f} s, minus fixed "
          f"{seq:.2f} s (the transfers alone: {ideal:.1f} s)")
    print(f"  default pool (4 at once): {best['pool']:.2f} s, minus fixed {pool:.2f} s")
    print(f"  ratio pool / one after another = {pool / seq:.3f} (target <= {TARGET})")


if __name__ == "__main__":
    main()
