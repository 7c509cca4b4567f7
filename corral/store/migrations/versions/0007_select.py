"""nodes keep their host's name and their resolved size; node addresses as long as a host's

Revision ID: 0007_select
Revises: 0006
Create Date: 2026-12-03 10:00:00

A node on the ssh provider is a whole host, sized by it at create (``corral.hosts.selection``):
its vcpus and memory are kept in its row, so a later ``host add --cores/--memory`` or a new
host check does not change a running cluster's sizes (the step-add checks read them). Its
address is the host's, which may be as long as ``hosts.address``.
"""

from alembic import op
import sqlalchemy as sa


revision = '0007_select'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('nodes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('host_name', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('vcpus', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('memory_mib', sa.Integer(), nullable=True))
        batch_op.alter_column('address', existing_type=sa.String(length=64), type_=sa.String(length=255),
                              existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table('nodes', schema=None) as batch_op:
        batch_op.alter_column('address', existing_type=sa.String(length=255), type_=sa.String(length=64),
                              existing_nullable=True)
        batch_op.drop_column('memory_mib')
        batch_op.drop_column('vcpus')
        batch_op.drop_column('host_name')
