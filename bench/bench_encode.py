#!/usr/bin/env python3
"""Cost of sending a ~10 MB local image: time and peak memory of the encoding path.

Run from the repository root (or anywhere, with wanvid importable)::

    python bench/bench_encode.py [--runs 7] [--keep DIR]

It builds two images just under ``IMAGE_MAX_BYTES``: a valid PNG padded with an ancillary
chunk to 10 MiB - 1000 bytes (little to decode), and a 1800×1800 PNG of noise (9.3 MiB,
every byte pixel data: the worst case for the full decode every local image gets), then
measures for each:

(a)  ``wanvid submit FILE --dry-run --upload never`` minus ``wanvid submit https://example.com/a.png
     --dry-run`` (median of N runs each), against coreutils ``base64 FILE > /dev/null``
     (median of N): ratio "extra time / base64 time", target <= 3. Skipped with
     "skipped: CLI not ready" when the CLI cannot do a dry run.
(a') the same comparison for the library path alone (load_image + body_bytes, in process).
(b)  peak RSS of a child Python process that runs the real submit encoding path
     (load_image + body_bytes of a full payload), from
     ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``, minus the same child given a URL,
     as a multiple of the file size: target <= 5, aim <= 2.

Each RSS child is started by its own wrapper process, so RUSAGE_CHILDREN (a maximum over
all waited-for children) sees exactly one child.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILE_SIZE = 10 * 1024 * 1024 - 1000
URL = "https://example.com/a.png"

# The child for (b): the submit encoding path, nothing else. argv: MODE TARGET
_WORKER = r"""
import sys
from wanvid.media import body_bytes, load_image
mode, target = sys.argv[1], sys.argv[2]
image = load_image(target, role="image", flag="IMAGE")
payload = {"model": "wan2.2-i2v-flash",
           "input": {"prompt": "a slow pan across the scene", "img_url": image},
           "parameters": {"resolution": "720P", "prompt_extend": True}}
