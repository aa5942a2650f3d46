"""timer jobs: the next BPMN timer of each instance

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('timer_jobs',
    sa.Column('id', ID, nullable=False),
    sa.Column('instance_id', ID, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('ref', sa.String(length=64), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('locked_by', sa.String(length=100), nullable=True),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['instance_id'], ['process_instances.id'], name=op.f('fk_timer_jobs_instance_id_process_instances')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_timer_jobs')),
    sa.UniqueConstraint('instance_id', 'kind', 'ref', name='uq_timer_jobs_instance_kind_ref')
    )
    with op.batch_alter_table('timer_jobs', schema=None) as batch_op:
        batch_op.create_index('ix_timer_jobs_status_due', ['status', 'due_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('timer_jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_timer_jobs_status_due')
    op.drop_table('timer_jobs')
