"""SIP subdomains: unique across the server, and the view the edge routes subdomain calls by

Revision ID: 0010
Revises: 0008

- `connection.sip_subdomain`: `inbound.sip_subdomain` of IP and FQDN connections, with a unique index
  (a subdomain names one connection on the whole server). Filled from the stored documents; where
  earlier versions let two connections name the same subdomain, the oldest keeps it in the column
  (the edge routes to that one) and the others' documents are left as they are.
- `kam_subdomain`: subdomain → connection, account and `sip_subdomain_receive_settings`.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0008"  # becomes "0009" once that migration lands
branch_labels = None
depends_on = None

KAMAILIO_ROLE = "trunkline_kamailio"


def kam_subdomain(dialect: str) -> str:
    if dialect == "postgresql":
        receive = "(c.document::json #>> '{inbound,sip_subdomain_receive_settings}')"
    else:
        receive = "CAST(json_extract(c.document, '$.inbound.sip_subdomain_receive_settings') AS TEXT)"
    return f"""
CREATE VIEW kam_subdomain AS
SELECT c.sip_subdomain AS subdomain, c.id AS connection_id, c.user_id AS user_id,
       COALESCE({receive}, 'from_anyone') AS receive
FROM connection c
WHERE c.sip_subdomain IS NOT NULL
"""


PG_GRANTS = f"""
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{KAMAILIO_ROLE}') THEN
        EXECUTE 'GRANT SELECT ON kam_subdomain TO {KAMAILIO_ROLE}';
    END IF;
END
$$
"""


def upgrade() -> None:
    dialect = op.get_context().dialect.name
    op.add_column("connection", sa.Column("sip_subdomain", sa.String(length=63), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT id, document FROM connection WHERE kind IN ('ip', 'fqdn') "
            'AND document LIKE \'%"sip_subdomain":"%\' ORDER BY created_at, id'
        )
    ).all()
    held: set[str] = set()
    for row in rows:
        sub = (json.loads(row.document).get("inbound") or {}).get("sip_subdomain")
        if sub and sub not in held:
            held.add(sub)
            bind.execute(
                sa.text("UPDATE connection SET sip_subdomain = :s WHERE id = :i").bindparams(s=sub, i=row.id)
            )
    op.create_index("uq_connection_sip_subdomain", "connection", ["sip_subdomain"], unique=True)
    op.execute(kam_subdomain(dialect))
    if dialect == "postgresql":
        op.execute(PG_GRANTS)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS kam_subdomain")
    op.drop_index("uq_connection_sip_subdomain", table_name="connection")
    # A plain DROP COLUMN on both engines (SQLite 3.35+): a batch copy of `connection` would break the
    # views and triggers that name it.
    op.execute("ALTER TABLE connection DROP COLUMN sip_subdomain")
