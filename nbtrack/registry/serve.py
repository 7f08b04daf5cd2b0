"""``nbtrack serve MODEL_URI``: MLflow's own scoring server, in the current environment.

The URI is checked first, with one clear line for what does not exist (a
registered model, a version, an alias, a run or its model), and the port too.
Then MLflow's scoring server (``mlflow models serve --env-manager local``: its
FastAPI app under uvicorn, the same Python environment, no conda or virtualenv
build) loads the model and answers ``POST /invocations`` in MLflow's JSON formats
(``dataframe_split``, ``dataframe_records``, ``instances``, ``inputs``) until
Ctrl-C or SIGTERM, which stop it cleanly.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any

from nbtrack.errors import NbtrackError, NotFound, PortInUse, UsageProblem
from nbtrack.query.lookup import resolve_run_id
from nbtrack.query.store import ProjectLike, StoreRef, resolve_store
from nbtrack.registry.register import mlflow_errors, run_models

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

#: Seconds the scoring server gets to load the model and answer /ping.
START_TIMEOUT_S = 300.0
_STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Served:
    """A running scoring server."""

    model_uri: str
    url: str
    process: subprocess.Popen[bytes]

    @property
    def invocations(self) -> str:
        return f"{self.url}/invocations"


def resolve_model_uri(ref: StoreRef, uri: str) -> str:
    """``uri`` as MLflow takes it, once checked: ``models:/NAME/VERSION``, ``models:/NAME@ALIAS``,
    ``models:/m-<id>`` (a logged model) or ``runs:/RUN_ID/NAME`` (a short run
    id is completed). Raises ``NotFound`` naming what exists instead."""
    client = ref.client()
    if uri.startswith("runs:/"):
        run_part, _, model = uri[len("runs:/"):].partition("/")
        if not run_part or not model:
            raise UsageProblem(f"{uri!r}: a run's model is runs:/RUN_ID/MODEL_NAME")
        run_id = resolve_run_id(ref, run_part)
        _check_run_model(client, run_id, model.strip("/"))
        return f"runs:/{run_id}/{model.strip('/')}"
    if not uri.startswith("models:/"):
        raise UsageProblem(f"{uri!r} is not a model URI: give models:/NAME/VERSION, models:/NAME@ALIAS "
                           "or runs:/RUN_ID/MODEL (see `nbtrack register`)")
    rest = uri[len("models:/"):].strip("/")
    if re.fullmatch(r"m-[0-9a-f]{32}", rest):
        _check_logged_model(client, rest)
        return uri
    match = re.fullmatch(r"([^/@]+)(?:/([^/@]+)|@([\w\-]+))", rest)
    if not match:
        raise UsageProblem(f"{uri!r}: a registered model is models:/NAME/VERSION or models:/NAME@ALIAS")
    name, version, alias = match.groups()
    _check_version(client, name, version, alias)
    return uri


def _check_version(client: MlflowClient, name: str, version: str | None, alias: str | None) -> None:
    from mlflow.exceptions import MlflowException

    try:
        registered = client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        known = sorted(m.name for m in client.search_registered_models(max_results=20))
        raise NotFound(f"no registered model {name!r} (registered: {', '.join(known) or 'none yet'}; "
                       "register one with `nbtrack register RUN_ID --name NAME`)") from None
    versions = client.search_model_versions(f"name = '{name}'")
    numbers = sorted(int(v.version) for v in versions)
    listed = ", ".join(str(n) for n in numbers) or "none"
    if version is not None and version != "latest":
        if not version.isdigit() or int(version) not in numbers:
            raise NotFound(f"registered model {name!r} has no version {version} (versions: {listed})")
    elif alias is not None:
        aliases = sorted(_aliases(registered))
        if alias not in aliases:
            raise NotFound(f"registered model {name!r} has no alias {alias!r} "
                           f"(aliases: {', '.join(aliases) or 'none'}; versions: {listed})")
    if not numbers:
        raise NotFound(f"registered model {name!r} has no version yet")


def _aliases(registered: Any) -> list[str]:
    """A registered model's aliases (a dict alias -> version, or a list of entities by store)."""
    aliases = getattr(registered, "aliases", None) or {}
    if isinstance(aliases, dict):
        return [str(a) for a in aliases]
    return [str(getattr(a, "alias", a)) for a in aliases]


