"""E-mail notifications (engine/notify/email.py) through a real SMTP server the test starts: a new
待办 is mailed to the assignee with a link, in Chinese; people without an address and kinds not
configured get none; a 451 is retried after the back-off; nothing is mailed without DJFLOW_SMTP_HOST."""
from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select, update

from engine import now
from engine.models import OutboxEmail, User
from tests.api.helpers import Flow, demo_client
from tests.support.processes import deploy, node, write_process
from tests.support.smtp import SmtpServer


@pytest.fixture
def smtp():
    s = SmtpServer()
    yield s
    s.close()


def make_flow(db_url, tmp_path, **settings) -> Flow:
    client = demo_client(db_url, attachments_dir=str(tmp_path / "files"), webhook_backoff_seconds=10,
                         public_url="https://djflow.example.gov.cn", **settings)
    f = Flow(client)
    f.engine = client.app.state.engine
    deploy(f.engine.db, f.engine.settings, write_process(tmp_path, "m_two", [
        node("review", "科室审批", "user:kezhang"), node("lead", "分管领导审批", "user:fenguan")]))
    with f.engine.db.unit_of_work() as s:
        s.execute(update(User).where(User.username == "kezhang").values(email="qianqi@example.gov.cn"))
    return f


def test_a_new_task_is_mailed_to_its_assignee_with_a_link(db_url, tmp_path, smtp):
    flow = make_flow(db_url, tmp_path, smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_from="oa@example.gov.cn")
    flow.start("m_two")
    assert smtp.messages == []  # not inside the action
    assert flow.engine.mailer.deliver_due() == 1
    [(to, msg)] = smtp.messages
    assert to == ["qianqi@example.gov.cn"] and msg["To"] == "qianqi@example.gov.cn"
    assert msg["Subject"].startswith("[djflow] 待办：") and "oa@example.gov.cn" in msg["From"]
    task = flow.task("kezhang")
    text = msg.get_content()
    assert text.startswith("钱七，您好") and f"https://djflow.example.gov.cn/tasks/{task['id']}" in text
    flow.decide("kezhang", "review")  # fenguan has no address: nothing to mail
    assert flow.engine.mailer.deliver_due() == 0 and len(smtp.messages) == 1


def test_a_refused_recipient_is_retried_after_the_back_off(db_url, tmp_path, smtp):
    flow = make_flow(db_url, tmp_path, smtp_host="127.0.0.1", smtp_port=smtp.port)
    smtp.refuse = {"qianqi@example.gov.cn"}
    flow.start("m_two")
    assert flow.engine.mailer.deliver_due() == 0
    t0 = now()  # the back-off counts from the failed attempt, which ended before this
    with flow.engine.db.read() as s:
        [m] = s.scalars(select(OutboxEmail)).all()
    assert m.status == "pending" and m.attempts == 1 and "451" in m.last_error
    smtp.refuse = set()
    with time_machine.travel(t0 + timedelta(seconds=11), tick=False):
        assert flow.engine.mailer.deliver_due() == 1
    assert len(smtp.messages) == 1


def test_nothing_is_mailed_without_an_smtp_host(db_url, tmp_path):
    flow = make_flow(db_url, tmp_path)
    flow.start("m_two")
    assert flow.engine.mailer.deliver_due() == 0
    with flow.engine.db.read() as s:
        assert s.scalars(select(OutboxEmail)).all() == []
