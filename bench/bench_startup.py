"""Startup time of wanvid commands against the reference `python -c "import dashscope"`
(the official SDK, installed in a throwaway venv, never a dependency), measured in the same
run, medians of >= 5 runs, alternated:

* `wanvid --version`, `wanvid models --json`: target ratio <= 0.20;
* the fixed cost of `wanvid status ID`, `wanvid tasks --json` and `wanvid submit URL
  --dry-run`: target <= 0.25 each. `status` asks a local in-process emulator (one loopback
  request, included in the figure); the journal lives in a temporary directory.

The children run without PYTHONDONTWRITEBYTECODE, so wanvid's modules are byte-compiled
(by the warm-up run) as an installed wheel's are; the SDK's venv was compiled by pip.

    python bench/bench_startup.py [--runs 7] [--sdk-venv /tmp/wanvid-bench-sdk]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {"wanvid --version": 0.20, "wanvid models --json": 0.20}


def wall(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                   env=env)
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
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_polling import env_for, submit

    from wanvid.emulator import Emulator, EmulatorConfig

    emu = Emulator(EmulatorConfig(pending=0.0, running=0.0))
    base = emu.start()
    state = tempfile.mkdtemp(prefix="wanvid-bench-startup-")
    env = env_for(base, state)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    tid = submit(base)
    url = "https://example.com/cat.png"
    cmds = {"wanvid --version": [wanvid, "--version"],
            "wanvid models --json": [wanvid, "models", "--json"],
            "wanvid status ID": [wanvid, "status", tid],
            "wanvid tasks --json": [wanvid, "tasks", "--json"],
            "wanvid submit URL --dry-run": [wanvid, "submit", url, "-p", "x", "--dry-run"]}
    for c in [ref, *cmds.values()]:  # warm-up
        wall(c, env)
    times: dict[str, list[float]] = {"reference": [], **{k: [] for k in cmds}}
    for _ in range(args.runs):  # alternate so drift hits all alike
        times["reference"].append(wall(ref, env))
        for k, c in cmds.items():
            times[k].append(wall(c, env))
    emu.stop()
    shutil.rmtree(state, ignore_errors=True)
    ref_med = statistics.median(times["reference"])
    print(f"reference `python -c 'import dashscope'`: median {ref_med * 1000:.0f} ms "
          f"({args.runs} runs)")
    for k in cmds:
        med = statistics.median(times[k])
        print(f"{k}: median {med * 1000:.0f} ms, ratio {med / ref_med:.3f} "
              f"(target <= {TARGETS.get(k, 0.25):.2f})")


if __name__ == "__main__":
    main()
