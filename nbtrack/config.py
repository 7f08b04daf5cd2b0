"""nbtrack's options: one traitlets ``Configurable``, so IPython config files work.

Precedence, lowest first: IPython/traitlets config (``c.NbtrackConfig.x = ...``),
``[tool.nbtrack]`` in the project's ``pyproject.toml``, ``NBTRACK_<OPTION>``
environment variables, then ``%nbtrack config option=value`` in the notebook.

Example ``ipython_config.py``::

    c.NbtrackConfig.metric_words = ["acc", "loss", "bleu"]
    c.NbtrackConfig.delivery = "thread"
"""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path
from typing import Any

from traitlets import Bool, Enum, Float, Int, List, Unicode
from traitlets.config import Configurable

from nbtrack.errors import UsageProblem

DEFAULT_METRIC_WORDS = [
    "acc", "accuracy", "auc", "error", "f1", "loss", "mae", "mape", "mse",
    "precision", "recall", "r2", "rmse", "score",
]


class NbtrackConfig(Configurable):
    """Options of nbtrack's capture and delivery."""

    enabled = Bool(True, help="Capture anything at all (%nbtrack off/on toggles it).").tag(config=True)
    notebook = Unicode(
        "", help="Path of the notebook, when it cannot be detected (e.g. a UUID session name)."
    ).tag(config=True)
    project_dir = Unicode(
        "", help="Project root holding .nbtrack/ (default: git root of the notebook, else its folder)."
    ).tag(config=True)
    tracking_uri = Unicode(
        "", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else <project>/.nbtrack/mlflow.db)."
    ).tag(config=True)
    metric_words = List(
        Unicode(), default_value=DEFAULT_METRIC_WORDS,
        help="Words that make a top-level numeric variable a metric when its name, split on '_', contains one.",
    ).tag(config=True)
    auto_metrics = Bool(True, help="Log top-level numeric variables named like metrics.").tag(config=True)
    capture_figures = Bool(True, help="Log every displayed image/plot as an artifact.").tag(config=True)
    log_models = Bool(
        True, help="At run end, log each top-level variable holding a fitted model (scikit-learn, XGBoost, "
        "LightGBM, PyTorch, Keras) as an MLflow model named after the variable.",
    ).tag(config=True)
    max_model_mb = Float(
        500.0, help="A model larger than this (MB, pickled) is not logged; one warning says so.",
    ).tag(config=True)
    loop_metrics = Bool(
        True, help="Log metric-like names assigned inside a cell's loops, one point per iteration.",
    ).tag(config=True)
    loop_points_per_second = Float(
        50.0, help="After loop_burst points of a metric in a cell, at most this many per second (hot loops).",
    ).tag(config=True)
    system_metrics_interval = Float(
        2.0, help="Seconds between samples of a running kernel's CPU, memory and GPU (system/* metrics; 0: off).",
    ).tag(config=True)
    output_metrics = Bool(
        True, help="Log metric-like values a cell prints (epoch 3: loss=0.25 acc=0.9) as metric points.",
    ).tag(config=True)
    output_patterns = List(
        Unicode(), default_value=[],
        help="More printed forms to read: regular expressions with groups 'name' and 'value' (and 'step').",
    ).tag(config=True)
    loop_burst = Int(100, help="Points of a metric a cell's loops record one by one before the rate applies.").tag(
        config=True)
    delivery = Enum(
        ["process", "thread"], default_value="process",
        help="Deliver journals from a per-project background process, or from a thread in the kernel.",
    ).tag(config=True)
    fsync = Bool(False, help="fsync the journal after every event (survives power loss, ~1 ms/event).").tag(config=True)
    strict = Bool(False, help="Raise capture errors instead of warning (for tests).").tag(config=True)
    lake = Bool(True, help="Also deliver into Delta tables under <project>/.nbtrack/lake.").tag(config=True)
    lake_path = Unicode("", help="Where the Delta tables live (any URI deltalake supports).").tag(config=True)
    spark_schema = Unicode("", help="catalog.schema for the tables when writing through Spark.").tag(config=True)
    max_param_length = Int(6000, help="Longer param values are truncated (MLflow's limit).").tag(config=True)
    flush_timeout = Float(15.0, help="Seconds nbtrack.flush() and kernel exit wait for delivery.").tag(config=True)
    delivery_retry_hours = Float(
        12.0, help="Hours the delivery process keeps retrying an unreachable store after the last kernel "
        "ended; then the backlog waits in the journal for the next kernel or `nbtrack recover`.",
    ).tag(config=True)


def _parse_value(raw: str) -> Any:
    """``"0.1"`` -> 0.1, ``"[a, b]"`` stays a string unless it is a Python literal."""
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        if raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        return raw


def _coerce(config: NbtrackConfig, name: str, value: Any) -> Any:
    trait = config.traits()[name]
    if isinstance(trait, List) and isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(trait, Unicode) and not isinstance(value, str):
        return str(value)
    return value


def set_option(config: NbtrackConfig, name: str, value: Any) -> None:
    """Set one option by name, with a message that lists the options on a typo."""
    if name not in config.trait_names(config=True):
        known = ", ".join(sorted(config.trait_names(config=True)))
        raise UsageProblem(f"unknown nbtrack option {name!r}; options are: {known}")
    value = _parse_value(value) if isinstance(value, str) else value
    try:
        setattr(config, name, _coerce(config, name, value))
    except Exception as exc:  # traitlets raises TraitError with a long text
        raise UsageProblem(f"bad value for {name}: {value!r} ({exc})") from None


def read_pyproject(project_root: Path) -> dict[str, Any]:
    path = project_root / "pyproject.toml"
    if not path.is_file():
        return {}
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[no-redef,import-not-found,unused-ignore]
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    section = data.get("tool", {}).get("nbtrack", {})
    return section if isinstance(section, dict) else {}


def apply_sources(config: NbtrackConfig, project_root: Path | None) -> list[str]:
    """Layer pyproject.toml then ``NBTRACK_*`` variables onto ``config``.

    Returns the problems found (bad keys or values) so the caller can warn once.
    """
    problems: list[str] = []
    layers: list[tuple[str, dict[str, Any]]] = []
    if project_root is not None:
        layers.append(("pyproject.toml [tool.nbtrack]", read_pyproject(project_root)))
    env = {
        name: os.environ[f"NBTRACK_{name.upper()}"]
        for name in config.trait_names(config=True)
        if os.environ.get(f"NBTRACK_{name.upper()}", "") != ""
    }
    layers.append(("NBTRACK_* environment", env))
    for origin, values in layers:
        for key, value in values.items():
            try:
                set_option(config, key.replace("-", "_"), value)
            except UsageProblem as exc:
                problems.append(f"{origin}: {exc}")
    return problems


def project_config(project_root: Path) -> NbtrackConfig:
    """The options as a process outside a kernel sees them (pyproject.toml, then NBTRACK_*)."""
    config = NbtrackConfig()
    apply_sources(config, project_root)
    return config
