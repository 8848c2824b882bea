"""The package's public names: one table (``wanvid._LAZY``) says where each comes from."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import wanvid


def _type_checking_imports() -> dict[str, str]:
    """name -> module of the ``if TYPE_CHECKING:`` imports in wanvid/__init__.py."""
    tree = ast.parse(Path(wanvid.__file__).read_text(encoding="utf-8"))
    names: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom) and imp.module
                names.update({a.name: imp.module for a in imp.names})
    return names


def test_type_checkers_see_the_same_names_as_the_lazy_table() -> None:
    assert _type_checking_imports() == wanvid._LAZY


def test_every_public_name_resolves_to_its_module_object() -> None:
    import importlib

    for name, module in wanvid._LAZY.items():
        assert getattr(wanvid, name) is getattr(importlib.import_module(module), name), name
    assert set(wanvid.__all__) == {*wanvid._LAZY, "__version__"}


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        wanvid.no_such_thing  # noqa: B018
    except AttributeError as e:
        assert "no_such_thing" in str(e)
    else:
        raise AssertionError("no AttributeError")


def test_import_wanvid_loads_none_of_the_rest() -> None:
    code = ("import sys, wanvid; "
            "print(sorted(m for m in sys.modules if m.startswith('wanvid.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
