"""object storage, external metastore, log uri and secrets

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 19:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('clusters', schema=None) as batch_op:
        batch_op.add_column(sa.Column('object_storage', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('metastore', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('log_uri', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('secrets', sa.JSON(), nullable=True))
    with op.batch_alter_table('steps', schema=None) as batch_op:
        batch_op.add_column(sa.Column('secrets', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('steps', schema=None) as batch_op:
        batch_op.drop_column('secrets')
    with op.batch_alter_table('clusters', schema=None) as batch_op:
        batch_op.drop_column('secrets')
        batch_op.drop_column('log_uri')
        batch_op.drop_column('metastore')
        batch_op.drop_column('object_storage')
