"""A pool of validation worker processes for asyncio servers.

saxonche does not scale with threads, only with processes, and a transform must never run on the
event loop. Each worker is a fresh interpreter (`python -m validation.worker`, so no Saxon state is ever
forked and the caller's main module is never re-imported) holding its own `Validator`; it compiles the stylesheets of the warm-up sets once at start
and every other stylesheet the first time it is needed, then keeps them for its lifetime.

    pool = ValidationPool(cache_dir, workers=2, max_bytes=100 * 2**20)
    await pool.start()
    report = await pool.validate(xml_bytes)                 # the report contract as a dict
    svrl = await pool.validate(xml_bytes, fmt="svrl")      # bytes
    await pool.close()

IPC is one socket pair per worker and one message each way per document (pickled bytes in, the report
dict or rendered bytes out); the event loop learns about replies through `add_reader` on the
pipe, so there are no helper threads on the hot path. Only payloads above 1 MB are written from a
thread, so that a big upload never stalls the loop.

Input errors raised in a worker (`NotXmlError`, `UnknownDocumentTypeError`, ...) are raised again
in the caller with the same class and message. A worker that dies mid-document fails only that
document (`WorkerCrashedError`) and is replaced at once; a document that runs longer than
`timeout` seconds gets `ValidationTimeoutError` and its worker is killed and replaced.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
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
_BIG_PAYLOAD = 1 << 20


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
    try:
        conn.send_bytes(pickle.dumps(("ready", os.getpid())))
    except OSError:  # the pool was closed while this worker started
        return
    while True:
        try:
            msg = conn.recv_bytes()
        except (EOFError, OSError):
            return
        job = pickle.loads(msg)
        if job[0] == "stop":
            return
        if job[0] == "crash":  # test hook: simulate a crash of the native engine
            os._exit(70)
        _, data, rules, at, fmt = job
        try:
            report = validator.validate(data, rules=rules, at=at)
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


class _Worker:
    __slots__ = ("proc", "conn", "pid", "future", "timer", "ready")

    def __init__(self, proc, conn):
        self.proc = proc
        self.conn = conn
        self.pid = proc.pid
        self.future: asyncio.Future | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.ready: asyncio.Future | None = None


class _Broken:
    """Put into the idle queue to wake waiters when no worker can be started."""

    def __init__(self, error: Exception):
        self.error = error


class ValidationPool:
    """Validate documents in `workers` processes without blocking the event loop."""

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
    ):
        self.cache_dir = Path(cache_dir).absolute()
        self.size = workers or os.cpu_count() or 1
        self.max_bytes = max_bytes
        self.schematron_after_xsd_error = schematron_after_xsd_error
        self.warm = list(warm) if warm is not None else None
        self.timeout = timeout
        self.start_timeout = start_timeout
        self._workers: set[_Worker] = set()
        self._idle: asyncio.Queue | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._started = False
        self._respawns: set[asyncio.Task] = set()
        self._broken: _Broken | None = None
        self.crashes = 0
        self.timeouts = 0

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Start every worker and wait until each has compiled its warm-up sets.

        Raises ArtefactError when the artefacts are missing or tampered with."""
        if self._started:
            return
        self._loop = asyncio.get_running_loop()
        self._idle = asyncio.Queue()
        results = await asyncio.gather(*(self._spawn() for _ in range(self.size)), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            await self.close()
            raise failures[0]
        self._started = True

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
        try:
            proc = await loop.run_in_executor(None, lambda: subprocess.Popen(
                [sys.executable, "-m", "validation.worker", str(child_fd), cfg],
                pass_fds=(child_fd,), stdin=subprocess.DEVNULL, env=env, close_fds=True))
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        parent = Connection(ours.detach())
        w = _Worker(proc, parent)
        w.ready = loop.create_future()
        self._workers.add(w)
        loop.add_reader(parent.fileno(), self._on_readable, w)
        try:
            msg = await asyncio.wait_for(asyncio.shield(w.ready), self.start_timeout)
        except asyncio.TimeoutError:
            self._discard(w, kill=True)
            raise ValidationEngineError(f"validation worker did not start within {self.start_timeout:.0f} s") from None
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
        self._broken = None
        self._idle.put_nowait(w)
        return w

    def _discard(self, w: _Worker, kill: bool) -> None:
        if w in self._workers:
            self._workers.discard(w)
        try:
            self._loop.remove_reader(w.conn.fileno())
        except (ValueError, OSError):
            pass
        if w.timer is not None:
            w.timer.cancel()
            w.timer = None
        try:
            w.conn.close()
        except OSError:
            pass
        if kill and w.proc.poll() is None:
            w.proc.kill()
        # reap without blocking the loop
        self._loop.run_in_executor(None, _reap, w.proc)

    async def close(self) -> None:
        """Stop all workers (a document being validated fails with ValidationEngineError)."""
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
        for w in workers:
            fut = w.future
            self._discard(w, kill=True)
            if fut is not None and not fut.done():
                fut.set_exception(ValidationEngineError("validation pool closed"))
            if w.ready is not None and not w.ready.done():
                w.ready.set_result(("failed", "internal", "pool closed"))
        if self._idle is not None:
            self._idle.put_nowait(_Broken(ValidationEngineError("validation pool closed")))

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
        fut, w.future = w.future, None
        if w.timer is not None:
            w.timer.cancel()
            w.timer = None
        if fut is not None and not fut.done():
            fut.set_result(reply)
        if not self._closed:
            self._idle.put_nowait(w)

    def _on_dead(self, w: _Worker) -> None:
        try:
            code = w.proc.wait(0.2)
        except subprocess.TimeoutExpired:
            code = None
        self._discard(w, kill=True)
        if w.ready is not None:
            if not w.ready.done():
                w.ready.set_result(("failed", "internal", f"worker exited during start-up (exit code {code})"))
            return
        fut, w.future = w.future, None
        if self._closed:
            if fut is not None and not fut.done():
                fut.set_exception(ValidationEngineError("validation pool closed"))
            return
        self.crashes += 1
        log.error("validation worker %s died (exit code %s)%s; starting a replacement", w.pid, code,
                  " while validating a document" if fut is not None else "")
        if fut is not None and not fut.done():
            fut.set_exception(WorkerCrashedError(
                f"the validation worker process died while validating this document (exit code {code}); "
                "it has been replaced, the document was not validated"))
        self._replace()

    def _on_timeout(self, w: _Worker) -> None:
        w.timer = None
        fut, w.future = w.future, None
        self.timeouts += 1
        log.error("validation worker %s exceeded %.0f s; killing it", w.pid, self.timeout)
        self._discard(w, kill=True)
        if fut is not None and not fut.done():
            fut.set_exception(ValidationTimeoutError(
                f"validation took longer than {self.timeout:g} s and was stopped"))
        if not self._closed:
            self._replace()

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
                    # nobody can serve requests: wake waiters with the reason instead of hanging
                    self._broken = _Broken(exc)
                    self._idle.put_nowait(self._broken)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    # -- requests ------------------------------------------------------------------------------
    async def _acquire(self) -> _Worker:
        while True:
            if self._closed:
                raise ValidationEngineError("validation pool closed")
            item = await self._idle.get()
            if isinstance(item, _Broken):
                if self._closed or (self._broken is item and not self._workers):
                    self._idle.put_nowait(item)  # pass it on to the next waiter
                    raise item.error
                continue  # stale: a worker has started since
            if item not in self._workers:
                continue  # discarded while it waited in the queue
            if item.proc.poll() is not None:  # died while idle; the reader has not noticed yet
                self._on_dead(item)
                continue
            return item

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
        w = await self._acquire()
        loop = self._loop
        fut = loop.create_future()
        w.future = fut
        payload = pickle.dumps(("validate", bytes(data), rules, at, fmt), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            if len(payload) > _BIG_PAYLOAD:
                await loop.run_in_executor(None, w.conn.send_bytes, payload)
            else:
                w.conn.send_bytes(payload)
        except (OSError, ValueError):
            if w.future is fut:  # the reader has not noticed yet
                self._on_dead(w)
            if not fut.done():
                fut.set_exception(WorkerCrashedError("the validation worker process is gone"))
        if self.timeout and not fut.done():
            w.timer = loop.call_later(self.timeout, self._on_timeout, w)
        reply = await fut
        return _unpack(reply)


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
