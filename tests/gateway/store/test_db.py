"""`run_db`: blocking store calls off the event loop, safe to cancel."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from gateway.store.db import run_db


async def test_runs_the_call_in_a_thread_and_returns_its_value():
    loop_thread = threading.get_ident()
    assert await run_db(lambda a, b=0: (a + b, threading.get_ident() != loop_thread), 2, b=3) == (5, True)


async def test_a_cancelled_caller_waits_for_the_running_call_before_it_sees_the_cancellation():
    started, finished = threading.Event(), threading.Event()

    def slow():
        started.set()
        time.sleep(0.3)
        finished.set()

    task = asyncio.create_task(run_db(slow))
    while not started.is_set():
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert finished.is_set()  # the transaction did not outlive the task that started it


async def test_errors_of_the_call_propagate():
    def boom():
        raise ValueError("bad row")

    with pytest.raises(ValueError, match="bad row"):
        await run_db(boom)