body = body_bytes(payload)
print(len(body))
"""


def _png_chunk(ctype: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(ctype + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", crc)


def make_png(path: Path, size: int, width: int = 1280, height: int = 720) -> None:
    """A valid RGB PNG, padded with an ancillary chunk to exactly ``size`` bytes."""
    comp = zlib.compressobj(6)
    row = bytes(1 + 3 * width)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    head = (b"\x89PNG\r\n\x1a\n"
            + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + _png_chunk(b"IDAT", idat))
    iend = _png_chunk(b"IEND", b"")
    fill = size - len(head) - len(iend) - 12
    with open(path, "wb") as f:
        f.write(head)
        f.write(_png_chunk(b"wnPd", os.urandom(fill)))  # ancillary, private, safe-to-copy
        f.write(iend)
    assert path.stat().st_size == size


def make_noise_png(path: Path, side: int = 1800) -> None:
    """A PNG of random RGB pixels (incompressible: the file is nearly all pixel data)."""
    comp = zlib.compressobj(0)
    rows = b"".join(b"\0" + os.urandom(3 * side) for _ in range(side))
    idat = comp.compress(rows) + comp.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
                     + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b""))


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"DASHSCOPE_API_KEY": "sk-bench-not-a-real-key",
                "WANVID_CONFIG_DIR": str(tmp / "config"), "WANVID_STATE_DIR": str(tmp / "state"),
                "NO_COLOR": "1"})
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    return time.perf_counter() - t0, proc


def _samples(runs: int, funcs: list[Callable[[], float]]) -> list[list[float]]:
    """``runs`` timings of each function, interleaved so drift hits all of them alike."""
    samples: list[list[float]] = [[] for _ in funcs]
    for _ in range(runs):
        for i, f in enumerate(funcs):
            samples[i].append(f())
    return samples


def _median_interleaved(runs: int, funcs: list[Callable[[], float]]) -> list[float]:
    return [statistics.median(s) for s in _samples(runs, funcs)]


def bench_base64(path: Path) -> Callable[[], float]:
    exe = shutil.which("base64")
    if exe is None:
        raise SystemExit("coreutils base64 not found")

    def run() -> float:
        t0 = time.perf_counter()
        subprocess.run([exe, str(path)], stdout=subprocess.DEVNULL, check=True)
        return time.perf_counter() - t0

    return run


def part_a(path: Path, tmp: Path, runs: int, base64_s: float) -> None:
    env = _env(tmp)
    cli = [sys.executable, "-m", "wanvid", "submit"]
    file_cmd = [*cli, str(path), "--dry-run", "--upload", "never"]  # inline, not uploaded
    t_file, p_file = _timed(file_cmd, env)
    t_url, p_url = _timed([*cli, URL, "--dry-run"], env)
    if (p_file.returncode or p_url.returncode or "data:image/png;base64," not in p_file.stdout
            or URL not in p_url.stdout):
        bad = p_file if p_file.returncode or "data:image/png" not in p_file.stdout else p_url
        why = (bad.stderr.strip().splitlines() or bad.stdout.strip().splitlines()
               or [f"exit {bad.returncode}, no output"])[-1]
        print(f"(a)  skipped: CLI not ready ({why})")
        return
    fs, us = _samples(runs, [
        lambda: _timed(file_cmd, env)[0],
        lambda: _timed([*cli, URL, "--dry-run"], env)[0],
    ])
    f_med, u_med = statistics.median(fs), statistics.median(us)
    # Runs alternate FILE, URL, FILE, URL...: the median of the pairwise differences cancels
    # most of the machine's drift (the two commands' ~0.5 s startups dwarf the 10 MB work).
    extra = statistics.median(f - u for f, u in zip(fs, us, strict=True))
    print(f"(a)  wanvid submit FILE --dry-run      median {f_med * 1000:8.1f} ms   "
          f"min {min(fs) * 1000:8.1f} ms")
    print(f"     wanvid submit URL --dry-run       median {u_med * 1000:8.1f} ms   "
          f"min {min(us) * 1000:8.1f} ms")
    print(f"     extra time for the file           {extra * 1000:8.1f} ms   "
          f"(median of paired differences; difference of medians {(f_med - u_med) * 1000:.1f} "
          f"ms, of minima {(min(fs) - min(us)) * 1000:.1f} ms)")
    print(f"     base64 FILE > /dev/null           median {base64_s * 1000:8.1f} ms")
    print(f"     ratio extra / base64              {extra / base64_s:8.2f}   (target <= 3)")


def part_a_library(path: Path, runs: int, base64_s: float) -> None:
    sys.path.insert(0, str(ROOT))
    from wanvid.media import body_bytes, load_image

    def encode(target: str) -> Callable[[], float]:
        def run() -> float:
            t0 = time.perf_counter()
            image = load_image(target, role="image", flag="IMAGE")
            body_bytes({"model": "wan2.2-i2v-flash", "input": {"img_url": image},
                        "parameters": {"resolution": "720P"}})
            return time.perf_counter() - t0
        return run

    f_med, u_med = _median_interleaved(runs, [encode(str(path)), encode(URL)])
    extra = f_med - u_med
    print(f"(a') load_image + body_bytes, file     median {f_med * 1000:8.1f} ms")
    print(f"     same, URL                         median {u_med * 1000:8.1f} ms")
    print(f"     ratio extra / base64              {extra / base64_s:8.2f}   (target <= 3)")


def _maxrss_bytes(ru_maxrss: int) -> int:
    return ru_maxrss if sys.platform == "darwin" else ru_maxrss * 1024  # Linux: KiB


def rss_wrapper(mode: str, target: str) -> None:
    """Run one worker child and print its peak RSS in bytes (RUSAGE_CHILDREN)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    proc = subprocess.run([sys.executable, "-c", _WORKER, mode, target], env=env,
                          stdout=subprocess.PIPE, text=True, check=True)
    peak = _maxrss_bytes(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    print(peak, proc.stdout.strip())


def _child_peak(mode: str, target: str) -> tuple[int, int]:
    out = subprocess.run([sys.executable, __file__, "--rss-wrapper", mode, target],
                         stdout=subprocess.PIPE, text=True, check=True).stdout.split()
    return int(out[0]), int(out[1])


def part_b(path: Path, runs: int) -> None:
    file_peaks, url_peaks, body_len = [], [], 0
    for _ in range(max(3, runs // 2)):
        peak, body_len = _child_peak("file", str(path))
        file_peaks.append(peak)
        url_peaks.append(_child_peak("url", URL)[0])
    f_med, u_med = statistics.median(file_peaks), statistics.median(url_peaks)
    size = path.stat().st_size
    extra = f_med - u_med
    mib = 1024 * 1024
    print(f"(b)  peak RSS, file child              median {f_med / mib:8.1f} MiB")
    print(f"     peak RSS, URL child (baseline)    median {u_med / mib:8.1f} MiB")
    print(f"     extra peak RSS                    {extra / mib:8.1f} MiB")
    print(f"     request body                      {body_len / mib:8.1f} MiB")
    print(f"     file size                         {size / mib:8.1f} MiB")
    print(f"     ratio extra / file size           {extra / size:8.2f}   (target <= 5, aim <= 2)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=9, help="runs per measurement (>= 5)")
    ap.add_argument("--keep", type=Path, help="build the image in DIR and keep it")
    ap.add_argument("--rss-wrapper", nargs=2, metavar=("MODE", "TARGET"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_wrapper:
        rss_wrapper(*args.rss_wrapper)
        return
    runs = max(5, args.runs)
    with tempfile.TemporaryDirectory(prefix="wanvid-bench-") as td:
        tmp = Path(td)
        where = args.keep or tmp
        where.mkdir(parents=True, exist_ok=True)
        padded = where / "bench-10mb.png"
        make_png(padded, FILE_SIZE)
        noise = where / "bench-noise.png"
        make_noise_png(noise)
        for path, what in ((padded, "valid PNG padded with an ancillary chunk"),
                           (noise, "1800×1800 PNG of noise, all pixel data")):
            print(f"image: {path} ({path.stat().st_size} bytes, {what}); {runs} runs per "
                  "figure\n")
            run_b64 = bench_base64(path)
            run_b64()  # warm the page cache
            (base64_s,) = _median_interleaved(runs, [run_b64])
            part_a(path, tmp, runs, base64_s)
            print()
            part_a_library(path, runs, base64_s)
            print()
            part_b(path, runs)
            print()


if __name__ == "__main__":
    main()
