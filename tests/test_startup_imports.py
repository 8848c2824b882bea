"""The fixed cost of everyday commands is mostly imports: guard which heavy modules each
path pulls in, so a stray top-level import fails here (the figures are in
bench/bench_startup.py). Each command runs in a fresh interpreter; afterwards the test
reads ``sys.modules``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from wanvid.cli.coerce import _MISS, fast_value
from wanvid.emulator import Emulator, EmulatorConfig

HEAVY = ("pydantic", "rich", "requests", "urllib3", "charset_normalizer", "idna")
# Modules the commands that only look at tasks (status, tasks) load only when they need
# them: the catalogue (its dataclasses and TOML) for a model, the other use cases' result
# dataclasses, tomllib for a config file, platformdirs when WANVID_CONFIG_DIR and
# WANVID_STATE_DIR say where the files are.
LAZY = ("wanvid.models", "wanvid.results", "wanvid.params", "wanvid.media", "wanvid.upload",
        "wanvid.poll", "wanvid.download", "wanvid.progress", "tomllib", "platformdirs", "PIL",
        "rich")

PROBE = """
import json, sys
from wanvid.cli import main
code = main(sys.argv[1:])
heavy = sorted({m.split('.')[0] for m in sys.modules} & set(HEAVY))
lazy = sorted(m for m in LAZY if m in sys.modules)
print(json.dumps({"code": code, "heavy": heavy, "lazy": lazy}), file=sys.stderr)
""".replace("HEAVY", repr(HEAVY)).replace("LAZY", repr(LAZY))


# The console script's own way in (wanvid.entry: `status ID` without Typer), then the
# modules loaded, whatever the exit.
ENTRY_PROBE = """
import json, sys
from wanvid.entry import main
sys.argv = ["wanvid", *sys.argv[1:]]
try:
    main()
except SystemExit as e:
    code = e.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def probe(args: list[str], base_url: str | None = None, *,
          program: str = PROBE) -> dict[str, object]:
    """Run ``wanvid ARGS`` in a fresh interpreter (WANVID_CONFIG_DIR and WANVID_STATE_DIR
    set, no config file): its exit code and which HEAVY and LAZY modules it loaded."""
    env = dict(os.environ, DASHSCOPE_API_KEY="sk-test-startup")
    assert env.get("WANVID_CONFIG_DIR") and env.get("WANVID_STATE_DIR")  # conftest's
    if base_url:
        env["DASHSCOPE_HTTP_BASE_URL"] = base_url
    p = subprocess.run([sys.executable, "-c", program, *args], env=env, capture_output=True,
                       text=True, timeout=60)
    last = p.stderr.strip().splitlines()[-1]
    got: dict[str, object] = json.loads(last)
    return got


def imported(args: list[str], base_url: str | None = None) -> tuple[int, list[str]]:
    got = probe(args, base_url)
    return got["code"], got["heavy"]  # type: ignore[return-value]


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    emu = Emulator(EmulatorConfig(pending=0.0, running=0.0))
    emu.start()
    yield emu
    emu.stop()


def test_tasks_json_imports_no_http_no_rich_no_pydantic() -> None:
    code, heavy = imported(["tasks", "--json"])
    assert code == 0
    assert heavy == []


def test_submit_url_dry_run_imports_no_http_no_rich_no_pydantic() -> None:
    code, heavy = imported(["submit", "https://example.com/cat.png", "-p", "x", "--dry-run"])
    assert code == 0
    assert heavy == []


def test_status_imports_http_but_no_rich_no_pydantic(emulator: Emulator) -> None:
    code, heavy = imported(["status", "0385dc79-5ff8-4d82-bcb6-0123456789ab"],
                           emulator.base_url)
    assert code in (0, 5)  # an unknown id on the emulator is UNKNOWN (exit 5)
    assert "pydantic" not in heavy and "rich" not in heavy
    assert "requests" in heavy  # the request really went out


def test_status_and_tasks_load_no_catalogue_no_toml_no_platformdirs(
        emulator: Emulator) -> None:
    status = probe(["status", "0385dc79-5ff8-4d82-bcb6-0123456789ab"], emulator.base_url)
    assert status["code"] in (0, 5) and status["lazy"] == []
    tasks = probe(["tasks", "--json"])
    assert tasks["code"] == 0 and tasks["lazy"] == []


