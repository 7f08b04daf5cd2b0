"""nbtrack's Delta lakehouse: the tables every engine can read.

Under the lake path (``<project>/.nbtrack/lake/`` by default, any URI
``deltalake`` supports, or a Spark ``catalog.schema``)::

    events        bronze   one row per journal event (append-only, unique event_id)
    runs          silver   one row per run
    params        silver   run_id, key, value
    metrics       silver   one row per metric point
    cells         silver   one row per cell execution
    artifacts     silver   one row per logged file
    inputs        silver   one row per table a run read (lineage)
    models        silver   one row per model a run logged (flavor, size, URI, its registration)
    retrains      silver   one row per retrain: champion, challenger, input versions, metric, promoted
    leaderboard   gold     one row per run: params.<k>, metrics.<k> (last), best.<k>

Modules: ``schemas`` (the explicit table schemas), ``rows`` (events to rows),
``tables`` (the deltalake writer), ``spark`` (the Spark writer), ``reader``
(a table's current files, read without pandas), ``query`` (listing and comparing
runs from the lake), ``maintenance`` (optimize, show, sql),
``profile`` (input data profiles and drift). Nothing here is imported by a kernel
on its cell path; heavy libraries are imported inside functions.
"""

from __future__ import annotations

BRONZE = ("events",)
SILVER = ("runs", "params", "metrics", "cells", "artifacts", "inputs", "models", "retrains")
GOLD = ("leaderboard",)
TABLES = BRONZE + SILVER + GOLD


def table_uri(lake_uri: str, table: str) -> str:
    """The location of one table under the lake (a local path or an object-store URI)."""
    return f"{lake_uri.rstrip('/')}/{table}"
