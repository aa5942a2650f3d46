"""Distributed execution with Celery on Redis (DJFLOW_REDIS_URL): `djflow beat` ticks every
DJFLOW_TIMER_TICK_SECONDS, the tick (run by a worker) marks the due timer jobs as queued and hands
each to a worker as its own message; `djflow worker` fires them (WorkflowEngine.fire_job, the same
code the embedded ticker runs). Messages are acknowledged after the job ran (acks_late), put back
when the worker process dies (reject_on_worker_lost), taken one at a time (prefetch 1); a job lost
with a whole worker comes back after the visibility timeout, and beat queues it again after the
hold time. Firing twice is harmless: a fired job is no longer due, and the instance changes once.
"""
from __future__ import annotations

import logging
import threading

from celery import Celery

from engine.config import Settings, get_settings

log = logging.getLogger("djflow.worker")
_engine = None
_engine_lock = threading.Lock()


def engine():
    """One WorkflowEngine per worker process (created after the fork, so no connection is shared)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            from engine.db import Database
            from engine.runtime.engine import WorkflowEngine

            settings = get_settings()
            _engine = WorkflowEngine(Database(settings.database_url), settings)
        return _engine


def make_celery(settings: Settings) -> Celery:
    app = Celery("djflow", broker=settings.redis_url)
    app.conf.update(
        task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
        task_default_queue=settings.celery_queue, task_ignore_result=True,
        broker_transport_options={"visibility_timeout": settings.celery_visibility_timeout},
        broker_connection_retry_on_startup=True, worker_hijack_root_logger=False,
        worker_enable_remote_control=False,  # no pidbox queues: djflow's keys in Redis are its queue only
        beat_schedule={"djflow-tick": {"task": "djflow.tick", "schedule": max(0.2, settings.timer_tick_seconds)}},
        timezone="Asia/Shanghai", enable_utc=True)

    @app.task(name="djflow.fire_timer", bind=True, max_retries=None)
    def fire_timer(self, job_id: int) -> int | None:
        from engine.runtime.engine import BUSY

        moved = engine().fire_job(job_id)
        if moved == BUSY:  # someone is acting on the instance: shortly again
            raise self.retry(countdown=1)
        return moved

    @app.task(name="djflow.deliver_webhooks")
    def deliver_webhooks() -> int:
        return engine().webhooks.deliver_due()

    @app.task(name="djflow.deliver_email")
    def deliver_email() -> int:
        return engine().mailer.deliver_due()

    @app.task(name="djflow.tick")
    def tick() -> int:
        eng = engine()
        eng.fire_schedules()  # starts are quick and idempotent: run here, not as jobs
        eng.audit_checkpoint()  # two reads when none is due
        eng.purge_staged_due()  # staged uploads never submitted, every 10 minutes per process
        if eng.webhooks.any_due():
            deliver_webhooks.delay()
        if eng.mailer.any_due():
            deliver_email.delay()
        due = eng.queue_due(hold_seconds=eng.settings.timer_requeue_seconds)
        for job_id in due:
            fire_timer.delay(job_id)
        if due:
            log.info("queued %d timer job(s)", len(due))
        return len(due)

    return app


def _app() -> Celery:
    return make_celery(get_settings())


def drop_queue(r, queue: str) -> None:
    """Remove one Celery queue's keys from Redis and its entries in kombu's shared unacked
    bookkeeping, leaving everyone else's data alone."""
    for tag, value in list(r.hscan_iter("unacked")):
        if queue.encode() in value:
            r.hdel("unacked", tag)
            r.zrem("unacked_index", tag)
    mine = list(r.scan_iter(f"*{queue}*"))
    if mine:
        r.delete(*mine)


# `celery -A engine.scheduler.worker worker` finds this; `djflow worker` / `djflow beat` use it too.
app = _app() if get_settings().redis_url else None
