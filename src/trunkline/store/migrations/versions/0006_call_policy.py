"""call policy and records: rate deck, call records, daily spend, a movable clock; the edge's views

Revision ID: 0006
Revises: 0005

- `rate`, `rate_deck`: the rate deck (`trunkline rates import`).
- `call_record`: one row per call attempt through the edge; `connection_spend`: each connection's
  rated spend per UTC day; `clock_offset`: the server clock's offset (0 unless a test moved it).
- `kam_connection` gains what outbound policy needs (localization, ANI override, the profile's
  destinations, rate and spend limits, calling window), the clock offset and whether a deck is loaded.
- `kam_rate` (prefix → rate) and `kam_spend` (connection, day → spend) for the edge.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

KAMAILIO_ROLE = "trunkline_kamailio"


def _text(dialect: str, doc: str, *path: str) -> str:
    """A JSON document's value at path, as text (arrays as JSON text, booleans as 1/0 or true/false)."""
    if dialect == "postgresql":
        return f"({doc}::json #>> '{{{','.join(path)}}}')"
    return f"CAST(json_extract({doc}, '$.{'.'.join(path)}') AS TEXT)"


def _flag(dialect: str, doc: str, *path: str) -> str:
    return f"CASE WHEN {_text(dialect, doc, *path)} IN ('1', 'true') THEN 1 ELSE 0 END"


# -1 means "no limit"; '' means "not set".
def kam_connection(dialect: str) -> str:
    t = lambda doc, *path: f"COALESCE({_text(dialect, doc, *path)}, '')"  # noqa: E731
    return f"""
CREATE VIEW kam_connection AS
SELECT c.id AS id, c.kind AS kind, c.user_id AS user_id,
       CASE WHEN c.active THEN 1 ELSE 0 END AS active,
       COALESCE(c.inbound_channel_limit, -1) AS inbound_limit,
       COALESCE(c.outbound_channel_limit, -1) AS outbound_limit,
       COALESCE(c.outbound_voice_profile_id, '') AS ovp_id,
       CASE WHEN p.id IS NULL THEN 0 ELSE 1 END AS has_ovp,
       CASE WHEN p.id IS NULL OR p.enabled THEN 1 ELSE 0 END AS ovp_enabled,
       COALESCE(p.concurrent_call_limit, -1) AS ovp_limit,
       COALESCE(l.concurrent_calls, -1) AS account_limit,
       {t("c.document", "outbound", "localization")} AS localization,
       {t("c.document", "outbound", "ani_override")} AS ani_override,
       {t("c.document", "outbound", "ani_override_type")} AS ani_override_type,
       {t("p.document", "whitelisted_destinations")} AS whitelist,
       {t("p.document", "max_destination_rate")} AS max_rate,
       CASE WHEN {_flag(dialect, "p.document", "daily_spend_limit_enabled")} = 1
            THEN {t("p.document", "daily_spend_limit")} ELSE '' END AS spend_limit,
       {t("p.document", "calling_window", "start_time")} AS window_start,
       {t("p.document", "calling_window", "end_time")} AS window_end,
       {t("p.document", "calling_window", "calls_per_cld")} AS calls_per_cld,
       (SELECT COALESCE(MAX(o.offset_ms), 0) FROM clock_offset o) AS clock_offset_ms,
       (SELECT COUNT(*) FROM rate_deck d) AS rate_deck
FROM connection c
LEFT JOIN outbound_voice_profile p ON p.id = c.outbound_voice_profile_id
LEFT JOIN account_limit l ON l.user_id = c.user_id
"""


KAM_RATE = "CREATE VIEW kam_rate AS SELECT prefix, rate FROM rate"
KAM_SPEND = "CREATE VIEW kam_spend AS SELECT connection_id, day, cost_nanos FROM connection_spend"

