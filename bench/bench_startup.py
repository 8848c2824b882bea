"""Startup time of `wanvid --version` and `wanvid models --json` against the reference
`python -c "import dashscope"` (the official SDK, installed in a throwaway venv, never a
dependency), measured in the same run. Target: ratio <= 0.20 (medians of >= 5 runs).

    python bench/bench_startup.py [--runs 7] [--sdk-venv /tmp/wanvid-bench-sdk]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def wall(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def sdk_python(venv: Path) -> Path:
    py = venv / "bin" / "python"
    if not py.exists():
        print(f"creating a throwaway venv with the official SDK in {venv} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "dashscope"], check=True)
    return py


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--sdk-venv", default="/tmp/wanvid-bench-sdk")
    args = ap.parse_args()
    wanvid = shutil.which("wanvid") or str(Path(sys.executable).parent / "wanvid")
    ref = [str(sdk_python(Path(args.sdk_venv))), "-c", "import dashscope"]
    cmds = {"wanvid --version": [wanvid, "--version"],
            "wanvid models --json": [wanvid, "models", "--json"]}
    for c in [ref, *cmds.values()]:  # warm-up
        wall(c)
    times: dict[str, list[float]] = {"reference": [], **{k: [] for k in cmds}}
    for _ in range(args.runs):  # alternate so drift hits all alike
        times["reference"].append(wall(ref))
        for k, c in cmds.items():
            times[k].append(wall(c))
    ref_med = statistics.median(times["reference"])
    print(f"reference `python -c 'import dashscope'`: median {ref_med * 1000:.0f} ms "
          f"({args.runs} runs)")
    for k in cmds:
        med = statistics.median(times[k])
        print(f"{k}: median {med * 1000:.0f} ms, ratio {med / ref_med:.3f} (target <= 0.20)")


if __name__ == "__main__":
    main()
