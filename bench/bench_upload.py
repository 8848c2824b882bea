#!/usr/bin/env python3
"""Benchmark wanvid's temporary upload against ``curl -F`` on the emulator's upload host.

Starts ``wanvid emulator`` (its own process), writes a 100 MB clip, then alternates runs of

* ``curl -s -f -F field=... -F file=@CLIP HOST``: the yardstick, with a fresh policy's form;
* a child process uploading the clip as wanvid does (``wanvid.upload.Uploader`` with a
  fresh journal: the content hash for reuse, the policy request, the streamed form);
* the same child uploading a 1 KiB file (its fixed cost: startup, imports, journal, policy).

Figures (best of N for each, alternated; noise only ever adds time):

* transfer as the host times it (``stats.upload_seconds``): wanvid / curl, target <= 1.25;
* whole child minus its fixed cost, over curl's wall time: target <= 2;
* the child's peak RSS (``os.wait4``): target <= 60 MB.

    python bench/bench_upload.py                 # 100 MB, 5 runs each
    python bench/bench_upload.py --mb 20 --runs 3 --check
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

WANVID = str(Path(sys.executable).parent / "wanvid")
KEY = "sk-bench-upload"
MODEL = "wan2.5-i2v-preview"
HOST_RATIO_TARGET = 1.25
WHOLE_RATIO_TARGET = 2.0
RSS_TARGET_MB = 60.0
MB = 1024 * 1024


def child(path: str, base_url: str, state: str) -> None:
    """The measured upload: what `wanvid generate --audio/--first-clip FILE` does first."""
    from wanvid.client import Client
    from wanvid.journal import Journal
    from wanvid.upload import Uploader

    with Journal(Path(state) / "journal.db") as journal:
        got = Uploader(Client(base_url, KEY), journal=journal).upload(Path(path), MODEL)
    print(got.url)


def make_clip(path: Path, size: int) -> None:
    ftyp = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isommp41"
    ftyp += (size - len(ftyp)).to_bytes(4, "big") + b"mdat"
    block = os.urandom(MB)
    with open(path, "wb") as f:
        f.write(ftyp)
        left = size - len(ftyp) - 8
        while left > 0:
            f.write(block[:min(left, MB)])
            left -= min(left, MB)


def get_json(url: str, headers: dict[str, str] | None = None) -> dict[str, object]:
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=30) as r:
        return dict(json.loads(r.read()))


def host_seconds(root: str) -> float:
    stats = get_json(root + "/_emulator/stats")
    times = stats["upload_seconds"]
    assert isinstance(times, list) and times
    return float(times[-1])


def run_child(args: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of a child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(args)}")
    return wall, usage.ru_maxrss / 1024  # KiB on Linux


def curl(base_url: str, clip: Path, n: int) -> float:
    pol = get_json(f"{base_url}/uploads?action=getPolicy&model={MODEL}",
                   {"Authorization": f"Bearer {KEY}"})["data"]
    assert isinstance(pol, dict)
    fields = {"OSSAccessKeyId": pol["oss_access_key_id"], "Signature": pol["signature"],
              "policy": pol["policy"], "key": f"{pol['upload_dir']}/curl-{n}-{clip.name}",
              "x-oss-object-acl": "private", "x-oss-forbid-overwrite": "true",
              "success_action_status": "200"}
    args = ["curl", "-s", "-f", "-o", "/dev/null"]
    for k, v in fields.items():
        args += ["-F", f"{k}={v}"]
    args += ["-F", f"file=@{clip}", str(pol["upload_host"])]
    t0 = time.perf_counter()
    subprocess.run(args, check=True)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=100.0, help="clip size in MB (default 100)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    ap.add_argument("--child", nargs=3, metavar=("PATH", "BASE", "STATE"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(*a.child)
        return 0

    emu = subprocess.Popen([WANVID, "emulator", "--port", "0", "--upload-max-mb",
                            str(int(a.mb) + 10)], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
    try:
        assert emu.stdout is not None
        base_url = emu.stdout.readline().strip()
        root = base_url.removesuffix("/api/v1")
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            clip, tiny = d / "clip.mp4", d / "tiny.mp4"
            make_clip(clip, int(a.mb * MB))
            make_clip(tiny, 1024)
            res: dict[str, list[float]] = {"curl": [], "curl_host": [], "wanvid": [],
                                           "wanvid_host": [], "fixed": [], "rss": []}
            for n in range(a.runs):
                res["curl"].append(curl(base_url, clip, n))
                res["curl_host"].append(host_seconds(root))
                state = d / f"state-{n}"
                state.mkdir()
                me = [sys.executable, __file__, "--child"]
                wall, rss = run_child([*me, str(clip), base_url, str(state)])
                res["wanvid"].append(wall)
                res["wanvid_host"].append(host_seconds(root))
                res["rss"].append(rss)
                state2 = d / f"state-tiny-{n}"
                state2.mkdir()
                wall, rss = run_child([*me, str(tiny), base_url, str(state2)])
                res["fixed"].append(wall)
    finally:
        emu.terminate()
        emu.wait(10)

    b = {k: min(v) for k, v in res.items()}
    host_ratio = b["wanvid_host"] / b["curl_host"]
    whole_ratio = (b["wanvid"] - b["fixed"]) / b["curl"]
    rss = max(res["rss"])
    print(f"clip {a.mb:g} MB, best of {a.runs} (alternated)")
    print(f"  curl -F: wall {b['curl']:.3f} s, host-timed {b['curl_host']:.3f} s")
    print(f"  wanvid:  wall {b['wanvid']:.3f} s (fixed cost {b['fixed']:.3f} s), "
          f"host-timed {b['wanvid_host']:.3f} s")
    print(f"  transfer as the host times it: {host_ratio:.2f} x curl "
          f"(target <= {HOST_RATIO_TARGET})")
    print(f"  whole minus fixed cost (hash included): {whole_ratio:.2f} x curl "
          f"(target <= {WHOLE_RATIO_TARGET})")
    print(f"  peak RSS of the wanvid child: {rss:.1f} MB (target <= {RSS_TARGET_MB:g})")
    ok = host_ratio <= HOST_RATIO_TARGET and whole_ratio <= WHOLE_RATIO_TARGET and \
        rss <= RSS_TARGET_MB
    return 0 if ok or not a.check else 1


if __name__ == "__main__":
    sys.exit(main())
