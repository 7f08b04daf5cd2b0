"""``%nbtrack`` and ``%%nbtrack``: control and look at tracking from the notebook.

Line magic::

    %nbtrack status              what is being recorded, and delivery health
    %nbtrack runs [NOTEBOOK]     this notebook's runs, as a table
    %nbtrack compare ID [ID...]  params diff, metrics, curves and figures of runs (ids or
                                 their first 8 characters, as tables show them)
    %nbtrack new [NAME]          end this run and start another
    %nbtrack end                 end this run (the next cell starts a new one)
    %nbtrack off | on            pause / resume capture
    %nbtrack config KEY=VALUE    set an option (see NbtrackConfig)
    %nbtrack log NAME=VALUE ...  log metrics
    %nbtrack panel               the run list and comparison as a widget

Cell magic: ``%%nbtrack params`` (literal assignments become params),
``%%nbtrack metrics`` (numeric assignments become metrics), ``%%nbtrack skip``
(run the cell without recording it).
"""

from __future__ import annotations

import ast
import shlex
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class

from nbtrack.capture.metrics import as_number
from nbtrack.capture.params import literal_assignments
from nbtrack.config import set_option
from nbtrack.errors import NbtrackError

_LINE_COMMANDS = ("status", "runs", "compare", "new", "end", "off", "on", "config", "log", "panel")
_CELL_COMMANDS = ("params", "metrics", "skip")


