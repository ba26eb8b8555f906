"""Run N forked copies of a server and keep them running: `sendgw serve --processes N`.

Why processes: the AS4 edge is CPU-bound (RSA, AES-GCM, XML) and Python runs one core per process.
Every child builds its own application (engine, validation pool, workers) and binds the same port
with SO_REUSEPORT, so the kernel spreads new connections over the children. The parent serves
nothing; it only:

* restarts a child that dies: immediately when it had run for a while, with a growing delay when
  it keeps dying at start-up; it gives up with exit 1 after `max_quick_failures` quick deaths in a
  row, or at once when a child exits with `fatal_exit_code` (it cannot start, e.g. no artefacts);
* forwards SIGTERM/SIGINT to the children as SIGTERM (graceful: aiohttp stops accepting, finishes
  in-flight requests, runs the cleanup) and SIGKILLs whatever still runs after `grace_seconds`;
  a second signal kills at once.

Children ask the kernel for SIGTERM when the parent dies (Linux `PR_SET_PDEATHSIG`), so a killed
supervisor never leaves orphans holding the port.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

log = logging.getLogger("sendgw.supervisor")

_PR_SET_PDEATHSIG = 1
_HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD)


def _die_with_parent(parent_pid: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the child outlives a killed parent
        return
    if os.getppid() != parent_pid:  # the parent died between fork() and prctl()
        os._exit(0)


@dataclass
class _Slot:
    index: int
    pid: int = 0
    started: float = 0.0
    quick_failures: int = 0
    restart_at: float | None = None
    history: list[int] = field(default_factory=list)


class Supervisor:
    """Fork `processes` children running `target(index) -> exit code`; supervise until signalled."""

    def __init__(self, target: Callable[[int], int], processes: int, *, grace_seconds: float = 30.0,
                 quick_seconds: float = 10.0, max_quick_failures: int = 5, poll_seconds: float = 0.1,
                 close_in_child: Callable[[], None] | None = None, fatal_exit_code: int | None = None):
        if processes < 1:
            raise ValueError("processes must be at least 1")
        self.target, self.processes = target, processes
        self.grace, self.quick, self.max_quick = grace_seconds, quick_seconds, max_quick_failures
        self.poll = poll_seconds
        self.close_in_child = close_in_child
        self.fatal_exit_code = fatal_exit_code  # a child exiting with it cannot start: no restarts
        self.slots = [_Slot(i) for i in range(processes)]
        self.restarts = 0
        self._stopping_since: float | None = None
        self._kill_now = False
        self._failed = False

    # -- children -------------------------------------------------------------------------------
    def _fork(self, slot: _Slot) -> None:
        parent = os.getpid()
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stdout.flush()
        sys.stderr.flush()
        # Block the signals across fork(): a SIGTERM sent to a child that has not yet reset the
        # inherited handler would otherwise run the supervisor's handler inside the child and be
        # lost. Blocked, it stays pending and takes the default action once the child unblocks.
        saved_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _HANDLED_SIGNALS)
        pid = os.fork()
        if pid == 0:  # child
            code = 1
            try:
                for sig in _HANDLED_SIGNALS:
                    signal.signal(sig, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_SETMASK, saved_mask)
                _die_with_parent(parent)
                if self.close_in_child:
                    self.close_in_child()
                code = int(self.target(slot.index) or 0)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                logging.getLogger("sendgw").exception("server process %d failed", os.getpid())
                code = 1
            finally:
                for handler in logging.getLogger().handlers:
                    handler.flush()
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        signal.pthread_sigmask(signal.SIG_SETMASK, saved_mask)
        slot.pid, slot.started, slot.restart_at = pid, time.monotonic(), None
        log.info("started server process %d (slot %d)", pid, slot.index)

    def _on_exit(self, slot: _Slot, status: int) -> None:
        code = os.waitstatus_to_exitcode(status)
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        slot.pid = 0
        if self._stopping_since is not None:
            log.info("server process stopped (slot %d, %s)", slot.index, how)
            return
        ran = time.monotonic() - slot.started
        if self.fatal_exit_code is not None and code == self.fatal_exit_code:
            log.error("server process (slot %d) cannot start; stopping", slot.index)
            self._failed = True
            self.stop()
            return
        slot.quick_failures = slot.quick_failures + 1 if ran < self.quick else 0
        if slot.quick_failures >= self.max_quick:
            log.error("server process (slot %d) died %d times within %.0f s of starting (last: %s); giving up",
                      slot.index, slot.quick_failures, self.quick, how)
            self._failed = True
            self.stop()
            return
        delay = 0.0 if slot.quick_failures == 0 else min(0.5 * 2 ** (slot.quick_failures - 1), 10.0)
        log.warning("server process died (slot %d, %s after %.1f s); restarting in %.1f s",
                    slot.index, how, ran, delay)
        slot.restart_at = time.monotonic() + delay
        self.restarts += 1

    def _signal_children(self, sig: int) -> None:
        for slot in self.slots:
            if slot.pid:
                try:
                    os.kill(slot.pid, sig)
                except ProcessLookupError:
                    pass

    # -- control --------------------------------------------------------------------------------
    def stop(self) -> None:
        """Begin a graceful stop (a second call kills)."""
        if self._stopping_since is None:
            self._stopping_since = time.monotonic()
            self._signal_children(signal.SIGTERM)
        else:
            self._kill_now = True

    def _on_signal(self, signum, _frame) -> None:
        if self._stopping_since is None:
            log.info("received %s: stopping %d server processes", signal.Signals(signum).name,
                     sum(1 for s in self.slots if s.pid))
        self.stop()

    def run(self) -> int:
        """Supervise until stopped; 0 after a requested stop, 1 when a child kept failing."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for slot in self.slots:
                if self._stopping_since is None:  # a signal may arrive while the first ones start
                    self._fork(slot)
            while True:
                self._reap()
                alive = [s for s in self.slots if s.pid]
                if self._stopping_since is not None:
                    if not alive:
                        break
                    if self._kill_now or time.monotonic() - self._stopping_since > self.grace:
                        self._signal_children(signal.SIGKILL)
                else:
                    now = time.monotonic()
                    for slot in self.slots:
                        if not slot.pid and slot.restart_at is not None and now >= slot.restart_at:
                            self._fork(slot)
                time.sleep(self.poll)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 1 if self._failed else 0

    def _reap(self) -> None:
        by_pid = {s.pid: s for s in self.slots if s.pid}
        while by_pid:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = by_pid.pop(pid, None)
            if slot is not None:
                self._on_exit(slot, status)
