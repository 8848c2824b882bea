#!/usr/bin/env python3
"""The real CLI against hostile servers on loopback (the stand-ins of ``tests/standin.py``):

* ``trickle-status``: ``wanvid wait t-1 --timeout T`` while the status answer comes one byte
  every ``--every`` seconds (the issue's case: 10 s, --timeout 15);
* ``trickle-video``: the same wait, the status SUCCEEDED and the video trickling;
* ``endless-json``: ``wanvid status t-1`` against a chunked answer that never ends;
* ``endless-video``: ``wanvid download URL`` of a video without Content-Length that never
  ends (``WANVID_MAX_DOWNLOAD_MB`` set to ``--cap`` MiB, so the disk is spared).

Prints, per case, the median over ``--runs`` of the time past --timeout (target: ≤ 5 s) and
of the peak RSS (VmHWM, target ≤ 60 MB), and the exit codes.

    python bench/bench_hostile.py                  # 10 s per byte, --timeout 15, 5 runs
    python bench/bench_hostile.py --every 2 --timeout 4 --runs 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import standin  # noqa: E402

WANVID = str(Path(sys.executable).parent / "wanvid")
KEY = "sk-bench-0123456789abcdef"


def case(name: str, every: float, timeout: float, cap: int) -> standin.Measured:
    holder: dict[str, str] = {}
    if name == "trickle-status":
        answer = standin.trickle(b'{"output": {"task_id": "t-1", "task_status": "RUNNING"}}',
                                 every)
    elif name == "trickle-video":
        answer = standin.routes({
            "/api/v1/tasks/": lambda req: standin.json_answer(
                standin.succeeded(holder["url"] + "/t-1.mp4"))(req),
            "/t-1.mp4": standin.trickle(standin.MP4_HEAD + bytes(10_000), every,
                                        content_type="video/mp4"),
        })
    elif name == "endless-json":
        answer = standin.endless_chunked_json()
    else:
        answer = standin.endless_video()
    with tempfile.TemporaryDirectory() as d, standin.StandIn(answer) as srv:
        holder["url"] = srv.url
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("WANVID_",
                                                                          "DASHSCOPE_"))},
               "HOME": d, "WANVID_CONFIG_DIR": f"{d}/c", "WANVID_STATE_DIR": f"{d}/s",
               "DASHSCOPE_API_KEY": KEY, "DASHSCOPE_HTTP_BASE_URL": srv.url + "/api/v1",
               "WANVID_MAX_DOWNLOAD_MB": str(cap)}
        if name.startswith("trickle"):
            args = ["wait", "t-1", "--timeout", f"{timeout:g}", "-o", "v.mp4", "-q"]
        elif name == "endless-json":
            args = ["status", "t-1"]
        else:
            args = ["download", srv.url + "/t-1.mp4", "-o", "v.mp4", "-q"]
        return standin.run_measured([WANVID, *args], env=env, cwd=d, limit=timeout + 120)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--every", type=float, default=10.0, help="seconds per trickled byte")
    ap.add_argument("--timeout", type=float, default=15.0, help="--timeout of the waits")
    ap.add_argument("--cap", type=int, default=64, help="max_download_mb for endless-video")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--cases", default="trickle-status,trickle-video,endless-json,endless-video")
    a = ap.parse_args()
    ok = True
    for name in a.cases.split(","):
        ms = [case(name, a.every, a.timeout, a.cap) for _ in range(a.runs)]
        secs = statistics.median(m.seconds for m in ms)
        rss = statistics.median(m.rss_mb for m in ms)
        codes = sorted({m.code for m in ms})
        line = f"{name:15} exit {codes}  rss {rss:5.1f} MB (max {max(m.rss_mb for m in ms):.1f})"
        if name.startswith("trickle"):
            over = secs - a.timeout
            line += f"  wall {secs:.1f} s = --timeout {a.timeout:g} + {over:.1f} s (target ≤ 5)"
            ok &= over <= 5
        else:
            line += f"  wall {secs:.1f} s"
        ok &= max(m.rss_mb for m in ms) <= 60
        print(line)
        print(f"{'':15} {ms[-1].err.strip().splitlines()[-1] if ms[-1].err.strip() else ''}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
