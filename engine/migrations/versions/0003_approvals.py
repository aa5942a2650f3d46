"""approvals: approver slots (加签, 委派, 抄送, 转办), notes, comments, attachments, notifications,
idempotency keys; inbox indexes

Revision ID: 0003
Revises: 0002
Existing task rows become ordinary approval slots (kind 'approve', or 'submit' for the initiator's
own task is not recoverable here and stays 'approve': the engine reads the node, not the kind).
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), nullable=False, server_default='approve'))
        batch_op.add_column(sa.Column('origin', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('parent_id', ID, nullable=True))
        batch_op.add_column(sa.Column('note', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('urged_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('signature_id', ID, nullable=True))
        batch_op.add_column(sa.Column('activation', sa.Integer(), nullable=False, server_default='1'))
        batch_op.drop_index('ix_tasks_assignee_status')
        batch_op.create_index('ix_tasks_assignee_status_id', ['assignee_id', 'status', 'id'], unique=False)
        batch_op.create_index('ix_tasks_completed_by_id', ['completed_by', 'id'], unique=False)

    op.create_table('attachments',
    sa.Column('id', ID, nullable=False),
    sa.Column('instance_id', ID, nullable=True),
    sa.Column('task_id', ID, nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('uploaded_by', ID, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['instance_id'], ['process_instances.id'], name=op.f('fk_attachments_instance_id_process_instances')),
    sa.ForeignKeyConstraint(['uploaded_by'], ['users.id'], name=op.f('fk_attachments_uploaded_by_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attachments'))
    )
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attachments_instance_id'), ['instance_id'], unique=False)

    op.create_table('comments',
    sa.Column('id', ID, nullable=False),
    sa.Column('instance_id', ID, nullable=False),
    sa.Column('author_id', ID, nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['instance_id'], ['process_instances.id'], name=op.f('fk_comments_instance_id_process_instances')),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_comments_author_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_comments'))
    )
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_comments_instance_id'), ['instance_id'], unique=False)

    op.create_table('notifications',
    sa.Column('id', ID, nullable=False),
    sa.Column('user_id', ID, nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('instance_id', ID, nullable=True),
    sa.Column('task_id', ID, nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notifications_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications'))
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index('ix_notifications_user_read', ['user_id', 'read_at'], unique=False)

    op.create_table('idempotency_keys',
    sa.Column('user_id', ID, nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('response', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('user_id', 'key', name=op.f('pk_idempotency_keys'))
    )


def downgrade() -> None:
    op.drop_table('idempotency_keys')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_user_read')
    op.drop_table('notifications')
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_comments_instance_id'))
    op.drop_table('comments')
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attachments_instance_id'))
    op.drop_table('attachments')
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_tasks_completed_by_id')
        batch_op.drop_index('ix_tasks_assignee_status_id')
        batch_op.create_index('ix_tasks_assignee_status', ['assignee_id', 'status'], unique=False)
        for col in ('activation', 'signature_id', 'urged_at', 'note', 'parent_id', 'origin', 'kind'):
            batch_op.drop_column(col)
