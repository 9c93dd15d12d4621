"""phone numbers and inbound routing: the number inventory, and the views the edge routes calls by

Revision ID: 0007
Revises: 0006

- `phone_number`: numbers per account, assigned to at most one connection (SET NULL when it goes).
- `kam_number`: +E.164 number → its connection and account.
- `kam_inbound`: what inbound routing needs of a connection (routing method, timeouts, number formats,
  transport, SIP URI calling preference, simultaneous ringing, the credential user name).
- `kam_route`: an IP or FQDN connection's routes in order: the primary, secondary and tertiary
  (`inbound.default_*_ip_id` / `_fqdn_id`) first, then its other addresses, oldest first.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

KAMAILIO_ROLE = "trunkline_kamailio"


def _text(dialect: str, doc: str, *path: str) -> str:
    if dialect == "postgresql":
        return f"({doc}::json #>> '{{{','.join(path)}}}')"
    return f"CAST(json_extract({doc}, '$.{'.'.join(path)}') AS TEXT)"


KAM_NUMBER = """
CREATE VIEW kam_number AS
SELECT n.phone_number AS phone_number, COALESCE(n.connection_id, '') AS connection_id, n.user_id AS user_id
FROM phone_number n
"""


def kam_inbound(dialect: str) -> str:
    def t(*path: str) -> str:
        return f"COALESCE({_text(dialect, 'c.document', *path)}, '')"

    return f"""
CREATE VIEW kam_inbound AS
SELECT c.id AS id, c.kind AS kind, c.user_id AS user_id,
       CASE WHEN c.active THEN 1 ELSE 0 END AS active,
       COALESCE(c.inbound_channel_limit, -1) AS inbound_limit,
       {t("inbound", "default_routing_method")} AS routing,
       {t("inbound", "timeout_1xx_secs")} AS timeout_1xx,
       {t("inbound", "timeout_2xx_secs")} AS timeout_2xx,
       {t("inbound", "ani_number_format")} AS ani_format,
       {t("inbound", "dnis_number_format")} AS dnis_format,
       {t("inbound", "simultaneous_ringing")} AS simultaneous_ringing,
       {t("transport_protocol")} AS transport,
       {t("sip_uri_calling_preference")} AS uri_calling,
       COALESCE(c.user_name, '') AS user_name
FROM connection c
"""


def kam_route(dialect: str) -> str:
    def role(doc: str, kind: str, column: str) -> str:
        ids = [
            _text(dialect, doc, "inbound", f"default_{rank}_{kind}_id")
            for rank in ("primary", "secondary", "tertiary")
        ]
        return f"CASE {column} WHEN {ids[0]} THEN 1 WHEN {ids[1]} THEN 2 WHEN {ids[2]} THEN 3 ELSE 4 END"

    return f"""
CREATE VIEW kam_route AS
SELECT i.connection_id AS connection_id, {role("c.document", "ip", "i.id")} AS priority,
       i.created_at AS created_at, i.ip_address AS address, i.port AS port
FROM ip i JOIN connection c ON c.id = i.connection_id
WHERE c.kind = 'ip'
UNION ALL
SELECT f.connection_id AS connection_id, {role("c.document", "fqdn", "f.id")} AS priority,
       f.created_at AS created_at, a.ip_address AS address, a.port AS port
FROM fqdn_address a JOIN fqdn f ON f.id = a.fqdn_id JOIN connection c ON c.id = f.connection_id
WHERE c.kind = 'fqdn'
"""


PG_GRANTS = f"""
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{KAMAILIO_ROLE}') THEN
        EXECUTE 'GRANT SELECT ON kam_number, kam_inbound, kam_route TO {KAMAILIO_ROLE}';
    END IF;
END
$$
"""


def upgrade() -> None:
    dialect = op.get_context().dialect.name
    op.create_table(
        "phone_number",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("phone_number", sa.String(length=16), nullable=False),
        sa.Column("connection_id", sa.String(length=36), nullable=True),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("created_at", sa.String(length=24), nullable=False),
        sa.Column("updated_at", sa.String(length=24), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_phone_number_connection_id_connection"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_phone_number")),
        sa.UniqueConstraint("phone_number", name=op.f("uq_phone_number_phone_number")),
    )
    op.create_index("ix_phone_number_connection_id", "phone_number", ["connection_id"])
    op.create_index("ix_phone_number_user_id_created_at_id", "phone_number", ["user_id", "created_at", "id"])
    op.execute(KAM_NUMBER)
    op.execute(kam_inbound(dialect))
    op.execute(kam_route(dialect))
    if dialect == "postgresql":
        op.execute(PG_GRANTS)


def downgrade() -> None:
    for view in ("kam_route", "kam_inbound", "kam_number"):
        op.execute(f"DROP VIEW IF EXISTS {view}")
    op.drop_table("phone_number")
