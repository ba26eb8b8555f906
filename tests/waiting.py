"""Polling until an asynchronous outcome shows up (workers, simulators, callbacks)."""

from __future__ import annotations

import asyncio


async def until(check, timeout: float = 30.0, step: float = 0.05):
    """Await `check()` until it returns something truthy; fail with its last answer otherwise."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = None
    while loop.time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(step)
    raise AssertionError(f"condition not reached in {timeout} s; last: {last}")
