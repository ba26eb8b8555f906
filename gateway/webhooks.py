"""Signed webhook notifications to tenants, delivered from a durable queue with retries.

Each notification is a JSON body signed with HMAC-SHA256 under the tenant's secret:

    X-SendGW-Signature: sha256=<hex HMAC-SHA256(secret, raw body bytes)>
    X-SendGW-Event: <event name>           X-SendGW-Delivery: <delivery id>

The body is fixed when the notification is queued (same transaction as the change it reports),
so retries send identical bytes and the signature can be checked against the raw body. A
delivery succeeds on any 2xx; otherwise it is retried with exponential backoff and jitter until
`[webhooks] give_up_hours`, then marked failed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import logging
import random
import secrets
import socket
import uuid
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from sqlalchemy import Connection, Engine, func, insert, select, update

from gateway.polling import Waker, poll_forever
from gateway.store.db import run_db
from gateway.store.queue import claim_due
from gateway.store.schema import tenants, webhook_deliveries

log = logging.getLogger("sendgw.webhooks")

SIGNATURE_HEADER = "X-SendGW-Signature"
EVENT_HEADER = "X-SendGW-Event"
DELIVERY_HEADER = "X-SendGW-Delivery"


class WebhookUrlError(ValueError):
    """The webhook URL is not an absolute http(s) URL, or points where it may not."""


def sign(secret: str, body: bytes) -> str:
    """The signature header value for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str) -> bool:
    """For receivers (and our tests): constant-time check of a signature header."""
    return hmac.compare_digest(sign(secret, body), header or "")


