"""A run's models: found at run end (or given to ``nbtrack.log_model``), snapshotted, journalled.

The kernel never imports MLflow for a model. It pickles a snapshot (cloudpickle,
protocol 5: a class defined in the notebook travels by value, and big arrays stay
*out of band*, so the pickle itself is small and nothing is copied), journals a
``model`` event, and a writer thread puts the snapshot's bytes into the journal's
blob area while the user goes on. The delivery process turns it into an MLflow
model of its flavor (:mod:`nbtrack.sinks.models`) and waits for the blob when it
gets there first.

A run keeps the models that are its own: an object that an earlier run of the
session already logged, unchanged since, is not logged again with the next run.
"""

from __future__ import annotations

import json
import queue
import re
import threading
import weakref
import zlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from nbtrack import tags
from nbtrack.capture.models import find_models, flavor_of, input_example, is_fitted
from nbtrack.journal.frames import Buffer, frame_parts, frames_size

if TYPE_CHECKING:
    from nbtrack.capture.runs import RunState
    from nbtrack.capture.session import TrackingSession
    from nbtrack.journal import JournalWriter

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
_WITH_EXAMPLE = ("sklearn", "xgboost", "lightgbm")
_MB = 1_000_000


def snapshot_frames(obj: Any, example: Any) -> list[Buffer]:
    """``(obj, example)`` pickled: the stream first, then each out-of-band buffer (not copied)."""
    import cloudpickle

    buffers: list[Any] = []
    head = cloudpickle.dumps((obj, example), protocol=5, buffer_callback=buffers.append)
    return [head, *(buffer.raw() for buffer in buffers)]


def fingerprint(frames: Sequence[Buffer]) -> int:
    """A checksum of a snapshot: the same model pickles to the same bytes."""
    value = 0
    for frame in frames:
        value = zlib.crc32(frame, value)
    return value


