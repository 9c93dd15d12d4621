"""list indexes: every connection filter and sort from an index, counts per account and kind

Revision ID: 0005
Revises: 0004

- Sort indexes within an account for each list order (store/paging.py: the key, created_at, id), with
  and without the kind; they replace 0001's (user_id, created_at) and (user_id, kind, created_at).
- `filter[connection_name][contains]` through a trigram index: PostgreSQL a pg_trgm GIN index on
  lower(connection_name) (https://www.postgresql.org/docs/current/pgtrgm.html#PGTRGM-INDEX); SQLite
  an FTS5 table with the trigram tokenizer (https://www.sqlite.org/fts5.html#the_trigram_tokenizer),
  its rowid the connection's numeric id (store/ids.py: 63-bit snowflakes), kept in step by triggers.
  The list query keeps its LIKE predicate, so the index only narrows the candidates.
- `connection_count`: connections per account and kind, exact (triggers in the writing transaction),
  so that an unfiltered list's total is one read.

On PostgreSQL the indexes are built with CREATE INDEX CONCURRENTLY outside the migration's
transaction (https://www.postgresql.org/docs/current/sql-createindex.html#SQL-CREATEINDEX-CONCURRENTLY,
https://alembic.sqlalchemy.org/en/latest/api/runtime.html#alembic.runtime.migration.MigrationContext.autocommit_block),
so a live database keeps taking writes while they build; a build that failed and left an INVALID
index is dropped and built again by the next run. The counter's triggers and backfill run in one
transaction: CREATE TRIGGER blocks writes to `connection` until it commits, so no row is missed or
counted twice.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# name -> (columns); the same on both engines, in store/schema.py's metadata.
PLAIN = {
    "ix_connection_user_id_created_at_id": "user_id, created_at, id",
    "ix_connection_user_id_kind_created_at_id": "user_id, kind, created_at, id",
    "ix_connection_user_id_active_created_at_id": "user_id, active, created_at, id",
    "ix_connection_user_id_kind_active_created_at_id": "user_id, kind, active, created_at, id",
    "ix_connection_user_id_outbound_voice_profile_id_created_at_id": (
        "user_id, outbound_voice_profile_id, created_at, id"
    ),
}
# connection_name is nullable and lists put NULLs first ascending (store/paging.py): SQLite's order
# already does, PostgreSQL's index must say so (its default is NULLS LAST).
BY_NAME = {
    "ix_connection_user_id_connection_name_created_at_id": "user_id, connection_name{nulls}, created_at, id",
    "ix_connection_user_id_kind_connection_name_created_at_id": (
        "user_id, kind, connection_name{nulls}, created_at, id"
    ),
}
OLD = {
    "ix_connection_user_id_created_at": "user_id, created_at",
    "ix_connection_user_id_kind_created_at": "user_id, kind, created_at",
}
PG_TRGM = "ix_connection_name_trgm"

SQLITE_SEARCH = [
    "CREATE VIRTUAL TABLE connection_name_trigram USING fts5(connection_name, tokenize = 'trigram')",
    "INSERT INTO connection_name_trigram (rowid, connection_name)"
    " SELECT CAST(id AS INTEGER), connection_name FROM connection WHERE connection_name IS NOT NULL",
    """
    CREATE TRIGGER connection_search_insert AFTER INSERT ON connection
    WHEN new.connection_name IS NOT NULL
    BEGIN
        INSERT INTO connection_name_trigram (rowid, connection_name)
        VALUES (CAST(new.id AS INTEGER), new.connection_name);
    END
    """,
    """
    CREATE TRIGGER connection_search_delete AFTER DELETE ON connection
    BEGIN
        DELETE FROM connection_name_trigram WHERE rowid = CAST(old.id AS INTEGER);
    END
    """,
    """
    CREATE TRIGGER connection_search_update AFTER UPDATE OF id, connection_name ON connection
    WHEN old.connection_name IS NOT new.connection_name OR old.id IS NOT new.id
    BEGIN
        DELETE FROM connection_name_trigram WHERE rowid = CAST(old.id AS INTEGER);
        INSERT INTO connection_name_trigram (rowid, connection_name)
        SELECT CAST(new.id AS INTEGER), new.connection_name WHERE new.connection_name IS NOT NULL;
    END
    """,
]
SQLITE_COUNT = [
    """
    CREATE TRIGGER connection_count_insert AFTER INSERT ON connection
    BEGIN
        INSERT INTO connection_count (user_id, kind, n) VALUES (new.user_id, new.kind, 1)
        ON CONFLICT (user_id, kind) DO UPDATE SET n = n + 1;
    END
    """,
    """
    CREATE TRIGGER connection_count_delete AFTER DELETE ON connection
    BEGIN
        UPDATE connection_count SET n = n - 1 WHERE user_id = old.user_id AND kind = old.kind;
    END
    """,
    """
    CREATE TRIGGER connection_count_update AFTER UPDATE OF user_id, kind ON connection
    WHEN old.user_id IS NOT new.user_id OR old.kind IS NOT new.kind
    BEGIN
        UPDATE connection_count SET n = n - 1 WHERE user_id = old.user_id AND kind = old.kind;
        INSERT INTO connection_count (user_id, kind, n) VALUES (new.user_id, new.kind, 1)
        ON CONFLICT (user_id, kind) DO UPDATE SET n = n + 1;
    END
    """,
]
SQLITE_TRIGGERS = [
    "connection_search_insert",
    "connection_search_delete",
    "connection_search_update",
    "connection_count_insert",
    "connection_count_delete",
    "connection_count_update",
]

# Statement-level triggers with transition tables
# (https://www.postgresql.org/docs/current/sql-createtrigger.html): one upsert per statement and
# account, so a COPY of many rows does not update the same counter row once per row.
PG_COUNT = [
    """
    CREATE FUNCTION connection_count_add() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO connection_count (user_id, kind, n)
        SELECT user_id, kind, count(*) FROM added GROUP BY user_id, kind
        ON CONFLICT (user_id, kind) DO UPDATE SET n = connection_count.n + excluded.n;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE FUNCTION connection_count_remove() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE connection_count c SET n = c.n - r.n
        FROM (SELECT user_id, kind, count(*) AS n FROM removed GROUP BY user_id, kind) r
        WHERE c.user_id = r.user_id AND c.kind = r.kind;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE FUNCTION connection_count_move() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE connection_count SET n = n - 1 WHERE user_id = OLD.user_id AND kind = OLD.kind;
        INSERT INTO connection_count (user_id, kind, n) VALUES (NEW.user_id, NEW.kind, 1)
        ON CONFLICT (user_id, kind) DO UPDATE SET n = connection_count.n + 1;
        RETURN NULL;
    END
    $$
    """,
    "CREATE TRIGGER connection_count_insert AFTER INSERT ON connection"
    " REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION connection_count_add()",
    "CREATE TRIGGER connection_count_delete AFTER DELETE ON connection"
    " REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION connection_count_remove()",
    "CREATE TRIGGER connection_count_update AFTER UPDATE OF user_id, kind ON connection FOR EACH ROW"
    " WHEN (OLD.user_id IS DISTINCT FROM NEW.user_id OR OLD.kind IS DISTINCT FROM NEW.kind)"
    " EXECUTE FUNCTION connection_count_move()",
]
PG_FUNCTIONS = ["connection_count_add", "connection_count_remove", "connection_count_move"]
PG_TRIGGERS = ["connection_count_insert", "connection_count_delete", "connection_count_update"]

BACKFILL = (
    "INSERT INTO connection_count (user_id, kind, n)"
    " SELECT user_id, kind, count(*) FROM connection GROUP BY user_id, kind"
)


def _pg_create_concurrently(name: str, definition: str) -> None:
    """CREATE INDEX CONCURRENTLY, rebuilding an INVALID index a failed earlier build left behind."""
    bind = op.get_bind()
    valid = bind.execute(
        sa.text("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:name)"), {"name": name}
    ).scalar()
    if valid is False:
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
    op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON connection {definition}")


def upgrade() -> None:
    dialect = op.get_context().dialect.name
    op.create_table(
        "connection_count",
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "kind", name=op.f("pk_connection_count")),
    )
    if dialect == "postgresql":
        for statement in PG_COUNT:
            op.execute(statement)
        op.execute(BACKFILL)
        with op.get_context().autocommit_block():
            # Trusted since PostgreSQL 13: a database owner may create it
            # (https://www.postgresql.org/docs/current/pgtrgm.html).
            op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            for name, columns in PLAIN.items():
                _pg_create_concurrently(name, f"({columns})")
            for name, columns in BY_NAME.items():
                _pg_create_concurrently(name, f"({columns.format(nulls=' NULLS FIRST')})")
            _pg_create_concurrently(PG_TRGM, "USING gin (lower(connection_name) gin_trgm_ops)")
            for name in OLD:
                op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        return
    for statement in SQLITE_COUNT:
        op.execute(statement)
    op.execute(BACKFILL)
    for statement in SQLITE_SEARCH:
        op.execute(statement)
    for name, columns in PLAIN.items():
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON connection ({columns})")
    for name, columns in BY_NAME.items():
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON connection ({columns.format(nulls='')})")
    for name in OLD:
        op.execute(f"DROP INDEX IF EXISTS {name}")


def downgrade() -> None:
    dialect = op.get_context().dialect.name
    if dialect == "postgresql":
        for name in PG_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON connection")
        for name in PG_FUNCTIONS:
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
        op.drop_table("connection_count")
        with op.get_context().autocommit_block():
            for name, columns in OLD.items():
                _pg_create_concurrently(name, f"({columns})")
            for name in [*PLAIN, *BY_NAME, PG_TRGM]:
                op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        return
    for name in SQLITE_TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute("DROP TABLE IF EXISTS connection_name_trigram")
    op.drop_table("connection_count")
    for name, columns in OLD.items():
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON connection ({columns})")
    for name in [*PLAIN, *BY_NAME]:
        op.execute(f"DROP INDEX IF EXISTS {name}")
