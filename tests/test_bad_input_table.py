"""README's "Bad input" table is tested row by row.

Media rows come from ``tests/test_media.py::BAD_INPUT_ROWS`` (each runs there); the
parameter rows are below and run here through the CLI with every request forbidden.
This file checks that README lists exactly these rows with exactly these messages.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import responses

from tests.test_media import BAD_INPUT_ROWS

README = Path(__file__).resolve().parent.parent / "README.md"
URL = "https://example.com/cat.png"

# (rule, command line, expected message start)
PARAM_ROWS: list[tuple[str, list[str], str]] = [
    ("unknown model", ["submit", URL, "-m", "wan9"], "--model: unknown model 'wan9'"),
    ("empty model", ["submit", URL, "-m", ""], "--model is empty: give a model name"),
    ("kf2v model, one frame", ["submit", URL, "-m", "wan2.2-kf2v-flash"],
     "wan2.2-kf2v-flash needs two frames: pass the last frame with --last-frame IMAGE"),
    ("last frame, i2v model", ["submit", URL, "-l", URL, "-m", "wan2.2-i2v-flash"],
     "--last-frame needs a model that takes a last frame, not wan2.2-i2v-flash"),
    ("resolution not offered", ["submit", URL, "-r", "360P"],
     "--resolution 360P: wan2.2-i2v-flash offers 480P, 720P, 1080P"),
    ("duration not offered", ["submit", URL, "-d", "10"],
     "--duration 10: wan2.2-i2v-flash makes 5 s videos (wan2.7-i2v, "),
    ("seed out of range", ["submit", URL, "--seed", "2147483648"],
     "--seed 2147483648: must be between 0 and 2147483647"),
    ("audio on a silent model", ["submit", URL, "--audio", "https://example.com/a.mp3"],
     "--audio: model wan2.2-i2v-flash does not take an audio track"),
    ("--audio with --no-audio", ["submit", URL, "-m", "wan2.5-i2v-preview", "--audio",
                                 "https://example.com/a.mp3", "--no-audio"],
     "--audio and --no-audio contradict each other"),
    ("--no-audio where it cannot be silent", ["submit", URL, "-m", "happyhorse-1.0-i2v",
                                              "--no-audio"],
     "--no-audio: happyhorse-1.0-i2v always makes videos with sound"),
    ("shot type where there is none", ["submit", URL, "--shot", "multi"],
     "--shot: wan2.2-i2v-flash has no shot types"),
    ("template outside Beijing", ["submit", URL, "--template", "flying"],
     "--template: video effects are offered in Beijing only"),
    ("--param not NAME=VALUE", ["submit", URL, "--param", "seed"],
     "--param seed: expected NAME=VALUE"),
    ("--param duration not offered", ["submit", URL, "--param", "duration=-5"],
     "--param duration=-5: wan2.2-i2v-flash makes 5 s videos"),
    ("--param model", ["submit", URL, "--param", "model=wan2.6-i2v"],
     "--param model: the model is the request's top-level field"),
    ("--param replacing a given input", ["submit", "cat.png", "--param", f"input.img_url={URL}"],
     "--param input.img_url replaces IMAGE (cat.png)"),
    ("snapshot that is no date", ["submit", URL, "-m", "wan2.6-i2v-2099-13-45"],
     "--model wan2.6-i2v-2099-13-45: 2099-13-45 is not a date"),
    ("bad output template", ["generate", URL, "-o", "{nope}.mp4"], "-o {nope}.mp4: "),
    ("one file for many tasks", ["wait", "t1", "t2", "-o", "clip.mp4"],
     "-o clip.mp4 names one file but there are 2 tasks"),
    ("output under a file", ["generate", URL, "-o", "README/clip.mp4"],
     "-o README/clip.mp4: README is a file, not a directory"),
]


@pytest.mark.parametrize(("args", "expected"), [r[1:] for r in PARAM_ROWS],
                         ids=[r[0] for r in PARAM_ROWS])
def test_parameter_row(run, args: list[str], expected: str) -> None:
    Path("README").write_text("a regular file where a directory would go")
    with responses.RequestsMock() as rsps:  # nothing registered: any request fails the test
        r = run(args)
        assert len(rsps.calls) == 0
    assert r.code == 2
    assert r.out == ""
    assert r.err.startswith(f"wanvid: error: {expected}") and r.err.count("\n") == 1


def readme_rows() -> dict[str, str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Bad input", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        m = re.match(r"^\| (.+?) \| `(.*)` \|$", line)
        if m:
            rows[m.group(1)] = m.group(2).replace("\\|", "|")
    return rows


def test_readme_table_is_exactly_the_tested_rows() -> None:
    expected = {r[0]: r[4] for r in BAD_INPUT_ROWS} | {r[0]: r[2] for r in PARAM_ROWS}
    assert readme_rows() == expected, (
        "README's '## Bad input' table must list every row of tests/test_media.py::"
        "BAD_INPUT_ROWS and tests/test_bad_input_table.py::PARAM_ROWS with its message")
