"""Curves from loops, with no call: each assignment to a metric-like name inside a loop is a point.

An IPython AST transformer rewrites the loops at a cell's top level (and the
loops, ifs, withs and trys inside them; never function or class bodies). After
each assignment to a metric-like name it adds::

    if __nbtrack_due__:
        __nbtrack_point__("val_loss", val_loss, epoch)

and after the loop ``__nbtrack_loop_end__(("val_loss", ...), epoch)``, which
keeps the last value. The check is one global lookup, so a hot loop pays next
to nothing. Each metric has a token bucket: the first ``loop_burst`` points of
a cell are recorded one by one (a short or slow loop loses nothing), then at
most ``loop_points_per_second``; when a metric is over its rate the recorder
lowers the flag and a timer thread raises it again at that rate. The step is
the loop variable when a single loop counts with ints (``for epoch in
range(50)``), else the metric's next step; the run is tagged when points were
sampled.
"""

from __future__ import annotations

import ast
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nbtrack import tags
from nbtrack.capture.metrics import as_number

if TYPE_CHECKING:
    from nbtrack.capture.session import TrackingSession

DUE = "__nbtrack_due__"
POINT = "__nbtrack_point__"
LOOP_END = "__nbtrack_loop_end__"
_LOOPS = (ast.For, ast.AsyncFor, ast.While)
_HOLD_POINTS = 500  # points held back for one journal write, at most
_HOLD_SECONDS = 0.5  # and for at most this long


class LoopTransformer(ast.NodeTransformer):
    """Adds the point hooks to a cell's loops (IPython calls ``visit`` on each cell's module)."""

    def __init__(self, session: TrackingSession) -> None:
        self.session = session

    def visit(self, node: ast.AST) -> Any:  # noqa: D102 - IPython's entry point
        if not isinstance(node, ast.Module) or not self.session.config.loop_metrics:
            return node
        if not any(isinstance(stmt, _LOOPS) for stmt in node.body) or _resets_namespace(node):
            return node
        try:
            body: list[ast.stmt] = []
            for stmt in node.body:
                body.extend(self._loop(stmt, nested=False) if isinstance(stmt, _LOOPS) else [stmt])
            node.body = body
            return ast.fix_missing_locations(node)
        except Exception:  # noqa: BLE001 - IPython unregisters a transformer that raises: never break a cell
            return node

    def _loop(self, loop: ast.For | ast.AsyncFor | ast.While, *, nested: bool) -> list[ast.stmt]:
        """The loop with hooks in its body, followed by its loop-end call when it assigns metrics.

        Points of a top-level ``for name in ...`` loop are stepped by ``name`` (when it is an
        int); points in a nested loop or a ``while`` loop by the metric's own counter (the outer
        loop's variable would repeat a step for every inner iteration).
        """
        step = None
        if isinstance(loop, (ast.For, ast.AsyncFor)) and isinstance(loop.target, ast.Name) and not nested:
            step = loop.target.id
        names: list[str] = []
        loop.body = self._body(loop.body, step, names)
        loop.orelse = self._body(loop.orelse, None, names)
        if not names:
            return [loop]
        end = ast.Expr(_call(LOOP_END, [ast.Tuple([ast.Constant(n) for n in dict.fromkeys(names)], ast.Load()),
                                         _step_arg(step)]))
        return [loop, ast.copy_location(end, loop)]

    def _body(self, body: list[ast.stmt], step: str | None, names: list[str]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for stmt in body:
            if isinstance(stmt, _LOOPS):
                out.append(self._loop(stmt, nested=True)[0])  # its last values: the outer loop's end
                names.extend(_assigned_metrics(stmt, self.session))
                continue
            if isinstance(stmt, ast.If):
                stmt.body = self._body(stmt.body, step, names)
                stmt.orelse = self._body(stmt.orelse, step, names)
            elif isinstance(stmt, (ast.With, ast.AsyncWith)):
                stmt.body = self._body(stmt.body, step, names)
            elif isinstance(stmt, ast.Try):
                stmt.body = self._body(stmt.body, step, names)
                for handler in stmt.handlers:
                    handler.body = self._body(handler.body, step, names)
                stmt.orelse = self._body(stmt.orelse, step, names)
                stmt.finalbody = self._body(stmt.finalbody, step, names)
            out.append(stmt)
            metrics = [n for n in _targets(stmt) if n in self.session.metrics.names]
            if metrics:
                names.extend(metrics)
                calls: list[ast.stmt] = [
                    ast.Expr(_call(POINT, [ast.Constant(n), ast.Name(n, ast.Load()), _step_arg(step)]))
                    for n in dict.fromkeys(metrics)
                ]
                check = ast.If(ast.Name(DUE, ast.Load()), calls, [])
                out.append(ast.copy_location(check, stmt))
        return out


def _call(name: str, args: list[ast.expr]) -> ast.Call:
    return ast.Call(ast.Name(name, ast.Load()), args, [])


def _step_arg(step: str | None) -> ast.expr:
    return ast.Name(step, ast.Load()) if step else ast.Constant(None)


def _targets(stmt: ast.stmt) -> list[str]:
    """Names a plain assignment statement binds."""
    if isinstance(stmt, ast.Assign):
        targets = stmt.targets
    elif isinstance(stmt, ast.AugAssign) or (isinstance(stmt, ast.AnnAssign) and stmt.value is not None):
        targets = [stmt.target]
    else:
        return []
    names: list[str] = []
    stack: list[ast.expr] = list(targets)
    while stack:
        target = stack.pop(0)
        if isinstance(target, ast.Name):
            names.append(target.id)
        elif isinstance(target, (ast.Tuple, ast.List)):
            stack[:0] = target.elts
        elif isinstance(target, ast.Starred):
            stack.insert(0, target.value)
    return names


def _assigned_metrics(loop: ast.stmt, session: TrackingSession) -> list[str]:
    found: list[str] = []
    for node in ast.walk(loop):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if isinstance(node, ast.stmt):
            found.extend(n for n in _targets(node) if n in session.metrics.names)
    return found


def _resets_namespace(module: ast.Module) -> bool:
    """A cell that runs ``%reset`` drops the hooks from the namespace: leave its loops alone."""
    for node in ast.walk(module):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "run_line_magic" and node.args
                and isinstance(node.args[0], ast.Constant) and str(node.args[0].value).startswith("reset")):
            return True
    return False


