"""Circuit breaker and per-endpoint concurrency limit of the outbox worker."""

from __future__ import annotations

import pytest

from gateway.outbound.worker import CircuitBreaker

pytest.importorskip("as4")
from tests.gateway.outbound.test_outbound_e2e import (  # noqa: E402,F401  (fixtures)
    invoice,
    pki,
    sender,
    settle,
    submit,
)
from tests.peers.as4lib_receiver import As4LibReceiver  # noqa: E402


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


A, B = "https://a.example/as4", "https://b.example/as4"


def test_breaker_opens_after_threshold_consecutive_failures():
    clock = Clock()
    br = CircuitBreaker(3, 60.0, clock)
    assert br.open_for(A) == 0
    br.record(A, False)
    br.record(A, False)
    assert br.open_for(A) == 0  # two failures: still closed
    br.record(A, False)
    assert br.open_for(A) == 60.0
    clock.now += 45
    assert br.open_for(A) == 15.0
    assert br.open_for(B) == 0  # endpoints are independent


def test_a_success_resets_the_count():
    clock = Clock()
    br = CircuitBreaker(3, 60.0, clock)
    br.record(A, False)
    br.record(A, False)
    br.record(A, True)
    br.record(A, False)
    br.record(A, False)
    assert br.open_for(A) == 0


def test_after_the_hold_one_probe_failure_reopens_and_a_probe_success_closes():
    clock = Clock()
    br = CircuitBreaker(2, 10.0, clock)
    br.record(A, False)
    br.record(A, False)
    clock.now += 10.5
    assert br.open_for(A) == 0  # half-open: the next send is a probe
    br.record(A, False)
    assert br.open_for(A) == 10.0  # one more failure is enough
    clock.now += 11
    br.record(A, True)
    assert br.open_for(A) == 0
    br.record(A, False)
    assert br.open_for(A) == 0  # the count started again from zero


class CountingReceiver(As4LibReceiver):
    """Tracks how many requests it is handling at the same time."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.active = 0
        self.max_active = 0

    async def handle(self, request):
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            return await super().handle(request)
        finally:
            self.active -= 1


@pytest.fixture
async def counting_receiver(pki):
    r = CountingReceiver("POP000077", pki["peer"].key, pki["peer"].cert, pki["ca"].cert, delay=0.4)
    await r.start()
    yield r
    await r.stop()


async def test_per_endpoint_concurrency_limit(sender, settings, counting_receiver, invoice):
    start, auth = sender
    settings.outbound.per_endpoint_concurrency = 2
    settings.outbound.concurrency = 16
    client = await start(counting_receiver)
    ids = []
    for _ in range(6):
        status, body = await submit(client, auth, invoice)
        assert status == 202, body
        ids.append(body["id"])
    for doc_id in ids:
        details = await settle(client, auth, doc_id, timeout=30)
        assert details["state"] == "delivered", details
    assert sum(counting_receiver.accepted.values()) == 6
    # never more than two at once towards this endpoint, but it did use both slots
    assert counting_receiver.max_active == 2


async def test_open_breaker_holds_sends_without_contacting_the_endpoint(sender, settings, pki, invoice):
    start, auth = sender
    settings.outbound.breaker_failures = 2
    settings.outbound.breaker_seconds = 30.0
    receiver = As4LibReceiver("POP000077", pki["peer"].key, pki["peer"].cert, pki["ca"].cert, ["503"] * 50)
    await receiver.start()
    try:
        client = await start(receiver)
        _, body = await submit(client, auth, invoice)
        doc_id = body["id"]

        async def held():
            d = await (await client.get(f"/api/v1/documents/{doc_id}", headers=auth)).json()
            return d if any(e["kind"] == "held" for e in d["events"]) else None

        import asyncio

        details = None
        for _ in range(200):
            details = await held()
            if details:
                break
            await asyncio.sleep(0.05)
        assert details, "the breaker never held the document"
        assert receiver.requests == 2  # the third attempt was held, not sent
        assert details["state"] in ("retrying", "sending")
        assert [a["outcome"] for a in details["attempts"]] == ["transient", "transient"]
        hold = next(e for e in details["events"] if e["kind"] == "held")
        assert "circuit breaker open" in hold["detail"]["reason"] and receiver.url in hold["detail"]["reason"]
        await asyncio.sleep(0.5)  # several more claim cycles: still nothing sent
        assert receiver.requests == 2
    finally:
        await receiver.stop()
