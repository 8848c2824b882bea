"""`wanvid gallery` over 500 videos (TARGETS.md: ≤ 2 s).

Builds a directory of 500 videos with sidecars and thumbnails (hard links to the emulator's
sample video, so the fixture costs no disk), then times, median of --runs (default 5):
the whole command (`wanvid gallery DIR`, a fresh process, start-up included) and the
library call alone (`wanvid.gallery.write`). Prints both; exit 1 when the command's median
is over the target.

    .venv/bin/python bench/bench_gallery.py [--videos 500] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.gallery_fixtures import make_videos  # noqa: E402
from wanvid import gallery  # noqa: E402

TARGET_S = 2.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=500)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    wanvid = Path(sys.executable).parent / "wanvid"
    with tempfile.TemporaryDirectory(prefix="bench-gallery-") as tmp:
        videos = Path(tmp) / "videos"
        make_videos(videos, args.videos, batches=10)
        env = {**os.environ, "WANVID_STATE_DIR": str(Path(tmp) / "state"),
               "WANVID_CONFIG_DIR": str(Path(tmp) / "config")}
        command, library = [], []
        for _ in range(args.runs):
            t = time.perf_counter()
            subprocess.run([str(wanvid), "gallery", str(videos)], env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            command.append(time.perf_counter() - t)
            t = time.perf_counter()
            _, n = gallery.write(videos)
            library.append(time.perf_counter() - t)
            assert n == args.videos
        size = (videos / "index.html").stat().st_size
    cmd, lib = statistics.median(command), statistics.median(library)
    print(f"gallery of {args.videos} videos: command {cmd:.3f} s (median of {args.runs}; "
          f"target <= {TARGET_S:.1f} s), library call {lib:.3f} s; page {size / 1024:.0f} KiB")
    return 0 if cmd <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