def _check_run_model(client: MlflowClient, run_id: str, model: str) -> None:
    names = sorted({m.name for m in run_models(client, client.get_run(run_id), wait=0)})
    if model not in names:
        raise NotFound(f"run {run_id[:8]} has no model named {model!r} "
                       f"({'it has ' + ', '.join(names) if names else 'it has no model'})")


def _check_logged_model(client: MlflowClient, model_id: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_logged_model(model_id)
    except MlflowException:
        raise NotFound(f"no logged model {model_id}") from None


def check_port(host: str, port: int) -> None:
    """Raise ``PortInUse`` when ``host:port`` cannot be listened on."""
    if not 0 < port < 65536:
        raise UsageProblem(f"--port must be between 1 and 65535, not {port}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # as uvicorn binds: connections of a server that just stopped (TIME_WAIT) do not count
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
                raise PortInUse(f"port {port} on {host} is in use: choose another with --port") from None
            raise UsageProblem(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def start(
    model_uri: str,
    *,
    host: str = "127.0.0.1",
    port: int,
    project: ProjectLike | None = None,
    tracking_uri: str | None = None,
    echo: Callable[[str], None] | None = None,
    timeout: float = START_TIMEOUT_S,
) -> Served:
    """Start MLflow's scoring server for ``model_uri`` and return once it answers ``/ping``.

    ``echo`` gets each line the server writes (its log); the last ones are in the error
    when it stops before answering.
    """
    ref = resolve_store(project=project, tracking_uri=tracking_uri)
    check_port(host, port)
    with mlflow_errors():
        uri = resolve_model_uri(ref, model_uri)
    _check_installed()
    import mlflow
    from mlflow.pyfunc import backend as pyfunc_backend
    from mlflow.utils import env_manager

    mlflow.set_tracking_uri(ref.tracking_uri)
    mlflow.set_registry_uri(ref.tracking_uri)
    # MLflow starts `uvicorn` by name: the one of this Python, even when its bin/ is not on PATH.
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    make_backend: Any = pyfunc_backend.PyFuncBackend  # untyped in MLflow
    backend = make_backend(config={}, env_manager=env_manager.LOCAL, workers=1)
    process = backend.serve(model_uri=uri, port=port, host=host, timeout=None, synchronous=False,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lines: deque[str] = deque(maxlen=20)
    threading.Thread(target=_pump, args=(process, lines, echo), daemon=True).start()
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    served = Served(uri, url, process)
    deadline = time.monotonic() + timeout
    try:
        while not _answers(url):
            if process.poll() is not None or time.monotonic() > deadline:
                last = " | ".join(line for line in list(lines)[-3:] if line) or "no output"
                raise NbtrackError(f"MLflow's scoring server stopped before answering ({last})")
            time.sleep(0.2)
    except BaseException:  # Ctrl-C while the model loads, too: no server left behind
        stop(served)
        raise
    return served


def _check_installed() -> None:
    import importlib.util

    missing = [m for m in ("uvicorn", "fastapi") if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageProblem(f"MLflow's scoring server needs {' and '.join(missing)}: "
                           f"pip install {' '.join(missing)}")


def _pump(process: subprocess.Popen[bytes], lines: deque[str], echo: Callable[[str], None] | None) -> None:
    assert process.stderr is not None
    for raw in process.stderr:
        line = raw.decode("utf-8", "replace").rstrip()
        lines.append(line)
        if echo is not None:
            echo(line)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def stop(served: Served, timeout: float = _STOP_TIMEOUT_S) -> int | None:
    """Stop the server (SIGTERM, then SIGKILL after ``timeout`` s); its exit code."""
    process = served.process
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
    return process.returncode


def serve_until_stopped(served: Served) -> int:
    """Wait until Ctrl-C or SIGTERM (then stop the server: 0) or the server exits (its code)."""
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not stopping.is_set():
            if served.process.poll() is not None:
                code = served.process.returncode
                raise NbtrackError(f"MLflow's scoring server exited on its own (exit code {code})")
            stopping.wait(0.5)
        stop(served)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

