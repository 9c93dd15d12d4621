"""Kamailio's own SQLite file: its `location` table, created before Kamailio starts.

On SQLite Kamailio must be the only writer of this file (db_sqlite sets no busy timeout, so a second
writer fails at once with "database is locked"), and the API only reads it. On PostgreSQL the same
table is created by migration 0002 instead.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

# usrloc's table as Kamailio 5.6 defines it (usrloc-create.sql, table version 9); usrloc runs with
# version_table=0, so no `version` row is needed. `expires`/`last_modified` hold REAL Julian days.
LOCATION = """
CREATE TABLE IF NOT EXISTS location (
    id INTEGER PRIMARY KEY NOT NULL,
    ruid VARCHAR(64) DEFAULT '' NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL,
    domain VARCHAR(64) DEFAULT NULL,
    contact VARCHAR(512) DEFAULT '' NOT NULL,
    received VARCHAR(128) DEFAULT NULL,
    path VARCHAR(512) DEFAULT NULL,
    expires TIMESTAMP WITHOUT TIME ZONE DEFAULT '2030-05-28 21:32:15' NOT NULL,
    q REAL DEFAULT 1.0 NOT NULL,
    callid VARCHAR(255) DEFAULT 'Default-Call-ID' NOT NULL,
    cseq INTEGER DEFAULT 1 NOT NULL,
    last_modified TIMESTAMP WITHOUT TIME ZONE DEFAULT '2000-01-01 00:00:01' NOT NULL,
    flags INTEGER DEFAULT 0 NOT NULL,
    cflags INTEGER DEFAULT 0 NOT NULL,
    user_agent VARCHAR(255) DEFAULT '' NOT NULL,
    socket VARCHAR(64) DEFAULT NULL,
    methods INTEGER DEFAULT NULL,
    instance VARCHAR(255) DEFAULT NULL,
    reg_id INTEGER DEFAULT 0 NOT NULL,
    server_id INTEGER DEFAULT 0 NOT NULL,
    connection_id INTEGER DEFAULT 0 NOT NULL,
    keepalive INTEGER DEFAULT 0 NOT NULL,
    partition INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT location_ruid_idx UNIQUE (ruid)
)
"""
INDEXES = (
    "CREATE INDEX IF NOT EXISTS location_account_contact_idx ON location (username, domain, contact)",
    "CREATE INDEX IF NOT EXISTS location_expires_idx ON location (expires)",
    "CREATE INDEX IF NOT EXISTS location_connection_idx ON location (server_id, connection_id)",
)


def ensure(path: Path) -> None:
    """Create Kamailio's file with its tables, in WAL mode (persistent), if it is not there yet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(LOCATION)
        for ddl in INDEXES:
            db.execute(ddl)
    db.close()
