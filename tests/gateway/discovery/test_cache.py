"""TTLCache: TTL, negative caching, LRU bound, single flight, cancellation safety."""

from __future__ import annotations

import asyncio

import pytest

from gateway.discovery.cache import TTLCache
from gateway.discovery.errors import DiscoveryUnavailable, NotRegistered


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def loader(value, ttl, calls, delay=0.0, exc=None):
    async def load():
        calls.append(value)
        if delay:
            await asyncio.sleep(delay)
        if exc is not None:
            raise exc
        return value, ttl
    return load


async def test_ttl_expiry():
    clock, calls = Clock(), []
    cache = TTLCache(clock=clock)
    assert await cache.get("k", loader("a", 10, calls)) == "a"
    clock.t += 9.9
    assert await cache.get("k", loader("b", 10, calls)) == "a"
    clock.t += 0.2
    assert await cache.get("k", loader("b", 10, calls)) == "b"
    assert calls == ["a", "b"]


async def test_zero_ttl_not_cached():
    calls = []
    cache = TTLCache()
    await cache.get("k", loader("a", 0, calls))
    await cache.get("k", loader("a", 0, calls))
    assert len(calls) == 2


async def test_negative_cached_transient_not():
    clock, calls = Clock(), []
    cache = TTLCache(negative_ttl=30, clock=clock)
    for _ in range(3):
        with pytest.raises(NotRegistered):
            await cache.get("n", loader("x", 10, calls, exc=NotRegistered("sml-not-registered")))
    assert len(calls) == 1
    clock.t += 31
    assert await cache.get("n", loader("now", 10, calls)) == "now"
    for _ in range(2):
        with pytest.raises(DiscoveryUnavailable):
            await cache.get("t", loader("x", 10, calls, exc=DiscoveryUnavailable("dns-timeout")))
    assert calls.count("x") == 3


async def test_lru_bound():
    cache = TTLCache(max_entries=3)
    calls = []
    for k in "abc":
        await cache.get(k, loader(k, 100, calls))
    await cache.get("a", loader("a2", 100, calls))  # touch a -> b is now least recent
    await cache.get("d", loader("d", 100, calls))
    assert len(cache) == 3 and cache.stats.evictions == 1
    assert cache.peek("b") is None and cache.peek("a") == "a" and cache.peek("d") == "d"


async def test_single_flight():
    calls = []
    cache = TTLCache()
    results = await asyncio.gather(*(cache.get("k", loader(i, 100, calls, delay=0.05)) for i in range(20)))
    assert calls == [0] and results == [0] * 20
    assert cache.stats.shared_waits == 19


async def test_single_flight_error_shared_then_retried():
    calls = []
    cache = TTLCache()
    results = await asyncio.gather(
        *(cache.get("k", loader(i, 100, calls, delay=0.02, exc=DiscoveryUnavailable("smp-unavailable"))) for i in range(5)),
        return_exceptions=True)
    assert len(calls) == 1 and all(isinstance(r, DiscoveryUnavailable) for r in results)
    assert await cache.get("k", loader("ok", 100, calls)) == "ok"


async def test_cancelled_waiter_does_not_cancel_shared_load():
    calls = []
    cache = TTLCache()
    first = asyncio.create_task(cache.get("k", loader("v", 100, calls, delay=0.05)))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(cache.get("k", loader("w", 100, calls)))
    await asyncio.sleep(0.01)
    first.cancel()
    assert await second == "v"
    assert calls == ["v"] and cache.peek("k") == "v"
