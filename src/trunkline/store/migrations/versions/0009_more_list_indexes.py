"""more list indexes: IPs, FQDNs, outbound voice profiles and access IP ranges as 0005 did connections

Revision ID: 0009
Revises: 0008

- Each list's order within an account (store/paging.py: the key, then created_at, then id), alone and
  after each equality filter the list offers: IPs (connection_id, ip_address, port), FQDNs
  (connection_id, fqdn, port, dns_record_type), access IP ranges (the order serves
  `filter[created_at]` ranges too), and every sort of outbound voice profiles. They replace 0001's
  (user_id, created_at) indexes.
- `filter[name][contains]` of outbound voice profiles through a trigram index, as 0005 did
  connection names (store/search.py): PostgreSQL a pg_trgm GIN index on lower(name), SQLite an FTS5
  table with the trigram tokenizer whose rowid is the profile's numeric id, kept by triggers.
- `account_row_count`: the rows of each account in those four tables, exact (triggers in the writing
  transaction), so that an unfiltered list's total is one read.

As in 0005, PostgreSQL builds the indexes with CREATE INDEX CONCURRENTLY outside the migration's
transaction (https://www.postgresql.org/docs/current/sql-createindex.html#SQL-CREATEINDEX-CONCURRENTLY),
rebuilding an INVALID one a failed earlier build left; the counter's triggers and backfill run in one
transaction, so no row is missed or counted twice.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# table -> {index name: columns}; the same on both engines, in store/schema.py's metadata.
INDEXES = {
    "ip": {
        "ix_ip_user_id_created_at_id": "user_id, created_at, id",
        "ix_ip_user_id_connection_id_created_at_id": "user_id, connection_id, created_at, id",
        "ix_ip_user_id_ip_address_created_at_id": "user_id, ip_address, created_at, id",
        "ix_ip_user_id_port_created_at_id": "user_id, port, created_at, id",
    },
    "fqdn": {
        "ix_fqdn_user_id_created_at_id": "user_id, created_at, id",
        "ix_fqdn_user_id_connection_id_created_at_id": "user_id, connection_id, created_at, id",
        "ix_fqdn_user_id_fqdn_created_at_id": "user_id, fqdn, created_at, id",
        "ix_fqdn_user_id_port_created_at_id": "user_id, port, created_at, id",
        "ix_fqdn_user_id_dns_record_type_created_at_id": "user_id, dns_record_type, created_at, id",
    },
    "outbound_voice_profile": {
        "ix_outbound_voice_profile_user_id_created_at_id": "user_id, created_at, id",
        **{
            f"ix_outbound_voice_profile_user_id_{key}": f"user_id, {key}, created_at, id"
            for key in ("name", "enabled", "traffic_type", "service_plan", "usage_payment_method")
        },
    },
    "access_ip_range": {"ix_access_ip_range_user_id_created_at_id": "user_id, created_at, id"},
}
# 0001's, which the first index of each table above replaces (access_ip_range had none).
OLD = {
    "ip": {"ix_ip_user_id_created_at": "user_id, created_at"},
    "fqdn": {"ix_fqdn_user_id_created_at": "user_id, created_at"},
    "outbound_voice_profile": {"ix_outbound_voice_profile_user_id_created_at": "user_id, created_at"},
}
COUNTED = list(INDEXES)

PG_TRGM = "ix_outbound_voice_profile_name_trgm"
TRIGRAM = "outbound_voice_profile_name_trigram"
SQLITE_SEARCH = [
    f"CREATE VIRTUAL TABLE {TRIGRAM} USING fts5(name, tokenize = 'trigram')",
    f"INSERT INTO {TRIGRAM} (rowid, name) SELECT CAST(id AS INTEGER), name FROM outbound_voice_profile",
    f"""
    CREATE TRIGGER outbound_voice_profile_search_insert AFTER INSERT ON outbound_voice_profile
    BEGIN
        INSERT INTO {TRIGRAM} (rowid, name) VALUES (CAST(new.id AS INTEGER), new.name);
    END
    """,
    f"""
    CREATE TRIGGER outbound_voice_profile_search_delete AFTER DELETE ON outbound_voice_profile
    BEGIN
        DELETE FROM {TRIGRAM} WHERE rowid = CAST(old.id AS INTEGER);
    END
    """,
    f"""
    CREATE TRIGGER outbound_voice_profile_search_update AFTER UPDATE OF id, name ON outbound_voice_profile
    WHEN old.name IS NOT new.name OR old.id IS NOT new.id
    BEGIN
        DELETE FROM {TRIGRAM} WHERE rowid = CAST(old.id AS INTEGER);
        INSERT INTO {TRIGRAM} (rowid, name) VALUES (CAST(new.id AS INTEGER), new.name);
    END
    """,
]
SQLITE_SEARCH_TRIGGERS = [
    "outbound_voice_profile_search_insert",
    "outbound_voice_profile_search_delete",
    "outbound_voice_profile_search_update",
]


def _sqlite_count(table: str) -> list[str]:
    """Row-level triggers keeping `account_row_count` of `table` exact, as 0005's connection_count."""
    add = (
        f"INSERT INTO account_row_count (table_name, user_id, n) VALUES ('{table}', new.user_id, 1)"
        " ON CONFLICT (table_name, user_id) DO UPDATE SET n = n + 1;"
    )
    remove = f"UPDATE account_row_count SET n = n - 1 WHERE table_name = '{table}' AND user_id = old.user_id;"
    return [
        f"CREATE TRIGGER {table}_count_insert AFTER INSERT ON {table} BEGIN {add} END",
        f"CREATE TRIGGER {table}_count_delete AFTER DELETE ON {table} BEGIN {remove} END",
        f"CREATE TRIGGER {table}_count_update AFTER UPDATE OF user_id ON {table}"
        f" WHEN old.user_id IS NOT new.user_id BEGIN {remove} {add} END",
    ]


