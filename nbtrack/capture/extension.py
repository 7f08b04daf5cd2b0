"""Loading and unloading: the hooks nbtrack puts into IPython, and taking every one out again.

Hooks accept ``*args, **kwargs`` so IPython signature changes cannot break a
cell, and each is wrapped so a failure in nbtrack never reaches the user.
"""

from __future__ import annotations

import sys
from typing import Any

from nbtrack.capture import session as sessions
from nbtrack.capture.session import TrackingSession
from nbtrack.config import NbtrackConfig


def _counts_before_pre_run() -> bool:
    import IPython

    return IPython.version_info[0] >= 9


_COUNTS_BEFORE_PRE_RUN = _counts_before_pre_run()


class Hooks:
    """IPython event callbacks and display wrappers for one session."""

    def __init__(self, shell: Any, session: TrackingSession) -> None:
        self.shell = shell
        self.session = session
        self._publish: Any = None
        self._write_format_data: Any = None

    def pre_run_cell(self, *args: Any, **kwargs: Any) -> None:
        session = self.session
        if not session.config.enabled:
            return
        info = args[0] if args else kwargs.get("info")
        with session.safety.guard("recording the cell start"):
            count = int(getattr(self.shell, "execution_count", 0) or 0)
            if _COUNTS_BEFORE_PRE_RUN and getattr(info, "store_history", False):
                count -= 1  # IPython 9 numbers the cell before pre_run_cell fires
            session.pre_cell(getattr(info, "raw_cell", "") or "", getattr(info, "cell_id", None), count)

    def post_run_cell(self, *args: Any, **kwargs: Any) -> None:
        session = self.session
        if not session.config.enabled:
            session.cell = None
            return
        result = args[0] if args else kwargs.get("result")
        info = getattr(result, "info", None)
        if info is not None and getattr(info, "silent", False):
            return
        with session.safety.guard("recording the cell"):
            session.post_cell(result)

    def install(self) -> None:
        self.session.loops.install()
        self.session.output.install()
        events = self.shell.events
        events.register("pre_run_cell", self.pre_run_cell)
        events.register("post_run_cell", self.post_run_cell)
        publisher = self.shell.display_pub
        self._publish = publisher.publish
        hooks = self

        def publish(data: Any, *args: Any, **kwargs: Any) -> Any:
            hooks.session.on_display(data, kwargs.get("transient"))
            return hooks._publish(data, *args, **kwargs)

        publisher.publish = publish
        displayhook = self.shell.displayhook
        self._write_format_data = displayhook.write_format_data

        def write_format_data(format_dict: Any, *args: Any, **kwargs: Any) -> Any:
            hooks.session.on_display(format_dict)
            return hooks._write_format_data(format_dict, *args, **kwargs)

        displayhook.write_format_data = write_format_data

    def uninstall(self) -> None:
        self.session.loops.uninstall()
        self.session.output.uninstall()
        events = self.shell.events
        for name, callback in (("pre_run_cell", self.pre_run_cell), ("post_run_cell", self.post_run_cell)):
            try:
                events.unregister(name, callback)
            except ValueError:
                pass
        # Remove our instance attributes so the class methods show through again.
        for obj, attr in ((self.shell.display_pub, "publish"), (self.shell.displayhook, "write_format_data")):
            if attr in vars(obj):
                delattr(obj, attr)


_installed: dict[int, Hooks] = {}


def load(shell: Any) -> TrackingSession | None:
    """Start a session and its hooks (``%load_ext nbtrack``); loading twice is harmless.

    Returns the session, or None when tracking could not start here (a read-only
    project, a full disk...), which is said in one line and leaves the kernel as it was.
    """
    hooks = _installed.get(id(shell))
    if hooks is not None:
        return hooks.session
    config = NbtrackConfig(parent=shell)
    session = TrackingSession(shell, config)
    try:
        session.open()
    except Exception as exc:  # noqa: BLE001 - a read-only project, a full disk...
        if config.strict:
            raise
        print(f"nbtrack: tracking is off in this kernel: {exc}", file=sys.stderr)
        return None
    hooks = Hooks(shell, session)
    hooks.install()
    _installed[id(shell)] = hooks
    sessions._sessions.append(session)
    return session


def unload(shell: Any) -> None:
    """End the run and take out every hook ``load`` put in (``%unload_ext nbtrack``)."""
    hooks = _installed.pop(id(shell), None)
    if hooks is None:
        return
    hooks.uninstall()
    hooks.session.close()
    if hooks.session in sessions._sessions:
        sessions._sessions.remove(hooks.session)
