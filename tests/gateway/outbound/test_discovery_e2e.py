"""Sending with real discovery instead of a static route: a real local DNS server answers the SML
U-NAPTR query, a real local SMP serves signed metadata pointing at a receiving AP built on the
PyPI `as4` library. The DNS/SMP servers and test PKI are the discovery tests' own."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from gateway.discovery.smp import service_metadata_url
from gateway.identifiers import ParticipantId
from gateway.identity import ApIdentity
from gateway.store.participants import add_participant
from tests.gateway.discovery.conftest import (  # noqa: F401  (pki, local_net: fixtures)
    INVOICE,
    ZONE,
    fresh_participant,
    issue,
    local_net,
    pki,
    service_metadata_xml,
    sign,
)

pytest.importorskip("as4")
from tests.gateway.outbound.test_outbound_e2e import invoice, settle, submit  # noqa: E402,F401
from tests.peers.as4lib_receiver import As4LibReceiver  # noqa: E402

SELLER = "0192:123456785"
BUYER = ParticipantId.parse("0192:987654325")


@pytest.fixture(scope="module")
def our_cert(pki):
    """Our AP certificate, issued by the same test AP CA as the receiver's."""
    return issue("PNO000001", pki.ap_ca, ca=False, ou="PEPPOL TEST AP")


@pytest.fixture
async def receiver(pki):
    # the receiver trusts AP certificates issued by the test AP CA (ours among them)
    r = As4LibReceiver("PNO000123", pki.ap.key, pki.ap.cert, pki.ap_ca.cert)
    await r.start()
    yield r
    await r.stop()


@pytest.fixture
async def client(make_client, engine, tenant, settings, local_net, pki, our_cert, tmp_path):
    t, auth = tenant
    add_participant(engine, ParticipantId.parse(SELLER), t.name)
    (tmp_path / "ap-anchors.pem").write_bytes(pki.root.pem + pki.ap_ca.pem)
    (tmp_path / "smp-anchors.pem").write_bytes(pki.root.pem + pki.smp_ca.pem)
    settings.trust.ap_anchors = [str(tmp_path / "ap-anchors.pem")]
    settings.trust.smp_anchors = [str(tmp_path / "smp-anchors.pem")]
    settings.discovery.sml_zone = ZONE
    settings.discovery.nameservers = [local_net.nameserver]
    settings.discovery.allow_http = True
    settings.discovery.dns_timeout = 2.0
    settings.outbound.allow_http = True
    settings.outbound.http_timeout_seconds = 5.0
    settings.routes = {}
    identity = ApIdentity("PNO000001", our_cert.key, our_cert.cert, pki.ap_trust)
    # no discovery injected: the app builds it from [discovery] and [trust], as `sendgw serve` does
    return await make_client(identity=identity, run_workers=True), auth


def form(document: bytes, options: dict) -> aiohttp.FormData:
    data = aiohttp.FormData()
    data.add_field("file", document, filename="invoice.xml", content_type="application/xml")
    data.add_field("options", json.dumps(options), content_type="application/json")
    return data


def publish(local_net, pki, participant: ParticipantId, endpoint_url: str) -> str:
    local_net.dns.register(participant, local_net.smp.base)
    url = service_metadata_url(local_net.smp.base, participant, INVOICE)
    xml = service_metadata_xml(participant, INVOICE, endpoint_url=endpoint_url, cert_der=pki.ap.der)
    local_net.smp.put(url, sign(xml, pki.smp))
    return url


async def test_delivered_to_the_endpoint_found_through_sml_and_smp(client, receiver, local_net, pki, invoice):
    client, auth = client
    metadata_url = publish(local_net, pki, BUYER, receiver.url)
    dns_before = local_net.dns.count(BUYER)
    status, body = await submit(client, auth, invoice)
    assert status == 202, body
    details = await settle(client, auth, body["id"])
    assert details["state"] == "delivered", details
    assert details["endpoint"] == receiver.url
    assert receiver.accepted == {details["as4_message_id"]: 1}
    assert local_net.dns.count(BUYER) > dns_before  # really asked the SML (DNS) ...
    assert local_net.smp.hit_count(metadata_url) >= 1  # ... and the SMP
    assert [a["outcome"] for a in details["attempts"]] == ["delivered"]
    assert {"receipt", "as4-request"} <= {e["kind"] for e in details["evidence"]}
    receipt = await client.get(f"/api/v1/documents/{body['id']}/evidence/receipt", headers=auth)
    assert receipt.status == 200 and b"NonRepudiationInformation" in await receipt.read()
    # the SBDH the receiver got names the discovered receiver
    assert b"987654325" in receiver.payloads[details["as4_message_id"]]


async def test_participant_not_in_dns_is_undeliverable_with_the_reason(client, receiver, local_net, invoice):
    client, auth = client
    nobody = fresh_participant()
    resp = await client.post("/api/v1/documents", headers=auth,
                             data=form(invoice, {"receiver": str(nobody)}))
    assert resp.status == 202, await resp.text()
    doc_id = (await resp.json())["id"]
    details = await settle(client, auth, doc_id)
    assert details["state"] == "undeliverable", details
    assert "sml-not-registered" in details["last_error"]
    assert details["receiver"] == str(nobody)
    assert local_net.dns.count(nobody) >= 1
    assert receiver.requests == 0
    assert [a["outcome"] for a in details["attempts"]] == ["not-serviced"]


async def test_endpoint_certificate_from_an_untrusted_ca_is_not_used(client, receiver, local_net, pki, invoice):
    """An SMP answer naming an AP certificate outside the AP trust set: nothing is sent to it."""
    client, auth = client
    target = fresh_participant()
    local_net.dns.register(target, local_net.smp.base)
    url = service_metadata_url(local_net.smp.base, target, INVOICE)
    xml = service_metadata_xml(target, INVOICE, endpoint_url=receiver.url, cert_der=pki.rogue_ap.der)
    local_net.smp.put(url, sign(xml, pki.smp))
    resp = await client.post("/api/v1/documents", headers=auth,
                             data=form(invoice, {"receiver": str(target)}))
    doc_id = (await resp.json())["id"]
    for _ in range(100):
        details = await (await client.get(f"/api/v1/documents/{doc_id}", headers=auth)).json()
        if details["attempts"]:
            break
        await asyncio.sleep(0.05)
    assert details["attempts"], details
    assert details["state"] == "retrying"  # SMP data can be corrected: retried until the deadline
    assert "endpoint-certificate-untrusted" in details["last_error"], details["last_error"]
    assert receiver.requests == 0
