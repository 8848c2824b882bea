#!/usr/bin/env python3
"""Benchmark wanvid's video download against curl on a local HTTP server.

Serves a generated MP4-looking file (valid ``ftyp`` box, then incompressible bytes) from a
threaded stdlib HTTP server with Range support on 127.0.0.1, then alternates runs of

* ``curl -s -o OUT URL``                           (the yardstick),
* a child process running wanvid's download        (``WANVID_CMD``),
* a child process doing only wanvid's imports       (``BASELINE_CMD``, fixed cost),

deleting the output between runs. Reports best-of-N wall times, the ratio
``(wanvid - baseline) / curl`` (target <= 1.25) and the wanvid child's peak RSS (target
<= 60 MB and flat across sizes), measured per child with ``os.wait4``.

    python bench/bench_download.py                 # 200 MiB and 50 MiB, 5 runs each
    python bench/bench_download.py --sizes 20 --runs 3 --check

WANVID_CMD is the real CLI, ``wanvid download URL -o OUT``; its fixed cost is the same
command downloading a 1 KiB video.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# --- what gets timed: "{url}", "{out}", "{tiny_url}", "{tiny_out}" are filled in per run ---
# The real CLI, and as its fixed cost the same command fetching a 1 KiB video (startup,
# journal, request): what remains is the transfer itself.
WANVID = str(Path(sys.executable).parent / "wanvid")
WANVID_CMD: list[str] = [WANVID, "download", "{url}", "-o", "{out}", "-q"]
BASELINE_CMD: list[str] = [WANVID, "download", "{tiny_url}", "-o", "{tiny_out}", "-q"]
CURL_CMD: list[str] = ["curl", "-s", "-f", "-o", "{out}", "{url}"]

RATIO_TARGET = 1.25
RSS_TARGET_MB = 60.0
MIB = 1024 * 1024


# --- the server ----------------------------------------------------------------------------


def make_video(path: Path, size: int) -> str:
    """A well-formed MP4 (``ftyp``, then one ``mdat`` box) filled with random
    (incompressible) bytes, so it passes wanvid's box check."""
    ftyp = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isommp41"
    ftyp += (size - len(ftyp)).to_bytes(4, "big") + b"mdat"
    block = os.urandom(MIB)
    h = hashlib.sha256()
    m = hashlib.md5(usedforsecurity=False)
    with open(path, "wb") as f:
        f.write(ftyp)
        h.update(ftyp)
        m.update(ftyp)
        left = size - len(ftyp)
        while left > 0:
            chunk = block[:min(left, MIB)]
            f.write(chunk)
            h.update(chunk)
            m.update(chunk)
            left -= len(chunk)
    ETAGS[path] = '"' + m.hexdigest().upper() + '"'  # as OSS: the object's MD5
    return h.hexdigest()


ETAGS: dict[Path, str] = {}


class Handler(BaseHTTPRequestHandler):
    server_version = "bench/1"
    files: dict[str, Path] = {}

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, *, body: bool) -> None:
        path = self.files.get(self.path.split("?", 1)[0])
        if path is None:
            self.send_error(404)
            return
        size = path.stat().st_size
        start, status = 0, 200
        rng = self.headers.get("Range", "")
        if rng.startswith("bytes=") and rng.endswith("-") and rng[6:-1].isdigit():
            start = int(rng[6:-1])
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        self.send_response(status)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(size - start))
        self.send_header("Accept-Ranges", "bytes")
        if path in ETAGS:
            self.send_header("ETag", ETAGS[path])
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        self.end_headers()
        if body:
            with open(path, "rb") as f:
                try:
                    self.connection.sendfile(f, start, size - start)
                except (BrokenPipeError, ConnectionResetError):
                    pass


def start_server(files: dict[str, Path]) -> tuple[ThreadingHTTPServer, str]:
    Handler.files = files
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    return server, f"http://127.0.0.1:{port}"


# --- running children ------------------------------------------------------------------------


def run(cmd: Sequence[str], **fill: str) -> tuple[float, float, float]:
    """Run one child; return (wall s, user+sys CPU s, peak RSS MB) for that child alone."""
    argv = [a.format(**fill) for a in cmd]
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            tail = err.read()[-2000:].decode(errors="replace")
            raise SystemExit(f"command failed ({proc.returncode}): {' '.join(argv)}\n{tail}")
    rss_kb = usage.ru_maxrss if sys.platform != "darwin" else usage.ru_maxrss / 1024
    return elapsed, usage.ru_utime + usage.ru_stime, rss_kb / 1024


def fsync_time(path: Path) -> float:
    """How long making `path` durable takes (what wanvid pays and curl does not)."""
    t0 = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return time.perf_counter() - t0


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MIB):
            h.update(chunk)
    return h.hexdigest()


