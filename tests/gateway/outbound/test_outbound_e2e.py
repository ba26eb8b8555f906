"""Sending end to end over real HTTP: submit through the API, the outbox worker delivers to a
receiving access point built on the independent PyPI `as4` library (static route)."""

from __future__ import annotations

import asyncio
import json
import datetime as dt

import pytest

from certs.devpki import make_ap_cert, make_ca
from certs.trust import TrustStore
from gateway.identifiers import ParticipantId
from gateway.identity import ApIdentity
from gateway.store.participants import add_participant

pytest.importorskip("as4")
from tests.peers.as4lib_receiver import As4LibReceiver  # noqa: E402

NOW = dt.datetime.now(dt.timezone.utc)
SELLER = "0192:123456785"
BUYER = "0192:987654325"


@pytest.fixture(scope="module")
def pki():
    ca = make_ca(now=NOW)
    return {"ca": ca, "us": make_ap_cert("PNO000001", ca, now=NOW), "peer": make_ap_cert("POP000077", ca, now=NOW)}


@pytest.fixture(scope="module")
def invoice(shared_dir):
    return (shared_dir / "conformance/ehf-billing-3/examples/Norwegian-example-1.xml").read_bytes()


@pytest.fixture
async def receiver_factory(pki):
    started = []

    async def make(script=None, delay=0.0):
        r = As4LibReceiver("POP000077", pki["peer"].key, pki["peer"].cert, pki["ca"].cert, script, delay)
        await r.start()
        started.append(r)
        return r

    yield make
    for r in started:
        await r.stop()


@pytest.fixture
async def sender(make_client, engine, tenant, pki, settings, tmp_path):
    t, auth = tenant
    add_participant(engine, ParticipantId.parse(SELLER), t.name)
    cert_file = tmp_path / "peer.cert.pem"
    cert_file.write_bytes(pki["peer"].cert_pem())
    settings.outbound.allow_http = True
    settings.discovery.allow_http = True
    settings.outbound.first_retry_seconds = 0.05
    settings.outbound.max_retry_seconds = 0.1
    settings.outbound.http_timeout_seconds = 1.0
    identity = ApIdentity("PNO000001", pki["us"].key, pki["us"].cert, TrustStore.from_pem(pki["ca"].cert_pem()))

    async def start(receiver):
        settings.routes = {BUYER: {"url": receiver.url, "certificate": str(cert_file)}}
        return await make_client(identity=identity, run_workers=True)

    return start, auth


async def submit(client, auth, body, **headers):
    resp = await client.post("/api/v1/documents", data=body, headers={**auth, **headers})
    return resp.status, await resp.json()


