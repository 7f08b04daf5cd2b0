"""The Delta sink: journal events into the lake's bronze, silver and gold tables.

One commit per table per :meth:`DeltaSink.deliver` batch, never one per event.
Exactly-once: each event belongs to a stream (its journal, see
:func:`nbtrack.lake.rows.app_id`); a commit records each stream's last ``seq``
as a Delta application transaction, and the events at or below a table's
recorded version are skipped. A replayed journal therefore adds nothing, and of
two deliveries racing on the same events one loses Delta's conflict check,
re-reads the versions and finds nothing left to write.

Written with ``deltalake`` under the lake path, or through a live Spark session
(Databricks) into ``spark_schema`` (``catalog.schema``) when one is configured.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from nbtrack.config import project_config
from nbtrack.errors import StoreUnavailable
from nbtrack.events import Event
from nbtrack.lake import TABLES
from nbtrack.lake.rows import FEEDS, Row, RowBuilder, app_id
from nbtrack.lake.tables import CommitConflict

if TYPE_CHECKING:
    from nbtrack.store import StoreRef

log = logging.getLogger(__name__)

#: Attempts per table and batch before the batch is left for the delivery loop's retry.
MAX_ATTEMPTS = 60


class LakeWriter(Protocol):
    """What the sink needs from a writer (``DeltaWriter`` or ``SparkWriter``)."""

    name: str

    def transaction_versions(self, name: str, app_ids: Any) -> dict[str, int]: ...

    def commit(self, name: str, rows: list[Row], txns: Mapping[str, int]) -> None: ...


class DeltaSink:
    """Delivers journal events into the Delta tables of one lake."""

    name = "delta"

    def __init__(
        self,
        lake_uri: str,
        *,
        spark_schema: str = "",
        storage_options: dict[str, str] | None = None,
    ) -> None:
        self.lake_uri = str(lake_uri)
        self.spark_schema = spark_schema
        self.storage_options = storage_options
        self._writer: LakeWriter | None = None

    @property
    def writer(self) -> LakeWriter:
        """Spark when a session is live and a schema configured, else ``deltalake``."""
        if self._writer is None:
            self._writer = self._make_writer()
        return self._writer

    def _make_writer(self) -> LakeWriter:
        if self.spark_schema:
            from nbtrack.lake.spark import SparkWriter, active_session

            spark = active_session()
            if spark is not None:
                return SparkWriter(spark, self.spark_schema)
            log.info("no live Spark session: writing %s with deltalake", self.lake_uri)
        from nbtrack.lake.tables import DeltaWriter

        return DeltaWriter(self.lake_uri, storage_options=self.storage_options)

    def deliver(
        self, events: list[Event], *, journal_dir: Path, run_ids: Mapping[str, str]
    ) -> None:
        """Write ``events`` (one journal, in order) into every table they feed."""
        if not events:
            return
        builder = RowBuilder(run_ids)
        by_type: dict[str, list[Event]] = {}
        for event in events:
            if "seq" in event:
                by_type.setdefault(event.get("type", ""), []).append(event)
        for table in TABLES:
            if table not in FEEDS:  # written by nbtrack's commands, not from the journal (retrains)
                continue
            if table == "events":
                relevant = [e for e in events if "seq" in e]
            else:
                relevant = sorted(
                    (e for kind in FEEDS[table] for e in by_type.get(kind, ()) if e.get("run")),
                    key=lambda e: int(e["seq"]),
                )
            if relevant:
                self._deliver_table(table, relevant, builder)

    def _deliver_table(self, table: str, events: list[Event], builder: RowBuilder) -> None:
        streams = {app_id(e) for e in events}
        for attempt in range(MAX_ATTEMPTS):
            done = self.writer.transaction_versions(table, streams)
            pending = [e for e in events if int(e["seq"]) > done[app_id(e)]]
            if not pending:
                return
            txns: dict[str, int] = {}
            for event in pending:
                stream = app_id(event)
                txns[stream] = max(txns.get(stream, 0), int(event["seq"]))
            try:
                self.writer.commit(table, builder.rows(table, pending), txns)
                return
            except CommitConflict as exc:
                log.debug("commit conflict on %s (attempt %d): %s", table, attempt + 1, exc)
                time.sleep(random.uniform(0, min(1.0, 0.01 * 2 ** min(attempt, 7))))
        raise StoreUnavailable(
            f"Delta table {table!r} under {self.lake_uri}: still conflicting after "
            f"{MAX_ATTEMPTS} attempts; the batch will be retried"
        )

    def close(self) -> None:
        self._writer = None


def make_sink(store: StoreRef) -> DeltaSink | None:
    """The Delta sink of a resolved store, or None when the lake is off or ``deltalake`` is missing."""
    config = store.config or project_config(store.project.root)
    if not config.lake:
        return None
    if not config.spark_schema:
        try:
            import deltalake  # noqa: F401
        except ImportError:
            log.info("deltalake is not installed: the Delta sink is off (pip install nbtrack[delta])")
            return None
    return DeltaSink(store.lake_uri, spark_schema=config.spark_schema)
