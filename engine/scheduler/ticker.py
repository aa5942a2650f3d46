"""The embedded scheduler: without Redis, each `djflow serve` process fires due timers from a
background thread (the same `WorkflowEngine.fire_timers` a Celery beat would call). Several
processes may tick at once: jobs are claimed with SKIP LOCKED (PostgreSQL) or under SQLite's write
lock, and each fires in the transaction of the change it makes."""
from __future__ import annotations

import logging
import threading

log = logging.getLogger("djflow.scheduler")


class Ticker(threading.Thread):
    def __init__(self, engine, interval: float):
        super().__init__(name="djflow-timers", daemon=True)
        self.engine, self.interval = engine, interval
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                moved = self.engine.fire_timers()
                if moved:
                    log.info("timers: %d instance(s) moved", moved)
                started = self.engine.fire_schedules()
                if started:
                    log.info("schedules: %d instance(s) started", started)
                self.engine.webhooks.deliver_due()
                self.engine.mailer.deliver_due()
                self.engine.audit_checkpoint()
                self.engine.purge_staged_due()
            except Exception:  # noqa: BLE001 - a failing tick must not stop the next one
                log.exception("timer tick failed")

    def stop(self) -> None:
        self._stop.set()
