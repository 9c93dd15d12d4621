"""list versions: every write to a listed table counted per account, for store/list_memo.py

Revision ID: 0013
Revises: 0012

- `list_version`: per listed table and account, how many rows have been inserted, updated or deleted
  since this migration. Triggers bump it in the writing transaction, so the version a reader sees moves
  exactly when the rows it lists do. What a list learned (a filter's total, the rows at the edges of the
  pages it served) is kept for the version it was learned at (store/list_memo.py).
- PostgreSQL: statement-level triggers with transition tables, one upsert per statement and account
  (https://www.postgresql.org/docs/current/sql-createtrigger.html), as 0005's counters. SQLite:
  row-level triggers with an upsert (https://www.sqlite.org/lang_upsert.html).

The table starts empty: a version that is not there is 0, and the first write makes it 1. Triggers
and the table are made in one transaction, so no write can fall between them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

VERSIONED = ["connection", "ip", "fqdn", "outbound_voice_profile", "access_ip_range"]
EVENTS = ("insert", "update", "delete")

_UPSERT = (
    "INSERT INTO list_version (table_name, user_id, writes) {rows}"
    " ON CONFLICT (table_name, user_id) DO UPDATE SET writes = list_version.writes + excluded.writes;"
)

# One function per event: a trigger with transition tables serves one event only
# (https://www.postgresql.org/docs/current/sql-createtrigger.html, "REFERENCING").
PG_FUNCTIONS = {
    "list_version_insert": _UPSERT.format(
        rows="SELECT TG_TABLE_NAME, user_id, count(*) FROM added GROUP BY user_id"
    ),
    "list_version_delete": _UPSERT.format(
        rows="SELECT TG_TABLE_NAME, user_id, count(*) FROM removed GROUP BY user_id"
    ),
    # A row moved between accounts changes both accounts' lists.
    "list_version_update": _UPSERT.format(
        rows="SELECT TG_TABLE_NAME, user_id, count(*) FROM"
        " (SELECT user_id FROM old_rows UNION ALL SELECT user_id FROM new_rows) changed GROUP BY user_id"
    ),
}
_REFERENCING = {
    "insert": "NEW TABLE AS added",
    "delete": "OLD TABLE AS removed",
    "update": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
}


def _pg_triggers(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER {table}_version_{event} AFTER {event.upper()} ON {table}"
        f" REFERENCING {_REFERENCING[event]} FOR EACH STATEMENT EXECUTE FUNCTION list_version_{event}()"
        for event in EVENTS
    ]


def _sqlite_triggers(table: str) -> list[str]:
    def bump(row: str) -> str:
        return _UPSERT.format(rows=f"VALUES ('{table}', {row}.user_id, 1)")

    return [
        f"CREATE TRIGGER {table}_version_insert AFTER INSERT ON {table} BEGIN {bump('new')} END",
        f"CREATE TRIGGER {table}_version_delete AFTER DELETE ON {table} BEGIN {bump('old')} END",
        f"CREATE TRIGGER {table}_version_update AFTER UPDATE ON {table} BEGIN {bump('new')}"
        f" {bump('old')} END",
    ]


def upgrade() -> None:
    dialect = op.get_context().dialect.name
    op.create_table(
        "list_version",
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("writes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("table_name", "user_id", name=op.f("pk_list_version")),
    )
    if dialect == "postgresql":
        for name, body in PG_FUNCTIONS.items():
            op.execute(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS"
                f" $$ BEGIN {body} RETURN NULL; END $$"
            )
    for table in VERSIONED:
        for statement in _pg_triggers(table) if dialect == "postgresql" else _sqlite_triggers(table):
            op.execute(statement)


def downgrade() -> None:
    dialect = op.get_context().dialect.name
    for table in VERSIONED:
        for event in EVENTS:
            on = f" ON {table}" if dialect == "postgresql" else ""
            op.execute(f"DROP TRIGGER IF EXISTS {table}_version_{event}{on}")
    if dialect == "postgresql":
        for name in PG_FUNCTIONS:
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    op.drop_table("list_version")
