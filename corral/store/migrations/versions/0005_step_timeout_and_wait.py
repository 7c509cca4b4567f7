"""step timeout, failure code, standalone Spark application ids, failure diagnosis

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 20:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('steps', schema=None) as batch_op:
        batch_op.add_column(sa.Column('timeout_seconds', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('failure_code', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('spark_application_ids', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('diagnosed', sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('steps', schema=None) as batch_op:
        batch_op.drop_column('diagnosed')
        batch_op.drop_column('spark_application_ids')
        batch_op.drop_column('failure_code')
        batch_op.drop_column('timeout_seconds')
