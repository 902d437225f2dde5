"""`users sync`: ask Microsoft Graph about users and write what it says, batch by batch."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from loader.config import Settings
from loader.db import connect
from loader.errors import LoaderError, one_line_failure
from loader.graph_source import DirectoryEntry
from loader.raw_store import (
    RunKind,
    RunRecord,
    emails_to_look_up,
    record_failed_run,
    record_succeeded_run,
    write_directory_entries,
)

log = logging.getLogger(__name__)

Lookup = Callable[[list[str]], Iterable[list[DirectoryEntry]]]


@dataclass(frozen=True)
class SyncSummary:
    asked: int
    counts: dict[str, int]
    requests: int

    def line(self) -> str:
        return (
            f"users sync: {self.asked} asked, {self.counts.get('found', 0)} found, "
            f"{self.counts.get('not_found', 0)} not found, {self.counts.get('error', 0)} errors, "
            f"{self.requests} requests"
        )


def sync_users(
    settings: Settings,
    lookup: Lookup,
    *,
    refresh: bool,
    requests_made: Callable[[], int] = lambda: 0,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> SyncSummary:
    """Each batch's answers are committed as they arrive: a crash loses nothing already written."""
    started_at = datetime.now(UTC)
    counts: Counter[str] = Counter()
    with connect(settings.database) as conn:
        emails = emails_to_look_up(conn, settings.raw_schema, refresh=refresh)
        conn.commit()
        run = RunRecord(kind=RunKind.USERS_SYNC, started_at=started_at, pods_listed=len(emails))
        try:
            for entries in lookup(emails):
                write_directory_entries(conn, settings.raw_schema, entries)
                for entry in entries:
                    counts[entry.status] += 1
                    if entry.status == "error":
                        log.warning(
                            "directory look-up failed for one user (%s); it is asked again next run", entry.detail
                        )
                progress(sum(counts.values()), len(emails))
        except Exception as error:  # every sync that starts leaves a run record, whatever ended it
            message = str(error) if isinstance(error, LoaderError) else one_line_failure("users sync", error)
            run.error = message
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.rollback()
            record_failed_run(conn, settings.raw_schema, _counted(run, counts))
            if isinstance(error, LoaderError):
                raise
            raise LoaderError(message) from error
        record_succeeded_run(conn, settings.raw_schema, _counted(run, counts))
    return SyncSummary(asked=len(emails), counts=dict(counts), requests=requests_made())


def _counted(run: RunRecord, counts: Counter[str]) -> RunRecord:
    """The run record with what was written before the run ended."""
    run.rows_recorded = sum(counts.values())
    run.skip_reasons = {key: value for key, value in counts.items() if key != "found"}
    return run
