"""process schedules: processes with a timer start event, per unit

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('process_schedules',
    sa.Column('id', ID, nullable=False),
    sa.Column('definition_key', sa.String(length=100), nullable=False),
    sa.Column('org_unit_id', sa.BigInteger(), nullable=False),
    sa.Column('next_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('remaining', sa.Integer(), nullable=False),
    sa.Column('fired', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_instance_id', sa.BigInteger(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_process_schedules')),
    sa.UniqueConstraint('definition_key', 'org_unit_id', name='uq_process_schedules_key_org')
    )
    with op.batch_alter_table('process_schedules', schema=None) as batch_op:
        batch_op.create_index('ix_process_schedules_status_next', ['status', 'next_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('process_schedules', schema=None) as batch_op:
        batch_op.drop_index('ix_process_schedules_status_next')
    op.drop_table('process_schedules')
