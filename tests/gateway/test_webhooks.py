import asyncio
import datetime as dt
import json

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select, update

from gateway.config import Settings
from gateway.store.schema import webhook_deliveries
from gateway.store.tenants import create_tenant
from gateway.webhooks import (
    SIGNATURE_HEADER,
    WebhookUrlError,
    WebhookWorker,
    backoff,
    enqueue,
    set_webhook,
    sign,
    verify_signature,
)


def test_signature_is_hmac_sha256_of_the_body():
    import hashlib
    import hmac

    body = b'{"a":1}'
    assert sign("s3cret", body) == "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert verify_signature("s3cret", body, sign("s3cret", body))
    assert not verify_signature("s3cret", body + b" ", sign("s3cret", body))
    assert not verify_signature("other", body, sign("s3cret", body))


def test_backoff_grows_and_is_capped():
    import random

    rng = random.Random(1)
    delays = [backoff(n, 5, 60, rng) for n in range(1, 8)]
    assert 2.5 <= delays[0] <= 5
    assert all(d <= 60 for d in delays)
    assert delays[4] >= 30  # 5 * 2**4 = 80, capped at 60, jitter >= 50%


def test_bad_urls_rejected(engine):
    tenant, _ = create_tenant(engine, "T")
    for url in ("ftp://x/", "not a url", "http:///nohost"):
        with pytest.raises(WebhookUrlError):
            set_webhook(engine, tenant.id, url)


class Receiver:
    """A real local HTTP server that records notifications and fails the first `fail` of them."""

    def __init__(self, fail: int = 0):
        self.fail, self.calls = fail, []

    async def handle(self, request):
        body = await request.read()
        self.calls.append((dict(request.headers), body))
        if len(self.calls) <= self.fail:
            return web.Response(status=503)
        return web.Response(status=204)


async def start(receiver):
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}/hook"


def settings(**kw):
    s = Settings()
    s.webhooks.allow_private = True
    s.webhooks.first_retry_seconds = 0.01
    s.webhooks.max_retry_seconds = 0.02
    for k, v in kw.items():
        setattr(s.webhooks, k, v)
    return s


async def drain(worker, engine, rounds=50):
    async with aiohttp.ClientSession() as session:
        for _ in range(rounds):
            await worker.run_once(session)
            with engine.connect() as conn:
                states = [r.state for r in conn.execute(select(webhook_deliveries.c.state))]
            if states and all(s != "pending" for s in states):
                return states
            await asyncio.sleep(0.03)
    return states


async def test_signed_delivery_with_retries(engine):
    receiver = Receiver(fail=2)
    runner, url = await start(receiver)
    try:
        tenant, _ = create_tenant(engine, "T")
        secret = set_webhook(engine, tenant.id, url)
        with engine.begin() as conn:
            enqueue(conn, tenant.id, "inbox.received", {"id": "m1"})
        states = await drain(WebhookWorker(engine, settings()), engine)
        assert states == ["delivered"]
        assert len(receiver.calls) == 3
        bodies = {body for _, body in receiver.calls}
        assert len(bodies) == 1  # retries send identical bytes
        headers, body = receiver.calls[-1]
        assert verify_signature(secret, body, headers[SIGNATURE_HEADER])
        payload = json.loads(body)
        assert payload["event"] == "inbox.received" and payload["data"] == {"id": "m1"}
        assert headers["X-SendGW-Event"] == "inbox.received"
        with engine.connect() as conn:
            row = conn.execute(select(webhook_deliveries)).one()
        assert row.attempts == 3 and row.last_status == 204
    finally:
        await runner.cleanup()


async def test_gives_up_after_deadline(engine):
    receiver = Receiver(fail=1000)
    runner, url = await start(receiver)
    try:
        tenant, _ = create_tenant(engine, "T")
        set_webhook(engine, tenant.id, url)
        with engine.begin() as conn:
            enqueue(conn, tenant.id, "inbox.received", {"id": "m1"})
            old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
            conn.execute(update(webhook_deliveries).values(created_at=old))
        states = await drain(WebhookWorker(engine, settings(give_up_hours=0.5)), engine)
        assert states == ["failed"]
        with engine.connect() as conn:
            assert conn.execute(select(webhook_deliveries.c.last_error)).scalar() == "HTTP 503"
    finally:
        await runner.cleanup()


async def test_private_addresses_refused_by_default(engine):
    receiver = Receiver()
    runner, url = await start(receiver)
    try:
        tenant, _ = create_tenant(engine, "T")
        set_webhook(engine, tenant.id, url)
        with engine.begin() as conn:
            enqueue(conn, tenant.id, "inbox.received", {"id": "m1"})
        worker = WebhookWorker(engine, settings(allow_private=False, give_up_hours=0))
        assert await drain(worker, engine) == ["failed"]
        assert receiver.calls == []
        with engine.connect() as conn:
            assert "private" in conn.execute(select(webhook_deliveries.c.last_error)).scalar()
    finally:
        await runner.cleanup()


def test_no_webhook_no_delivery(engine):
    tenant, _ = create_tenant(engine, "T")
    with engine.begin() as conn:
        assert enqueue(conn, tenant.id, "inbox.received", {}) is None
