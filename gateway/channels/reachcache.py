"""A small bounded TTL cache for reachability answers.

Adapters cache `Reachability` per recipient key so that a burst of invoices to the same payer does
not repeat registry or DNS look-ups, while answers still expire (an address or mandate can change).
Bounded (LRU eviction) so a long-running gateway cannot grow without limit.
"""

from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from typing import Callable, Hashable

from gateway.channels.base import Reachability


class ReachabilityCache:
    def __init__(self, ttl: float, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic):
        self.ttl, self.max_entries, self._clock = ttl, max_entries, clock
        self._data: OrderedDict[Hashable, tuple[float, Reachability]] = OrderedDict()

    def get(self, key: Hashable) -> Reachability | None:
        """The cached answer marked `cached=True`, or None when absent or expired."""
        hit = self._data.get(key)
        if hit is None:
            return None
        expires, value = hit
        if expires <= self._clock():
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return dataclasses.replace(value, cached=True)

    def put(self, key: Hashable, value: Reachability) -> Reachability:
        if self.ttl <= 0:
            return value
        self._data[key] = (self._clock() + self.ttl, value)
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)
        return value

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)
