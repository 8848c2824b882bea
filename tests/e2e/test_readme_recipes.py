"""The README's recipes, run for real and in sequence, as a person would: every
``<!-- recipe: NAME -->`` block is extracted from README.md and executed with
``bash -euo pipefail`` against one emulator, one after another in README's order, in ONE
directory holding a.png, b.png, c.png and assets/cover.png (the installed wanvid first on
PATH). A GitHub Actions recipe (YAML) has its ``run:`` scripts executed the same way
(``pip install wanvid`` skipped: the project is installed already) and must take the key
from a secret.

Each recipe has a check here (``CHECKS``) of what its comment promises: which files are
saved anew, how many tasks the emulator was asked to create (a recipe that says nothing is
billed again must leave the emulator's submit count alone), what stdout lists. A fenced
block in the Recipes section without a marker, a recipe without a check, or a recipe that
stops doing what it says fails the suite.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import envelope_schema
from tests.e2e.conftest import EmulatorProc, is_sidecar
from tests.fixtures_media import png_bytes

README = Path(__file__).resolve().parents[2] / "README.md"
RECIPE_RE = re.compile(r"<!-- recipe: ([\w-]+) -->\s*\n```(\w+)\n(.*?)\n```", re.DOTALL)


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
    assert list(found) == list(CHECKS), (
        "every README recipe needs a check in CHECKS, in README's order (and no check may "
        f"outlive its recipe): README has {list(found)}, CHECKS {list(CHECKS)}")
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


def recipes_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Recipes\n")
    return text[start:text.index("\n## ", start + 1)]


def test_every_code_block_of_the_recipes_section_is_a_marked_recipe() -> None:
    """A block added to the Recipes section without a marker would never run: refused."""
    lines = recipes_section().splitlines()
    fenced = False
    for i, line in enumerate(lines):
        if line.startswith("```"):
            if not fenced:
                assert re.fullmatch(r"<!-- recipe: [\w-]+ -->", lines[i - 1]), (
                    f"README Recipes: the block at {line!r} (after {lines[i - 1]!r}) has no "
                    "<!-- recipe: NAME --> marker, so the recipe tests would not run it")
            fenced = not fenced
        elif not fenced and line.startswith("    ") and not lines[i - 1].strip():
            pytest.fail(f"README Recipes: an indented code block ({line.strip()!r}) is never "
                        "run; make it a fenced block with a <!-- recipe: NAME --> marker")
    assert not fenced, "README Recipes: a fenced block is not closed"


@dataclass
class Snapshot:
    files: set[str]
    submits: int
    requests: int


class Person:
    """Someone working through README's recipes at one prompt: one directory, one journal,
    one emulator standing in for the service."""

    def __init__(self, emu: EmulatorProc, env: dict[str, str], cwd: Path) -> None:
        self.emu, self.env, self.cwd = emu, env, cwd

    def sh(self, script: str, *, errexit: bool = True) -> subprocess.CompletedProcess[str]:
        """``script`` as bash runs it; ``errexit=False`` is an interactive prompt, where a
        failing command does not stop the lines after it."""
        flags = ["-e", "-u", "-o", "pipefail"] if errexit else ["-u", "-o", "pipefail"]
        p = subprocess.run(["bash", *flags, "-c", script], cwd=self.cwd, env=self.env,
                           text=True, capture_output=True, timeout=180,
                           stdin=subprocess.DEVNULL)
        assert p.returncode == 0, f"recipe failed ({p.returncode}):\n{script}\n{p.stderr}"
        return p

    def files(self) -> set[str]:
        return {str(f.relative_to(self.cwd)) for f in self.cwd.rglob("*")
                if f.is_file() and not is_sidecar(f)}

    def snapshot(self) -> Snapshot:
        stats = self.emu.stats()
        sent = sum(n for route, n in stats["paths"].items() if "/_emulator/" not in route)
        return Snapshot(self.files(), stats["submits"], sent)

    def journal(self) -> list[dict[str, Any]]:
        p = self.sh("wanvid tasks --json")
        data = envelope_schema.envelopes(p.stdout, "tasks")[0]["data"]
        assert isinstance(data, list)
        return data


def saved_anew(me: Person, before: Snapshot, paths: list[str]) -> None:
    """Each of ``paths`` is a video this recipe made, not a file that was there already
    (the emulator serves the same bytes for every task, so only this tells a fresh video
    from one adopted because it happens to be identical: the service's never are)."""
    for path in paths:
        assert (me.cwd / path).is_file(), f"{path} is not there"
        assert path not in before.files, (
            f"{path} was already there before this recipe: with the real service the "
            "new video would not be saved (the file exists), or an old one taken for it")


def check_bash_loop(me: Person, body: str) -> None:
    # "One video per PNG, named after its image"
    before = me.snapshot()
    p = me.sh(body)
    assert sorted(p.stdout.splitlines()) == ["a.mp4", "b.mp4", "c.mp4"]
    saved_anew(me, before, ["a.mp4", "b.mp4", "c.mp4"])
    assert me.snapshot().submits - before.submits == 3


def check_xargs_parallel(me: Person, body: str) -> None:
    # "Many images, four submits at a time ...; collect the videos later"
    before = me.snapshot()
    p = me.sh(body)
    ids = (me.cwd / "ids.txt").read_text().split()
    assert len(set(ids)) == 3
    assert me.snapshot().submits - before.submits == 3
    paths = p.stdout.splitlines()
    assert len(paths) == 3
    saved_anew(me, before, paths)
    assert sorted(Path(x).stem for x in paths) == ["a", "b", "c"]
    saved = {t["task_id"]: t for t in me.journal()}
    for tid in ids:  # the very tasks these submits created were collected
        assert saved[tid]["status"] == "SUCCEEDED"
        assert Path(saved[tid]["path"]).relative_to(me.cwd).as_posix() in paths


def check_batch_file(me: Person, body: str) -> None:
    # "Every line is checked before anything is sent; a second run skips the jobs already
    # done" and the last line's comment: "again: 3 skipped, nothing sent"
    *first, again = body.rstrip("\n").splitlines()
    assert "# again" in again, "the batch recipe's last line is no longer the second run"
    before = me.snapshot()
    p = me.sh("\n".join(first))
    want = ["videos/b.mp4", "videos/c.mp4", "videos/waves.mp4"]
    assert sorted(p.stdout.splitlines()) == want
    saved_anew(me, before, want)
    assert "3 succeeded, 0 failed, 0 skipped" in p.stderr
    mid = me.snapshot()
    assert mid.submits - before.submits == 3
    p = me.sh(again)
    assert sorted(p.stdout.splitlines()) == want
    assert "0 succeeded, 0 failed, 3 skipped" in p.stderr
    after = me.snapshot()
    assert after.requests == mid.requests, "the second run sent requests"
    assert after.files == mid.files


def check_jq(me: Person, body: str) -> None:
    # "the saved videos (new, or kept from an earlier run: same -o, so nothing is billed
    # again)", "the jobs that did not work out (invalid lines included), and why",
    # "everything the journal knows: task id, status, saved file"
    if shutil.which("jq") is None:
        if os.environ.get("CI_REQUIRE_SHELLS"):
            pytest.fail("jq is not installed (.ci/run installs it)")
        pytest.skip("jq is not installed")
    before = me.snapshot()
    p = me.sh(body)
    assert me.snapshot().submits == before.submits, "the jq recipe billed jobs again"
    lines = p.stdout.splitlines()
    paths = [ln for ln in lines if "\t" not in ln]
    tsv = [ln.split("\t") for ln in lines if "\t" in ln]
    assert sorted(paths) == ["videos/b.mp4", "videos/c.mp4", "videos/waves.mp4"]
    assert set(paths) <= before.files  # kept from the batch recipe's run
    rows = envelope_schema.rows((me.cwd / "results.jsonl").read_text(), "batch")
    assert sorted(r["line"] for r in rows) == [1, 2, 3]
    assert {r["status"] for r in rows} == {"SKIPPED"}
    journal = me.journal()
    assert len(tsv) == len(journal) == before.submits  # every task so far, each once
    assert {tid for tid, _, _ in tsv} == {t["task_id"] for t in journal}
    for _, status, path in tsv:
        assert status == "SUCCEEDED" and Path(path).is_absolute() and Path(path).is_file()

    # A person adds a bad line and runs the recipe again: the batch refuses (exit 2,
    # nothing sent) and the second line names the bad line and why.
    jobs = me.cwd / "jobs.jsonl"
    kept = jobs.read_text()
    jobs.write_text(kept + '{"image": "missing.png", "prompt": "where is it"}\n')
    try:
        p = me.sh(body, errexit=False)
    finally:
        jobs.write_text(kept)
    failures = [ln for ln in p.stdout.splitlines() if ln.startswith("line ")]
    assert len(failures) == 1, p.stdout
    assert failures[0].startswith("line 4: INVALID missing.png: no such file"), failures
    assert me.snapshot().submits == before.submits


def check_github_actions(me: Person, body: str) -> None:
    # the step renders assets/cover.png into cover.mp4, quietly
    before = me.snapshot()
    outs, errs = [], []
    for script in run_scripts(body):
        kept = "\n".join(ln for ln in script.splitlines()
                         if not ln.strip().startswith("pip install wanvid"))
        p = me.sh(kept)
        outs.append(p.stdout)
        errs.append(p.stderr)
    assert "".join(outs) == "cover.mp4\n"
    assert "".join(errs) == "", "-q: nothing but results"
    saved_anew(me, before, ["cover.mp4"])
    assert me.snapshot().submits - before.submits == 1


CHECKS: dict[str, Callable[[Person, str], None]] = {
    "bash-loop": check_bash_loop,
    "xargs-parallel": check_xargs_parallel,
    "batch-file": check_batch_file,
    "jq": check_jq,
    "github-actions": check_github_actions,
}


def test_recipes_in_readme_order_in_one_directory(emulator, wv_env: dict[str, str],
                                                  tmp_path: Path) -> None:
    d = tmp_path / "recipes"
    (d / "assets").mkdir(parents=True)
    for i, stem in enumerate("abc"):
        (d / f"{stem}.png").write_bytes(png_bytes(640 + 8 * i, 480))
    (d / "assets" / "cover.png").write_bytes(png_bytes(640, 480, colour=0))
    emu = emulator()
    env = dict(wv_env, DASHSCOPE_HTTP_BASE_URL=emu.base_url)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    me = Person(emu, env, d)
    found = recipes()
    assert list(found) == list(CHECKS)
    for name, (_, body) in found.items():
        CHECKS[name](me, body)


# --- the JSON section's jq lines, one per family ------------------------------------------------


def jq_lines() -> list[str]:
    """The lines of the ```bash block after "One `jq` line per family" (README, JSON output)."""
    text = README.read_text(encoding="utf-8")
    m = re.search(r"One `jq` line per family:\n\n```bash\n(.*?)\n```", text, re.DOTALL)
    assert m, "README's JSON section no longer has its jq lines"
    return m.group(1).splitlines()


def test_the_json_sections_jq_lines_print_what_they_say(emulator, wv_env: dict[str, str],
                                                       tmp_path: Path) -> None:
    """Each line run in turn at one prompt (the first sets $id), in a directory where the
    batch recipe has run (its jobs.jsonl, its videos) and cat.png: the batch line must not
    bill those jobs again, and shows a bad line once one is added."""
    if shutil.which("jq") is None:
        if os.environ.get("CI_REQUIRE_SHELLS"):
            pytest.fail("jq is not installed (.ci/run installs it)")
        pytest.skip("jq is not installed")
    d = tmp_path / "json"
    d.mkdir()
    (d / "cat.png").write_bytes(png_bytes(640, 480))
    for stem in "abc":
        (d / f"{stem}.png").write_bytes(png_bytes(640, 480))
    emu = emulator()
    env = dict(wv_env, DASHSCOPE_HTTP_BASE_URL=emu.base_url)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    me = Person(emu, env, d)
    me.sh("\n".join(recipes()["batch-file"][1].rstrip("\n").splitlines()[:-1]))
    assert emu.stats()["submits"] == 3

    def run(script: str) -> list[str]:
        p = subprocess.run(["bash", "-u", "-o", "pipefail", "-c", script], cwd=d, env=env,
                           text=True, capture_output=True, timeout=120,
                           stdin=subprocess.DEVNULL)
        assert "parse error" not in p.stderr and "jq: error" not in p.stderr, (script, p.stderr)
        return p.stdout.splitlines()

    lines = jq_lines()
    assert len(lines) == 11 and lines[0].startswith("id=$(")
    out: list[list[str]] = []
    task_id = ""
    for line in lines:
        script = line if not task_id else f"id={shlex.quote(task_id)}\n{line}"
        if line.startswith("id=$("):
            script += '\nprintf "%s\\n" "$id"'
        out.append(run(script))
        if not task_id:
            task_id = out[0][0]
    (sub, status, wait, unfinished, batch, download, cancel, saved, audio, billed,
     region) = out
    assert re.fullmatch(r"[0-9a-f-]{36}", task_id)
    assert status in (["PENDING"], ["RUNNING"], ["SUCCEEDED"])
    assert wait == [f"{task_id}.mp4"] and (d / wait[0]).is_file()
    assert unfinished == []  # the generate finished its one task
    assert batch == []  # every job done already
    assert emu.stats()["submits"] == 3 + 2, "billed again (the submit and generate lines: 2)"
    assert download == [f"{task_id}.mp4"]
    assert cancel == [f"{task_id}\tfalse"]  # SUCCEEDED already: not canceled
    assert saved and all(Path(p).is_absolute() and Path(p).is_file() for p in saved)
    from wanvid.models import MODELS
    assert audio and set(audio) <= {m.name for m in MODELS}
    assert float(billed[0]) > 0
    assert region == ["intl"]
    with (d / "jobs.jsonl").open("a") as f:
        f.write('{"image": "missing.png"}\n')
    [batch_line] = [ln for ln in lines if ln.startswith("wanvid batch ")]
    failures = run(batch_line)
    assert len(failures) == 1 and failures[0].startswith("4: missing.png: no such file"), failures
    assert emu.stats()["submits"] == 5


def test_every_shell_block_of_readme_is_run_by_a_test() -> None:
    """The fenced bash/yaml blocks of README are the recipes and the jq lines, all run
    above; a new one fails here until a test runs it."""
    text = README.read_text(encoding="utf-8")
    fences = re.findall(r"^```(bash|sh|shell|console|yaml|yml)$", text, re.M)
    assert len(fences) == len(recipes()) + 1, (
        "README has a fenced shell block that no test runs: mark it <!-- recipe: NAME --> "
        "in the Recipes section and give it a check in CHECKS")
