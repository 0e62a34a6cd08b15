"""The code's layout stays readable: no module over about 400 lines, no class over about 300
(see docs/internals.md; a module that grows past it holds a second idea, to be moved out)."""

from __future__ import annotations

import ast
import pathlib

import pytest

_ROOT = pathlib.Path(__file__).resolve().parents[2]
_PACKAGES = ("drmaa2", "drmaa2_ostracker", "drmaa2_slurm")
_MODULE_LINES = 400
_CLASS_LINES = 320

_MODULES = sorted(path for package in _PACKAGES for path in (_ROOT / package).rglob("*.py"))


def test_the_packages_are_found() -> None:
    assert len(_MODULES) > 50


@pytest.mark.parametrize("path", _MODULES, ids=lambda path: str(path.relative_to(_ROOT)))
def test_module_and_class_sizes(path: pathlib.Path) -> None:
    text = path.read_text(encoding="utf-8")
    lines = len(text.splitlines())
    assert lines <= _MODULE_LINES, f"{path.relative_to(_ROOT)} has {lines} lines"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef):
            assert node.end_lineno is not None
            size = node.end_lineno - node.lineno + 1
            assert size <= _CLASS_LINES, f"class {node.name} in {path.name} has {size} lines"