# One set of functions for every counted table (TG_TABLE_NAME), statement-level with transition
# tables as in 0005 (https://www.postgresql.org/docs/current/plpgsql-trigger.html).
PG_FUNCTIONS = {
    "account_row_count_add": """
    BEGIN
        INSERT INTO account_row_count (table_name, user_id, n)
        SELECT TG_TABLE_NAME, user_id, count(*) FROM added GROUP BY user_id
        ON CONFLICT (table_name, user_id) DO UPDATE SET n = account_row_count.n + excluded.n;
        RETURN NULL;
    END
    """,
    "account_row_count_remove": """
    BEGIN
        UPDATE account_row_count c SET n = c.n - r.n
        FROM (SELECT user_id, count(*) AS n FROM removed GROUP BY user_id) r
        WHERE c.table_name = TG_TABLE_NAME AND c.user_id = r.user_id;
        RETURN NULL;
    END
    """,
    "account_row_count_move": """
    BEGIN
        UPDATE account_row_count SET n = n - 1 WHERE table_name = TG_TABLE_NAME AND user_id = OLD.user_id;
        INSERT INTO account_row_count (table_name, user_id, n) VALUES (TG_TABLE_NAME, NEW.user_id, 1)
        ON CONFLICT (table_name, user_id) DO UPDATE SET n = account_row_count.n + 1;
        RETURN NULL;
    END
    """,
}


def _pg_count(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER {table}_count_insert AFTER INSERT ON {table}"
        " REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION account_row_count_add()",
        f"CREATE TRIGGER {table}_count_delete AFTER DELETE ON {table}"
        " REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION account_row_count_remove()",
        f"CREATE TRIGGER {table}_count_update AFTER UPDATE OF user_id ON {table} FOR EACH ROW"
        " WHEN (OLD.user_id IS DISTINCT FROM NEW.user_id) EXECUTE FUNCTION account_row_count_move()",
    ]


def _backfill(table: str) -> str:
    return (
        f"INSERT INTO account_row_count (table_name, user_id, n)"
        f" SELECT '{table}', user_id, count(*) FROM {table} GROUP BY user_id"
    )


def _pg_create_concurrently(table: str, name: str, definition: str) -> None:
    """CREATE INDEX CONCURRENTLY, rebuilding an INVALID index a failed earlier build left behind."""
    bind = op.get_bind()
    valid = bind.execute(
        sa.text("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:name)"), {"name": name}
    ).scalar()
    if valid is False:
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
    op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} {definition}")


def upgrade() -> None:
    dialect = op.get_context().dialect.name
    op.create_table(
        "account_row_count",
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("table_name", "user_id", name=op.f("pk_account_row_count")),
    )
    if dialect == "postgresql":
        for name, body in PG_FUNCTIONS.items():
            op.execute(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $${body}$$")
        for table in COUNTED:
            for statement in _pg_count(table):
                op.execute(statement)
            op.execute(_backfill(table))
        with op.get_context().autocommit_block():
            op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")  # 0005 made it; as there, if missing
            for table, indexes in INDEXES.items():
                for name, columns in indexes.items():
                    _pg_create_concurrently(table, name, f"({columns})")
            _pg_create_concurrently("outbound_voice_profile", PG_TRGM, "USING gin (lower(name) gin_trgm_ops)")
            for old in OLD.values():
                for name in old:
                    op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        return
    for table in COUNTED:
        for statement in _sqlite_count(table):
            op.execute(statement)
        op.execute(_backfill(table))
    for statement in SQLITE_SEARCH:
        op.execute(statement)
    for table, indexes in INDEXES.items():
        for name, columns in indexes.items():
            op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns})")
    for old in OLD.values():
        for name in old:
            op.execute(f"DROP INDEX IF EXISTS {name}")


def downgrade() -> None:
    dialect = op.get_context().dialect.name
    triggers = [f"{table}_count_{event}" for table in COUNTED for event in ("insert", "delete", "update")]
    if dialect == "postgresql":
        for table in COUNTED:
            for event in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_count_{event} ON {table}")
        for name in PG_FUNCTIONS:
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
        op.drop_table("account_row_count")
        with op.get_context().autocommit_block():
            for table, old in OLD.items():
                for name, columns in old.items():
                    _pg_create_concurrently(table, name, f"({columns})")
            for indexes in INDEXES.values():
                for name in indexes:
                    op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {PG_TRGM}")
        return
    for name in [*triggers, *SQLITE_SEARCH_TRIGGERS]:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute(f"DROP TABLE IF EXISTS {TRIGRAM}")
    op.drop_table("account_row_count")
    for table, old in OLD.items():
        for name, columns in old.items():
            op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns})")
    for indexes in INDEXES.values():
        for name in indexes:
            op.execute(f"DROP INDEX IF EXISTS {name}")
