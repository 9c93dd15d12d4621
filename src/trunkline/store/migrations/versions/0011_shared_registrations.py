"""Shared registrations: the newest REGISTER outcome per user in the database, on PostgreSQL

Revision ID: 0011
Revises: 0010

- `sip_registration_outcome` (PostgreSQL only, like `location`): what each user's newest REGISTER
  came to, written by whichever edge took it (kamailio.cfg route NOTE) in the edge's own format
  (sip/state.py RegistrationEvent), with its time so that a late write of an older outcome never
  replaces a newer one. Every API instance reads it for `check_registration_status`. On SQLite the
  one edge keeps it in memory (its `reg` htable), since Kamailio never writes the API's file.
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

KAMAILIO_ROLE = "trunkline_kamailio"

PG_TABLE = """
CREATE TABLE sip_registration_outcome (
    user_name VARCHAR(64) PRIMARY KEY,
    at DOUBLE PRECISION NOT NULL,
    outcome TEXT NOT NULL
)
"""
PG_GRANTS = f"""
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{KAMAILIO_ROLE}') THEN
        EXECUTE 'GRANT SELECT, INSERT, UPDATE ON sip_registration_outcome TO {KAMAILIO_ROLE}';
    END IF;
END
$$
"""


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(PG_TABLE)
        op.execute(PG_GRANTS)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TABLE IF EXISTS sip_registration_outcome")
