"""One small exception hierarchy, so every surface can map failures the same way.

The CLI turns these into exit codes, the server into HTTP statuses, the magics
into IPython ``UsageError``; capture never lets any of them reach a user's cell.
"""

from __future__ import annotations


class NbtrackError(Exception):
    """Base class of every error nbtrack raises on purpose."""

    exit_code = 1
    http_status = 500


class UsageProblem(NbtrackError):
    """The user asked for something malformed (a bad parameter, an unknown option)."""

    exit_code = 2
    http_status = 400


class NotFound(NbtrackError):
    """A run, notebook, experiment or artifact that does not exist."""

    exit_code = 3
    http_status = 404


class StoreUnavailable(NbtrackError):
    """The tracking store or the lake cannot be reached or opened."""

    exit_code = 4
    http_status = 503


class ExecutionFailed(NbtrackError):
    """A notebook execution (sweep or re-run) failed in one of its cells."""

    exit_code = 5
    http_status = 500


class PortInUse(NbtrackError):
    """A port to listen on (``nbtrack serve --port``) is taken by another program."""

    exit_code = 6
    http_status = 409
