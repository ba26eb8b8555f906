"""The worker-process pool: concurrency, errors across the process boundary, crash recovery."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from validation import samples
from validation.errors import (
    ArtefactError,
    DocumentTooLargeError,
    NotXmlError,
    UnknownDocumentTypeError,
    UnknownRuleSetError,
    ValidationTimeoutError,
    WorkerCrashedError,
)
from validation.pool import ValidationPool


@pytest.fixture
async def pool(artefact_cache):
    p = ValidationPool(artefact_cache, workers=2, max_bytes=8 * 1024 * 1024)
    await p.start()
    yield p
    await p.close()


async def test_concurrent_validation(pool, base_example):
    assert len(pool.pids) == 2 and os.getpid() not in pool.pids
    bad = base_example.replace(b"<cbc:Name>SupplierTradingName Ltd.</cbc:Name>", b"<cbc:Name/>", 1)
    docs = [base_example, bad] * 10
    reports = await asyncio.gather(*(pool.validate(d) for d in docs))
    assert [r["valid"] for r in reports] == [True, False] * 10
    assert all(r["rules"] == "peppol-billing-invoice@3.0.21" for r in reports)
    assert reports[1]["errors"][0]["rule"] == "PEPPOL-EN16931-R008"


async def test_formats_and_parameters(pool, base_example):
    import datetime as dt

    svrl = await pool.validate(base_example, fmt="svrl")
    assert isinstance(svrl, bytes) and b"schematron-output" in svrl
    raw = await pool.validate(base_example, fmt="json-bytes")
    assert raw.startswith(b"{") and b'"valid": true' in raw
    assert "valid" in await pool.validate(base_example, fmt="text")
    old = await pool.validate(base_example, at=dt.date(2025, 9, 1))
    assert old["rules"] == "peppol-billing-invoice@3.0.19"
    named = await pool.validate(base_example, rules="en16931-ubl-invoice@1.3.16")
    assert named["rules"] == "en16931-ubl-invoice@1.3.16"


async def test_input_errors_are_raised_in_the_caller(pool, base_example):
    with pytest.raises(NotXmlError) as err:
        await pool.validate(b"not xml")
    assert err.value.code == "not-xml" and err.value.http_status == 400
    with pytest.raises(UnknownDocumentTypeError):
        await pool.validate(b"<x/>")
    with pytest.raises(UnknownRuleSetError):
        await pool.validate(base_example, rules="nope@1")
    with pytest.raises(DocumentTooLargeError):
        await pool.validate(b"<x>" + b" " * (8 * 1024 * 1024) + b"</x>")
    assert (await pool.validate(base_example))["valid"]  # the workers are fine afterwards


async def test_the_event_loop_is_never_blocked(pool, base_example):
    big = samples.many_lines(base_example, 400)
    gaps = []

    async def ticker(stop):
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    stop = asyncio.Event()
    tick = asyncio.create_task(ticker(stop))
    started = time.perf_counter()
    reports = await asyncio.gather(pool.validate(big), pool.validate(big))
    elapsed = time.perf_counter() - started
    stop.set()
    await tick
    assert all(r["valid"] for r in reports)
    assert elapsed > 0.2 and max(gaps) < 0.1, (elapsed, max(gaps))


async def test_worker_crash_is_an_error_and_the_pool_recovers(pool, base_example):
    slow = samples.many_lines(base_example, 1000)
    before = pool.pids
    task = asyncio.create_task(pool.validate(slow))
    await asyncio.sleep(0.3)  # the document is now being validated in one of the workers
    for pid in before:
        os.kill(pid, signal.SIGKILL)
    with pytest.raises(WorkerCrashedError) as err:
        await asyncio.wait_for(task, 30)
    assert "died" in str(err.value)
    for _ in range(200):  # the idle worker's death is noticed as soon as its socket reports EOF
        if pool.crashes == 2:
            break
        await asyncio.sleep(0.02)
    # replacements start by themselves; requests queue until one is ready
    reports = await asyncio.wait_for(asyncio.gather(*(pool.validate(base_example) for _ in range(4))), 120)
    assert all(r["valid"] for r in reports)
    assert pool.crashes == 2
    for _ in range(600):  # the second replacement may still be starting
        if len(pool.pids) == 2:
            break
        await asyncio.sleep(0.05)
    assert set(pool.pids).isdisjoint(before) and len(pool.pids) == 2


async def test_crash_of_an_idle_worker(pool, base_example):
    w = pool._workers[0]
    w.conn.send_bytes(__import__("pickle").dumps(("crash",)))  # test hook: the worker exits at once
    for _ in range(200):
        if pool.crashes:
            break
        await asyncio.sleep(0.05)
    assert pool.crashes == 1
    assert (await asyncio.wait_for(pool.validate(base_example), 120))["valid"]


async def test_timeout_kills_and_replaces_the_worker(artefact_cache, base_example):
    async with ValidationPool(artefact_cache, workers=1, timeout=0.3) as p:
        pid = p.pids[0]
        with pytest.raises(ValidationTimeoutError):
            await p.validate(samples.many_lines(base_example, 1000))
        report = await asyncio.wait_for(p.validate(base_example), 120)
        assert report["valid"] and p.pids != [pid] and p.timeouts == 1


async def test_cancelled_request_does_not_lose_the_worker(artefact_cache, base_example):
    async with ValidationPool(artefact_cache, workers=1) as p:
        task = asyncio.create_task(p.validate(samples.many_lines(base_example, 300)))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await asyncio.wait_for(p.validate(base_example), 60))["valid"]
        assert p.crashes == 0


async def test_missing_artefacts_fail_at_start(tmp_path):
    p = ValidationPool(tmp_path / "empty", workers=1)
    with pytest.raises(ArtefactError, match="missing"):
        await p.start()


async def test_default_size_is_the_number_of_cores(artefact_cache):
    assert ValidationPool(artefact_cache).size == (os.cpu_count() or 1)
    assert ValidationPool(artefact_cache, workers=0).size == (os.cpu_count() or 1)


async def test_documents_queued_behind_a_crash_are_validated_elsewhere(artefact_cache, base_example):
    async with ValidationPool(artefact_cache, workers=1, depth=2) as p:
        slow = asyncio.create_task(p.validate(samples.many_lines(base_example, 1000)))
        await asyncio.sleep(0.05)
        queued = asyncio.create_task(p.validate(base_example))  # waits in the same worker's socket
        await asyncio.sleep(0.3)
        os.kill(p.pids[0], signal.SIGKILL)
        with pytest.raises(WorkerCrashedError):
            await asyncio.wait_for(slow, 30)
        assert (await asyncio.wait_for(queued, 120))["valid"]  # resubmitted to the replacement
        assert p.crashes == 1


async def test_big_documents_behind_a_busy_worker_do_not_block_the_loop(artefact_cache, base_example):
    big = samples.with_attachment(base_example, 3 * 1024 * 1024)
    async with ValidationPool(artefact_cache, workers=1, depth=2) as p:
        gaps = []
        stop = asyncio.Event()

        async def ticker():
            last = time.perf_counter()
            while not stop.is_set():
                await asyncio.sleep(0.005)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        tick = asyncio.create_task(ticker())
        reports = await asyncio.gather(p.validate(samples.many_lines(base_example, 400)), p.validate(big),
                                       p.validate(big), p.validate(base_example))
        stop.set()
        await tick
        assert all(r["valid"] for r in reports)
        assert max(gaps) < 0.1, max(gaps)


async def test_cancelled_queued_request(artefact_cache, base_example):
    async with ValidationPool(artefact_cache, workers=1, depth=2) as p:
        slow = asyncio.create_task(p.validate(samples.many_lines(base_example, 300)))
        await asyncio.sleep(0.05)
        queued = asyncio.create_task(p.validate(base_example))
        await asyncio.sleep(0.05)
        queued.cancel()
        assert (await slow)["valid"]
        with pytest.raises(asyncio.CancelledError):
            await queued
        assert (await asyncio.wait_for(p.validate(base_example), 60))["valid"]
        assert p.crashes == 0
