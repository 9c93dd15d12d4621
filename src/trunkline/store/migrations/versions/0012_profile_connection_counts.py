"""profile connection counts: connections per outbound voice profile, kept by triggers as 0005's counts

Revision ID: 0012
Revises: 0011

- `profile_connection_count`: how many connections name each outbound voice profile
  (`connection.outbound_voice_profile_id`), exact (triggers in the writing transaction), so that a
  profile's `connections_count` is one indexed read however many connections it has, where a GROUP BY
  over the connections read one index entry per connection. A profile no connection names may have no
  row, or a row with n = 0; reads take a missing row as 0. The row goes with its profile (ON DELETE
  CASCADE); a profile with connections cannot go (`connection`'s foreign key is RESTRICT, 0001).

As in 0005 and 0009 the triggers and the backfill run in one transaction on PostgreSQL: CREATE TRIGGER
takes a SHARE ROW EXCLUSIVE lock on `connection`, which waits for the writers in flight and holds off
new ones until the migration commits (https://www.postgresql.org/docs/current/explicit-locking.html#LOCKING-TABLES),
while reads go on; so the backfill, a later statement with a later snapshot, counts every row the
triggers did not see, and none twice.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

COUNT = "profile_connection_count"
PROFILE = "outbound_voice_profile_id"

SQLITE_TRIGGERS = {
    f"{COUNT}_insert": f"""
    CREATE TRIGGER {COUNT}_insert AFTER INSERT ON connection
    WHEN new.{PROFILE} IS NOT NULL
    BEGIN
        INSERT INTO {COUNT} ({PROFILE}, n) VALUES (new.{PROFILE}, 1)
        ON CONFLICT ({PROFILE}) DO UPDATE SET n = n + 1;
    END
    """,
    f"{COUNT}_delete": f"""
    CREATE TRIGGER {COUNT}_delete AFTER DELETE ON connection
    WHEN old.{PROFILE} IS NOT NULL
    BEGIN
        UPDATE {COUNT} SET n = n - 1 WHERE {PROFILE} = old.{PROFILE};
    END
    """,
    # The SELECT's WHERE is also what lets SQLite parse the upsert after an INSERT ... SELECT
    # (https://www.sqlite.org/lang_upsert.html, "Parsing Ambiguity").
    f"{COUNT}_update": f"""
    CREATE TRIGGER {COUNT}_update AFTER UPDATE OF {PROFILE} ON connection
    WHEN old.{PROFILE} IS NOT new.{PROFILE}
    BEGIN
        UPDATE {COUNT} SET n = n - 1 WHERE {PROFILE} = old.{PROFILE};
        INSERT INTO {COUNT} ({PROFILE}, n) SELECT new.{PROFILE}, 1 WHERE new.{PROFILE} IS NOT NULL
        ON CONFLICT ({PROFILE}) DO UPDATE SET n = n + 1;
    END
    """,
}

# Row-level triggers on PostgreSQL, where 0005's insert and delete counters are statement-level: a
# row-level AFTER trigger fires before every statement-level one
# (https://www.postgresql.org/docs/current/trigger-definition.html), so each statement that writes a
# connection locks its profiles' counter rows before the counter rows of 0005 and later migrations'
# statement-level triggers, whatever their names, and a create and a PATCH of the same account cannot
# wait for each other in a cycle. A move changes its two rows in one upsert whose rows come in profile
# id order, so two writers moving connections between the same two profiles in opposite directions
# lock them in the same order (as store/locks.py orders table rows). A statement that writes many
# connections (an account's reset or restore, store/accounts.py) has locked the account's connections
# and profiles, or made them, so no other writer holds their counter rows meanwhile. A decrement's row
# exists: the connection it counts put it there (or the backfill did), and the profile cannot go while
# a connection names it.
PG_FUNCTIONS = {
    f"{COUNT}_add": f"""
    BEGIN
        INSERT INTO {COUNT} ({PROFILE}, n) VALUES (NEW.{PROFILE}, 1)
        ON CONFLICT ({PROFILE}) DO UPDATE SET n = {COUNT}.n + 1;
        RETURN NULL;
    END
    """,
    f"{COUNT}_remove": f"""
    BEGIN
        UPDATE {COUNT} SET n = n - 1 WHERE {PROFILE} = OLD.{PROFILE};
        RETURN NULL;
    END
    """,
    f"{COUNT}_move": f"""
    BEGIN
        INSERT INTO {COUNT} ({PROFILE}, n)
        SELECT profile, delta FROM (VALUES (OLD.{PROFILE}, -1), (NEW.{PROFILE}, 1)) AS moved (profile, delta)
        WHERE profile IS NOT NULL ORDER BY profile
        ON CONFLICT ({PROFILE}) DO UPDATE SET n = {COUNT}.n + excluded.n;
        RETURN NULL;
    END
    """,
}
PG_TRIGGERS = [
    f"CREATE TRIGGER {COUNT}_insert AFTER INSERT ON connection FOR EACH ROW"
    f" WHEN (NEW.{PROFILE} IS NOT NULL) EXECUTE FUNCTION {COUNT}_add()",
    f"CREATE TRIGGER {COUNT}_delete AFTER DELETE ON connection FOR EACH ROW"
    f" WHEN (OLD.{PROFILE} IS NOT NULL) EXECUTE FUNCTION {COUNT}_remove()",
    f"CREATE TRIGGER {COUNT}_update AFTER UPDATE OF {PROFILE} ON connection FOR EACH ROW"
    f" WHEN (OLD.{PROFILE} IS DISTINCT FROM NEW.{PROFILE}) EXECUTE FUNCTION {COUNT}_move()",
]

BACKFILL = (
    f"INSERT INTO {COUNT} ({PROFILE}, n)"
    f" SELECT {PROFILE}, count(*) FROM connection WHERE {PROFILE} IS NOT NULL GROUP BY {PROFILE}"
)


def upgrade() -> None:
    op.create_table(
        COUNT,
        sa.Column(PROFILE, sa.String(length=36), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        # Named by hand: the naming convention's name (store/schema.py) would pass PostgreSQL's 63 bytes.
        sa.ForeignKeyConstraint(
            [PROFILE],
            ["outbound_voice_profile.id"],
            name=op.f(f"fk_{COUNT}_{PROFILE}"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(PROFILE, name=op.f(f"pk_{COUNT}")),
    )
    if op.get_context().dialect.name == "postgresql":
        for name, body in PG_FUNCTIONS.items():
            op.execute(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $${body}$$")
        for statement in PG_TRIGGERS:
            op.execute(statement)
    else:
        for statement in SQLITE_TRIGGERS.values():
            op.execute(statement)
    op.execute(BACKFILL)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        for event in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS {COUNT}_{event} ON connection")
        for name in PG_FUNCTIONS:
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table(COUNT)
