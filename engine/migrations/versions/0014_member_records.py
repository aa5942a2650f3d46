"""member records: what the shipped processes write into a member's record (stages, grades, transfers)

Revision ID: 0014
Revises: 0013
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('member_records',
    sa.Column('id', ID, nullable=False),
    sa.Column('user_id', ID, nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('period', sa.String(length=32), nullable=True),
    sa.Column('value', sa.JSON(), nullable=False),
    sa.Column('instance_id', ID, nullable=True),
    sa.Column('node_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_member_records_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_member_records'))
    )
    with op.batch_alter_table('member_records', schema=None) as batch_op:
        batch_op.create_index('ix_member_records_user_kind', ['user_id', 'kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_member_records_instance_id'), ['instance_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('member_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_member_records_instance_id'))
        batch_op.drop_index('ix_member_records_user_kind')
    op.drop_table('member_records')
