"""Process-wide objects kept per file, for readers that re-open files per access."""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any, Callable, Dict, List


class ProcessRegistry:
    """A few objects kept by key, the least recently used dropped past ``limit``.

    A decompressor state outlives the access (and descriptor) that made it, so
    a proxy that re-opens its file for every access still reads on from where
    the last access stopped. After ``os.fork()`` the child starts empty: a
    parent's thread may have been inside one of the objects.
    """

    def __init__(self, limit: int = 8) -> None:
        self.limit = limit
        self._guard = threading.Lock()
        self._entries: Dict[Any, Any] = {}
        _live.add(self)

    def get(self, key: Any, make: Callable[[], Any]) -> Any:
        """The object kept for ``key``, made by ``make()`` if there is none."""
        with self._guard:
            entry = self._entries.pop(key, None)
            if entry is None:
                entry = make()
            self._entries[key] = entry  # most recently used last
            while len(self._entries) > self.limit:
                self._entries.pop(next(iter(self._entries)))
            return entry

    def values(self) -> List[Any]:
        with self._guard:
            return list(self._entries.values())

    def clear(self) -> None:
        with self._guard:
            self._entries.clear()

    def _reset_after_fork(self) -> None:
        self._guard = threading.Lock()
        self._entries = {}


_live: "weakref.WeakSet[ProcessRegistry]" = weakref.WeakSet()

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: [r._reset_after_fork() for r in list(_live)])