# kam_connection as migration 0004 made it, for downgrade.
OLD_KAM_CONNECTION = """
CREATE VIEW kam_connection AS
SELECT c.id AS id, c.kind AS kind, c.user_id AS user_id,
       CASE WHEN c.active THEN 1 ELSE 0 END AS active,
       COALESCE(c.inbound_channel_limit, -1) AS inbound_limit,
       COALESCE(c.outbound_channel_limit, -1) AS outbound_limit,
       COALESCE(c.outbound_voice_profile_id, '') AS ovp_id,
       CASE WHEN p.id IS NULL THEN 0 ELSE 1 END AS has_ovp,
       CASE WHEN p.id IS NULL OR p.enabled THEN 1 ELSE 0 END AS ovp_enabled,
       COALESCE(p.concurrent_call_limit, -1) AS ovp_limit,
       COALESCE(l.concurrent_calls, -1) AS account_limit
FROM connection c
LEFT JOIN outbound_voice_profile p ON p.id = c.outbound_voice_profile_id
LEFT JOIN account_limit l ON l.user_id = c.user_id
"""

# A dropped view loses its grants: give the Kamailio role (migration 0002) the views again.
PG_GRANTS = f"""
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{KAMAILIO_ROLE}') THEN
        EXECUTE 'GRANT SELECT ON {{views}} TO {KAMAILIO_ROLE}';
    END IF;
END
$$
"""


def upgrade() -> None:
    dialect = op.get_context().dialect.name
    op.create_table(
        "rate",
        sa.Column("prefix", sa.String(length=15), nullable=False),
        sa.Column("rate", sa.String(length=32), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("prefix", name=op.f("pk_rate")),
    )
    op.create_table(
        "rate_deck",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rates", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=True),
        sa.Column("imported_at", sa.String(length=24), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_deck")),
    )
    op.create_table(
        "call_record",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("connection_id", sa.String(length=36), nullable=True),
        sa.Column("call_session_id", sa.String(length=36), nullable=False),
        sa.Column("call_control_id", sa.String(length=64), nullable=False),
        sa.Column("sip_call_id", sa.String(length=255), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("cli", sa.String(length=64), nullable=False),
        sa.Column("cld", sa.String(length=64), nullable=False),
        sa.Column("destination_country", sa.String(length=3), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.String(length=24), nullable=False),
        sa.Column("answered_at", sa.String(length=24), nullable=True),
        sa.Column("finished_at", sa.String(length=24), nullable=True),
        sa.Column("call_sec", sa.Integer(), nullable=True),
        sa.Column("billed_sec", sa.Integer(), nullable=True),
        sa.Column("rate", sa.String(length=32), nullable=True),
        sa.Column("cost", sa.String(length=32), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("sip_status", sa.Integer(), nullable=True),
        sa.Column("sip_reason", sa.String(length=255), nullable=True),
        sa.Column("d_code", sa.String(length=8), nullable=True),
        sa.Column("hangup_cause", sa.String(length=32), nullable=True),
        sa.Column("hangup_source", sa.String(length=16), nullable=True),
        sa.Column("updated_at", sa.String(length=24), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_record")),
    )
    op.create_index("ix_call_record_user_id_started_at_id", "call_record", ["user_id", "started_at", "id"])
    op.create_index("ix_call_record_connection_id_state", "call_record", ["connection_id", "state"])
    op.create_table(
        "connection_spend",
        sa.Column("connection_id", sa.String(length=36), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("cost_nanos", sa.BigInteger(), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("connection_id", "day", name=op.f("pk_connection_spend")),
    )
    op.create_table(
        "clock_offset",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("offset_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clock_offset")),
    )
    op.execute("DROP VIEW kam_connection")
    op.execute(kam_connection(dialect))
    op.execute(KAM_RATE)
    op.execute(KAM_SPEND)
    if dialect == "postgresql":
        op.execute(PG_GRANTS.replace("{views}", "kam_connection, kam_rate, kam_spend"))


def downgrade() -> None:
    dialect = op.get_context().dialect.name
    for view in ("kam_spend", "kam_rate", "kam_connection"):
        op.execute(f"DROP VIEW IF EXISTS {view}")
    op.execute(OLD_KAM_CONNECTION)
    for table in ("clock_offset", "connection_spend", "call_record", "rate_deck", "rate"):
        op.drop_table(table)
    if dialect == "postgresql":
        op.execute(PG_GRANTS.replace("{views}", "kam_connection"))
