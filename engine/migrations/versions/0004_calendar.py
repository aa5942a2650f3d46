"""calendar: local working-day overrides

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('calendar_days',
    sa.Column('id', ID, nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('org_unit_id', ID, nullable=True),
    sa.Column('workday', sa.Boolean(), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=False),
    sa.Column('created_by', ID, nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_units.id'], name=op.f('fk_calendar_days_org_unit_id_org_units')),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_calendar_days_created_by_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_calendar_days')),
    sa.UniqueConstraint('day', 'org_unit_id', name='uq_calendar_days_day_org')
    )
    with op.batch_alter_table('calendar_days', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_calendar_days_day'), ['day'], unique=False)
        # NULLs are distinct in the unique constraint: a global day (no org unit) is unique by this index
        batch_op.create_index('uq_calendar_days_day_global', ['day'], unique=True,
                              sqlite_where=sa.text('org_unit_id IS NULL'),
                              postgresql_where=sa.text('org_unit_id IS NULL'))


def downgrade() -> None:
    with op.batch_alter_table('calendar_days', schema=None) as batch_op:
        batch_op.drop_index('uq_calendar_days_day_global')
        batch_op.drop_index(batch_op.f('ix_calendar_days_day'))
    op.drop_table('calendar_days')
