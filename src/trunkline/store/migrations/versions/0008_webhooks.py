"""webhooks: the outbox of events to deliver, and the server's signing key

Revision ID: 0008
Revises: 0007

- `webhook_event`: one row per event to deliver (docs/webhooks.md), written in the transaction of
  the call transition it announces; delivery workers lease rows (`lease_owner`, `lease_until`).
- `webhook_attempt`: every delivery attempt of an event (time, URL, HTTP status, latency, error).
- `webhook_key`: the server's Ed25519 key pair (one row, id 1), generated on first start, shared by
  every API instance on the database.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_event",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("connection_id", sa.String(length=36), nullable=True),
        sa.Column("call_leg_id", sa.String(length=64), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("api_version", sa.String(length=2), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("failover_url", sa.Text(), nullable=True),
        sa.Column("timeout_secs", sa.Integer(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_url", sa.Text(), nullable=False),
        sa.Column("round_attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.String(length=24), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.String(length=24), nullable=True),
        sa.Column("delivered_at", sa.String(length=24), nullable=True),
        sa.Column("delivered_to", sa.Text(), nullable=True),
        sa.Column("last_error", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.String(length=24), nullable=False),
        sa.Column("updated_at", sa.String(length=24), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_event")),
    )
    op.create_index("ix_webhook_event_status_next_attempt_at", "webhook_event", ["status", "next_attempt_at"])
    op.create_index("ix_webhook_event_call_leg_id_seq", "webhook_event", ["call_leg_id", "seq"])
    op.create_index("ix_webhook_event_user_id_created_at", "webhook_event", ["user_id", "created_at"])
    op.create_table(
        "webhook_attempt",
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("attempted_at", sa.String(length=24), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["webhook_event.id"],
            name=op.f("fk_webhook_attempt_event_id_webhook_event"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", "attempt", name=op.f("pk_webhook_attempt")),
    )
    op.create_table(
        "webhook_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("private_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.String(length=24), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_key")),
    )


def downgrade() -> None:
    op.drop_table("webhook_key")
    op.drop_table("webhook_attempt")
    op.drop_index("ix_webhook_event_user_id_created_at", table_name="webhook_event")
    op.drop_index("ix_webhook_event_call_leg_id_seq", table_name="webhook_event")
    op.drop_index("ix_webhook_event_status_next_attempt_at", table_name="webhook_event")
    op.drop_table("webhook_event")
