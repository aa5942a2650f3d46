"""party dues: each member's dues base (dues_bases) and the monthly dues ledger (dues_ledger)

Revision ID: 0015
Revises: 0014
"""
import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('dues_bases',
    sa.Column('id', ID, nullable=False),
    sa.Column('user_id', ID, nullable=False),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('base', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('fixed_amount', sa.Numeric(precision=10, scale=2), nullable=True),
    sa.Column('effective_from', sa.CHAR(length=7), nullable=False),
    sa.Column('is_override', sa.Boolean(), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('set_by', ID, nullable=True),
    sa.Column('set_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('instance_id', ID, nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_dues_bases_user_id_users')),
    sa.ForeignKeyConstraint(['set_by'], ['users.id'], name=op.f('fk_dues_bases_set_by_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dues_bases'))
    )
    with op.batch_alter_table('dues_bases', schema=None) as batch_op:
        batch_op.create_index('ix_dues_bases_user_from', ['user_id', 'effective_from'], unique=False)

    op.create_table('dues_ledger',
    sa.Column('id', ID, nullable=False),
    sa.Column('user_id', ID, nullable=False),
    sa.Column('month', sa.CHAR(length=7), nullable=False),
    sa.Column('org_unit_id', ID, nullable=True),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('base', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('rate', sa.Numeric(precision=6, scale=4), nullable=True),
    sa.Column('amount', sa.Numeric(precision=10, scale=2), nullable=False),
    sa.Column('original_amount', sa.Numeric(precision=10, scale=2), nullable=True),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('paid_on', sa.Date(), nullable=True),
    sa.Column('paid_amount', sa.Numeric(precision=10, scale=2), nullable=True),
    sa.Column('paid_via', sa.String(length=16), nullable=True),
    sa.Column('instance_id', ID, nullable=True),
    sa.Column('paid_instance_id', ID, nullable=True),
    sa.Column('base_id', ID, nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('due', 'paid', 'waived')", name=op.f('ck_dues_ledger_status')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_dues_ledger_user_id_users')),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_units.id'], name=op.f('fk_dues_ledger_org_unit_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dues_ledger')),
    sa.UniqueConstraint('user_id', 'month', name='uq_dues_ledger_user_month')
    )
    with op.batch_alter_table('dues_ledger', schema=None) as batch_op:
        batch_op.create_index('ix_dues_ledger_org_month', ['org_unit_id', 'month'], unique=False)
        batch_op.create_index(batch_op.f('ix_dues_ledger_instance_id'), ['instance_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('dues_ledger', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dues_ledger_instance_id'))
        batch_op.drop_index('ix_dues_ledger_org_month')
    op.drop_table('dues_ledger')
    with op.batch_alter_table('dues_bases', schema=None) as batch_op:
        batch_op.drop_index('ix_dues_bases_user_from')
    op.drop_table('dues_bases')
