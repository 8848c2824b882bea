"""The README's recipes, run for real: every ``<!-- recipe: NAME -->`` block is extracted
and executed with ``bash -euo pipefail`` against the emulator, in a fresh directory with
a.png, b.png, c.png and assets/cover.png, the installed wanvid first on PATH. A GitHub
Actions recipe (YAML) has its ``run:`` scripts executed the same way (``pip install wanvid``
skipped: the project is installed already) and must take the key from a secret.

A recipe that stops working, or a recipe without expectations here, fails the suite.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests import envelope_schema
from tests.e2e.conftest import is_sidecar
from tests.fixtures_media import png_bytes

README = Path(__file__).resolve().parents[2] / "README.md"
RECIPE_RE = re.compile(r"<!-- recipe: ([\w-]+) -->\s*\n```(\w+)\n(.*?)\n```", re.DOTALL)
EXPECTED = {"bash-loop", "xargs-parallel", "batch-file", "jq", "github-actions"}


def recipes() -> dict[str, tuple[str, str]]:
    """name -> (language, body) for every marked block in README.md."""
    text = README.read_text(encoding="utf-8")
    found: dict[str, tuple[str, str]] = {}
    for name, lang, body in RECIPE_RE.findall(text):
        assert name not in found, f"recipe {name!r} appears twice in README.md"
        found[name] = (lang, body)
    return found


def test_every_marker_has_a_fenced_block_and_every_recipe_an_expectation() -> None:
    text = README.read_text(encoding="utf-8")
    markers = re.findall(r"<!-- recipe: ([\w-]+) -->", text)
    found = recipes()
    assert sorted(markers) == sorted(found), "a recipe marker is not followed by a fenced block"
    assert set(found) == EXPECTED
    assert found["github-actions"][0] == "yaml"
    assert all(lang == "bash" for name, (lang, _) in found.items() if name != "github-actions")
    assert text.index("## Recipes") < text.index("<!-- recipe:") < text.index("## Emulator")


def run_scripts(yaml: str) -> list[str]:
    """The ``run:`` scripts of a workflow snippet (block scalars or one-liners)."""
    lines = yaml.splitlines()
    scripts = []
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)(?:- )?run:\s*(.*)$", lines[i])
        i += 1
        if not m:
            continue
        indent, value = len(m.group(1)), m.group(2).strip()
        if value and value[0] not in "|>":
            scripts.append(value)
            continue
        block = []
        while i < len(lines) and (not lines[i].strip()
                                  or len(lines[i]) - len(lines[i].lstrip()) > indent):
            block.append(lines[i])
            i += 1
        scripts.append(textwrap.dedent("\n".join(block)))
    return scripts


def step_env(yaml: str) -> dict[str, str]:
    """KEY: value pairs under every ``env:`` of the snippet."""
    env: dict[str, str] = {}
    lines = yaml.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)env:\s*$", line)
        if not m:
            continue
        for sub in lines[i + 1:]:
            if len(sub) - len(sub.lstrip()) <= len(m.group(1)):
                break
            k, _, v = sub.strip().partition(":")
            env[k.strip()] = v.strip()
    return env


def test_github_actions_recipe_takes_the_key_from_a_secret() -> None:
    lang, yaml = recipes()["github-actions"]
    assert "\t" not in yaml
    assert step_env(yaml)["DASHSCOPE_API_KEY"] == "${{ secrets.DASHSCOPE_API_KEY }}"
    assert not re.search(r"sk-[A-Za-z0-9]", yaml)  # no literal key, anywhere
    scripts = run_scripts(yaml)
    assert scripts and any("pip install wanvid" in s for s in scripts)
    assert any(re.search(r"wanvid generate .* -q\b", s) for s in scripts)
    for s in scripts:  # the key is only ever the step's env, never handled by the script
        assert "DASHSCOPE_API_KEY" not in s


@pytest.fixture
def recipe_dir(tmp_path: Path) -> Path:
    d = tmp_path / "recipe"
    (d / "assets").mkdir(parents=True)
    for i, stem in enumerate("abc"):
        (d / f"{stem}.png").write_bytes(png_bytes(640 + 8 * i, 480))
    (d / "assets" / "cover.png").write_bytes(png_bytes(640, 480, colour=0))
    return d


@pytest.fixture
def run_bash(emulator, wv_env: dict[str, str], recipe_dir: Path) -> Callable[..., Any]:
    emu = emulator()
    env = dict(wv_env, DASHSCOPE_HTTP_BASE_URL=emu.base_url)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"

    def run(script: str) -> subprocess.CompletedProcess[str]:
        p = subprocess.run(["bash", "-e", "-u", "-o", "pipefail", "-c", script], cwd=recipe_dir,
                           env=env, text=True, capture_output=True, timeout=120,
                           stdin=subprocess.DEVNULL)
        assert p.returncode == 0, f"recipe failed ({p.returncode}):\n{script}\n{p.stderr}"
        return p

    run.emulator = emu  # type: ignore[attr-defined]
    return run


def batch_file_jobs() -> str:
    """The jobs.jsonl written by the batch-file recipe (the jq recipe reads it)."""
    body = recipes()["batch-file"][1]
    m = re.search(r"cat > jobs\.jsonl <<'EOF'\n(.*?\n)EOF\n", body, re.DOTALL)
    assert m, "the batch-file recipe no longer writes jobs.jsonl with a heredoc"
    return m.group(1)


def test_recipe_bash_loop(run_bash, recipe_dir: Path) -> None:
    p = run_bash(recipes()["bash-loop"][1])
    assert sorted(p.stdout.splitlines()) == ["a.mp4", "b.mp4", "c.mp4"]
    for stem in "abc":
        assert (recipe_dir / f"{stem}.mp4").is_file()
    assert run_bash.emulator.stats()["submits"] == 3


def test_recipe_xargs_parallel(run_bash, recipe_dir: Path) -> None:
    p = run_bash(recipes()["xargs-parallel"][1])
    ids = (recipe_dir / "ids.txt").read_text().split()
    assert len(set(ids)) == 3
    assert sorted(p.stdout.splitlines()) == ["a.mp4", "b.mp4", "c.mp4"]
    for stem in "abc":
        assert (recipe_dir / f"{stem}.mp4").is_file()
    assert run_bash.emulator.stats()["submits"] == 3


def test_recipe_batch_file(run_bash, recipe_dir: Path) -> None:
    p = run_bash(recipes()["batch-file"][1])
    videos = recipe_dir / "videos"
    assert sorted(x.name for x in videos.iterdir() if not is_sidecar(x)) == ["b.mp4", "c.mp4", "waves.mp4"]
    # second run: the same paths again, all skipped, nothing new sent
    assert sorted(p.stdout.splitlines()) == sorted(2 * ["videos/waves.mp4", "videos/b.mp4",
                                                        "videos/c.mp4"])
    assert "3 succeeded, 0 failed, 0 skipped" in p.stderr
    assert "0 succeeded, 0 failed, 3 skipped" in p.stderr
    stats = run_bash.emulator.stats()
    assert stats["submits"] == 3
    assert stats["paths"].get("POST /api/v1/services/aigc/image2video/video-synthesis") == 1


def test_recipe_jq(run_bash, recipe_dir: Path) -> None:
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed")
    (recipe_dir / "jobs.jsonl").write_text(batch_file_jobs())
    p = run_bash(recipes()["jq"][1])
    lines = p.stdout.splitlines()
    paths = [ln for ln in lines if "\t" not in ln]
    tsv = [ln.split("\t") for ln in lines if "\t" in ln]
    assert len(paths) == 3 and "videos/waves.mp4" in paths
    for path in paths:
        assert (recipe_dir / path).is_file()
    rows = envelope_schema.rows((recipe_dir / "results.jsonl").read_text(), "batch")
    assert sorted(r["line"] for r in rows) == [1, 2, 3]
    assert len(tsv) == 3
    assert {status for _, status, _ in tsv} == {"SUCCEEDED"}
    assert {r["task_id"] for r in rows} == {tid for tid, _, _ in tsv}


def test_recipe_github_actions_run_steps(run_bash, recipe_dir: Path) -> None:
    scripts = run_scripts(recipes()["github-actions"][1])
    outs = []
    for script in scripts:
        kept = "\n".join(ln for ln in script.splitlines()
                         if not ln.strip().startswith("pip install wanvid"))
        outs.append(run_bash(kept).stdout)
    assert "".join(outs) == "cover.mp4\n"
    assert (recipe_dir / "cover.mp4").is_file()