class SnapshotWriter:
    """One thread writing snapshots into the journal's blob area, in order.

    A snapshot that cannot be written leaves ``<blob>.failed`` with the reason, so
    the delivery process stops waiting for it.
    """

    def __init__(self, journal: Callable[[], JournalWriter], warn: Callable[[str], None]) -> None:
        self._journal = journal
        self._warn = warn
        self._queue: queue.Queue[tuple[str, list[Buffer], Callable[[int], None]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._idle = threading.Condition()
        self._pending = 0

    def submit(self, blob: str, frames: list[Buffer], done: Callable[[int], None]) -> None:
        with self._idle:
            self._pending += 1
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="nbtrack-model-writer", daemon=True)
            self._thread.start()
        self._queue.put((blob, frames, done))

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            blob, frames, done = item
            try:
                self._journal().write_blob(blob, frame_parts(frames))
                done(fingerprint(frames))
            except Exception as exc:  # noqa: BLE001 - a model that cannot be saved must not stop the kernel
                self._warn(f"model snapshot {blob} could not be saved and is not logged ({exc})")
                try:
                    self._journal().write_blob(blob + ".failed", str(exc).encode("utf-8", "replace"))
                except Exception:  # noqa: BLE001 - the delivery process gives up waiting on its own
                    pass
            finally:
                del item, frames
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def wait(self, timeout: float) -> bool:
        """Wait until every submitted snapshot is written; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float) -> bool:
        done = self.wait(timeout)
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=1.0 if done else 0.0)
            self._thread = None
        return done


class ModelsRecorder:
    """Logs the fitted models of a session's runs (``log_models``, ``nbtrack.log_model``)."""

    def __init__(self, session: TrackingSession) -> None:
        self.session = session
        self.writer = SnapshotWriter(lambda: session.journal, self._warn_from_thread)
        # id(obj) -> (a weak reference to it or None, run key, fingerprint once written)
        self._logged: dict[int, tuple[Any, str, int | None]] = {}
        self._lock = threading.Lock()

    # -- entry points -------------------------------------------------------------------------

    def at_run_end(self, run: RunState) -> None:
        """Log each top-level name bound to a fitted model (its final object, once)."""
        session = self.session
        if not session.config.log_models or session.shell is None:
            return
        with session.safety.guard("logging the run's models"):
            namespace = session.shell.user_ns
            for found in find_models(namespace, skip=run.models):
                if id(found.obj) in run.logged_objects:  # nbtrack.log_model took it already
                    continue
                with session.safety.guard(f"logging model {found.name}"):
                    self._log(run, found.name, found.obj, found.flavor, source="auto", namespace=namespace)

    def log(self, obj: Any, name: str | None = None) -> None:
        """``nbtrack.log_model(obj, name)``: log this model into the current run, now."""
        session = self.session
        with session.safety.guard("logging a model"):
            flavor = flavor_of(obj)
            kind = type(obj).__name__
            if flavor is None:
                session.safety.warn(f"log_model: a {kind} is not a model nbtrack can log (scikit-learn, "
                                    "XGBoost, LightGBM, PyTorch or Keras)", key=f"not-a-model:{kind}")
                return
            if not is_fitted(obj, flavor):
                session.safety.warn(f"log_model: this {kind} is not fitted yet; fit it first")
                return
            namespace = getattr(session.shell, "user_ns", {}) or {}
            name = name or next((k for k, v in namespace.items() if v is obj and not k.startswith("_")),
                                kind.lower())
            if not _NAME.match(name):
                session.safety.warn(f"log_model: {name!r} cannot name a model: use letters, digits, "
                                    "'_', '-' and '.'")
                return
            run = session.ensure_run()
            if name in run.models:
                session.safety.warn(f"log_model: this run already has a model named {name!r}; "
                                    "pass another name")
                return
            self._log(run, name, obj, flavor, source="api", namespace=namespace)

    def close(self, timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) for the snapshots still being written."""
        if not self.writer.close(timeout):
            self.session.safety.warn(f"model snapshots were still being written after {timeout:.0f} s; "
                                     "those not finished are not logged")

    # -- one model --------------------------------------------------------------------------------

    def _log(self, run: RunState, name: str, obj: Any, flavor: str, *, source: str,
             namespace: Any) -> None:
        session = self.session
        cap = float(session.config.max_model_mb) * _MB
        estimate = _tensor_bytes(obj) if flavor == "pytorch" else 0  # a torch pickle copies every tensor
        if estimate > cap:
            self._too_large(name, estimate)
            return
        example = input_example(obj, namespace) if flavor in _WITH_EXAMPLE else None
        frames = snapshot_frames(obj, example)
        size = frames_size(frames)
        if size > cap:
            self._too_large(name, size)
            return
        if source == "auto" and self._logged_before(obj, run, frames):
            return
        blob = f"{run.key}/models/{name}.nbtf"
        session.record("model", name=name, flavor=flavor, file=session.journal.blob_path(blob), size=size,
                       model_class=f"{type(obj).__module__}.{type(obj).__qualname__}",
                       example=example is not None, source=source)
        run.models[name] = {"name": name, "flavor": flavor, "size": size}
        run.logged_objects.add(id(obj))
        session.record("tags", tags={tags.MODELS: json.dumps(list(run.models.values()), separators=(",", ":"))})
        key = id(obj)
        ref = _weak(obj)
        with self._lock:
            self._logged[key] = (ref, run.key, None)

        def written(checksum: int) -> None:
            with self._lock:
                if key in self._logged and self._logged[key][1] == run.key:
                    self._logged[key] = (ref, run.key, checksum)

        self.writer.submit(blob, frames, written)

    def _logged_before(self, obj: Any, run: RunState, frames: list[Buffer]) -> bool:
        """Did an earlier run log this very object, and is it unchanged since?"""
        with self._lock:
            entry = self._logged.get(id(obj))
        if entry is None:
            return False
        if entry[2] is None:  # its snapshot is still being written: its checksum comes with it
            self.writer.wait(self.session.config.flush_timeout)
            with self._lock:
                entry = self._logged.get(id(obj), entry)
        ref, run_key, checksum = entry
        if run_key == run.key or (ref is not None and ref() is not obj):
            return False
        return checksum is not None and checksum == fingerprint(frames)

    def _too_large(self, name: str, size: float) -> None:
        limit = self.session.config.max_model_mb
        mb = size / _MB
        self.session.safety.warn(
            f"model {name} is {mb:,.3g} MB, over max_model_mb={limit:g}: not logged "
            f"(raise it with %nbtrack config max_model_mb={float(f'{mb * 1.5:.2g}'):g})",
            key=f"too-large:{name}")

    def _warn_from_thread(self, message: str) -> None:
        self.session.safety.warn(message)


def _weak(obj: Any) -> Any:
    try:
        return weakref.ref(obj)
    except TypeError:
        return None


def _tensor_bytes(module: Any) -> int:
    """Bytes of a torch module's parameters and buffers, without pickling it."""
    try:
        return sum(int(t.numel()) * int(t.element_size()) for t in module.state_dict().values())
    except Exception:  # noqa: BLE001
        return 0
