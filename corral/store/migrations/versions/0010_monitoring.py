"""Monitoring: metric history in chunks, alert rules, alerts, webhooks and deliveries; a
step's cost; a cluster's monitoring switch

Revision ID: 0010_monitoring
Revises: 0009_elastic
Create Date: 2026-12-04 18:00:00

Existing clusters keep monitoring on (None reads as on), existing steps have no cost.
"""

from alembic import op
import sqlalchemy as sa


revision = '0010_monitoring'
down_revision = '0009_elastic'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('clusters', sa.Column('monitoring', sa.Boolean(), nullable=True))
    op.add_column('steps', sa.Column('cost', sa.JSON(), nullable=True))

    op.create_table(
        'metric_chunks',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('cluster_id', sa.String(length=16), nullable=False),
        sa.Column('resolution', sa.Integer(), nullable=False),
        sa.Column('start', sa.Float(), nullable=False),
        sa.Column('end', sa.Float(), nullable=False),
        sa.Column('points', sa.Integer(), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
    )
    op.create_index('ix_metric_chunks_cluster_res_start', 'metric_chunks', ['cluster_id', 'resolution', 'start'],
                    unique=True)
    op.create_index('ix_metric_chunks_end', 'metric_chunks', ['end'])

    op.create_table(
        'alert_rules',
        sa.Column('id', sa.String(length=16), primary_key=True),
        sa.Column('cluster_id', sa.String(length=16), nullable=True),
        sa.Column('name', sa.String(length=128), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('metric', sa.String(length=64), nullable=True),
        sa.Column('comparison', sa.String(length=4), nullable=True),
        sa.Column('threshold', sa.Float(), nullable=True),
        sa.Column('for_seconds', sa.Float(), nullable=False),
        sa.Column('event_code', sa.String(length=64), nullable=True),
        sa.Column('event_watermark', sa.Integer(), nullable=True),
        sa.Column('severity', sa.String(length=16), nullable=False),
        sa.Column('message', sa.Text(), nullable=True),
        sa.Column('builtin', sa.Boolean(), nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
    )
    op.create_index('ix_alert_rules_cluster_id', 'alert_rules', ['cluster_id'])
    op.create_index('ix_alert_rules_scope_name', 'alert_rules', ['cluster_id', 'name'], unique=True)

    op.create_table(
        'alerts',
        sa.Column('id', sa.String(length=16), primary_key=True),
        sa.Column('rule_id', sa.String(length=16), sa.ForeignKey('alert_rules.id', ondelete='CASCADE'), nullable=False),
        sa.Column('cluster_id', sa.String(length=16), nullable=False),
        sa.Column('node_id', sa.String(length=16), nullable=True),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('value', sa.Float(), nullable=True),
        sa.Column('summary', sa.Text(), nullable=False),
        sa.Column('labels', sa.JSON(), nullable=False),
        sa.Column('pending_since', sa.Float(), nullable=False),
        sa.Column('fired_at', sa.Float(), nullable=True),
        sa.Column('resolved_at', sa.Float(), nullable=True),
        sa.Column('updated_at', sa.Float(), nullable=False),
        sa.Column('event_id', sa.Integer(), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False, server_default='1'),
    )
    op.create_index('ix_alerts_cluster_id', 'alerts', ['cluster_id'])
    op.create_index('ix_alerts_state', 'alerts', ['state'])
    op.create_index('ix_alerts_rule_cluster_state', 'alerts', ['rule_id', 'cluster_id', 'state'])

    op.create_table(
        'alert_webhooks',
        sa.Column('id', sa.String(length=16), primary_key=True),
        sa.Column('cluster_id', sa.String(length=16), nullable=True),
        sa.Column('name', sa.String(length=128), nullable=False),
        sa.Column('url', sa.Text(), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
    )
    op.create_index('ix_alert_webhooks_cluster_id', 'alert_webhooks', ['cluster_id'])
    op.create_index('ix_alert_webhooks_scope_name', 'alert_webhooks', ['cluster_id', 'name'], unique=True)

    op.create_table(
        'alert_deliveries',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('alert_id', sa.String(length=16), sa.ForeignKey('alerts.id', ondelete='CASCADE'), nullable=False),
        sa.Column('webhook_id', sa.String(length=16), sa.ForeignKey('alert_webhooks.id', ondelete='CASCADE'),
                  nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.Float(), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('response_code', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.Column('delivered_at', sa.Float(), nullable=True),
    )
    op.create_index('ix_alert_deliveries_alert_id', 'alert_deliveries', ['alert_id'])
    op.create_index('ix_alert_deliveries_due', 'alert_deliveries', ['state', 'next_attempt_at'])


def downgrade() -> None:
    op.drop_table('alert_deliveries')
    op.drop_table('alert_webhooks')
    op.drop_table('alerts')
    op.drop_table('alert_rules')
    op.drop_table('metric_chunks')
    op.drop_column('steps', 'cost')
    op.drop_column('clusters', 'monitoring')