def test_the_console_scripts_status_loads_no_typer(emulator: Emulator) -> None:
    """`wanvid status ID` (also with --json, -q) runs without Typer, click or rich
    (wanvid.quick); the request still goes out through requests."""
    for extra in ([], ["--json", "-q"]):
        got = probe(["status", "0385dc79-5ff8-4d82-bcb6-0123456789ab", *extra],
                    emulator.base_url, program=ENTRY_PROBE)
        top = {m.split(".")[0] for m in got["modules"]}  # type: ignore[attr-defined]
        assert got["code"] == 5  # an unknown id on the emulator is UNKNOWN
        assert "requests" in top
        assert not top & {"typer", "click", "rich", "pydantic"}
        assert "wanvid.cli" not in got["modules"]  # type: ignore[operator]
        assert not set(LAZY) & set(got["modules"])  # type: ignore[arg-type]


def test_a_config_file_is_still_read_and_a_model_still_looked_up(emulator: Emulator) -> None:
    """The other side of the laziness: with a config file, status reads it (tomllib); a
    submit needs the catalogue."""
    cfg = os.environ["WANVID_CONFIG_DIR"]
    os.makedirs(cfg, exist_ok=True)
    with open(os.path.join(cfg, "config.toml"), "w") as f:
        f.write('region = "intl"\n')
    status = probe(["status", "0385dc79-5ff8-4d82-bcb6-0123456789ab"], emulator.base_url)
    assert status["code"] in (0, 5) and "tomllib" in status["lazy"]  # type: ignore[operator]
    submit = probe(["submit", "https://example.com/cat.png", "-p", "x", "--dry-run"])
    assert submit["code"] == 0 and "wanvid.models" in submit["lazy"]  # type: ignore[operator]


@pytest.mark.parametrize(("annotation", "value", "want"), [
    (str, "abc", "abc"),
    (str | None, "abc", "abc"),
    (int, "42", 42),
    (int, "-3", -3),
    (int | None, 7, 7),
    (float, "1.5", 1.5),
    (float, "2", 2.0),
    (float, ".5", 0.5),
    (bool, True, True),
    (bool | None, False, False),
    (list[str], ("a", "b"), ["a", "b"]),
    (list[str] | None, [], []),
])
def test_fast_value_answers_plain_values(annotation: object, value: object,
                                         want: object) -> None:
    got = fast_value(annotation, value)
    assert got == want and type(got) is type(want)


@pytest.mark.parametrize(("annotation", "value"), [
    (int, "4.5"), (int, "abc"), (int, True), (float, "1e3"), (float, "inf"), (float, "x"),
    (str, 3), (list[int], ["1"]), (dict[str, str], {}),
])
def test_fast_value_leaves_everything_else_to_typer(annotation: object, value: object) -> None:
    assert fast_value(annotation, value) is _MISS


@pytest.mark.parametrize("args", [
    ["wait", "0385dc79-5ff8-4d82-bcb6-0123456789ab", "--timeout", "soon"],  # constrained
    ["emulator", "--throttle-every", "often"],  # plain int, through the fast path's fallback
    ["emulator", "--pending", "1e"],  # plain float
])
def test_bad_number_still_gets_typers_message(run, args: list[str]) -> None:  # type: ignore[no-untyped-def]
    r = run(args)
    assert r.code == 2
    assert f"Invalid value for '{args[-2]}'" in r.err
    assert "valid number" in r.err or "valid integer" in r.err


@pytest.mark.parametrize(("args", "message"), [
    (["tasks", "--limit", "0"], "greater than or equal to 1"),
    (["wait", "0385dc79-5ff8-4d82-bcb6-0123456789ab", "--timeout", "-1"], "greater than or equal to 0"),
])
def test_a_number_outside_its_range_still_gets_typers_message(
        run, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    r = run(args)
    assert r.code == 2 and message in r.err, r.err


def test_a_number_within_its_range_needs_no_pydantic() -> None:
    from wanvid.cli.coerce import _within

    class Info:
        min, max = 1, 10

    assert _within(Info(), 1) and _within(Info(), 10) and _within(Info(), None)
    assert not _within(Info(), 0) and not _within(Info(), 11) and not _within(Info(), "3")
