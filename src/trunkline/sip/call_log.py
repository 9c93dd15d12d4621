"""The edge's call log: what Kamailio saw of each call, spooled in a file of its own until imported.

Kamailio's workers (through app_python3, sip/kamailio_app.py) append one event per step of a call to
`calls.db` (SQLite, WAL) in the SIP run directory: `start` (the call's identity, numbers and rate),
`answer`, `end` (final status, D-code, hangup cause). The edge needs nothing else to keep working: when
the API's database is away the spool grows, and the supervisor's importer (store/call_ingest.py)
folds it into `call_record` once it can, at least once and idempotently, then deletes what it
imported. Each writer waits for the file's lock (busy timeout) instead of failing, unlike Kamailio's
own SQLite driver, so every worker may write.

Standard library only: the writer runs inside Kamailio's embedded interpreter.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from trunkline.sip.state import CallEvent

log = logging.getLogger("trunkline.sip")

SPOOL_FILE = "calls.db"
BUSY_TIMEOUT_S = 5.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS event (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    record_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    data TEXT NOT NULL
)
"""


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode: a commit survives a crash of the process (not of the machine) without an
    # fsync per event (https://www.sqlite.org/pragma.html#pragma_synchronous).
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(_SCHEMA)
    return conn


class Writer:
    """One per Kamailio worker process, opened lazily (after fork)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def write(self, *events: tuple[str, str, int, dict[str, Any]]) -> None:
        """(record_id, kind, at_ms, data) events, in one transaction."""
        if self._conn is None:
            self._conn = connect(self.path)
        rows = [(rid, kind, at, json.dumps(data, separators=(",", ":"))) for rid, kind, at, data in events]
        with _transaction(self._conn):
            self._conn.executemany(
                "INSERT INTO event (record_id, kind, at_ms, data) VALUES (?, ?, ?, ?)", rows
            )


class Reader:
    """The importer's side: read in order, delete what was imported."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = connect(self.path)
        return self._conn

    def batch(self, limit: int = 2000) -> list[CallEvent]:
        rows = self._db().execute(
            "SELECT seq, record_id, kind, at_ms, data FROM event ORDER BY seq LIMIT ?", (limit,)
        )
        return [CallEvent(seq, rid, kind, at, json.loads(data)) for seq, rid, kind, at, data in rows]

    def forget(self, through_seq: int) -> None:
        with _transaction(self._db()):
            self._db().execute("DELETE FROM event WHERE seq <= ?", (through_seq,))

    def pending(self) -> int:
        return int(self._db().execute("SELECT COUNT(*) FROM event").fetchone()[0])

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


async def pump(
    reader: Reader,
    ingest: Callable[[list[CallEvent]], Awaitable[None]],
    stop: asyncio.Event,
    *,
    poll_seconds: float = 0.2,
) -> None:
    """Hand the spool to `ingest` batch by batch until `stop`; what it could not take stays spooled.

    A failed batch (the database away) is retried after a pause; it is deleted from the spool only
    after `ingest` returned, so nothing is lost, and ingest is idempotent, so nothing counts twice.
    """
    pause = poll_seconds
    while not stop.is_set():
        try:
            events = await asyncio.to_thread(reader.batch)
            if events:
                await ingest(events)
                await asyncio.to_thread(reader.forget, events[-1].seq)
            pause = poll_seconds if len(events) < 2000 else 0.0
        except Exception:  # the loop must outlive a database outage; the spool keeps the events
            log.exception("importing the call log failed; retrying (the events stay in the spool)")
            pause = min(max(pause * 2, 1.0), 30.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=pause)
    reader.close()


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    # BEGIN IMMEDIATE takes the write lock at once (waiting up to the busy timeout), so a writer
    # never fails half-way on an upgrade from a read lock.
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
