"""A bounded TTL cache for discovery answers, safe for concurrent asyncio use, single-flight per key.

Positive entries live for the TTL the loader reports (the NAPTR record TTL for SML answers, the
configured SMP TTL for SMP answers); permanent negative answers (NotRegistered) are cached for the
negative TTL; transient failures are never cached, so the next call retries. While one coroutine
loads a key, other callers for the same key await the same task instead of hitting DNS/SMP again,
and a cancelled caller does not cancel the shared load. Least-recently-used entries are evicted
beyond `max_entries`. The clock is injectable (monotonic seconds) so tests control expiry.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from gateway.discovery.errors import NotRegistered

T = TypeVar("T")


@dataclass
class _Entry:
    expires: float
    value: Any = None
    error: BaseException | None = None


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    negative_hits: int = 0
    loads: int = 0
    evictions: int = 0
    shared_waits: int = 0


class TTLCache(Generic[T]):
    """Key -> value with per-entry TTL, negative caching, LRU bound and single-flight loading."""

    def __init__(self, max_entries: int = 10000, negative_ttl: float = 60.0,
                 clock: Callable[[], float] = time.monotonic):
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self.max_entries = max_entries
        self.negative_ttl = negative_ttl
        self.clock = clock
        self.stats = CacheStats()
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._inflight: dict[Hashable, asyncio.Future] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def peek(self, key: Hashable) -> T | None:
        """The live cached value or None (no loading, negative entries ignored)."""
        entry = self._entries.get(key)
        if entry is None or entry.error is not None or entry.expires <= self.clock():
            return None
        return entry.value

    def invalidate(self, key: Hashable | None = None) -> None:
        if key is None:
            self._entries.clear()
        else:
            self._entries.pop(key, None)

    def cancel(self) -> None:
        """Cancel the loads in flight (at shutdown)."""
        for future in list(self._inflight.values()):
            future.cancel()

    def put(self, key: Hashable, value: T, ttl: float) -> None:
        if ttl > 0:
            self._store(key, _Entry(self.clock() + ttl, value=value))

    def _store(self, key: Hashable, entry: _Entry) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
            self.stats.evictions += 1

    async def get(self, key: Hashable, loader: Callable[[], Awaitable[tuple[T, float]]]) -> T:
        """Cached value for `key`, else `await loader()` -> (value, ttl seconds) exactly once."""
        entry = self._entries.get(key)
        if entry is not None:
            if entry.expires > self.clock():
                self._entries.move_to_end(key)
                if entry.error is not None:
                    self.stats.negative_hits += 1
                    # a fresh copy: re-raising the stored object would grow its traceback on every hit
                    raise copy.copy(entry.error).with_traceback(None) from None
                self.stats.hits += 1
                return entry.value
            del self._entries[key]
        self.stats.misses += 1
        future = self._inflight.get(key)
        if future is None:
            future = asyncio.ensure_future(self._load(key, loader))
            self._inflight[key] = future
            future.add_done_callback(functools.partial(self._done, key))
        else:
            self.stats.shared_waits += 1
        return await asyncio.shield(future)

    def _done(self, key: Hashable, future: asyncio.Future) -> None:
        if self._inflight.get(key) is future:
            del self._inflight[key]
        if not future.cancelled():
            future.exception()  # mark retrieved even if every waiter was cancelled

    async def _load(self, key: Hashable, loader: Callable[[], Awaitable[tuple[T, float]]]) -> T:
        self.stats.loads += 1
        try:
            value, ttl = await loader()
        except NotRegistered as exc:
            if self.negative_ttl > 0:
                self._store(key, _Entry(self.clock() + self.negative_ttl, error=exc))
            raise
        if ttl > 0:
            self._store(key, _Entry(self.clock() + ttl, value=value))
        return value