def check_url(url: str) -> str:
    if len(url) > 2000:
        raise WebhookUrlError("webhook url is too long")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise WebhookUrlError("webhook url must not contain spaces or control characters")
    try:  # urlsplit and .port raise ValueError on a broken IPv6 literal or a port above 65535
        parts = urlsplit(url)
        host, _port = parts.hostname, parts.port
    except ValueError as exc:
        raise WebhookUrlError(f"webhook url is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise WebhookUrlError("webhook url must be an absolute http:// or https:// URL")
    return url


def set_webhook(engine: Engine, tenant_id: str, url: str | None) -> str | None:
    """Set (or clear, with None) a tenant's webhook URL; returns the new signing secret."""
    secret = secrets.token_urlsafe(32) if url else None
    if url:
        check_url(url)
    with engine.begin() as conn:
        conn.execute(update(tenants).where(tenants.c.id == tenant_id).values(webhook_url=url, webhook_secret=secret))
    return secret


def enqueue(conn: Connection, tenant_id: str, event: str, data: dict[str, Any],
            message_id: str | None = None, now: dt.datetime | None = None) -> str | None:
    """Queue a notification in the caller's transaction (nothing when the tenant has no webhook)."""
    url = conn.execute(select(tenants.c.webhook_url).where(tenants.c.id == tenant_id)).scalar()
    if not url:
        return None
    now = now or dt.datetime.now(dt.timezone.utc)
    delivery_id = str(uuid.uuid4())
    body = json.dumps({"id": delivery_id, "event": event, "created_at": now.isoformat(), "data": data},
                      ensure_ascii=False, separators=(",", ":"))
    conn.execute(insert(webhook_deliveries).values(
        id=delivery_id, tenant_id=tenant_id, message_id=message_id, event=event, body=body, state="pending",
        attempts=0, next_attempt_at=now, created_at=now))
    return delivery_id


def delivery_summary(conn: Connection, message_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(select(webhook_deliveries).where(webhook_deliveries.c.message_id == message_id)
                        .order_by(webhook_deliveries.c.created_at))
    return [{"id": r.id, "event": r.event, "state": r.state, "attempts": r.attempts,
             "last_status": r.last_status, "last_error": r.last_error,
             "delivered_at": r.delivered_at.isoformat() if r.delivered_at else None} for r in rows]


def delivery_counts(engine: Engine, tenant_id: str) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(webhook_deliveries.c.state, func.count())
                            .where(webhook_deliveries.c.tenant_id == tenant_id)
                            .group_by(webhook_deliveries.c.state))
        return {state: n for state, n in rows}


def backoff(attempts: int, first: float, maximum: float, rng: random.Random = random.Random()) -> float:
    """Exponential backoff with full jitter in [50%, 100%] of the nominal delay."""
    nominal = min(maximum, first * (2 ** max(0, attempts - 1)))
    return nominal * (0.5 + rng.random() / 2)


def _is_private(host: str) -> bool:
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False  # let the request fail with a clear connection error
    for info in infos:
        addr = ipaddress.ip_address(info[4][0])
        if addr.is_private or addr.is_loopback or addr.is_link_local or addr.is_reserved or addr.is_multicast:
            return True
    return False


class WebhookWorker:
    """Delivers due notifications. Any number of workers may run against one database."""

    def __init__(self, engine: Engine, settings, *, batch: int = 20, poll_seconds: float = 0.5):
        self.engine, self.settings, self.batch, self.poll = engine, settings.webhooks, batch, poll_seconds
        self.owner = f"webhooks-{uuid.uuid4().hex[:8]}"
        self._waker = Waker()

    def wake(self) -> None:
        self._waker.wake()

    def _claim(self) -> list[Any]:
        now = dt.datetime.now(dt.timezone.utc)
        lease = dt.timedelta(seconds=self.settings.timeout_seconds * 3)
        with self.engine.begin() as conn:
            ids = claim_due(conn, webhook_deliveries, states=["pending"], now=now, owner=None, lease=lease,
                            limit=self.batch)
            if not ids:
                return []
            return list(conn.execute(
                select(webhook_deliveries, tenants.c.webhook_url, tenants.c.webhook_secret)
                .join(tenants, tenants.c.id == webhook_deliveries.c.tenant_id)
                .where(webhook_deliveries.c.id.in_(ids))))

    def _finish(self, delivery, ok: bool, status: int | None, error: str | None) -> None:
        now = dt.datetime.now(dt.timezone.utc)
        attempts = delivery.attempts + 1
        values: dict[str, Any] = {"attempts": attempts, "last_status": status, "last_error": error,
                                  "lease_expires_at": None}
        if ok:
            values.update(state="delivered", delivered_at=now)
        elif now - delivery.created_at > dt.timedelta(hours=self.settings.give_up_hours):
            values.update(state="failed")
        else:
            delay = backoff(attempts, self.settings.first_retry_seconds, self.settings.max_retry_seconds)
            values.update(next_attempt_at=now + dt.timedelta(seconds=delay))
        with self.engine.begin() as conn:
            conn.execute(update(webhook_deliveries).where(webhook_deliveries.c.id == delivery.id).values(**values))

    async def _send(self, session: aiohttp.ClientSession, delivery) -> None:
        body = delivery.body.encode("utf-8")
        if not delivery.webhook_url or not delivery.webhook_secret:
            await run_db(self._finish, delivery, False, None, "tenant has no webhook configured")
            return
        host = urlsplit(delivery.webhook_url).hostname or ""
        if not self.settings.allow_private and await asyncio.to_thread(_is_private, host):
            await run_db(self._finish, delivery, False, None,
                         "webhook URL resolves to a private or loopback address ([webhooks] allow_private is off)")
            return
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(delivery.webhook_secret, body),
                   EVENT_HEADER: delivery.event, DELIVERY_HEADER: delivery.id, "User-Agent": "sendgw-webhooks"}
        status, error = None, None
        try:
            async with session.post(delivery.webhook_url, data=body, headers=headers, allow_redirects=False,
                                    timeout=aiohttp.ClientTimeout(total=self.settings.timeout_seconds)) as resp:
                status = resp.status
                await resp.content.read(64 * 1024)
                if not 200 <= status < 300:
                    error = f"HTTP {status}"
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        await run_db(self._finish, delivery, error is None, status, error)

    async def run_once(self, session: aiohttp.ClientSession) -> int:
        due = await run_db(self._claim)
        await asyncio.gather(*(self._send(session, d) for d in due))
        return len(due)

    async def run(self) -> None:
        async with aiohttp.ClientSession() as session:
            await poll_forever(lambda: self.run_once(session), self._waker, self.poll, log, "webhook worker")
