"""Receiving end to end over real HTTP: messages built by the independent PyPI `as4` library are
POSTed to the gateway; receipts are verified by `as4`; documents reach the inbox and the webhook."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid

import pytest
from aiohttp import web
from lxml import etree
from sqlalchemy import func, select

from certs.devpki import make_ap_cert, make_ca
from certs.trust import TrustStore
from gateway.as4 import parse_signal
from gateway.identity import ApIdentity
from gateway.store.participants import add_participant
from gateway.identifiers import ParticipantId
from gateway.store.schema import events, evidence, messages
from gateway.webhooks import SIGNATURE_HEADER, set_webhook, verify_signature

as4 = pytest.importorskip("as4")
from as4 import AS4LocalPrivateKey  # noqa: E402
from as4.peppol import (  # noqa: E402
    BusdoxDocidQnsDocumentIdentifier,
    PeppolAS4MessageBuilderArgs,
    PeppolSendingExchange,
    create_peppol_external_party,
    create_peppol_internal_party,
)
from as4.profiles.peppol.profile import PeppolAS4Profile  # noqa: E402

NOW = dt.datetime.now(dt.timezone.utc)
DOC = ("urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##urn:cen.eu:en16931:2017#compliant"
       "#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1")
PROC = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
SENDER = "0192:810305062"
HOSTED = "0192:923609016"


@pytest.fixture(scope="module")
def pki():
    ca = make_ca(now=NOW)
    return {"ca": ca, "us": make_ap_cert("PNO000001", ca, now=NOW), "peer": make_ap_cert("POP000099", ca, now=NOW),
            "trust": TrustStore.from_pem(ca.cert_pem())}


@pytest.fixture(scope="module")
def invoice(shared_dir):
    """An official Norwegian example invoice, re-addressed to our hosted participant."""
    data = (shared_dir / "conformance/peppol-bis-billing-3/3.0.21/examples/base-example.xml").read_bytes()
    return data


def c14n(xml: bytes) -> bytes:
    return etree.tostring(etree.fromstring(xml), method="c14n")


def peer_exchange(pki):
    peer, us = pki["peer"], pki["us"]
    local = create_peppol_internal_party("POP000099", peer.cert, AS4LocalPrivateKey(peer.key))
    remote = create_peppol_external_party("PNO000001", us.cert)
    return PeppolSendingExchange(profile=PeppolAS4Profile, local_party=local, remote_party=remote)


def build(pki, document: bytes, recipient: str = HOSTED, instance: str | None = None):
    ex = peer_exchange(pki)
    args = PeppolAS4MessageBuilderArgs(
        sender=SENDER, recipient=recipient,
        document_type_identifier=BusdoxDocidQnsDocumentIdentifier.from_identifier_value(DOC),
        document_identification_instance_identifier=instance or str(uuid.uuid4()),
        process_identifier=PROC, c1_country_id="NO")
    headers, body = ex.build(document, args)
    return ex, headers["Content-Type"], body


@pytest.fixture
async def gateway(make_client, engine, tenant, pki, settings):
    t, auth = tenant
    add_participant(engine, ParticipantId.parse(HOSTED), t.name)
    settings.webhooks.allow_private = True
    settings.webhooks.first_retry_seconds = 0.05
    identity = ApIdentity("PNO000001", pki["us"].key, pki["us"].cert, pki["trust"])
    client = await make_client(identity=identity, run_workers=True)
    return client, t, auth


def count(engine, table):
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


async def wait_for(predicate, timeout=15.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        result = await predicate()
        if result:
            return result
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


async def test_received_document_reaches_inbox_and_webhook(gateway, engine, pki, invoice):
    client, t, auth = gateway
    hook_calls = []

    async def hook(request):
        hook_calls.append((dict(request.headers), await request.read()))
        return web.Response(status=200)

    hook_app = web.Application()
    hook_app.router.add_post("/hook", hook)
    runner = web.AppRunner(hook_app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    secret = set_webhook(engine, t.id, f"http://127.0.0.1:{port}/hook")
    try:
        ex, content_type, body = build(pki, invoice)
        resp = await client.post("/as4", data=body, headers={"Content-Type": content_type})
        assert resp.status == 200
        receipt = await resp.read()
        ex.receive_signal(receipt)  # the independent peer verifies our receipt
        assert ex.state == "acknowledged"

        inbox = await (await client.get("/api/v1/inbox", headers=auth)).json()
        assert len(inbox["items"]) == 1 and inbox["next"] is None
        item = inbox["items"][0]
        assert item["as4_message_id"] == ex.message_id
        assert item["receiver"] == f"iso6523-actorid-upis::{HOSTED}"
        assert item["sender"] == f"iso6523-actorid-upis::{SENDER}"
        assert item["document_type"] == f"busdox-docid-qns::{DOC}"
        doc = await client.get(f"/api/v1/inbox/{item['id']}/document", headers=auth)
        # `as4` re-serialises the invoice into its SBD (start-tag whitespace changes), so compare
        # canonical forms: inclusive C14N also catches any namespace declaration we added.
        received = await doc.read()
        assert c14n(received) == c14n(invoice)

        await wait_for(lambda: _has_calls(hook_calls))
        headers, raw = hook_calls[0]
        assert verify_signature(secret, raw, headers[SIGNATURE_HEADER])
        note = json.loads(raw)
        assert note["event"] == "inbox.received"
        assert note["data"]["id"] == item["id"] and note["data"]["valid"] is True

        details = await (await client.get(f"/api/v1/inbox/{item['id']}", headers=auth)).json()
        assert details["validation"]["valid"] is True
        assert [e["kind"] for e in details["events"]][:2] == ["received", "validated"]

        ack = await client.post(f"/api/v1/inbox/{item['id']}/ack", headers=auth)
        assert (await ack.json())["state"] == "acknowledged"
    finally:
        await runner.cleanup()


async def _has_calls(calls):
    return bool(calls)


async def test_duplicates_get_the_same_receipt_and_one_document(gateway, engine, pki, invoice):
    client, _, auth = gateway
    ex, content_type, body = build(pki, invoice)
    first = await client.post("/as4", data=body, headers={"Content-Type": content_type})
    again = await client.post("/as4", data=body, headers={"Content-Type": content_type})
    concurrent = await asyncio.gather(*(client.post("/as4", data=body, headers={"Content-Type": content_type})
                                        for _ in range(4)))
    receipts = {await r.read() for r in [first, again, *concurrent]}
    assert {r.status for r in [first, again, *concurrent]} == {200}
    assert len(receipts) == 1
    assert count(engine, messages) == 1


async def test_same_instance_identifier_flagged_as_duplicate_business_document(gateway, pki, invoice):
    client, _, auth = gateway
    for _ in range(2):
        _, ct, body = build(pki, invoice, instance="11111111-2222-4333-8444-555555555555")
        assert (await client.post("/as4", data=body, headers={"Content-Type": ct})).status == 200
    items = (await (await client.get("/api/v1/inbox", headers=auth)).json())["items"]
    assert len(items) == 2
    newest = await (await client.get(f"/api/v1/inbox/{items[0]['id']}", headers=auth)).json()
    assert newest["duplicate_of"] == items[1]["id"]


async def test_unknown_recipient_is_not_serviced(gateway, engine, pki, invoice):
    client, _, _ = gateway
    ex, ct, body = build(pki, invoice, recipient="0192:974760673")
    resp = await client.post("/as4", data=body, headers={"Content-Type": ct})
    assert resp.status == 200
    signal = parse_signal(await resp.read(), check_certificate=lambda cert: None)
    assert signal.errors[0].code == "EBMS:0004"
    assert signal.errors[0].is_not_serviced
    assert signal.ref_to_message_id == ex.message_id
    assert count(engine, messages) == 0 and count(engine, evidence) == 0
    assert count(engine, events) == 1


async def test_tampered_message_gets_a_signed_error_and_nothing_is_stored(gateway, engine, pki, invoice):
    client, _, _ = gateway
    _, ct, body = build(pki, invoice)
    tampered = body.replace(PROC.encode() + b"</", b"urn:fdc:peppol.eu:2017:poacc:billing:02:1.0</", 1)
    assert tampered != body
    resp = await client.post("/as4", data=tampered, headers={"Content-Type": ct})
    assert resp.status == 500
    signal = parse_signal(await resp.read(), check_certificate=lambda cert: None)
    assert signal.signature_verified
    assert signal.errors[0].code == "EBMS:0101"
    assert count(engine, messages) == 0 and count(engine, evidence) == 0
    assert count(engine, events) == 1


async def test_as4_endpoint_without_identity_is_unavailable(make_client):
    client = await make_client(identity=None)
    client.app  # the settings carry no [ap] section in this test
    resp = await client.post("/as4", data=b"x", headers={"Content-Type": "application/soap+xml"})
    assert resp.status == 503


async def test_invalid_document_is_received_and_flagged(gateway, pki, invoice):
    """The receipt is about transport: an invalid invoice is still received, stored and flagged."""
    client, _, auth = gateway
    broken = invoice.replace(b"<cbc:IssueDate>", b"<cbc:IssueDate>not-a-", 1)
    ex, ct, body = build(pki, broken)
    resp = await client.post("/as4", data=body, headers={"Content-Type": ct})
    assert resp.status == 200
    ex.receive_signal(await resp.read())
    assert ex.state == "acknowledged"

    async def validated():
        items = (await (await client.get("/api/v1/inbox", headers=auth)).json())["items"]
        return items if items and items[0]["valid"] is not None else None

    items = await wait_for(validated)
    assert items[0]["valid"] is False
    details = await (await client.get(f"/api/v1/inbox/{items[0]['id']}", headers=auth)).json()
    assert details["validation"]["valid"] is False
    assert any(e["rule"] == "XSD" for e in details["validation"]["errors"])


async def test_a_document_that_keeps_failing_the_engine_is_flagged(engine, settings, tenant, tmp_path):
    """A received document whose validation keeps crashing the worker is retried, then flagged invalid."""
    from gateway.inbound.processor import MAX_ENGINE_FAILURES, InboundProcessor
    from gateway.store.inbox import InboundDocument, record_inbound
    from gateway.store.payloads import PayloadStore
    from sqlalchemy import update as sql_update
    from validation.errors import WorkerCrashedError

    class Crashing:
        calls = 0

        async def validate(self, data, rules=None, fmt="json", at=None):
            Crashing.calls += 1
            raise WorkerCrashedError("the validation worker process died")

    t, _ = tenant
    store = PayloadStore("file", tmp_path / "p")
    rec = record_inbound(engine, store, InboundDocument(
        tenant_id=t.id, as4_message_id="m-1@peer", conversation_id="c", instance_id=None, sender="s", receiver="r",
        document_type="d", process="p", sbd=b"<sbd/>", document=b"<Invoice/>", raw_message=b"raw",
        raw_content_type="multipart/related", receipt=b"<receipt/>"))
    processor = InboundProcessor(engine, store, Crashing())
    for _ in range(MAX_ENGINE_FAILURES):
        await processor.run_once()
        with engine.begin() as conn:  # let the lease expire at once
            conn.execute(sql_update(messages).values(lease_expires_at=None))
    assert Crashing.calls == MAX_ENGINE_FAILURES
    with engine.connect() as conn:
        assert conn.execute(select(messages.c.valid).where(messages.c.id == rec.message_id)).scalar() is False
