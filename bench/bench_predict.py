"""Predictive polling against the official SDK's ``VideoSynthesis.wait()``, in real time,
measured in the same run.

Each round runs three identical 60 s tasks (PENDING 5 s, RUNNING 55 s), each on its own
local emulator, side by side:

* ``history``: ``wanvid submit`` then ``wanvid wait ID --no-download``, with five earlier
  tasks of the same model, resolution and duration in the journal, 54-66 s each (60 s
  +-10 %, seeded random); they are written to the journal directly (their service times,
  as a wait records them), which saves the five minutes of running them first;
* ``no history``: the same with an empty journal;
* ``SDK``: ``VideoSynthesis.wait(task_id)`` (the SDK in its throwaway venv).

"Noticed" is the moment the waiting process exited minus the moment the emulator's task
ended; queries are the task queries each emulator answered. The rounds run in parallel
(so five rounds take about 70 s, not five minutes); medians of the rounds are printed.

Targets: history: noticed <= 2 s (median), queries <= 0.5 x the SDK's; no history:
queries <= the SDK's, noticed <= 15 s.

    python bench/bench_predict.py [--rounds 5] [--sdk-venv /tmp/wanvid-bench-sdk]
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from importlib.resources import files
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_polling import KEY, WANVID, env_for, submit  # noqa: E402
from bench_startup import sdk_python  # noqa: E402

from wanvid.emulator import Emulator, EmulatorConfig  # noqa: E402
from wanvid.journal import Journal  # noqa: E402

PENDING, RUNNING = 5.0, 55.0


def task_end(emu: Emulator, tid: str) -> float:
    """When the task ends, on this process's monotonic clock (the emulator's)."""
    return emu._tasks[tid].created + PENDING + RUNNING


def seed_history(state: str, tid: str, rng: random.Random) -> list[float]:
    """Five earlier tasks like ``tid`` (its model, resolution, duration), 54-66 s each."""
    j = Journal(Path(state) / "journal.db")
    rec = j.get(tid)
    assert rec is not None
    model, res, dur = rec.model, rec.params["resolution"], rec.params["duration"]
    totals = [rng.uniform(54.0, 66.0) for _ in range(5)]
    base = time.time() - 3600
    for i, total in enumerate(totals):
        t0 = base + 120 * i
        queued = rng.uniform(4.0, 6.0)
        j.record_submit(f"earlier-{i}", model=model, base_url="http://earlier",
                        params={"resolution": res, "duration": dur}, inputs=["a.png"],
                        status="SUCCEEDED")
        j.record_times(f"earlier-{i}", model=model, resolution=res, duration=dur,
                       submitted=t0, scheduled=t0 + queued, ended=t0 + total)
    j.close()
    return totals


def run_wanvid(emu: Emulator, base: str, history: bool, rng: random.Random,
               out: dict[str, float]) -> None:
    image = str(files("wanvid").joinpath("data/demo.jpg"))
    with tempfile.TemporaryDirectory() as state:
        env = env_for(base, state)
        p = subprocess.run([WANVID, "submit", image, "-p", "x", "-m", "wan2.2-i2v-flash",
                            "-r", "480P", "-q"], env=env, capture_output=True, text=True,
                           check=True)
        tid = p.stdout.strip()
        if history:
            seed_history(state, tid, rng)
        q0 = emu.stats.queries
        subprocess.run([WANVID, "wait", tid, "--no-download", "-q"], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        out["noticed"] = time.monotonic() - task_end(emu, tid)
        out["queries"] = emu.stats.queries - q0


def run_sdk(emu: Emulator, base: str, sdk_py: Path, out: dict[str, float]) -> None:
    tid = submit(base)
    code = ("import dashscope\n"
            f"dashscope.base_http_api_url = {base!r}\n"
            "from dashscope import VideoSynthesis\n"
            f"r = VideoSynthesis.wait({tid!r}, api_key={KEY!r})\n"
            "assert r.output.task_status == 'SUCCEEDED', r\n")
    subprocess.run([str(sdk_py), "-c", code], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True)
    out["noticed"] = time.monotonic() - task_end(emu, tid)
    out["queries"] = emu.stats.queries


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--sdk-venv", default="/tmp/wanvid-bench-sdk")
    ap.add_argument("--seed", type=int, default=19)
    args = ap.parse_args()
    sdk_py = sdk_python(Path(args.sdk_venv))
    rng = random.Random(args.seed)
    emus: list[Emulator] = []
    results: list[dict[str, dict[str, float]]] = []
    threads: list[threading.Thread] = []
    for _ in range(args.rounds):
        r: dict[str, dict[str, float]] = {"history": {}, "no history": {}, "SDK": {}}
        results.append(r)
        for name in r:
            emu = Emulator(EmulatorConfig(pending=PENDING, running=RUNNING))
            base = emu.start()
            emus.append(emu)
            if name == "SDK":
                t = threading.Thread(target=run_sdk, args=(emu, base, sdk_py, r[name]))
            else:
                t = threading.Thread(target=run_wanvid, args=(
                    emu, base, name == "history", random.Random(rng.random()), r[name]))
            threads.append(t)
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for emu in emus:
        emu.stop()
    if any(len(v) < 2 for r in results for v in r.values()):
        raise SystemExit(f"a run failed: {results}")
    print(f"one 60 s task (PENDING {PENDING:g} s + RUNNING {RUNNING:g} s), "
          f"{args.rounds} rounds side by side")
    med: dict[str, dict[str, float]] = {}
    for name in ("history", "no history", "SDK"):
        n = [r[name]["noticed"] for r in results]
        q = [r[name]["queries"] for r in results]
        med[name] = {"noticed": statistics.median(n), "queries": statistics.median(q)}
        print(f"  {name:<10} noticed after {', '.join(f'{x:+.1f}' for x in n)} s "
              f"(median {med[name]['noticed']:+.1f}); queries {', '.join(f'{x:g}' for x in q)}"
              f" (median {med[name]['queries']:g})")
    sdk_q = med["SDK"]["queries"]
    h, nh = med["history"], med["no history"]
    print(f"  history:    queries / SDK = {h['queries'] / sdk_q:.2f} (target <= 0.50); "
          f"noticed {h['noticed']:.1f} s after the end (target <= 2)")
    print(f"  no history: queries / SDK = {nh['queries'] / sdk_q:.2f} (target <= 1.00); "
          f"noticed {nh['noticed']:.1f} s after the end (target <= 15)")


if __name__ == "__main__":
    main()
