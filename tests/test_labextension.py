"""The panel's TypeScript: lint, unit tests of its view logic, and the built extension's
compatibility with every JupyterLab 4 release from 4.2 on.

``npm run lint`` and ``npm test`` (eslint, vitest) run in ``labextension/`` with the packages
``pip install`` installed there (hatch-jupyter-builder runs ``npm install`` to build the panel);
nothing is downloaded here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import nbtrack

LABEXTENSION_SRC = Path(__file__).resolve().parents[1] / "labextension"
BUILT = Path(nbtrack.__file__).parent / "labextension"

#: Versions JupyterLab 4.2.0 shipped of the shared packages the panel uses (its oldest target).
JUPYTERLAB_4_2 = {
    "@jupyterlab/application": "4.2.0",
    "@jupyterlab/apputils": "4.3.0",
    "@jupyterlab/coreutils": "6.2.0",
    "@jupyterlab/notebook": "4.2.0",
    "@jupyterlab/rendermime": "4.2.0",
    "@jupyterlab/services": "7.2.0",
    "@jupyterlab/ui-components": "4.2.0",
    "@lumino/coreutils": "2.1.2",
    "@lumino/disposable": "2.1.2",
    "@lumino/signaling": "2.1.2",
    "@lumino/widgets": "2.3.2",
}

needs_npm = pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
needs_build = pytest.mark.skipif(
    not (BUILT / "package.json").exists(),
    reason="the lab extension is not built (npm run build:prod in labextension/)",
)


def npm(*args: str) -> subprocess.CompletedProcess[str]:
    if not (LABEXTENSION_SRC / "node_modules" / ".bin" / "vitest").exists():
        pytest.fail("labextension/node_modules lacks the dev tools: run `npm install` in labextension/")
    return subprocess.run(["npm", *args], cwd=LABEXTENSION_SRC, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "CI": "1", "NO_COLOR": "1"})


@needs_npm
def test_typescript_is_lint_clean():
    result = npm("run", "--silent", "lint")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


@needs_npm
def test_view_logic_unit_tests_pass():
    result = npm("test", "--silent")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    passed = re.search(r"Tests\s+(\d+) passed", output)
    assert passed and int(passed.group(1)) >= 40, output[-2000:]


@needs_build
def test_built_extension_declares_ranges_that_include_jupyterlab_4_2():
    from jupyterlab.commands import _test_overlap

    dependencies = json.loads((BUILT / "package.json").read_text())["dependencies"]
    for name, range_ in dependencies.items():
        if name.startswith(("@jupyterlab/", "@lumino/")):
            assert range_.startswith("^"), f"{name} is pinned to {range_}: use a ^ range"
    for name, version in JUPYTERLAB_4_2.items():
        assert name in dependencies, name
        assert _test_overlap(f"~{version}", dependencies[name], drop_prerelease1=True), (
            f"{name} {dependencies[name]} excludes JupyterLab 4.2's {version}")


@needs_build
def test_jupyter_lists_the_extension_as_enabled_and_ok(tmp_path):
    """`jupyter labextension list` against the installed JupyterLab (4.6 here) says OK, not X."""
    share = tmp_path / "share" / "jupyter" / "labextensions"
    share.mkdir(parents=True)
    (share / "nbtrack").symlink_to(BUILT, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    env.update(JUPYTER_PATH=str(tmp_path / "share" / "jupyter"), JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
               NO_COLOR="1")
    result = subprocess.run([sys.executable, "-m", "jupyterlab.labextensions", "list"], env=env,
                            capture_output=True, text=True, timeout=120)
    output = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    line = next((ln for ln in output.splitlines() if ln.strip().startswith("nbtrack ")), "")
    assert re.search(rf"nbtrack v{re.escape(nbtrack.__version__)} enabled\s+OK", line), output[-3000:]
    assert "incompatible" not in output or "nbtrack" not in output.split("incompatible", 1)[1], output
