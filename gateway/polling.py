"""The loop every queue worker runs: work while there is work, else sleep until woken or polled."""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable


class Waker:
    """Lets a producer (an API handler, another worker) cut a worker's idle sleep short."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def wake(self) -> None:
        self._event.set()

    async def sleep(self, seconds: float) -> None:
        self._event.clear()
        try:
            await asyncio.wait_for(self._event.wait(), seconds)
        except asyncio.TimeoutError:
            pass


async def poll_forever(run_once: Callable[[], Awaitable[int]], waker: Waker, poll_seconds: float,
                       log: logging.Logger, what: str) -> None:
    """Call `run_once` (returns how much it did) until cancelled; an exception in one round is
    logged and never kills the worker (a database hiccup, a bad row: the lease expires, it retries)."""
    while True:
        try:
            done = await run_once()
        except Exception:
            log.exception("%s iteration failed", what)
            done = 0
        if not done:
            await waker.sleep(poll_seconds)