@magics_class
class NbtrackMagics(Magics):
    def __init__(self, shell: Any, session: Any) -> None:
        super().__init__(shell=shell)
        self.session = session

    @line_cell_magic
    def nbtrack(self, line: str, cell: str | None = None) -> Any:
        """Control and look at nbtrack's tracking from the notebook.

        Line magic::

            %nbtrack status              what is being recorded, and delivery health
            %nbtrack runs [NOTEBOOK]     this notebook's runs, as a table
            %nbtrack compare ID [ID...]  params diff, metrics, curves and figures of runs
                                         (ids or their first 8 characters)
            %nbtrack new [NAME]          end this run and start another
            %nbtrack end                 end this run (the next cell starts a new one)
            %nbtrack off                 pause capture
            %nbtrack on                  resume capture
            %nbtrack config              list the options and their values
            %nbtrack config KEY=VALUE    set an option, e.g. metric_words=acc,loss,bleu
            %nbtrack log NAME=VALUE ...  log metrics at their next step
            %nbtrack panel               the run list and comparison as a widget

        Cell magic::

            %%nbtrack params             the cell's literal assignments become params
            %%nbtrack metrics            the cell's numeric assignments become metrics
            %%nbtrack skip               run the cell without recording it
        """
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"%nbtrack: {exc}") from None
        command, args = (words[0], words[1:]) if words else ("status", [])
        try:
            if cell is not None:
                if command not in _CELL_COMMANDS:
                    raise UsageError(f"%%nbtrack {command}: unknown; use one of {', '.join(_CELL_COMMANDS)}")
                return getattr(self, f"_cell_{command}")(cell)
            if command not in _LINE_COMMANDS:
                raise UsageError(f"%nbtrack {command}: unknown; use one of {', '.join(_LINE_COMMANDS)}")
            return getattr(self, f"_{command}")(args)
        except NbtrackError as exc:
            raise UsageError(f"%nbtrack {command}: {exc}") from None

    # -- line commands --------------------------------------------------------------------

    def _status(self, args: list[str]) -> None:
        s = self.session
        run = s.current_run()
        lines = [
            f"nbtrack {'on' if s.config.enabled else 'OFF'} - notebook: {s.notebook or 'unknown'} "
            f"(found by: {s.detection.how})",
            f"project: {s.project.root}   journal: {s.journal.path}",
        ]
        if run is not None:
            lines.append(f"run: {run.run_id or '(being delivered)'}  experiment: {run.experiment}")
            if run.params:
                lines.append("params: " + ", ".join(f"{k}={v}" for k, v in run.params.items()))
        else:
            lines.append("run: none yet (the next cell starts one)")
        status = s.delivery.status.read() if s.delivery is not None else {}
        delivered = status.get("delivered", {})
        lines.append(f"events: {s.journal.seq} written, delivered: "
                     + (", ".join(f"{k} {v}" for k, v in delivered.items()) or "none yet"))
        for problem in s.delivery.current_problems() if s.delivery is not None else []:
            lines.append(f"problem: {problem}")
        print("\n".join(lines))

    def _runs(self, args: list[str]) -> Any:
        from nbtrack.query.render import RunsTable
        from nbtrack.query.runs import list_runs

        notebook = args[0] if args else (str(self.session.notebook) if self.session.notebook else None)
        if notebook is None:
            raise UsageError("%nbtrack runs: this notebook's path is unknown; pass one: %nbtrack runs PATH")
        self.session.flush(5)
        return RunsTable(list_runs(notebook))

    def _compare(self, args: list[str]) -> Any:
        from nbtrack.query.compare import compare, compared_ids

        compared_ids(args)  # the API's rule and message, before waiting for delivery
        self.session.flush(5)
        return compare(args)

    def _new(self, args: list[str]) -> None:
        run = self.session.new_run(" ".join(args) or None,
                                   carry=dict(self.session.run.values) if self.session.run else None)
        print(f"nbtrack: new run {run.key[:8]} started")

    def _end(self, args: list[str]) -> None:
        self.session.end_run()
        self.session.idle = True
        self.session.skip_next = True  # the %nbtrack end cell itself belongs to no run
        print("nbtrack: run ended; the next cell starts a new one")

    def _off(self, args: list[str]) -> None:
        self.session.config.enabled = False
        print("nbtrack: capture paused (%nbtrack on resumes)")

    def _on(self, args: list[str]) -> None:
        self.session.config.enabled = True
        print("nbtrack: capture on")

    def _config(self, args: list[str]) -> None:
        if not args:
            c = self.session.config
            for name in sorted(c.trait_names(config=True)):
                print(f"{name} = {getattr(c, name)!r}")
            return
        for item in args:
            key, sep, value = item.partition("=")
            if not sep:
                raise UsageError(f"%nbtrack config: expected KEY=VALUE, got {item!r}")
            if key == "notebook":
                self.session.set_notebook(value)
            else:
                set_option(self.session.config, key, value)
        if any(item.startswith("metric_words=") for item in args):
            from nbtrack.capture.metrics import MetricNames

            self.session.metrics.names = MetricNames(self.session.config.metric_words)

    def _log(self, args: list[str]) -> None:
        metrics: dict[str, Any] = {}
        for item in args:
            key, sep, value = item.partition("=")
            if not sep:
                raise UsageError(f"%nbtrack log: expected NAME=VALUE, got {item!r}")
            try:
                metrics[key] = float(value) if value.strip() else float("nan")
            except ValueError:
                raise UsageError(f"%nbtrack log: {key}={value!r} is not a number") from None
        self.session.log_metrics(metrics)

    def _panel(self, args: list[str]) -> Any:
        from nbtrack.widgets import show_panel

        return show_panel(str(self.session.notebook) if self.session.notebook else None)

    # -- cell commands --------------------------------------------------------------------

    @property
    def _shell(self) -> Any:
        """The shell these magics were registered on (IPython types it as optional)."""
        assert self.shell is not None
        return self.shell

    def _run_body(self, cell: str) -> tuple[ast.Module | None, dict[str, Any]]:
        """Run the body in the user's namespace (no nested cell record); return its tree and bindings."""
        from nbtrack.capture.metrics import assigned_names

        code = self._shell.transform_cell(cell)
        self._shell.ex(code)
        try:
            tree = ast.parse(code)
        except SyntaxError:
            return None, {}
        ns = self._shell.user_ns
        return tree, {n: ns[n] for n in assigned_names(tree) if n in ns}

    def _cell_params(self, cell: str) -> None:
        tree, _ = self._run_body(cell)
        if tree is not None:
            self.session.log_params(literal_assignments(tree), source="magic")

    def _cell_metrics(self, cell: str) -> None:
        _, bound = self._run_body(cell)
        self.session.log_metrics({k: v for k, v in bound.items() if as_number(v) is not None})

    def _cell_skip(self, cell: str) -> None:
        config = self.session.config
        was, config.enabled = config.enabled, False
        try:
            result = self._shell.run_cell(cell, store_history=False)
        finally:
            config.enabled = was
            self.session.skip_next = True
        result.raise_error()


def register_magics(shell: Any, session: Any) -> None:
    """``%nbtrack`` / ``%%nbtrack`` for ``session`` (registering again replaces them)."""
    shell.register_magics(NbtrackMagics(shell=shell, session=session))


def unregister_magics(shell: Any) -> None:
    magics = shell.magics_manager.magics
    magics["line"].pop("nbtrack", None)
    magics["cell"].pop("nbtrack", None)
