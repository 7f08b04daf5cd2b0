"""Jupyter server extension: the REST API behind nbtrack's JupyterLab panel.

``pip install nbtrack`` enables it (``etc/jupyter/jupyter_server_config.d/nbtrack.json``
in the wheel); ``jupyter server extension list`` shows it as ``nbtrack.server``.
Its options live on :class:`~nbtrack.server.service.NbtrackService`, e.g. in
``jupyter_server_config.py``::

    c.NbtrackService.mlflow_ui_url = "http://127.0.0.1:5000"
    c.NbtrackService.rerun_workers = 2

Nothing heavy is imported here: MLflow and pandas load in a background thread
once the server has started (so the panel's first request does not wait for them).
"""

from __future__ import annotations

from typing import Any

SETTINGS_KEY = "nbtrack"


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "nbtrack.server"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Put one configured :class:`NbtrackService` in the web app settings and route to it."""
    from nbtrack.server.handlers import setup_handlers
    from nbtrack.server.service import NbtrackService

    service = NbtrackService(parent=serverapp, root_dir=serverapp.root_dir, log=serverapp.log)
    serverapp.web_app.settings[SETTINGS_KEY] = service
    setup_handlers(serverapp.web_app)
    service.warm_up()
    serverapp.log.info("nbtrack server extension %s loaded", service.version)
