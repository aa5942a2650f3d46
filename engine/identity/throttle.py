"""Per-client throttling of failed logins, against password spraying.

Account lockout stops guessing at one account; an attacker who tries one or two passwords
against each of 11,000 accounts never trips it. This counts failures per client address in a
sliding window and refuses that address for the rest of the window once it has failed too
often. The count lives in the serving process: with several uvicorn workers an address gets
the limit once per worker, which still bounds spraying to a few dozen guesses per window.
"""
from __future__ import annotations

import threading
import time
from collections import deque


class LoginThrottle:
    def __init__(self, *, max_failures: int, window_seconds: int):
        self.max_failures, self.window = max_failures, window_seconds
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}

    def blocked(self, addr: str | None) -> bool:
        if not addr:
            return False
        with self._lock:
            return len(self._recent(addr)) >= self.max_failures

    def failed(self, addr: str | None) -> None:
        if not addr:
            return
        with self._lock:
            if len(self._failures) > 100_000:  # bound memory under a flood of addresses
                self._failures.clear()
            self._recent(addr).append(time.monotonic())

    def _recent(self, addr: str) -> deque[float]:
        q = self._failures.setdefault(addr, deque())
        cutoff = time.monotonic() - self.window
        while q and q[0] < cutoff:
            q.popleft()
        return q
