"""A small per-process cache whose entries live at most ``ttl`` seconds, least recently used
ones making room for new ones.

API tokens and session users (``principals.PrincipalCache``), schema checks and the key ids
``keys.KeyVerifier`` refused are looked up through it. ``ttl`` is at most 5 seconds: the
documented bound within which a revocation, a disabled account or a password change is felt.
A full cache drops its least recently used entry, so that a flood of new keys (made-up token
ids, say) costs the entries in use nothing until the flood alone fills it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

MAX_TTL = 5.0
MAX_ENTRIES = 10_000


class TtlCache(Generic[K, V]):
    def __init__(
        self,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        if not 0 <= ttl <= MAX_TTL:
            raise ValueError(f"ttl must be between 0 and {MAX_TTL:g} seconds")
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.ttl = ttl
        self.clock = clock
        self.max_entries = max_entries
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K, load: Callable[[K], V]) -> V:
        """The cached value, or ``load(key)`` when there is none younger than ``ttl``."""
        now = self.clock()
        found, value = self.lookup(key, now)
        if found:
            return value  # type: ignore[return-value]
        value = load(key)
        self.put(key, value, now)
        return value

    def lookup(self, key: K, now: float | None = None) -> tuple[bool, V | None]:
        """``(True, value)`` for a value of ``key`` younger than ``ttl``, else ``(False, None)``."""
        if now is None:
            now = self.clock()
        with self._lock:
            cached = self._entries.get(key)
            if cached is None:
                return False, None
            if now - cached[0] >= self.ttl:
                del self._entries[key]
                return False, None
            self._entries.move_to_end(key)
            return True, cached[1]

    def put(self, key: K, value: V, loaded_at: float) -> None:
        """Cache ``value``, read at ``loaded_at`` (the clock's time before the read began)."""
        if self.ttl <= 0:
            return
        with self._lock:
            self._entries[key] = (loaded_at, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def discard(self, key: K) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def discard_if(self, stale: Callable[[K, V], bool]) -> None:
        with self._lock:
            for key, (_, value) in list(self._entries.items()):
                if stale(key, value):
                    del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def after_fork(self) -> None:
        """In a forked child: a new lock, since the parent's may have been held by a thread
        that the child does not have."""
        self._lock = threading.Lock()
