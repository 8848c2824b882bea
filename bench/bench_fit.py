"""How much time ``--fit`` adds to sending a 12 MP phone photo.

Builds a 4032×3024 photo-like JPEG (gradient + noise, quality 90, EXIF orientation 6),
then times two child processes, alternated, each run at least five times:

  reference: read the file and base64-encode it (what sending it unfitted costs)
  fit:       fit_image(path, resolution=...) and base64-encode the result

and prints both medians, the difference (the time ``--fit`` adds, Pillow's import
included) and the ratio. It also times ``fit_image`` alone, in process, for reference.

    python bench/bench_fit.py [--runs 7] [--resolution 720P]

Needs Pillow (``pip install 'wanvid[fit]'``).
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REFERENCE = """\
import base64, sys
from pathlib import Path
base64.b64encode(Path(sys.argv[1]).read_bytes())
"""

FIT = """\
import base64, sys
from pathlib import Path
from wanvid.fit import fit_image
base64.b64encode(fit_image(Path(sys.argv[1]), resolution=sys.argv[2]).data)
"""


def make_photo(path: Path) -> None:
    """A 4032×3024 JPEG that compresses like a photo, stored sideways (orientation 6)."""
    from PIL import Image

    size = (4032, 3024)
    rnd = random.Random(12)
    noise = [Image.frombytes("L", size, rnd.randbytes(size[0] * size[1])) for _ in range(3)]
    grad = Image.linear_gradient("L").resize(size)
    channels = [Image.blend(grad, n, 0.12) for n in noise]
    channels[1] = channels[1].transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "BenchPhone"
    Image.merge("RGB", channels).save(path, "JPEG", quality=90, exif=exif)


def time_child(code: str, *args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, *args], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="runs of each child (>= 5)")
    parser.add_argument("--resolution", default="720P")
    args = parser.parse_args()
    runs = max(5, args.runs)

    from wanvid.fit import fit_image

    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "IMG_0001.jpg"
        make_photo(photo)
        result = fit_image(photo, resolution=args.resolution)
        print(result.describe(photo.name))

        time_child(REFERENCE, str(photo))  # warm the page cache and the .pyc files
        time_child(FIT, str(photo), args.resolution)
        ref: list[float] = []
        fit: list[float] = []
        for _ in range(runs):  # alternated, so drift on a shared machine hits both
            ref.append(time_child(REFERENCE, str(photo)))
            fit.append(time_child(FIT, str(photo), args.resolution))
        inproc = []
        for _ in range(runs):
            start = time.perf_counter()
            fit_image(photo, resolution=args.resolution)
            inproc.append(time.perf_counter() - start)

    ref_ms = statistics.median(ref) * 1000
    fit_ms = statistics.median(fit) * 1000
    print(f"runs: {runs} of each, alternated; medians")
    print(f"reference (read + base64):        {ref_ms:8.1f} ms")
    print(f"fit_image({args.resolution}) + base64:        {fit_ms:8.1f} ms")
    print(f"time --fit adds:                  {fit_ms - ref_ms:8.1f} ms")
    print(f"ratio fit / reference:            {fit_ms / ref_ms:8.2f} ×")
    print(f"fit_image alone, in process:      {statistics.median(inproc) * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
