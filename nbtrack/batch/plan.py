"""A sweep's plan: what runs where, written before anything executes so ``--resume`` can finish it.

The plan lives beside the output notebooks (``<project>/.nbtrack/outputs/<sweep_id>/plan.json``)
and is logged as the parent run's artifact ``sweep/plan.json``, so a sweep can be
resumed from another checkout that shares the tracking store.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nbtrack.errors import NotFound

PLAN_FILE = "plan.json"
PLAN_ARTIFACT_DIR = "sweep"


def new_sweep_id() -> str:
    """Sortable and short: ``20261123-160700-a3f9``."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


@dataclass
class SweepPlan:
    sweep_id: str
    notebook: str  # absolute path of the input notebook
    project_root: str
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    combinations: list[dict[str, Any]]  # combination n is combinations[n - 1]
    cwd: str
    kernel_name: str | None = None
    load_extension: bool = True
    created: float = field(default_factory=time.time)
    metric: str | None = None  # --metric: the final table's order, and what `nbtrack runs` shows first
    maximize: bool | None = None  # --maximize / --minimize; None: by the metric's name

    @property
    def output_dir(self) -> Path:
        return Path(self.project_root) / ".nbtrack" / "outputs" / self.sweep_id

    def output(self, index: int) -> Path:
        return self.output_dir / f"{index}.ipynb"

    @property
    def indexes(self) -> list[int]:
        return list(range(1, len(self.combinations) + 1))

    def params(self, index: int) -> dict[str, Any]:
        return self.combinations[index - 1]

    def save(self) -> Path:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        path = self.output_dir / PLAN_FILE
        path.write_text(json.dumps(asdict(self), indent=1))
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepPlan:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})

    @classmethod
    def load(cls, path: Path) -> SweepPlan:
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except FileNotFoundError:
            raise NotFound(f"sweep plan not found: {path}") from None


def recorded_metric(project_root: str | Path, sweep_id: str) -> tuple[str | None, bool | None]:
    """The ``--metric`` and direction a sweep was run with, from its local plan (None, None
    when it had none or its plan is not here)."""
    path = Path(project_root) / ".nbtrack" / "outputs" / sweep_id / PLAN_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None, None
    return data.get("metric"), data.get("maximize")


def notebook_loads_nbtrack(path: str | Path) -> bool:
    """Does a code cell already ``%load_ext nbtrack``? Then the kernel need not load it at start."""
    from nbtrack.batch.params import read_notebook

    for cell in read_notebook(path)["cells"]:
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        for line in ("".join(source) if isinstance(source, list) else source).splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] in ("%load_ext", "%reload_ext") and "nbtrack" in words:
                return True
    return False
