"""control API: virtual registrations

Revision ID: 0003
Revises: 0002

Registrations set through `PUT /_trunkline/registrations/{id}` (docs/testing-control.md), reported by
check_registration_status like a phone's. Each belongs to a credential connection and goes with it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "virtual_registration",
        sa.Column("connection_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("ip_address", sa.String(length=45), nullable=True),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("transport", sa.String(length=8), nullable=True),
        sa.Column("user_agent", sa.String(length=255), nullable=True),
        sa.Column("expires_at", sa.String(length=24), nullable=True),
        sa.Column("created_at", sa.String(length=24), nullable=False),
        sa.Column("updated_at", sa.String(length=24), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_virtual_registration_connection_id_connection"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("connection_id", name=op.f("pk_virtual_registration")),
    )
    with op.batch_alter_table("virtual_registration", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_virtual_registration_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("virtual_registration", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_virtual_registration_user_id"))
    op.drop_table("virtual_registration")
