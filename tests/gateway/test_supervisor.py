"""The process supervisor behind `sendgw serve --processes N`, with tiny forked targets."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from gateway.supervisor import Supervisor


def _pids(folder: Path) -> list[int]:
    return sorted(int(p.name) for p in folder.iterdir())


def _wait(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_restarts_a_dead_process_and_stops_all_gracefully(tmp_path):
    started = tmp_path / "started"
    started.mkdir()
    stopped = tmp_path / "stopped"
    stopped.mkdir()

    def target(index: int) -> int:
        (started / str(os.getpid())).touch()
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        while not done.wait(0.05):
            pass
        (stopped / str(os.getpid())).touch()
        return 0

    sup = Supervisor(target, 2, poll_seconds=0.02)
    events: list[str] = []

    def drive():
        try:
            _wait(lambda: len(_pids(started)) == 2)
            first = _pids(started)
            os.kill(first[0], signal.SIGKILL)  # a crash: no clean-up, no marker
            _wait(lambda: len(_pids(started)) == 3)
            events.append("restarted")
        finally:
            sup.stop()

    thread = threading.Thread(target=drive)
    thread.start()
    code = sup.run()
    thread.join()
    assert code == 0
    assert events == ["restarted"] and sup.restarts == 1
    # the two live processes (the survivor and the replacement) got SIGTERM and stopped cleanly
    assert len(_pids(stopped)) == 2 and set(_pids(stopped)) < set(_pids(started))


def test_gives_up_on_a_process_that_keeps_dying_at_start(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()

    def target(index: int) -> int:
        (runs / str(os.getpid())).touch()
        return 3

    sup = Supervisor(target, 1, max_quick_failures=3, poll_seconds=0.02)
    t0 = time.monotonic()
    assert sup.run() == 1
    assert len(_pids(runs)) == 3  # first start + 2 restarts, then the third quick death gives up
    assert time.monotonic() - t0 >= 1.5  # backed off 0.5 s, then 1 s


def test_fatal_exit_code_stops_without_restarting(tmp_path):
    def target(index: int) -> int:
        if index == 0:
            return 78
        time.sleep(30)  # the healthy sibling is stopped by SIGTERM (default action)
        return 0

    sup = Supervisor(target, 2, fatal_exit_code=78, poll_seconds=0.02)
    t0 = time.monotonic()
    assert sup.run() == 1
    assert sup.restarts == 0
    assert time.monotonic() - t0 < 10


def test_a_stop_that_races_a_fresh_fork_still_reaches_the_child():
    """SIGTERM sent between fork() and the child's own handler set-up must not be swallowed."""
    def target(index: int) -> int:
        if index == 0:
            return 78  # dies at once: the supervisor stops the siblings it has only just forked
        time.sleep(30)
        return 0

    t0 = time.monotonic()
    for _ in range(20):
        assert Supervisor(target, 6, fatal_exit_code=78, poll_seconds=0.001).run() == 1
    assert time.monotonic() - t0 < 20


def test_kills_what_does_not_stop_within_the_grace_period(tmp_path):
    def target(index: int) -> int:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(60)
        return 0

    sup = Supervisor(target, 1, grace_seconds=0.5, poll_seconds=0.02)
    threading.Timer(0.5, sup.stop).start()
    t0 = time.monotonic()
    assert sup.run() == 0
    assert time.monotonic() - t0 < 10


def test_rejects_zero_processes():
    with pytest.raises(ValueError):
        Supervisor(lambda i: 0, 0)
