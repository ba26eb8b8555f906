"""A pool of validation worker processes for asyncio servers.

saxonche does not scale with threads, only with processes, and a transform must never run on the
event loop. Each worker is a fresh interpreter (`python -m validation.worker`: no Saxon state is
ever forked and the caller's main module is never re-imported) holding its own `Validator`; it
compiles the stylesheets of the warm-up sets at start and every other stylesheet the first time it
is needed, and keeps them for its lifetime.

    pool = ValidationPool(cache_dir, workers=2, max_bytes=100 * 2**20)
    await pool.start()
    report = await pool.validate(xml_bytes)                 # the report contract as a dict
    svrl = await pool.validate(xml_bytes, fmt="svrl")      # bytes
    await pool.close()

IPC is one socket pair per worker and one message each way per document (the pickled document in,
the report dict or rendered bytes out); the event loop learns about replies through `add_reader`,
so there is no helper thread on the hot path. Documents go to the least busy worker, and up to
`depth` (2) are handed to a worker at once, so that the next one is already waiting in its socket
when it finishes the current one and a worker never idles while the loop catches up. Big payloads
are written from a thread so that the loop never waits for a worker to read.

Input errors raised in a worker (`NotXmlError`, `UnknownDocumentTypeError`, ...) are raised again
in the caller with the same class and message. A worker that dies fails only the document it was
validating (`WorkerCrashedError`; documents queued behind it go to another worker) and is replaced
at once; a document that runs longer than `timeout` seconds gets `ValidationTimeoutError` and its
worker is killed and replaced. When no worker can be started at all, requests fail with the reason
instead of waiting forever.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import json
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
from collections import deque
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Iterable, Literal

from validation import errors as errors_mod
from validation.errors import (
    ArtefactError,
    DocumentTooLargeError,
    ValidationEngineError,
    ValidationInputError,
    ValidationTimeoutError,
    WorkerCrashedError,
)

log = logging.getLogger("sendgw.validation.pool")

Format = Literal["json", "json-bytes", "svrl", "text"]
# Compiled at worker start: the sets nearly every request needs (families resolve to the release
# in force). Everything else compiles on first use (~0.05-0.7 s per stylesheet).
DEFAULT_WARM = ("peppol-billing-invoice", "peppol-billing-creditnote")
_BIG_PAYLOAD = 1 << 20  # written from a thread when the worker is idle and reading
_PIPELINED_PAYLOAD = 1 << 16  # written from the loop while the worker is busy (fits the socket buffer)


# -- worker process ----------------------------------------------------------------------------
def worker_main(argv: list[str]) -> None:
    """Entry point of `python -m validation.worker FD CONFIG_JSON`."""
    fd = int(argv[0])
    cfg = json.loads(argv[1])
    conn = Connection(fd)
    _worker_loop(conn, cfg["cache_dir"], cfg["max_bytes"], cfg["after_xsd"], cfg["warm"])


def _worker_loop(conn, cache_dir: str, max_bytes: int, after_xsd: bool, warm: list[str] | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers stop
    try:
        from validation.engine import Validator

        validator = Validator(Path(cache_dir), max_bytes=max_bytes, schematron_after_xsd_error=after_xsd)
        if warm is None or warm:
            validator.warm_up(warm)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
        kind = "artefact" if isinstance(exc, ArtefactError) else "internal"
        text = str(exc) if kind == "artefact" else f"{type(exc).__name__}: {exc}"
        try:
            conn.send_bytes(pickle.dumps(("failed", kind, text)))
        except OSError:
            pass
        return
    gc.freeze()  # compiled artefacts live for the whole process: keep them out of GC scans
    try:
        conn.send_bytes(pickle.dumps(("ready", os.getpid())))
    except OSError:  # the pool was closed while this worker started
        return
    while True:
        try:
            msg = conn.recv_bytes()
        except (EOFError, OSError):
            return
        try:
            job = pickle.loads(msg)
        except Exception as exc:  # noqa: BLE001 - answer anyway: the parent expects one reply per message
            job = ("invalid", f"{type(exc).__name__}: {exc}")
        if job[0] == "invalid":
            conn.send_bytes(pickle.dumps(("internal", f"unreadable request: {job[1]}")))
            continue
        if job[0] == "stop":
            return
        if job[0] == "crash":  # test hook: simulate a crash of the native engine
            os._exit(70)
        _, data, rules, at, fmt = job
        try:
            report = validator.validate(data, rules=rules, at=at, svrl=fmt == "svrl")
            if fmt == "json":
                out: object = report.to_dict()
            elif fmt == "json-bytes":
                out = json.dumps(report.to_dict(), ensure_ascii=False).encode("utf-8")
            elif fmt == "svrl":
                out = report.to_svrl()
            else:
                out = report.to_text()
            reply = ("ok", out)
        except ValidationInputError as exc:
            reply = ("input", type(exc).__name__, exc.message)
        except ArtefactError as exc:
            reply = ("artefact", exc.message)
        except Exception as exc:  # noqa: BLE001 - never let one document kill the worker
            reply = ("internal", f"{type(exc).__name__}: {exc}")
        try:
            conn.send_bytes(pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError:  # the parent is gone
            return


# -- parent side ---------------------------------------------------------------------------------
_REPO = str(Path(__file__).resolve().parent.parent)


class _Job:
    __slots__ = ("future", "payload", "started")

    def __init__(self, future: asyncio.Future, payload: bytes):
        self.future = future
        self.payload = payload
        self.started = False  # the worker is (or was) validating it: it is at the head of the line


class _Worker:
    __slots__ = ("proc", "conn", "pid", "jobs", "deadline", "ready", "writing")

    def __init__(self, proc, conn):
        self.proc = proc
        self.conn = conn
        self.pid = proc.pid
        self.jobs: deque[_Job] = deque()  # sent, not yet answered; the worker takes them in order
        self.deadline = 0.0  # loop time by which the head job must be done (0: none)
        self.ready: asyncio.Future | None = None  # set while the worker starts up
        self.writing: asyncio.Future | None = None  # a thread still writing a big payload to the socket


class ValidationPool:
    """Validate documents in `workers` processes without blocking the event loop."""

    worker_module = "validation.worker"  # run as `python -m MODULE FD CONFIG_JSON`

    def __init__(
        self,
        cache_dir: Path,
        workers: int | None = None,
        max_bytes: int = 100 * 1024 * 1024,
        schematron_after_xsd_error: bool = True,
        *,
        warm: Iterable[str] | None = DEFAULT_WARM,
        timeout: float | None = 120.0,
        start_timeout: float = 300.0,
        depth: int = 2,
    ):
        self.cache_dir = Path(cache_dir).absolute()
        self.size = workers or os.cpu_count() or 1
        self.max_bytes = max_bytes
        self.schematron_after_xsd_error = schematron_after_xsd_error
        self.warm = list(warm) if warm is not None else None
        self.timeout = timeout
        self.start_timeout = start_timeout
        # Documents handed to one worker ahead of time: with 2 the next document is already in
        # the worker's socket when it answers the current one, so it never waits for the loop.
        self.depth = max(1, depth)
        self._workers: list[_Worker] = []  # started and ready
        self._waiters: deque[asyncio.Future] = deque()  # requests waiting for capacity
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._started = False
        self._respawns: set[asyncio.Task] = set()
        self._starting = 0
        self._broken: Exception | None = None  # why no worker can be started, while none runs
        self.crashes = 0
        self.timeouts = 0

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Start every worker and wait until each has compiled its warm-up sets.

        Raises ArtefactError when the artefacts are missing or tampered with."""
        if self._started:
            return
        self._loop = asyncio.get_running_loop()
        results = await asyncio.gather(*(self._spawn() for _ in range(self.size)), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            await self.close()
            raise failures[0]
        self._started = True
        if self.timeout:
            self._loop.call_later(min(1.0, self.timeout / 4), self._watchdog)

    async def __aenter__(self) -> "ValidationPool":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    @property
    def pids(self) -> list[int]:
        return sorted(w.pid for w in self._workers)

    async def _spawn(self) -> _Worker:
        loop = self._loop
        ours, theirs = socket.socketpair()
        cfg = json.dumps({"cache_dir": str(self.cache_dir), "max_bytes": self.max_bytes,
                          "after_xsd": self.schematron_after_xsd_error, "warm": self.warm})
        env = dict(os.environ)
        env["PYTHONPATH"] = _REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        child_fd = theirs.fileno()
        self._starting += 1
        try:
            try:
                proc = await loop.run_in_executor(None, lambda: subprocess.Popen(
                    [sys.executable, "-m", self.worker_module, str(child_fd), cfg],
                    pass_fds=(child_fd,), stdin=subprocess.DEVNULL, env=env, close_fds=True))
            except BaseException:
                ours.close()
                raise
            finally:
                theirs.close()
            w = _Worker(proc, Connection(ours.detach()))
            w.ready = loop.create_future()
            loop.add_reader(w.conn.fileno(), self._on_readable, w)
            try:
                msg = await asyncio.wait_for(asyncio.shield(w.ready), self.start_timeout)
            except asyncio.TimeoutError:
                self._discard(w, kill=True)
                raise ValidationEngineError(
                    f"validation worker did not start within {self.start_timeout:.0f} s") from None
            except BaseException:
                self._discard(w, kill=True)
                raise
            if msg[0] != "ready":
                self._discard(w, kill=True)
                kind, text = msg[1], msg[2]
                raise ArtefactError(text) if kind == "artefact" else ValidationEngineError(
                    f"validation worker failed to start: {text}")
            w.ready = None
            if self._closed:
                self._discard(w, kill=True)
                raise ValidationEngineError("validation pool closed")
        finally:
            self._starting -= 1
        self._broken = None
        self._workers.append(w)
        for _ in range(self.depth):
            self._wake()
        return w

    def _discard(self, w: _Worker, kill: bool) -> None:
        if w in self._workers:
            self._workers.remove(w)
        try:
            self._loop.remove_reader(w.conn.fileno())
        except (ValueError, OSError):
            pass
        w.deadline = 0.0
        try:
            w.conn.close()
        except OSError:
            pass
        if kill and w.proc.poll() is None:
            w.proc.kill()
        self._loop.run_in_executor(None, _reap, w.proc)  # reap without blocking the loop

    async def close(self) -> None:
        """Stop all workers (documents still being validated fail with ValidationEngineError)."""
        if self._closed:
            return
        self._closed = True
        for task in list(self._respawns):
            task.cancel()
        workers = list(self._workers)
        for w in workers:
            try:
                w.conn.send_bytes(pickle.dumps(("stop",)))
            except (OSError, ValueError):
                pass
        loop = self._loop
        if loop is None:
            return
        await asyncio.gather(*(loop.run_in_executor(None, _reap, w.proc, 2.0) for w in workers),
                             return_exceptions=True)
        closed = ValidationEngineError("validation pool closed")
        for w in workers:
            self._discard(w, kill=True)
            self._fail_jobs(w, closed, closed)
        self._wake_all(closed)

    # -- events from workers -------------------------------------------------------------------
    def _on_readable(self, w: _Worker) -> None:
        try:
            reply = pickle.loads(w.conn.recv_bytes())
        except (EOFError, OSError, pickle.UnpicklingError):
            self._on_dead(w)
            return
        if w.ready is not None:
            if not w.ready.done():
                w.ready.set_result(reply)
            return
        if not w.jobs:
            return  # not expected: a reply without a request
        job = w.jobs.popleft()
        if not job.future.done():
            job.future.set_result(reply)
        if w.jobs:
            w.jobs[0].started = True
            w.deadline = self._loop.time() + self.timeout if self.timeout else 0.0
        else:
            w.deadline = 0.0
        self._wake()

    def _fail_jobs(self, w: _Worker, head_error: Exception, rest_error: Exception | None) -> list[_Job]:
        """Fail the head job with `head_error`; the others (never started) fail with `rest_error`,
        or are returned for resubmission when it is None."""
        jobs, w.jobs = list(w.jobs), deque()
        leftover = []
        for i, job in enumerate(jobs):
            if job.future.done():
                continue
            if i == 0 and job.started:
                job.future.set_exception(head_error)
            elif rest_error is not None:
                job.future.set_exception(rest_error)
            else:
                leftover.append(job)
        return leftover

    def _on_dead(self, w: _Worker) -> None:
        try:
            code = w.proc.wait(0.2)
        except subprocess.TimeoutExpired:
            code = None
        was_busy = bool(w.jobs)
        self._discard(w, kill=True)
        if w.ready is not None:
            if not w.ready.done():
                w.ready.set_result(("failed", "internal", f"worker exited during start-up (exit code {code})"))
            return
        if self._closed:
            err = ValidationEngineError("validation pool closed")
            self._fail_jobs(w, err, err)
            return
        self.crashes += 1
        log.error("validation worker %s died (exit code %s)%s; starting a replacement", w.pid, code,
                  " while validating a document" if was_busy else "")
        leftover = self._fail_jobs(w, WorkerCrashedError(
            f"the validation worker process died while validating this document (exit code {code}); "
            "it has been replaced, the document was not validated"), None)
        self._replace()
        for job in leftover:  # queued behind the crash, never started: validate them elsewhere
            self._loop.create_task(self._resubmit(job))

    def _watchdog(self) -> None:
        """Runs about every second while the pool is open: stops documents past their deadline.
        (One timer for the pool instead of one per request keeps the per-document cost down.)"""
        if self._closed:
            return
        now = self._loop.time()
        for w in list(self._workers):
            if w.deadline and now >= w.deadline and w.jobs:
                self._on_timeout(w)
        self._loop.call_later(min(1.0, self.timeout / 4), self._watchdog)

    def _on_timeout(self, w: _Worker) -> None:
        self.timeouts += 1
        log.error("validation worker %s exceeded %.0f s; killing it", w.pid, self.timeout)
        self._discard(w, kill=True)
        leftover = self._fail_jobs(w, ValidationTimeoutError(
            f"validation took longer than {self.timeout:g} s and was stopped"), None)
        if not self._closed:
            self._replace()
        for job in leftover:
            self._loop.create_task(self._resubmit(job))

    def _replace(self) -> None:
        task = self._loop.create_task(self._respawn_loop())
        self._respawns.add(task)
        task.add_done_callback(self._respawns.discard)

    async def _respawn_loop(self) -> None:
        delay = 0.5
        while not self._closed:
            try:
                await self._spawn()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                log.error("cannot start a validation worker: %s", exc)
                if not self._workers and not self._closed:
                    # nobody can serve requests: fail the waiting ones with the reason, not a hang
                    self._broken = exc
                    self._wake_all(exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    # -- dispatch ------------------------------------------------------------------------------
    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _wake_all(self, error: Exception) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)

    def _pick(self) -> _Worker | None:
        best = None
        for w in self._workers:
            n = len(w.jobs)
            if n < self.depth and (best is None or n < len(best.jobs)):
                best = w
                if n == 0:
                    break
        return best

    async def _acquire(self) -> _Worker:
        while True:
            if self._closed:
                raise ValidationEngineError("validation pool closed")
            w = self._pick()
            if w is not None:
                return w
            if self._broken is not None and not self._workers:
                raise self._broken
            waiter = self._loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # pass the capacity we were given on to the next request
                raise

    def _mark_dead(self, w: _Worker) -> None:
        """Stop choosing a worker whose socket failed; its reader sees EOF and handles the rest."""
        if w in self._workers:
            self._workers.remove(w)
        if w.proc.poll() is None:
            w.proc.kill()

    async def _send(self, w: _Worker, job: _Job) -> None:
        """Queue `job` on worker `w`. Jobs are written whole and in the order of `w.jobs`: small
        ones synchronously from the loop, big ones from a thread while later writers wait."""
        while w.writing is not None:
            await asyncio.wait({w.writing})
        if w not in self._workers:
            raise _Gone()
        if w.proc.poll() is not None:  # died; its reader has not seen the EOF yet
            self._mark_dead(w)
            raise _Gone()
        job.started = not w.jobs
        w.jobs.append(job)
        if job.started and self.timeout:
            w.deadline = self._loop.time() + self.timeout
        # A busy worker is not reading: only what surely fits the socket buffer is written from the
        # loop; anything bigger from a thread, so the loop never waits for the worker.
        big = len(job.payload) > (_BIG_PAYLOAD if job.started else _PIPELINED_PAYLOAD)
        try:
            if big:
                fut = self._loop.run_in_executor(None, w.conn.send_bytes, job.payload)
                w.writing = fut

                def done(f: asyncio.Future, w: _Worker = w) -> None:
                    if w.writing is f:
                        w.writing = None

                fut.add_done_callback(done)
                await asyncio.shield(fut)  # cancelled or not, the thread finishes its write
            else:
                w.conn.send_bytes(job.payload)
        except (OSError, ValueError):
            if job in w.jobs:
                w.jobs.remove(job)  # it never reached the worker
            self._mark_dead(w)
            raise _Gone() from None

    async def _dispatch(self, job: _Job) -> None:
        while True:
            w = await self._acquire()
            try:
                await self._send(w, job)
                return
            except _Gone:
                continue

    async def _resubmit(self, job: _Job) -> None:
        try:
            await self._dispatch(job)
        except Exception as exc:  # noqa: BLE001
            if not job.future.done():
                job.future.set_exception(exc)

    async def validate(
        self,
        data: bytes,
        rules: str | None = None,
        fmt: Format = "json",
        at: dt.date | None = None,
    ) -> dict | bytes | str:
        """Validate one document in a worker. Returns the report dict (fmt "json"), its JSON
        bytes ("json-bytes"), the SVRL bytes ("svrl") or the text rendering ("text")."""
        if not self._started:
            raise ValidationEngineError("validation pool not started")
        if len(data) > self.max_bytes:
            raise DocumentTooLargeError(f"document is {len(data):,} bytes; the limit is {self.max_bytes:,} bytes")
        if fmt not in ("json", "json-bytes", "svrl", "text"):
            raise ValueError(f"unknown format {fmt!r}")
        job = _Job(self._loop.create_future(),
                   pickle.dumps(("validate", bytes(data), rules, at, fmt), protocol=pickle.HIGHEST_PROTOCOL))
        await self._dispatch(job)
        return _unpack(await job.future)  # (the job keeps its payload: it may be resubmitted)


class _Gone(Exception):
    """The chosen worker turned out to be dead before the document reached it."""


def _reap(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _unpack(reply: tuple):
    kind = reply[0]
    if kind == "ok":
        return reply[1]
    if kind == "input":
        cls = getattr(errors_mod, reply[1], None)
        if not (isinstance(cls, type) and issubclass(cls, ValidationInputError)):
            cls = ValidationInputError
        raise cls(reply[2])
    if kind == "artefact":
        raise ArtefactError(reply[1])
    raise ValidationEngineError(f"validation failed inside the worker: {reply[1]}")


__all__ = ["ValidationPool", "DEFAULT_WARM"]
