"""Entry point of the ``nbtrack`` command.

Each command lives in its own module ``nbtrack.cli.<name>`` exposing
``add_parser(subparsers) -> argparse.ArgumentParser`` and ``run(args) -> int``.
Errors of the ``NbtrackError`` family become one line on stderr and their
documented exit code (2 usage, 3 not found, 4 store unavailable, 5 execution
failed, 6 port in use, 1 other).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from nbtrack import env
from nbtrack.errors import NbtrackError, StoreUnavailable

#: Command modules, in the order ``nbtrack --help`` lists them.
COMMANDS = ["runs", "compare", "sweep", "rerun", "retrain", "register", "serve", "recover", "lake", "demo"]


def build_parser() -> argparse.ArgumentParser:
    from nbtrack.version import __version__

    parser = argparse.ArgumentParser(
        prog="nbtrack",
        description="Tracked, re-runnable notebook experiments (MLflow + Delta).",
    )
    parser.add_argument("--version", action="version", version=f"nbtrack {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"nbtrack.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"nbtrack.cli.{name}":
                continue  # command not built yet
            raise
        sub = module.add_parser(subparsers)
        sub.set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except NbtrackError as exc:
        print(f"nbtrack {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`nbtrack runs --json | head`): stop quietly, as a tool killed by
        # SIGPIPE does, and keep Python from failing again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:
        problem = _unreachable_store(exc)
        if problem is None:
            raise
        print(f"nbtrack {args.command}: {problem}", file=sys.stderr)
        return StoreUnavailable.exit_code


_CONNECTION_WORDS = ("Failed to establish a new connection", "Connection refused", "Max retries exceeded",
                     "Name or service not known", "timed out")


def _unreachable_store(exc: BaseException) -> str | None:
    """A tracking server that is down is the user's to fix: say so in one line, not a traceback."""
    module = type(exc).__module__ or ""
    text = str(exc)
    if not module.startswith(("mlflow", "requests", "urllib3")) or not any(w in text for w in _CONNECTION_WORDS):
        return None
    uri = env.MLFLOW_TRACKING_URI.get("the tracking server")
    return (f"cannot reach {uri} (connection refused or timed out). Start the server, or unset "
            "MLFLOW_TRACKING_URI to use the project's embedded store.")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