async def settle(client, auth, doc_id, states=("delivered", "failed", "undeliverable"), timeout=20.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        details = await (await client.get(f"/api/v1/documents/{doc_id}", headers=auth)).json()
        if details["state"] in states:
            return details
        await asyncio.sleep(0.05)
    raise AssertionError(f"document still {details['state']}: {details}")


async def test_submit_and_deliver(sender, receiver_factory, invoice):
    start, auth = sender
    receiver = await receiver_factory()
    client = await start(receiver)
    status, body = await submit(client, auth, invoice)
    assert status == 202, body
    assert body["state"] == "queued" and body["links"]["self"] == f"/api/v1/documents/{body['id']}"
    details = await settle(client, auth, body["id"])
    assert details["state"] == "delivered", details
    assert receiver.accepted == {details["as4_message_id"]: 1}
    sbd = receiver.payloads[details["as4_message_id"]]
    assert b"StandardBusinessDocumentHeader" in sbd and b"<cbc:ID>" in sbd
    assert details["receiver"] == f"iso6523-actorid-upis::{BUYER}"
    assert details["endpoint"] == receiver.url
    assert [a["outcome"] for a in details["attempts"]] == ["delivered"]
    kinds = {e["kind"] for e in details["evidence"]}
    assert {"receipt", "as4-request", "validation-report"} <= kinds
    receipt = await client.get(f"/api/v1/documents/{body['id']}/evidence/receipt", headers=auth)
    assert receipt.status == 200 and b"NonRepudiationInformation" in await receipt.read()
    listing = await (await client.get("/api/v1/documents?state=delivered", headers=auth)).json()
    assert [d["id"] for d in listing["items"]] == [body["id"]]


async def test_transient_failures_are_retried_with_the_same_message(sender, receiver_factory, invoice):
    start, auth = sender
    receiver = await receiver_factory(script=["503", "drop", "timeout"])
    client = await start(receiver)
    _, body = await submit(client, auth, invoice)
    details = await settle(client, auth, body["id"])
    assert details["state"] == "delivered", details
    assert [a["outcome"] for a in details["attempts"]] == ["transient", "transient", "transient", "delivered"]
    assert all(a["started_at"] for a in details["attempts"])
    assert set(receiver.message_ids) == {details["as4_message_id"]}
    assert len(set(receiver.body_hashes)) == 1  # identical bytes on every retry
    assert receiver.accepted[details["as4_message_id"]] == 1


@pytest.mark.parametrize("script, state, fragment, evidence", [
    (["error"], "failed", "EBMS:0101", "error-signal"),
    (["forged-error"], "failed", "EBMS:0101: signature rejected by the receiver (unsigned error signal)", "error-signal"),
    (["not-serviced"], "undeliverable", "NOT_SERVICED", "error-signal"),
    (["bad-receipt"], "failed", "invalid receipt", None),
])
async def test_receiver_answers_that_end_the_attempts(sender, receiver_factory, invoice, script, state, fragment,
                                                      evidence):
    start, auth = sender
    receiver = await receiver_factory(script=script)
    client = await start(receiver)
    _, body = await submit(client, auth, invoice)
    details = await settle(client, auth, body["id"])
    assert details["state"] == state, details
    assert fragment in details["last_error"]
    assert len(details["attempts"]) == 1 and receiver.requests == 1
    if evidence:
        assert evidence in {e["kind"] for e in details["evidence"]}
    assert "receipt" not in {e["kind"] for e in details["evidence"]}


async def test_submission_rules(sender, receiver_factory, invoice, engine):
    start, auth = sender
    client = await start(await receiver_factory())
    s1, b1 = await submit(client, auth, invoice, **{"Idempotency-Key": "k1"})
    s2, b2 = await submit(client, auth, invoice, **{"Idempotency-Key": "k1"})
    assert s1 == s2 == 202 and b1["id"] == b2["id"]
    s3, b3 = await submit(client, auth, invoice.replace(b"</Invoice>", b"<!-- x --></Invoice>"),
                          **{"Idempotency-Key": "k1"})
    assert s3 == 409 and b3["error"]["code"] == "idempotency-conflict"
    s4, b4 = await submit(client, auth, invoice.replace(b"<cbc:IssueDate>", b"<cbc:IssueDate>x", 1))
    assert s4 == 422 and b4["error"]["code"] == "invalid-document" and b4["error"]["details"]["valid"] is False
    foreign = invoice.replace(b'schemeID="0192">123456785<', b'schemeID="0192">974760673<', 1)
    s5, b5 = await submit(client, auth, foreign)
    assert s5 == 403 and b5["error"]["code"] == "sender-not-yours"
    s6, b6 = await submit(client, auth, b"not xml")
    assert s6 == 400 and b6["error"]["code"] == "not-xml"


async def test_other_tenants_see_nothing(sender, receiver_factory, invoice, engine):
    from gateway.store.tenants import create_tenant

    start, auth = sender
    client = await start(await receiver_factory())
    _, body = await submit(client, auth, invoice)
    _, other = create_tenant(engine, "Other AS")
    resp = await client.get(f"/api/v1/documents/{body['id']}", headers={"Authorization": f"Bearer {other}"})
    assert resp.status == 404
    resp = await client.get(f"/api/v1/documents/{body['id']}/evidence/receipt",
                            headers={"Authorization": f"Bearer {other}"})
    assert resp.status == 404


async def test_status_changes_are_pushed_to_the_webhook(sender, receiver_factory, invoice, engine, settings, tenant):
    """The tenant's webhook gets a signed `document.status` notification when the document is delivered."""
    from aiohttp import web

    from gateway.webhooks import SIGNATURE_HEADER, set_webhook, verify_signature
    from tests.waiting import until

    start, auth = sender
    calls = []

    async def hook(request):
        calls.append((dict(request.headers), await request.read()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        secret = set_webhook(engine, tenant[0].id, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/hook")
        settings.webhooks.allow_private = True
        client = await start(await receiver_factory())
        _, body = await submit(client, auth, invoice)

        async def delivered_note():
            for headers, raw in calls:
                note = json.loads(raw)
                if note["event"] == "document.status" and note["data"]["state"] == "delivered":
                    return headers, raw, note
            return None

        headers, raw, note = await until(delivered_note)
        assert verify_signature(secret, raw, headers[SIGNATURE_HEADER])
        assert note["data"]["id"] == body["id"]
    finally:
        await runner.cleanup()
