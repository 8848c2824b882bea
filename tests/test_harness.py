"""The suite itself: what it needs from the process that runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = ("import signal; "
         "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)")
RUNNER = f"""
import signal, subprocess, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)  # started as `land &` by a script
from tests.conftest import interruptible_children
interruptible_children()
r = subprocess.run([sys.executable, "-c", {CHILD!r}], capture_output=True, text=True)
print(r.stdout.strip())
"""


def test_a_child_of_a_runner_that_ignores_sigint_still_gets_keyboard_interrupt() -> None:
    # The SIGINT tests (tests/e2e/test_e2e_json.py, test_e2e_wait.py) hung for 30 s when
    # the suite was started with SIGINT ignored: the wanvid they interrupt inherited it.
    r = subprocess.run([sys.executable, "-c", RUNNER], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "True"
