"""A small per-process cache whose entries live at most ``ttl`` seconds.

Collector keys (``keys.KeyVerifier``) and API tokens and session users
(``principals.PrincipalCache``) are looked up through it. ``ttl`` is at most 5 seconds: the
documented bound within which a revocation, a disabled account or a password change is felt.
"""

from __future__ import annotations

import threading
import time
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
        self.ttl = ttl
        self.clock = clock
        self.max_entries = max_entries
        self._entries: dict[K, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: K, load: Callable[[K], V]) -> V:
        """The cached value, or ``load(key)`` when there is none younger than ``ttl``."""
        now = self.clock()
        cached = self._entries.get(key)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        value = load(key)
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()  # bounded by one full reload, not per-entry bookkeeping
            self._entries[key] = (now, value)
        return value

    def discard_if(self, stale: Callable[[K, V], bool]) -> None:
        with self._lock:
            for key, (_, value) in list(self._entries.items()):
                if stale(key, value):
                    del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
