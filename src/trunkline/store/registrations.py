"""What the SIP edge recorded about registrations: usrloc's `location` bindings, read back, and on
PostgreSQL each user's newest REGISTER outcome (`sip_registration_outcome`, migration 0011).

Kamailio writes both; trunkline only reads them. On PostgreSQL they are tables in our database
(migrations 0002, 0011), shared by every edge and every API instance. On SQLite `location` lives in
Kamailio's own file, which we open read-only beside our connection: Kamailio must stay the only
writer of that file (db_sqlite sets no busy timeout).
Rows linger up to usrloc's timer_interval after they lapse, so callers compare `expires` to now.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from trunkline.sip.state import RegistrationEvent
from trunkline.store.db import Conn

# Kamailio's table, described here only to read it (it is not part of our metadata).
_kamailio = sa.MetaData()
location = sa.Table(
    "location",
    _kamailio,
    sa.Column("username", sa.String(64)),
    sa.Column("contact", sa.String(512)),
    sa.Column("received", sa.String(128)),
    sa.Column("socket", sa.String(64)),
    sa.Column("user_agent", sa.String(255)),
    sa.Column("expires", sa.DateTime),
    sa.Column("last_modified", sa.DateTime),
)
outcomes = sa.Table(
    "sip_registration_outcome",
    _kamailio,
    sa.Column("user_name", sa.String(64)),
    sa.Column("at", sa.Double),
    sa.Column("outcome", sa.Text),
)

# db_sqlite (Kamailio 5.6) stores usrloc timestamps as REAL Julian days, UTC; the Unix epoch is
# Julian day 2440587.5 (https://www.sqlite.org/lang_datefunc.html).
_UNIX_EPOCH_JULIAN = 2440587.5


@dataclass(frozen=True)
class Binding:
    """One contact of a user as usrloc stored it; times are Unix seconds."""

    contact: str
    received: str | None
    socket: str | None
    user_agent: str
    expires: float
    last_modified: float


async def bindings(conn: Conn, *, user_name: str, sqlite_file: Path | None = None) -> list[Binding]:
    """Every stored binding of a SIP user, lapsed or not, newest first."""
    if conn.dialect == "sqlite":
        return _sqlite_bindings(sqlite_file, user_name) if sqlite_file else []
    stmt = (
        sa.select(location).where(location.c.username == user_name).order_by(location.c.last_modified.desc())
    )
    try:
        rows = (await conn.execute(stmt)).mappings().all()
    except sa.exc.ProgrammingError:
        return []  # no SIP edge schema here
    return [
        Binding(
            contact=r["contact"],
            received=r["received"],
            socket=r["socket"],
            user_agent=r["user_agent"] or "",
            # PostgreSQL: TIMESTAMP WITHOUT TIME ZONE in Kamailio's local time (as db_postgres writes).
            expires=_local_seconds(r["expires"]),
            last_modified=_local_seconds(r["last_modified"]),
        )
        for r in rows
    ]


async def last_outcome(conn: Conn, *, user_name: str) -> RegistrationEvent | None:
    """The newest REGISTER outcome any edge recorded for the user (PostgreSQL; None on SQLite, where
    the edge keeps it in memory: edge.registration_view)."""
    if conn.dialect == "sqlite":
        return None
    stmt = sa.select(outcomes.c.outcome).where(outcomes.c.user_name == user_name)
    try:
        value = (await conn.execute(stmt)).scalar_one_or_none()
    except sa.exc.ProgrammingError:
        return None  # a database older than migration 0011
    return RegistrationEvent.parse(value) if value else None


def _local_seconds(value: dt.datetime) -> float:
    return value.timestamp() if value.tzinfo is None else value.astimezone(dt.UTC).timestamp()


def _sqlite_bindings(path: Path, user_name: str) -> list[Binding]:
    if not path.exists():
        return []
    # Read-only, and a fresh handle each time: microseconds, and never a writer on Kamailio's file.
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
    try:
        rows = db.execute(
            "SELECT contact, received, socket, user_agent, expires, last_modified FROM location"
            " WHERE username = ? ORDER BY last_modified DESC",
            (user_name,),
        ).fetchall()
    except sqlite3.OperationalError:
        return []  # Kamailio has not created its table yet
    finally:
        db.close()
    return [
        Binding(
            contact=r[0],
            received=r[1],
            socket=r[2],
            user_agent=r[3] or "",
            expires=_julian_seconds(r[4]),
            last_modified=_julian_seconds(r[5]),
        )
        for r in rows
    ]


def _julian_seconds(value: float | str) -> float:
    if isinstance(value, int | float):
        return (float(value) - _UNIX_EPOCH_JULIAN) * 86400.0
    return dt.datetime.fromisoformat(str(value)).replace(tzinfo=dt.UTC).timestamp()
