"""Restored workflows kept between the actions on an instance, in the serving process.

Restoring an instance's state (engine/runtime/serializer.py) is a tenth of an approval's engine
work. After an action commits, the workflow object in memory is exactly what the database now
holds, so the next action on that instance in this process can take it instead of restoring it.

Safe because of how it is used: `take` removes the entry (one action at a time owns an object),
it matches only the version read under the instance's row lock (every state change bumps it),
and `put` happens only after COMMIT — an action that fails leaves nothing behind, and the next
one restores from the database. Reads (task page, diagram) always restore their own copy.
"""
from __future__ import annotations

import threading
from collections import OrderedDict


class StateCache:
    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict[int, tuple[int, int, object]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def take(self, instance_id: int, version: int, definition_id: int):
        """The workflow of `instance_id` at `version`, removed from the cache; None when not held."""
        if self.size <= 0:
            return None
        with self._lock:
            found = self._items.pop(instance_id, None)
        if found is not None and found[0] == version and found[1] == definition_id:
            self.hits += 1
            return found[2]
        self.misses += 1
        return None

    def put(self, instance_id: int, version: int, definition_id: int, workflow) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._items[instance_id] = (version, definition_id, workflow)
            self._items.move_to_end(instance_id)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
