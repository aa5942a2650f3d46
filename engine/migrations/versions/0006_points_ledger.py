"""points ledger: 积分 awarded by the points/award service operator

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('points_ledger',
    sa.Column('id', ID, nullable=False),
    sa.Column('user_id', ID, nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('instance_id', ID, nullable=True),
    sa.Column('node_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_points_ledger_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_points_ledger'))
    )
    with op.batch_alter_table('points_ledger', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_points_ledger_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('points_ledger', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_points_ledger_user_id'))
    op.drop_table('points_ledger')