def bench_size(base_url: str, workdir: Path, size_mib: int, runs: int,
               files: dict[str, Path]) -> dict[str, float]:
    name = f"/video-{size_mib}.mp4"
    src = workdir / f"src-{size_mib}.mp4"
    digest = make_video(src, size_mib * MIB)
    files[name] = src
    url = f"{base_url}{name}?Expires=4102444800&Signature=bench"
    out = workdir / f"out-{size_mib}.mp4"
    tiny = workdir / "src-tiny.mp4"
    make_video(tiny, 1024)
    files["/tiny.mp4"] = tiny
    tiny_url = f"{base_url}/tiny.mp4?Expires=4102444800&Signature=bench"
    tiny_out = workdir / "out-tiny.mp4"
    times: dict[str, list[float]] = {"curl": [], "curl+fsync": [], "wanvid": [],
                                     "baseline": []}
    cpu: dict[str, list[float]] = {"curl": [], "wanvid": [], "baseline": []}
    rss: list[float] = []
    for i in range(runs):
        for label, cmd in (("curl", CURL_CMD), ("wanvid", WANVID_CMD),
                           ("baseline", BASELINE_CMD)):
            for p in (out, out.with_name(out.name + ".part"), tiny_out):
                p.unlink(missing_ok=True)
            if hasattr(os, "sync"):
                os.sync()  # each run starts with no dirty pages left by the one before
            elapsed, cpu_s, peak = run(cmd, url=url, out=str(out), tiny_url=tiny_url,
                                       tiny_out=str(tiny_out))
            times[label].append(elapsed)
            cpu[label].append(cpu_s)
            if label == "curl":
                times["curl+fsync"].append(elapsed + fsync_time(out))
            if label == "wanvid":
                rss.append(peak)
                if i == 0 and sha256_file(out) != digest:
                    raise SystemExit("wanvid's download is not byte-identical")
    out.unlink(missing_ok=True)
    src.unlink()
    best = {k: min(v) for k, v in times.items()}
    fixed = best["baseline"]
    return {**best, "ratio": (best["wanvid"] - fixed) / best["curl"],
            "ratio_fsync": (best["wanvid"] - fixed) / best["curl+fsync"],
            "cpu_curl": min(cpu["curl"]), "cpu_wanvid": min(cpu["wanvid"]) - min(cpu["baseline"]),
            "rss": max(rss)}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="200,50", help="file sizes in MiB (default 200,50)")
    ap.add_argument("--runs", type=int, default=5, help="runs of each command (best-of)")
    ap.add_argument("--dir", type=Path, default=None,
                    help="where to write the files (default: a temporary directory)")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 if a target (ratio, RSS) is missed")
    args = ap.parse_args(argv)
    if shutil.which(CURL_CMD[0]) is None:
        print("curl not found", file=sys.stderr)
        return 2

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    files: dict[str, Path] = {}
    server, base_url = start_server(files)
    results: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="wanvid-bench-") as tmp:
        os.environ["WANVID_STATE_DIR"] = str(Path(tmp) / "state")  # a journal of its own
        try:
            for size in sizes:
                results[size] = bench_size(base_url, Path(tmp), size, args.runs, files)
        finally:
            server.shutdown()

    where = args.dir or Path(tempfile.gettempdir())
    print(f"wanvid: {' '.join(WANVID_CMD[:2])} ...   writing to {where}   best of {args.runs}")
    print(f"{'size':>8} {'curl s':>7} {'+fsync s':>8} {'wanvid s':>8} {'import s':>8} "
          f"{'ratio':>6} {'vs+fsync':>8} {'cpu curl':>8} {'cpu wanvid':>10} {'RSS MB':>7}")
    ok = True
    for size, r in results.items():
        print(f"{size:>5}MiB {r['curl']:7.3f} {r['curl+fsync']:8.3f} {r['wanvid']:8.3f} "
              f"{r['baseline']:8.3f} {r['ratio']:6.2f} {r['ratio_fsync']:8.2f} "
              f"{r['cpu_curl']:8.3f} {r['cpu_wanvid']:10.3f} {r['rss']:7.1f}")
        ok &= r["ratio"] <= RATIO_TARGET and r["rss"] <= RSS_TARGET_MB
    print("ratio = (wanvid - import) / curl; vs+fsync = the same against curl plus an fsync "
          "of its output (wanvid fsyncs before the rename); cpu = user+sys seconds, wanvid's "
          "net of the imports")
    print(f"targets: ratio <= {RATIO_TARGET}, peak RSS <= {RSS_TARGET_MB:.0f} MB: "
          f"{'met' if ok else 'MISSED'}")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
