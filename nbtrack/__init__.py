"""nbtrack: notebooks as tracked, re-runnable experiments.

In a notebook::

    %load_ext nbtrack

and every cell execution, the ``parameters`` cell, metric-like variables and
every displayed figure are recorded into an MLflow run (and Delta tables).
Nothing runs at import: the extension starts when IPython loads it.

The public API, re-exported here: what a notebook records from its cells
(:mod:`nbtrack.record`: ``log``, ``log_params``, ``read_delta``, ...) and what works across
runs (:mod:`nbtrack.experiments`: ``runs``, ``compare``, ``sweep``, ``rerun``, ``retrain``,
``register``).
"""

from __future__ import annotations

from typing import Any

from nbtrack.experiments import compare, register, rerun, retrain, runs, sweep
from nbtrack.record import current_run, flush, log, log_figure, log_model, log_params, read_delta, read_table
from nbtrack.version import __version__

__all__ = [
    "__version__",
    "compare",
    "current_run",
    "flush",
    "load_ipython_extension",
    "log",
    "log_figure",
    "log_model",
    "log_params",
    "read_delta",
    "read_table",
    "register",
    "rerun",
    "retrain",
    "runs",
    "sweep",
    "unload_ipython_extension",
]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext nbtrack``: start capturing this kernel's cells, and the ``%nbtrack`` magics.

    Parameters
    ----------
    ipython : IPython.core.interactiveshell.InteractiveShell
        The shell loading the extension (IPython passes it).
    """
    from nbtrack.capture.extension import load
    from nbtrack.magics import register_magics

    session = load(ipython)
    if session is not None:
        register_magics(ipython, session)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext nbtrack``: end the run and remove every hook and magic nbtrack installed.

    Parameters
    ----------
    ipython : IPython.core.interactiveshell.InteractiveShell
        The shell unloading the extension (IPython passes it).
    """
    from nbtrack.capture.extension import unload
    from nbtrack.magics import unregister_magics

    unload(ipython)
    unregister_magics(ipython)
