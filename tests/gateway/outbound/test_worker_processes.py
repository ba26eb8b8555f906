"""Several `sendgw worker` processes sharing one outbox: no document is ever sent twice at the same
time, and a worker SIGKILLed mid-send loses nothing (its lease expires, the document is re-sent
with the same MessageId and the same bytes)."""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import hashlib
import os
import re
import signal
import time

import pytest
from aiohttp import web
from sqlalchemy import select

from gateway.store.messages import events_of
from gateway.store.outbox import attempts_of
from gateway.store.payloads import payload_store_from
from gateway.store.schema import messages

pytest.importorskip("as4")
from tests.gateway.outbound.workerproc import (  # noqa: E402
    ThreadedReceiver,
    count_states,
    queue,
    start_worker,
    stop,
    wait_until,
    worker_config,
    write_pki,
)
from tests.peers.as4lib_receiver import As4LibReceiver  # noqa: E402

MESSAGE_ID = re.compile(rb"<(?:\w+:)?MessageId>([^<]+)</(?:\w+:)?MessageId>")


class RecordingReceiver(As4LibReceiver):
    """Also remembers when each request arrived. With `stalling` set, a request is read, noted and
    then left unanswered until the sender goes away (it is never accepted)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.stalling = False
        self.stalled: list[tuple[str, str]] = []  # (MessageId, body SHA-256)
        self.arrivals: list[tuple[float, int]] = []  # (wall clock, index into message_ids)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.stalling:
            body = await request.read()
            self.stalled.append((MESSAGE_ID.search(body).group(1).decode(), hashlib.sha256(body).hexdigest()))
            while request.transport is not None and not request.transport.is_closing():
                await asyncio.sleep(0.05)
            return web.Response(status=503)
        arrived = time.time()
        response = await super().handle(request)
        self.arrivals.append((arrived, len(self.message_ids) - 1))
        return response


@pytest.fixture
def outbox(engine, settings, tenant, tmp_path, shared_dir):
    """Everything a worker process needs except the receiver: PKI, tenant, document, config."""
    pki = write_pki(tmp_path / "pki")
    document = (shared_dir / "conformance/ehf-billing-3/examples/Norwegian-example-1.xml").read_bytes()
    payloads = payload_store_from(settings)
    procs = []

    class Outbox:
        def __init__(self):
            self.pki, self.payloads, self.tenant_id = pki, payloads, tenant[0].id

        def receiver(self) -> RecordingReceiver:
            return RecordingReceiver("POP000077", pki.peer.key, pki.peer.cert, pki.ca.cert)

        def queue(self, n: int) -> list[str]:
            return queue(engine, payloads, self.tenant_id, document, n)

        def config(self, name: str, receiver_url: str, **outbound):
            return worker_config(tmp_path / f"{name}.toml", db_url=settings.database.url,
                                 payload_dir=settings.path(settings.storage.directory), pki=pki,
                                 receiver_url=receiver_url, **outbound)

        def start(self, config, name: str):
            proc = start_worker(config, tmp_path / f"{name}.log")
            procs.append(proc)
            return proc

        def log(self, name: str) -> str:
            path = tmp_path / f"{name}.log"
            return path.read_text(errors="replace") if path.exists() else ""

    yield Outbox()
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def diagnose(engine, outbox, *names) -> str:
    errors = collections.Counter(d.last_error for d in rows(engine).values() if d.last_error)
    return f"{count_states(engine)} {errors.most_common(3)}\n" + "\n".join(outbox.log(n)[-2000:] for n in names)


def rows(engine):
    with engine.connect() as conn:
        return {r.id: r for r in conn.execute(select(messages))}


@pytest.mark.slow
def test_two_worker_processes_deliver_500_documents_exactly_once(outbox, engine):
    # PostgreSQL: SKIP LOCKED claims; SQLite: BEGIN IMMEDIATE single-writer claims
    n = 500
    ids = outbox.queue(n)
    recv = ThreadedReceiver(outbox.receiver())
    try:
        r = recv.receiver
        config = outbox.config("w", r.url, lease_seconds=60.0, concurrency=32, per_endpoint_concurrency=16)
        workers = [outbox.start(config, "w1"), outbox.start(config, "w2")]
        started = time.monotonic()
        try:
            wait_until(lambda: count_states(engine).get("delivered") == n, 60, f"{n} deliveries")
        except AssertionError:
            raise AssertionError(diagnose(engine, outbox, "w1", "w2")) from None
        elapsed = time.monotonic() - started
        for w in workers:
            assert stop(w) == 0  # SIGTERM: graceful exit
    finally:
        recv.close()
    docs = rows(engine)
    mids = {d.as4_message_id for d in docs.values()}
    assert len(docs) == n and len(mids) == n
    # every MessageId reached the receiver exactly once: no document was ever sent twice
    assert collections.Counter(r.message_ids) == collections.Counter({m: 1 for m in mids})
    assert r.accepted == collections.Counter({m: 1 for m in mids})
    with engine.connect() as conn:
        senders = collections.Counter(
            next(e["detail"]["worker"] for e in events_of(conn, doc_id) if e["kind"] == "delivered") for doc_id in ids)
        logs = {doc_id: attempts_of(conn, doc_id) for doc_id in ids[:20]}
    assert len(senders) == 2, senders  # both processes took part
    assert all([a["outcome"] for a in log] == ["delivered"] for log in logs.values())
    print(f"\n{n} documents, 2 worker processes, {engine.dialect.name}: {elapsed:.1f} s, "
          f"split {sorted(senders.values())}")


@pytest.mark.slow
def test_worker_killed_mid_send_is_resumed_after_the_lease_with_the_same_message(outbox, engine):
    n = 5
    lease = 4.0
    ids = outbox.queue(n)
    recv = ThreadedReceiver(outbox.receiver())
    r = recv.receiver
    r.stalling = True
    try:
        config = outbox.config("w", r.url, lease_seconds=lease, concurrency=8, per_endpoint_concurrency=8)
        first = outbox.start(config, "first")
        wait_until(lambda: len({m for m, _ in r.stalled}) == n, 30,
                   f"{n} stalled sends (log: {outbox.log('first')[-2000:]})")
        before = rows(engine)
        assert all(d.state == "sending" and d.lease_owner for d in before.values())
        leases_end = max(d.lease_expires_at for d in before.values()).timestamp()
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        assert first.returncode == -signal.SIGKILL
        r.stalling = False
        second = outbox.start(config, "second")
        wait_until(lambda: count_states(engine).get("delivered") == n, 30,
                   f"deliveries after the lease (log: {outbox.log('second')[-2000:]})")
        assert stop(second) == 0
    finally:
        recv.close()
    after = rows(engine)
    stalled = dict(r.stalled)
    for doc_id in ids:
        old, new = before[doc_id], after[doc_id]
        assert new.state == "delivered"
        assert new.as4_message_id == old.as4_message_id  # never a new MessageId
        assert r.accepted[new.as4_message_id] == 1
        resent = [i for i, m in enumerate(r.message_ids) if m == new.as4_message_id]
        assert len(resent) == 1
        assert r.body_hashes[resent[0]] == stalled[new.as4_message_id]  # the very same bytes
    # nothing was re-sent before the dead worker's leases had expired
    assert min(t for t, _ in r.arrivals) >= leases_end - 0.05
    assert set(r.message_ids) == {d.as4_message_id for d in before.values()}
    with engine.connect() as conn:
        for doc_id in ids:
            log = attempts_of(conn, doc_id)
            assert [a["outcome"] for a in log] == ["interrupted", "delivered"], log
            assert [a["number"] for a in log] == [1, 2]
            assert "lease expired" in log[0]["error"]
    assert all(d.attempts == 2 for d in after.values())


@pytest.mark.slow
def test_sigterm_lets_documents_in_flight_finish(outbox, engine):
    ids = outbox.queue(3)
    receiver = outbox.receiver()
    receiver.delay = 1.5  # each request is answered 1.5 s after it arrives
    recv = ThreadedReceiver(receiver)
    try:
        config = outbox.config("w", receiver.url, lease_seconds=60.0)
        worker = outbox.start(config, "w")
        wait_until(lambda: len(receiver.message_ids) == 3, 20, f"3 sends in flight ({outbox.log('w')[-2000:]})")
        assert not receiver.accepted
        assert stop(worker) == 0
        # it waited for the answers before exiting: nothing is left leased
        assert count_states(engine) == {"delivered": 3}
        assert sum(receiver.accepted.values()) == 3
        assert "stopped" in outbox.log("w")
    finally:
        recv.close()


def test_worker_without_an_ap_identity_refuses_to_start(outbox, tmp_path):
    from tests.gateway.server_process import write_config

    config = write_config(tmp_path / "bare.toml", {"database": {"url": f"sqlite:///{tmp_path}/bare.db"}})
    proc = outbox.start(config, "bare")
    assert proc.wait(60) == 1
    assert "needs an [ap] identity" in outbox.log("bare")
