"""hosts (ssh provider), API tokens, audit log, node host and health

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 06:30:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'hosts',
        sa.Column('id', sa.String(length=16), nullable=False),
        sa.Column('name', sa.String(length=128), nullable=False),
        sa.Column('address', sa.String(length=255), nullable=False),
        sa.Column('port', sa.Integer(), nullable=False),
        sa.Column('user', sa.String(length=64), nullable=False),
        sa.Column('labels', sa.JSON(), nullable=False),
        sa.Column('host_key_fingerprint', sa.String(length=128), nullable=True),
        sa.Column('host_key', sa.Text(), nullable=True),
        sa.Column('private_key', sa.Text(), nullable=True),
        sa.Column('cores_override', sa.Integer(), nullable=True),
        sa.Column('memory_mb_override', sa.Integer(), nullable=True),
        sa.Column('facts', sa.JSON(), nullable=False),
        sa.Column('checks', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=32), nullable=False),
        sa.Column('target', sa.String(length=32), nullable=False),
        sa.Column('status_reason', sa.Text(), nullable=True),
        sa.Column('node_id', sa.String(length=16), nullable=True),
        sa.Column('cluster_id', sa.String(length=16), nullable=True),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.Column('status_changed_at', sa.Float(), nullable=False),
        sa.Column('checked_at', sa.Float(), nullable=True),
        sa.Column('last_seen_at', sa.Float(), nullable=True),
        sa.Column('removed_at', sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name'),
        sa.UniqueConstraint('node_id'),
    )
    op.create_index('ix_hosts_status', 'hosts', ['status'])
    op.create_index('ix_hosts_cluster_id', 'hosts', ['cluster_id'])
    op.create_table(
        'api_tokens',
        sa.Column('id', sa.String(length=16), nullable=False),
        sa.Column('name', sa.String(length=128), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('secret_hash', sa.String(length=128), nullable=False),
        sa.Column('created_by', sa.String(length=128), nullable=True),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.Column('last_used_at', sa.Float(), nullable=True),
        sa.Column('revoked_at', sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name'),
        sa.UniqueConstraint('secret_hash'),
    )
    op.create_table(
        'audit_log',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('time', sa.Float(), nullable=False),
        sa.Column('actor', sa.String(length=128), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=True),
        sa.Column('method', sa.String(length=8), nullable=False),
        sa.Column('path', sa.Text(), nullable=False),
        sa.Column('action', sa.String(length=64), nullable=False),
        sa.Column('target', sa.String(length=255), nullable=True),
        sa.Column('status_code', sa.Integer(), nullable=False),
        sa.Column('result', sa.String(length=16), nullable=False),
        sa.Column('remote', sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_audit_log_time', 'audit_log', ['time'])
    with op.batch_alter_table('nodes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('host_id', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('lost_at', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('status_reason', sa.Text(), nullable=True))
        batch_op.create_index('ix_nodes_host_id', ['host_id'])
    with op.batch_alter_table('node_groups', schema=None) as batch_op:
        batch_op.add_column(sa.Column('host_labels', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('host_names', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('node_groups', schema=None) as batch_op:
        batch_op.drop_column('host_names')
        batch_op.drop_column('host_labels')
    with op.batch_alter_table('nodes', schema=None) as batch_op:
        batch_op.drop_index('ix_nodes_host_id')
        batch_op.drop_column('status_reason')
        batch_op.drop_column('lost_at')
        batch_op.drop_column('host_id')
    op.drop_index('ix_audit_log_time', table_name='audit_log')
    op.drop_table('audit_log')
    op.drop_table('api_tokens')
    op.drop_index('ix_hosts_cluster_id', table_name='hosts')
    op.drop_index('ix_hosts_status', table_name='hosts')
    op.drop_table('hosts')
