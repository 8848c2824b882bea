"""README's exit-code table lists exactly the codes of wanvid.errors.ExitStatus (plus 1)."""

from __future__ import annotations

import re
from pathlib import Path

from wanvid.errors import EXIT_CODE_TABLE, ExitStatus

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_exit_codes_match_the_enum() -> None:
    section = README.read_text(encoding="utf-8").split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    codes = {int(m.group(1)) for m in re.finditer(r"^\| (\d+) \|", section, re.M)}
    assert codes == {int(s) for s in ExitStatus}
    assert {c for c, _ in EXIT_CODE_TABLE} == {int(s) for s in ExitStatus}
