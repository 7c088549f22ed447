"""The package layers of docs/ARCHITECTURE.md: core is the ground, faces and provenance import nothing of the
packages above them (forge, detect, dashboard), not even lazily inside a function."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ABOVE = ("forge", "detect", "dashboard", "benchmarks")
FORBIDDEN = {                      # package -> top-level packages its modules must never import
    "core": ABOVE + ("faces", "provenance"),
    "faces": ABOVE,
    "provenance": ABOVE,
}


def imported_packages(source: str) -> list[tuple[int, str]]:
    """``(line, top-level package)`` of every absolute import in ``source``, module level or inside functions."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def test_imported_packages_sees_lazy_and_from_imports():
    source = "import os, forge.data\nfrom .x import y\ndef f():\n    from detect.score import s\n"
    assert imported_packages(source) == [(1, "os"), (1, "forge"), (4, "detect")]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_upward_imports(package):
    bad = [f"{path.relative_to(ROOT)}:{line} imports {name}"
           for path in sorted((ROOT / package).rglob("*.py"))
           for line, name in imported_packages(path.read_text()) if name in FORBIDDEN[package]]
    assert bad == []


def test_core_is_light_and_faces_provenance_load_no_forge():
    """Importing core's modules loads no numpy/pandas/pyarrow/cv2/av/PIL; the modules that used to reach into
    forge (the watermark trainer's cache reader, pixels' media I/O, faces' landmark detector) load none of it."""
    code = ("import sys, core.prepared, core.media; "
            "heavy = {'numpy', 'pandas', 'pyarrow', 'cv2', 'av', 'PIL'} & set(sys.modules); "
            "import provenance.watermark.learned.train, provenance.pixels, faces.landmarks, faces.weights; "
            "print(sorted(heavy), sorted({m.split('.')[0] for m in sys.modules} & {'forge', 'detect', 'dashboard'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[] []"
