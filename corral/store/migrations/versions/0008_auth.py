"""clusters.agent_token as TEXT: it is stored encrypted (corral.secretbox), longer than 128

Revision ID: 0008_auth
Revises: 0007_select
Create Date: 2026-12-02 12:00:00

An encrypted 43-character agent token is 147 characters (``enc:v1:`` + a Fernet token),
which PostgreSQL's VARCHAR(128) refuses. SQLite does not enforce a VARCHAR's length, and
a batch ALTER there would copy and drop ``clusters``, which nodes and steps reference:
SQLite's column is left as it is.
"""

from alembic import op
import sqlalchemy as sa


revision = '0008_auth'
down_revision = '0007_select'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != 'sqlite':
        op.alter_column('clusters', 'agent_token', type_=sa.Text(), existing_type=sa.String(length=128),
                        existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name != 'sqlite':
        op.alter_column('clusters', 'agent_token', type_=sa.String(length=128), existing_type=sa.Text(),
                        existing_nullable=False)
