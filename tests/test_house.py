"""The house rules hold: ``mypy --strict`` (``[tool.mypy]`` in pyproject.toml) and the import
layers of ``.importlinter`` (data flows one way, no cycles). On failure the tools' own report is
the message."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_mypy_strict_is_clean() -> None:
    pytest.importorskip("mypy", reason="mypy comes with the [test] extra")
    # The package list and strictness come from pyproject.toml, so this is what a developer runs.
    done = _run([sys.executable, "-m", "mypy"], timeout=280)
    assert done.returncode == 0, f"mypy found problems:\n{done.stdout}{done.stderr}"


def test_import_layers_are_kept() -> None:
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which(
        "lint-imports")
    if lint_imports is None:
        pytest.skip("import-linter comes with the [test] extra")
    done = _run([lint_imports, "--no-cache"], timeout=120)
    assert done.returncode == 0, f"lint-imports found broken contracts:\n{done.stdout}{done.stderr}"
    assert "0 broken" in done.stdout