# -- recording ----------------------------------------------------------------------------------


@dataclass
class _Bucket:
    tokens: float
    stamp: float


@dataclass
class _CellLoops:
    """What the loops of one cell recorded, and the options they read (looked up once per cell)."""

    enabled: bool = True
    burst: float = 100.0
    rate: float = 50.0
    held_since: float | None = None  # when the journal began holding this cell's points
    held: int = 0
    buckets: dict[str, _Bucket] = field(default_factory=dict)
    base: dict[str, int] = field(default_factory=dict)  # a metric's next step when the cell began
    last: dict[str, tuple[int, float]] = field(default_factory=dict)  # name -> (step, value) recorded last
    sampled: set[str] = field(default_factory=set)


class LoopRecorder:
    """Records the points the rewritten loops report, within each metric's rate."""

    def __init__(self, session: TrackingSession) -> None:
        self.session = session
        self.cell = _CellLoops()
        self._clock: _Clock | None = None
        self._tagged: set[str] = set()

    # -- the hooks in the notebook's namespace ------------------------------------------------

    def install(self) -> None:
        shell = self.session.shell
        shell.ast_transformers.append(LoopTransformer(self.session))
        self.provide(shell.user_ns)
        shell.user_ns_hidden.update({DUE: True, POINT: self.point, LOOP_END: self.loop_end})

    def provide(self, ns: dict[str, Any]) -> None:
        """(Re)place the hooks in the namespace before a cell (``%reset`` may have dropped them)."""
        ns[DUE] = True
        if ns.get(POINT) is not self.point:
            ns[POINT] = self.point
            ns[LOOP_END] = self.loop_end

    def uninstall(self) -> None:
        shell = self.session.shell
        shell.ast_transformers[:] = [t for t in shell.ast_transformers if not isinstance(t, LoopTransformer)]
        for name in (DUE, POINT, LOOP_END):
            shell.user_ns.pop(name, None)
            shell.user_ns_hidden.pop(name, None)
        if self._clock is not None:
            self._clock.stop()

    def cell_started(self) -> None:
        config = self.session.config
        self.cell = _CellLoops(enabled=config.enabled and config.loop_metrics, burst=float(config.loop_burst),
                               rate=float(config.loop_points_per_second))
        self.provide(self.session.shell.user_ns)

    def cell_finished(self) -> None:
        """The points held back for one write are written before the cell's record."""
        self._release()

    def _release(self) -> None:
        if self.cell.held_since is not None:
            self.cell.held_since, self.cell.held = None, 0
            self.session.journal.release()

    # -- points -------------------------------------------------------------------------------

    def point(self, name: str, value: Any, step: Any = None) -> None:
        """A metric assigned in a loop; recorded unless over its rate (then the flag goes down)."""
        session, cell = self.session, self.cell
        if not cell.enabled or session.cell is None:
            return
        try:
            number = as_number(value)
            if number is None:
                return
            now = time.monotonic()
            bucket = cell.buckets.get(name)
            if bucket is None:
                bucket = cell.buckets[name] = _Bucket(cell.burst, now)
            bucket.tokens = min(cell.burst, bucket.tokens + (now - bucket.stamp) * cell.rate)
            bucket.stamp = now
            if bucket.tokens < 1.0:
                cell.sampled.add(name)
                session.shell.user_ns[DUE] = False
                self._ensure_clock()
                return
            bucket.tokens -= 1.0
            if cell.held_since is None:
                cell.held_since = now
                session.journal.hold()
            self._record(name, number, step)
            cell.held += 1
            if cell.held >= _HOLD_POINTS or now - cell.held_since >= _HOLD_SECONDS:
                self._release()
        except Exception as exc:  # noqa: BLE001 - inside the user's loop: never raise
            session.safety.warn(f"recording a loop metric failed and was skipped ({type(exc).__name__}: {exc})",
                                key=f"loop-point:{type(exc).__name__}")

    def loop_end(self, names: tuple[str, ...], step: Any = None) -> None:
        """After a loop: its metrics' final values, if the last iterations were not recorded."""
        session = self.session
        if not self.cell.enabled or session.cell is None:
            return
        with session.safety.guard("recording a loop's last values"):
            self._release()
            ns = session.shell.user_ns
            for name in names:
                if name not in self.cell.last:
                    continue  # never assigned by this cell's loops (a loop that did not run)
                number = as_number(ns.get(name))
                if number is None or self.cell.last[name][1] == number:
                    continue
                self.cell.sampled.add(name)
                self._record(name, number, step)
            self.tag_sampling()

    def _record(self, name: str, number: float, step: Any) -> None:
        run = self.session.ensure_run()
        base = self.cell.base.setdefault(name, run.steps.get(name, 0))
        at: int | None = None
        if isinstance(step, int) and not isinstance(step, bool):
            at = base + step
            previous = self.cell.last.get(name)
            if previous is not None and at <= previous[0]:
                at = None  # the loop variable went back: count instead
        self.session.metrics.log_one(name, number, at, None)
        self.cell.last[name] = (run.steps[name] - 1, number)

    def covers(self, name: str, value: Any) -> bool:
        """Did this cell's loops already record ``name`` at this value (the cell-level capture skips it)?"""
        last = self.cell.last.get(name)
        return last is not None and as_number(value) == last[1]

    def tag_sampling(self) -> None:
        """Say in the run's tags which metrics were sampled (once per metric)."""
        new = sorted(self.cell.sampled - self._tagged)
        if not new:
            return
        self._tagged.update(new)
        config = self.session.config
        self.session.record("tags", tags={tags.LOOP_SAMPLING: (
            f"{', '.join(sorted(self._tagged))}: the first {config.loop_burst} points of a cell, then at most "
            f"{config.loop_points_per_second:g} per second; the last value of each loop is kept")[:5000]})

    def _ensure_clock(self) -> None:
        if self._clock is None:
            self._clock = _Clock(self.session.shell.user_ns, 1.0 / max(self.session.config.loop_points_per_second,
                                                                        0.1))


class _Clock:
    """Raises the flag at the sampling rate, so a hot loop reports one point per interval."""

    def __init__(self, ns: dict[str, Any], interval: float) -> None:
        self._ns = ns
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nbtrack-loop-clock", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._ns[DUE] = True

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)
