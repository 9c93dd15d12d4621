"""account limits, and the views the SIP edge recognises callers and admits calls through

Revision ID: 0004
Revises: 0003

- `account_limit`: an account's concurrent-call limit (`trunkline accounts set-limits`).
- `kam_address` admits an address whatever the source port: Telnyx "The IP address port is not used
  for authentication purposes so it doesn't make a Connection unique"
  (https://support.telnyx.com/en/articles/4320411-more-about-outbound-voice-profiles).
- `kam_caller`: the connections behind each address and how a call tells them apart (tech prefix,
  `X-Telnyx-Token`, the address alone, or digest credentials).
- `kam_call_subscriber`: the credentials a call may authenticate with, inactive connections included,
  so that an inactive connection is recognised and refused with D16 rather than a bare 403.
  REGISTER keeps `kam_subscriber`, active connections only.
- `kam_connection` gains the account, its limit, and whether a profile is assigned.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

KAMAILIO_ROLE = "trunkline_kamailio"

# One row per (address, connection); permissions' port 0 matches any source port
# (https://kamailio.org/docs/modules/5.6.x/modules/permissions.html#permissions.p.port_col).
KAM_ADDRESS = """
CREATE VIEW kam_address AS
SELECT DISTINCT 1 AS grp, i.ip_address AS ip_addr,
       CASE WHEN i.ip_address LIKE '%:%' THEN 128 ELSE 32 END AS mask,
       0 AS port, c.id AS tag
FROM ip i JOIN connection c ON c.id = i.connection_id
WHERE c.kind = 'ip'
UNION
SELECT DISTINCT 1 AS grp, a.ip_address AS ip_addr,
       CASE WHEN a.ip_address LIKE '%:%' THEN 128 ELSE 32 END AS mask,
       0 AS port, c.id AS tag
FROM fqdn_address a JOIN fqdn f ON f.id = a.fqdn_id JOIN connection c ON c.id = f.connection_id
WHERE c.kind = 'fqdn'
"""

# `outbound.ip_authentication_method` lives in the connection's JSON document.
_METHOD = {
    "sqlite": "json_extract(c.document, '$.outbound.ip_authentication_method')",
    "postgresql": "(c.document::json -> 'outbound' ->> 'ip_authentication_method')",
}

# How a call from one of the connection's addresses is recognised (`auth`):
# - `digest`: an FQDN connection with `credential-authentication`: its address alone is not enough;
# - `token`: an IP connection with `token`: the INVITE's `X-Telnyx-Token` must equal the token
#   (https://developers.telnyx.com/docs/voice/sip-trunking/authentication/ip-authentication-token);
# - `prefix`: a `tech_prefix` is set: the request URI's user starts with it
#   (https://developers.telnyx.com/docs/voice/sip-trunking/authentication/tech-prefix);
# - `address`: nothing else to check.
KAM_CALLER = """
CREATE VIEW kam_caller AS
SELECT a.ip_addr AS ip_addr, c.id AS id,
       CASE
           WHEN c.kind = 'fqdn' AND {method} = 'credential-authentication' THEN 'digest'
           WHEN c.kind = 'ip' AND {method} = 'token' THEN 'token'
           WHEN COALESCE(c.tech_prefix, '') <> '' THEN 'prefix'
           ELSE 'address'
       END AS auth,
       COALESCE(c.tech_prefix, '') AS tech_prefix,
       c.ip_authentication_token AS token
FROM (SELECT DISTINCT ip_addr, tag FROM kam_address) a JOIN connection c ON c.id = a.tag
"""

KAM_CALL_SUBSCRIBER = """
CREATE VIEW kam_call_subscriber AS
SELECT s.username AS username, s.realm AS realm, s.ha1 AS ha1, s.ha1b AS ha1b,
       s.ha1_sha256 AS ha1_sha256, c.id AS connection_id
FROM sip_credential s JOIN connection c ON c.id = s.connection_id
"""

# -1 means "no limit".
KAM_CONNECTION = """
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

# The views as migration 0002 made them, for downgrade.
OLD_KAM_ADDRESS = """
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
OLD_KAM_CONNECTION = """
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
NEW_VIEWS = "kam_address, kam_caller, kam_call_subscriber, kam_connection"
OLD_VIEWS = "kam_address, kam_connection"


def upgrade() -> None:
    dialect = op.get_context().dialect.name
    op.create_table(
        "account_limit",
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("concurrent_calls", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.String(length=24), nullable=False),
        sa.Column("updated_at", sa.String(length=24), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_account_limit")),
    )
    op.execute("DROP VIEW kam_connection")
    op.execute("DROP VIEW kam_address")
    op.execute(KAM_ADDRESS)
    op.execute(KAM_CALLER.format(method=_METHOD.get(dialect, _METHOD["sqlite"])))
    op.execute(KAM_CALL_SUBSCRIBER)
    op.execute(KAM_CONNECTION)
    if dialect == "postgresql":
        op.execute(PG_GRANTS.replace("{views}", NEW_VIEWS))


def downgrade() -> None:
    dialect = op.get_context().dialect.name
    for view in ("kam_connection", "kam_call_subscriber", "kam_caller", "kam_address"):
        op.execute(f"DROP VIEW IF EXISTS {view}")
    op.execute(OLD_KAM_ADDRESS)
    op.execute(OLD_KAM_CONNECTION)
    op.drop_table("account_limit")
    if dialect == "postgresql":
        op.execute(PG_GRANTS.replace("{views}", OLD_VIEWS))
