"""Thin, authenticated REST handlers over :class:`~nbtrack.server.service.NbtrackService`.

Routes (under the server's base URL), all JSON except the artifact bytes::

    GET  /nbtrack/api/version                      version handshake, server root, MLflow UI
    GET  /nbtrack/api/runs?notebook=PATH            runs of a notebook, newest first, and a change token
    GET  /nbtrack/api/changes?notebook=PATH         the change token alone (polled: cheap)
    GET  /nbtrack/api/compare?ids=A,B[&notebook=P]  comparison of runs (query layer's to_dict)
    GET  /nbtrack/api/artifact/RUN_ID/PATH[?notebook=P]   one artifact file of that run
    GET  /nbtrack/api/output/RUN_ID[?notebook=P]    the run's output notebook as static HTML
    POST /nbtrack/api/rerun   {"run_id", "params"?, "notebook"?, "current"?}  -> 202 + job
    POST /nbtrack/api/register {"run_id", "name", "model"?, "alias"?, "force"?, "notebook"?}
                                                    -> 201 (200: already that version) + version
    GET  /nbtrack/api/jobs/ID                        a background job's state and progress

PATH arguments are relative to the server's root. Errors are JSON
``{"message", "reason"}`` with the status of the typed error
(:mod:`nbtrack.errors`): 400 for a malformed request, 404 for an unknown run,
artifact, notebook, job or run without a model, 503 for an unreachable store.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from nbtrack.errors import NbtrackError, UsageProblem
from nbtrack.server import SETTINGS_KEY
from nbtrack.server.service import NbtrackService

T = TypeVar("T")
_CHUNK = 1 << 20
# Artifacts are user data served from Jupyter's origin: never let one run as a page.
_ARTIFACT_CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox"


class NbtrackHandler(APIHandler):
    """Reaches the service; maps nbtrack's typed errors to their HTTP status and a JSON message."""

    @property
    def service(self) -> NbtrackService:
        service: NbtrackService = self.settings[SETTINGS_KEY]
        return service

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking service call (MLflow, SQLite, files) off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(fn, *args, **kwargs))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        status = _status_of(exc)
        if status is None:
            super().write_error(status_code, **kwargs)
            return
        self.set_status(status)
        self.finish(json.dumps({"message": str(exc), "reason": type(exc).__name__}))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        status = _status_of(value)
        if status is not None and status < 500:
            self.log.info("nbtrack %s %s: %s", self.request.method, self.request.uri, value)
            return
        super().log_exception(typ, value, tb)

    def notebook_argument(self, required: bool = False) -> str | None:
        notebook = self.get_argument("notebook", "") or None
        if required and not notebook:
            raise UsageProblem("which notebook? pass ?notebook=<path relative to the server root>")
        return notebook


def _status_of(exc: BaseException | None) -> int | None:
    if isinstance(exc, NbtrackError):
        return exc.http_status
    get_status = getattr(exc, "get_http_status_code", None)  # MlflowException
    if callable(get_status):
        status = get_status()
        return status if isinstance(status, int) else None
    return None


class VersionHandler(NbtrackHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        self.finish(json.dumps(self.service.info()))


class RunsHandler(NbtrackHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        notebook = self.notebook_argument(required=True)
        self.finish(json.dumps(await self.call(self.service.runs, notebook)))


class ChangesHandler(NbtrackHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        notebook = self.notebook_argument(required=True)
        self.finish(json.dumps(await self.call(self.service.changes, notebook)))


class CompareHandler(NbtrackHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        ids = [i for raw in self.get_arguments("ids") for i in raw.split(",") if i.strip()]
        result = await self.call(self.service.compare, ids, self.notebook_argument())
        self.finish(json.dumps(result, allow_nan=False))


class ArtifactHandler(NbtrackHandler):
    @tornado.web.authenticated
    async def get(self, run_id: str, path: str) -> None:
        target, content_type = await self.call(
            self.service.artifact, run_id, path, self.notebook_argument()
        )
        self.set_header("Content-Type", content_type)  # before the first flush sends headers
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "private, max-age=3600")
        with target.open("rb") as stream:
            while chunk := stream.read(_CHUNK):
                self.write(chunk)
                await self.flush()
        self.finish(set_content_type=content_type)

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Content-Security-Policy", _ARTIFACT_CSP)


class OutputHandler(NbtrackHandler):
    """The output notebook as HTML: user content, so as inert as an artifact (no script runs)."""

    @tornado.web.authenticated
    async def get(self, run_id: str) -> None:
        html = await self.call(self.service.output_html, run_id, self.notebook_argument())
        self.set_header("X-Content-Type-Options", "nosniff")
        self.finish(html, set_content_type="text/html; charset=utf-8")

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Content-Security-Policy", _ARTIFACT_CSP)


class RerunHandler(NbtrackHandler):
    @tornado.web.authenticated
    async def post(self) -> None:
        body = self.get_json_body() or {}
        if not isinstance(body, dict):
            raise UsageProblem('POST a JSON object: {"run_id": "<id>", "params": {...}}')
        job = await self.call(
            self.service.start_rerun,
            body.get("run_id", ""),
            body.get("params"),
            body.get("notebook") or self.notebook_argument(),
            current=bool(body.get("current", False)),
        )
        self.set_status(202)
        self.set_header("Location", url_path_join(self.base_url, "nbtrack/api/jobs", job.id))
        self.finish(json.dumps(self.service.job(job.id)))


class RegisterHandler(NbtrackHandler):
    """Register a run's model in MLflow's Model Registry (what `nbtrack register` does)."""

    @tornado.web.authenticated
    async def post(self) -> None:
        body = self.get_json_body() or {}
        if not isinstance(body, dict):
            raise UsageProblem('POST a JSON object: {"run_id": "<id>", "name": "<registered model>"}')
        done = await self.call(
            self.service.register, body.get("run_id"), body.get("name"),
            body.get("notebook") or self.notebook_argument(), model=body.get("model"),
            alias=body.get("alias"), force=bool(body.get("force", False)),
        )
        self.set_status(201 if done["created"] else 200)
        self.finish(json.dumps(done))


class JobHandler(NbtrackHandler):
    @tornado.web.authenticated
    async def get(self, job_id: str) -> None:
        self.finish(json.dumps(self.service.job(job_id)))


def setup_handlers(web_app: Any) -> None:
    """Route ``/nbtrack/api/*`` under the server's base URL."""
    base = url_path_join(web_app.settings["base_url"], "nbtrack", "api")
    web_app.add_handlers(
        ".*$",
        [
            (url_path_join(base, "version"), VersionHandler),
            (url_path_join(base, "runs"), RunsHandler),
            (url_path_join(base, "changes"), ChangesHandler),
            (url_path_join(base, "compare"), CompareHandler),
            (url_path_join(base, r"artifact/([^/]+)/(.+)"), ArtifactHandler),
            (url_path_join(base, r"output/([^/]+)"), OutputHandler),
            (url_path_join(base, "rerun"), RerunHandler),
            (url_path_join(base, "register"), RegisterHandler),
            (url_path_join(base, r"jobs/([^/]+)"), JobHandler),
        ],
    )
