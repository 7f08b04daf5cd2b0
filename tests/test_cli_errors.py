"""The CLI's answer to a tracking server that is down: one clear line and exit code 4."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from helpers import write_notebook


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("command", [["runs", "nb.ipynb"], ["compare", "0123456789abcdef0123456789abcdef"]])
def test_a_tracking_server_that_is_down_is_one_clear_line(project, command):
    write_notebook(project / "nb.ipynb", ["x = 1"])
    uri = f"http://127.0.0.1:{closed_port()}"
    result = subprocess.run([sys.executable, "-m", "nbtrack", *command], cwd=project, capture_output=True,
                            text=True, timeout=120, env={**os.environ, "MLFLOW_TRACKING_URI": uri})
    assert result.returncode == 4, result.stderr
    assert f"cannot reach {uri}" in result.stderr and "unset MLFLOW_TRACKING_URI" in result.stderr
    assert "Traceback" not in result.stderr
