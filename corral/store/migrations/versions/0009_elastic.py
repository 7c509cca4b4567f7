"""Elastic clusters: named, resizable node groups; node decommission sub-states; the
count-derived properties kept from create; idle auto-termination; node replacement

Revision ID: 0009_elastic
Revises: 0008_auth
Create Date: 2026-12-03 08:00:00

Existing groups take their role as their name (EMR's default instance group names) and
status RUNNING; existing clusters keep no derived properties (their plans render as
before, from the nodes they have: they were never resized).
"""

from alembic import op
import sqlalchemy as sa


revision = '0009_elastic'
down_revision = '0008_auth'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('node_groups', sa.Column('name', sa.String(length=64), nullable=True))
    op.add_column('node_groups', sa.Column('status', sa.String(length=16), nullable=True))
    op.add_column('node_groups', sa.Column('decommission_timeout', sa.Integer(), nullable=True))
    op.add_column('node_groups', sa.Column('leaving_node_ids', sa.JSON(), nullable=True))
    op.add_column('node_groups', sa.Column('rebalance', sa.Boolean(), nullable=True))
    op.add_column('node_groups', sa.Column('resize_requested_at', sa.Float(), nullable=True))
    op.add_column('node_groups', sa.Column('status_reason', sa.Text(), nullable=True))
    op.add_column('node_groups', sa.Column('autoscaling_policy', sa.JSON(), nullable=True))
    op.add_column('node_groups', sa.Column('scaling_state', sa.JSON(), nullable=True))
    op.execute("UPDATE node_groups SET name = role, status = 'RUNNING'")
    op.create_index('ix_node_groups_cluster_name', 'node_groups', ['cluster_id', 'name'], unique=True)

    op.add_column('nodes', sa.Column('decommission_state', sa.String(length=16), nullable=True))
    op.add_column('nodes', sa.Column('decommission_started_at', sa.Float(), nullable=True))
    op.add_column('nodes', sa.Column('decommission_deadline_at', sa.Float(), nullable=True))
    op.add_column('nodes', sa.Column('decommission_detail', sa.Text(), nullable=True))

    op.add_column('clusters', sa.Column('derived_properties', sa.JSON(), nullable=True))
    op.add_column('clusters', sa.Column('idle_timeout', sa.Integer(), nullable=True))
    op.add_column('clusters', sa.Column('idle_since', sa.Float(), nullable=True))
    op.add_column('clusters', sa.Column('unhealthy_node_replacement', sa.Boolean(), nullable=True))


def downgrade() -> None:
    for column in ('unhealthy_node_replacement', 'idle_since', 'idle_timeout', 'derived_properties'):
        op.drop_column('clusters', column)
    for column in ('decommission_detail', 'decommission_deadline_at', 'decommission_started_at', 'decommission_state'):
        op.drop_column('nodes', column)
    op.drop_index('ix_node_groups_cluster_name', table_name='node_groups')
    for column in ('scaling_state', 'autoscaling_policy', 'status_reason', 'resize_requested_at', 'rebalance',
                   'leaving_node_ids', 'decommission_timeout', 'status', 'name'):
        op.drop_column('node_groups', column)
