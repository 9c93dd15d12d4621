"""SIP subdomains and SRV routes: subdomains unique across the server, the view the edge routes
subdomain calls by, and each FQDN address's SRV priority and weight

Revision ID: 0010
Revises: 0009

- `connection.sip_subdomain`: `inbound.sip_subdomain` of IP and FQDN connections, with a unique index
  (a subdomain names one connection on the whole server). Filled from the stored documents; where
  earlier versions let two connections name the same subdomain, the oldest keeps it in the column
  (the edge routes to that one) and the others' documents are left as they are.
- `kam_subdomain`: subdomain → connection, account and `sip_subdomain_receive_settings`.
- `fqdn_address.srv_priority`, `srv_weight`: what the SRV record gave (0 for A records), and
  `kam_route` gains them and each route's IP or FQDN id (`grp`): the edge orders routes itself
  (src/trunkline/sip/routing.py).
- `call_record.routes_tried`: an inbound call's routes in the order tried, with each one's answer.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
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


def _text(dialect: str, doc: str, *path: str) -> str:
    if dialect == "postgresql":
        return f"({doc}::json #>> '{{{','.join(path)}}}')"
    return f"CAST(json_extract({doc}, '$.{'.'.join(path)}') AS TEXT)"


def kam_route(dialect: str, *, srv: bool) -> str:
    """The view as 0007 made it (srv=False), or with the SRV columns and the group."""

    def role(doc: str, kind: str, column: str) -> str:
        ids = [
            _text(dialect, doc, "inbound", f"default_{rank}_{kind}_id")
            for rank in ("primary", "secondary", "tertiary")
        ]
        return f"CASE {column} WHEN {ids[0]} THEN 1 WHEN {ids[1]} THEN 2 WHEN {ids[2]} THEN 3 ELSE 4 END"

    ip_extra = ", i.id AS grp, 0 AS srv_priority, 0 AS srv_weight" if srv else ""
    fqdn_extra = ", f.id AS grp, a.srv_priority AS srv_priority, a.srv_weight AS srv_weight" if srv else ""
    return f"""
CREATE VIEW kam_route AS
SELECT i.connection_id AS connection_id, {role("c.document", "ip", "i.id")} AS priority,
       i.created_at AS created_at, i.ip_address AS address, i.port AS port{ip_extra}
FROM ip i JOIN connection c ON c.id = i.connection_id
WHERE c.kind = 'ip'
UNION ALL
SELECT f.connection_id AS connection_id, {role("c.document", "fqdn", "f.id")} AS priority,
       f.created_at AS created_at, a.ip_address AS address, a.port AS port{fqdn_extra}
FROM fqdn_address a JOIN fqdn f ON f.id = a.fqdn_id JOIN connection c ON c.id = f.connection_id
WHERE c.kind = 'fqdn'
"""


PG_GRANTS = f"""
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{KAMAILIO_ROLE}') THEN
        EXECUTE 'GRANT SELECT ON kam_subdomain, kam_route TO {KAMAILIO_ROLE}';
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
    op.add_column("fqdn_address", sa.Column("srv_priority", sa.Integer(), server_default="0", nullable=False))
    op.add_column("fqdn_address", sa.Column("srv_weight", sa.Integer(), server_default="0", nullable=False))
    op.execute("DROP VIEW kam_route")
    op.execute(kam_route(dialect, srv=True))
    op.add_column("call_record", sa.Column("routes_tried", sa.Text(), nullable=True))
    if dialect == "postgresql":
        op.execute(PG_GRANTS)


def downgrade() -> None:
    dialect = op.get_context().dialect.name
    op.execute("ALTER TABLE call_record DROP COLUMN routes_tried")
    op.execute("DROP VIEW kam_route")
    op.execute(kam_route(dialect, srv=False))
    if dialect == "postgresql":
        op.execute(PG_GRANTS.replace("kam_subdomain, kam_route", "kam_route"))
    for column in ("srv_weight", "srv_priority"):
        op.execute(f"ALTER TABLE fqdn_address DROP COLUMN {column}")
    op.execute("DROP VIEW IF EXISTS kam_subdomain")
    op.drop_index("uq_connection_sip_subdomain", table_name="connection")
    # A plain DROP COLUMN on both engines (SQLite 3.35+): a batch copy of `connection` would break the
    # views and triggers that name it.
    op.execute("ALTER TABLE connection DROP COLUMN sip_subdomain")
