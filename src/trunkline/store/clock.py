"""The server clock: real time moved by the offset in `clock_offset` (store/schema.py).

In production the offset is 0 (or there is no row); the test control API moves it so that tests can
cross UTC midnight or a calling window without waiting. Whatever reads "now" for call records (a
detail-record `date_range`, an active call's `call_duration`) reads it through here, so the API agrees
with the SIP edge, which adds the same offset to its own clock (view `kam_connection`).
"""

from __future__ import annotations

import datetime as dt
import time

import sqlalchemy as sa

from trunkline.store.db import Conn, Database, insert_on_conflict
from trunkline.store.schema import clock_offset

ROW_ID = 1
# How far the clock may be moved either way: a century, in ms. Far beyond any test's need, and it keeps
# every date computed from "now" (next month, a hundred years of last_N_days) inside Python's datetime.
MAX_OFFSET_MS = 100 * 366 * 86_400_000


def now_at(offset_ms: int, real: float | None = None) -> dt.datetime:
    """The server's time (UTC) for this offset: `real` (seconds since the epoch, default now) plus the
    offset, which is held to +/- MAX_OFFSET_MS."""
    seconds = time.time() if real is None else real
    bounded = max(-MAX_OFFSET_MS, min(MAX_OFFSET_MS, offset_ms))
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC) + dt.timedelta(milliseconds=bounded)


async def offset_ms(db: Conn | Database) -> int:
    """The clock's offset from real time in ms; 0 when none is set. `db` is a connection inside a
    transaction, or a Database (then read in a transaction of its own)."""
    if isinstance(db, Database):
        async with db.transaction() as conn:
            return await offset_ms(conn)
    stmt = sa.select(clock_offset.c.offset_ms).where(clock_offset.c.id == ROW_ID)
    value = (await db.execute(stmt)).scalar_one_or_none()
    return int(value or 0)


async def set_offset_ms(db: Conn | Database, ms: int) -> None:
    """Move the clock to real time plus `ms` (0 puts it back). One upsert statement, so two callers
    racing on a fresh database cannot both insert
    (https://www.postgresql.org/docs/current/sql-insert.html#SQL-ON-CONFLICT,
    https://www.sqlite.org/lang_upsert.html). Raises ValueError beyond +/- MAX_OFFSET_MS."""
    if isinstance(ms, bool) or not isinstance(ms, int):
        raise ValueError("the clock offset is a whole number of milliseconds")
    if not -MAX_OFFSET_MS <= ms <= MAX_OFFSET_MS:
        raise ValueError(f"the clock offset must be within +/-{MAX_OFFSET_MS} ms (a century)")
    if isinstance(db, Database):
        async with db.transaction(write=True) as conn:
            await set_offset_ms(conn, ms)
        return
    insert = insert_on_conflict(db, clock_offset).values(id=ROW_ID, offset_ms=ms)
    await db.execute(
        insert.on_conflict_do_update(
            index_elements=[clock_offset.c.id], set_={"offset_ms": insert.excluded.offset_ms}
        )
    )
