"""What the SIP edge recorded about registrations: usrloc's `location` bindings, read back.

Kamailio writes `location`; trunkline only reads it. On PostgreSQL it is a table in our database
(migration 0002). On SQLite it lives in Kamailio's own file, which we open read-only beside our
connection: Kamailio must stay the only writer of that file (db_sqlite sets no busy timeout).
Rows linger up to usrloc's timer_interval after they lapse, so callers compare `expires` to now.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

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
