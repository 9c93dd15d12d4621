"""sip edge: Kamailio-facing views, resolved FQDN addresses, Kamailio's own tables on PostgreSQL

Revision ID: 0002
Revises: 0001

Kamailio reads the API's data only through the `kam_*` views below: they are the contract between
the two (docs/sip.md). On SQLite Kamailio opens the API's file read-only and keeps its
registrations in a file of its own (created by `trunkline.sip.edge_db`); on PostgreSQL its `location`
table lives here, written by the Kamailio role and only read by the API.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The role Kamailio may log in as on PostgreSQL: it reads the views and writes only `location`.
KAMAILIO_ROLE = "trunkline_kamailio"

KAM_SUBSCRIBER = """
CREATE VIEW kam_subscriber AS
SELECT s.username AS username, s.realm AS realm, s.ha1 AS ha1, s.ha1b AS ha1b,
       s.ha1_sha256 AS ha1_sha256, c.id AS connection_id
FROM sip_credential s JOIN connection c ON c.id = s.connection_id
WHERE c.active
"""

# permissions' address table (grp, ip_addr, mask, port, tag: the *_col parameters of
# https://kamailio.org/docs/modules/5.6.x/modules/permissions.html). Inactive
# connections stay listed so that the edge can name them and refuse with D18 instead of a bare 403.
# Port 5060 is the default Telnyx fills in: it admits any source port (TCP clients send from
# ephemeral ports); any other port must match exactly (permissions: port 0 = any).
KAM_ADDRESS = """
CREATE VIEW kam_address AS
SELECT 1 AS grp, i.ip_address AS ip_addr,
       CASE WHEN i.ip_address LIKE '%:%' THEN 128 ELSE 32 END AS mask,
       CASE WHEN i.port = 5060 THEN 0 ELSE i.port END AS port,
       c.id AS tag
FROM ip i JOIN connection c ON c.id = i.connection_id
WHERE c.kind = 'ip'
UNION ALL
SELECT 1 AS grp, a.ip_address AS ip_addr,
       CASE WHEN a.ip_address LIKE '%:%' THEN 128 ELSE 32 END AS mask,
       CASE WHEN a.port = 5060 THEN 0 ELSE a.port END AS port,
       c.id AS tag
FROM fqdn_address a JOIN fqdn f ON f.id = a.fqdn_id JOIN connection c ON c.id = f.connection_id
WHERE c.kind = 'fqdn'
"""

# What the call route needs to admit a call: read with sqlops per INVITE, so changes to limits,
# active flags and profiles apply to the next call without any reload. -1 means "no limit".
KAM_CONNECTION = """
CREATE VIEW kam_connection AS
SELECT c.id AS id, c.kind AS kind,
       CASE WHEN c.active THEN 1 ELSE 0 END AS active,
       COALESCE(c.inbound_channel_limit, -1) AS inbound_limit,
       COALESCE(c.outbound_channel_limit, -1) AS outbound_limit,
       COALESCE(c.outbound_voice_profile_id, '') AS ovp_id,
       CASE WHEN p.id IS NULL OR p.enabled THEN 1 ELSE 0 END AS ovp_enabled,
       COALESCE(p.concurrent_call_limit, -1) AS ovp_limit
FROM connection c LEFT JOIN outbound_voice_profile p ON p.id = c.outbound_voice_profile_id
"""

# usrloc's table as Kamailio 5.6 defines it (usrloc-create.sql, table version 9).
PG_LOCATION = """
CREATE TABLE location (
    id SERIAL PRIMARY KEY NOT NULL,
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
PG_LOCATION_INDEXES = [
    "CREATE INDEX location_account_contact_idx ON location (username, domain, contact)",
    "CREATE INDEX location_expires_idx ON location (expires)",
    "CREATE INDEX location_connection_idx ON location (server_id, connection_id)",
]

# Roles are cluster-wide: create the Kamailio role once, and carry on where we may not create roles
# (the grants below then simply have no grantee and are skipped).
PG_ROLE = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{KAMAILIO_ROLE}') THEN
        CREATE ROLE {KAMAILIO_ROLE} LOGIN;
    END IF;
    -- Kamailio's writes are registrations, soft state that phones refresh: not waiting for the WAL
    -- flush on each one lifts write-through usrloc from ~400 to 1000+ REGISTER/s on one disk, and a
    -- crash loses at most the last moment of refreshes, never consistency (PostgreSQL docs,
    -- "Asynchronous Commit").
    ALTER ROLE {KAMAILIO_ROLE} SET synchronous_commit = off;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'cannot create role {KAMAILIO_ROLE}; Kamailio will use the API''s role';
END
$$
"""
PG_GRANTS = f"""
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{KAMAILIO_ROLE}') THEN
        EXECUTE 'GRANT SELECT ON kam_subscriber, kam_address, kam_connection, version TO {KAMAILIO_ROLE}';
        EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON location TO {KAMAILIO_ROLE}';
        EXECUTE 'GRANT USAGE, SELECT ON SEQUENCE location_id_seq TO {KAMAILIO_ROLE}';
    END IF;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "fqdn_address",
        sa.Column("fqdn_id", sa.String(length=36), nullable=False),
        sa.Column("ip_address", sa.String(length=45), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("resolved_at", sa.String(length=24), nullable=False),
        sa.ForeignKeyConstraint(
            ["fqdn_id"], ["fqdn.id"], name=op.f("fk_fqdn_address_fqdn_id_fqdn"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("fqdn_id", "ip_address", "port", name=op.f("pk_fqdn_address")),
    )
    # Kamailio's table-version registry: permissions refuses to start without a row for its table
    # (Kamailio 5.6 has no switch to skip the check).
    op.create_table(
        "version",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("table_name", sa.String(length=32), nullable=False, unique=True),
        sa.Column("table_version", sa.Integer(), nullable=False, server_default="0"),
    )
    op.bulk_insert(
        sa.table("version", sa.column("table_name", sa.String), sa.column("table_version", sa.Integer)),
        [{"table_name": "kam_address", "table_version": 6}],
    )
    for ddl in (KAM_SUBSCRIBER, KAM_ADDRESS, KAM_CONNECTION):
        op.execute(ddl)
    if op.get_context().dialect.name == "postgresql":
        op.execute(PG_LOCATION)
        for ddl in PG_LOCATION_INDEXES:
            op.execute(ddl)
        op.execute(PG_ROLE)
        op.execute(PG_GRANTS)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TABLE IF EXISTS location")
    for view in ("kam_connection", "kam_address", "kam_subscriber"):
        op.execute(f"DROP VIEW IF EXISTS {view}")
    op.drop_table("version")
    op.drop_table("fqdn_address")
