"""POST /as4 from a sender whose AP certificate names a local CRL/OCSP server: a revoked sender
gets a signed EBMS:0101 and nothing is stored or acknowledged; a good one is received."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import time
import uuid
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from certs.devpki import make_ap_cert, make_ca
from certs.trust import TrustStore
from gateway.as4 import build_user_message, parse_signal
from gateway.as4.constants import TEST_ACTION, TEST_SERVICE
from gateway.identifiers import ParticipantId
from gateway.identity import ApIdentity
from gateway.store.participants import add_participant
from gateway.store.schema import events, evidence, messages
from tests.certs.revocation_pki import issue_leaf, make_crl, server  # server: fixture
from tests.gateway.as4.conftest import ACTION, C1, C4, NOW, PROC, make_sbd

from .test_inbound_hostile import check_certificate_of, count


@pytest.fixture(scope="module")
def ca():
    return make_ca("SEND INBOUND REVOCATION CA", now=NOW)


@pytest.fixture(scope="module")
def receiver(ca):
    return make_ap_cert("PNO000002", ca, now=NOW)


@pytest.fixture
def pki(ca, receiver):
    return SimpleNamespace(ca=ca, receiver=receiver, trust=TrustStore.from_pem(ca.cert_pem()))


async def gateway(make_client, engine, tenant, pki, settings, **revocation):
    t, _ = tenant
    add_participant(engine, ParticipantId.parse(C4), t.name)
    for key, value in revocation.items():
        setattr(settings.revocation, key, value)
    identity = ApIdentity("PNO000002", pki.receiver.key, pki.receiver.cert, pki.trust)
    return await make_client(identity=identity)


def build(pki, sender, **overrides):
    args = dict(message_id=f"{uuid.uuid4()}@sender.test", timestamp=NOW, from_party="PNO000001",
                to_party="PNO000002", service=PROC, action=ACTION, original_sender=C1, final_recipient=C4,
                signing_key=sender.key, signing_cert=sender.cert, receiver_cert=pki.receiver.cert)
    args.update(overrides)
    return build_user_message(make_sbd(), **args)


def sender_with_crl(pki, url):
    return issue_leaf("PNO000001", pki.ca, now=NOW, crl=[url])


async def post(client, out):
    resp = await client.post("/as4", data=out.read_bytes(), headers={"Content-Type": out.content_type})
    return resp, await resp.read()


def rejection_events(engine):
    with engine.connect() as conn:
        return [r.detail for r in conn.execute(select(events).where(events.c.kind == "inbound-rejected"))]


async def assert_failed_authentication(client, engine, pki, out, check):
    resp, raw = await post(client, out)
    assert resp.status == 500, raw[:300]
    signal = parse_signal(raw, check_certificate=check_certificate_of(pki))
    assert signal.signature_verified and not signal.is_receipt
    assert [e.code for e in signal.errors] == ["EBMS:0101"]
    assert signal.ref_to_message_id == out.message_id
    assert count(engine, messages) == 0 and count(engine, evidence) == 0
    [detail] = rejection_events(engine)
    assert detail["code"] == "EBMS:0101" and detail["check"] == check
    assert detail["as4_message_id"] == out.message_id


async def test_revoked_sender_is_refused_and_nothing_stored(make_client, engine, tenant, pki, settings, server):
    sender = sender_with_crl(pki, server.url("crl", "ca"))
    server.crls["ca"] = make_crl(pki.ca, {sender.cert.serial_number: NOW - dt.timedelta(days=1)}, now=NOW)
    client = await gateway(make_client, engine, tenant, pki, settings)  # soft fail: revoked is still refused
    await assert_failed_authentication(client, engine, pki, build(pki, sender), "certificate-revoked")
    assert server.count("crl", "ca") == 1


async def test_revoked_sender_gets_no_receipt_for_a_test_message(make_client, engine, tenant, pki, settings, server):
    sender = sender_with_crl(pki, server.url("crl", "ca"))
    server.crls["ca"] = make_crl(pki.ca, {sender.cert.serial_number: NOW - dt.timedelta(days=1)}, now=NOW)
    client = await gateway(make_client, engine, tenant, pki, settings)
    out = build(pki, sender, service=TEST_SERVICE, action=TEST_ACTION)
    await assert_failed_authentication(client, engine, pki, out, "certificate-revoked")


async def test_good_sender_is_received_and_the_crl_fetched_once(make_client, engine, tenant, pki, settings, server):
    sender = sender_with_crl(pki, server.url("crl", "ca"))
    server.crls["ca"] = make_crl(pki.ca, now=NOW)
    client = await gateway(make_client, engine, tenant, pki, settings, soft_fail=False)
    for _ in range(2):
        resp, raw = await post(client, build(pki, sender))
        assert resp.status == 200
        assert parse_signal(raw, check_certificate=check_certificate_of(pki)).is_receipt
    assert count(engine, messages) == 2 and server.count("crl", "ca") == 1


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/ca.crl"


async def test_unreachable_crl_soft_fail_receives(make_client, engine, tenant, pki, settings):
    client = await gateway(make_client, engine, tenant, pki, settings)
    resp, _ = await post(client, build(pki, sender_with_crl(pki, _dead_url())))
    assert resp.status == 200 and count(engine, messages) == 1


async def test_unreachable_crl_hard_fail_refuses(make_client, engine, tenant, pki, settings):
    client = await gateway(make_client, engine, tenant, pki, settings, soft_fail=False)
    await assert_failed_authentication(client, engine, pki, build(pki, sender_with_crl(pki, _dead_url())),
                                       "certificate-revocation-unknown")


async def test_the_event_loop_serves_others_while_a_crl_is_fetched(make_client, engine, tenant, pki, settings,
                                                                   server):
    sender = sender_with_crl(pki, server.url("crl", "ca"))
    server.crls["ca"] = make_crl(pki.ca, now=NOW)
    server.delay = 1.0
    client = await gateway(make_client, engine, tenant, pki, settings, soft_fail=False)
    sending = asyncio.create_task(post(client, build(pki, sender)))
    for _ in range(500):
        if server.count("crl", "ca"):
            break
        await asyncio.sleep(0.01)
    assert server.count("crl", "ca") == 1, "the CRL was never asked for"
    started = time.monotonic()
    health = await client.get("/health")
    assert health.status == 200 and time.monotonic() - started < 0.5
    assert not sending.done()
    resp, _ = await sending
    assert resp.status == 200
