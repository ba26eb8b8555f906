"""Outbox worker edge cases from an independent review of issue 6."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

pytest.importorskip("as4")
from tests.gateway.outbound.test_outbound_e2e import (  # noqa: E402,F401  (fixtures)
    BUYER,
    invoice,
    pki,
    receiver_factory,
    sender,
    settle,
    submit,
)


def _ec_certificate_pem() -> bytes:
    """A certificate the AS4 core cannot encrypt to (Peppol AP keys are RSA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "PNO000321")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


async def test_an_unexpected_error_is_an_attempt_and_the_deadline_still_ends_it(sender, make_client, receiver_factory,
                                                                               invoice, settings, pki, tmp_path):
    """Building the message fails for this receiver (here: an EC certificate). The document must not sit
    in `sending` until its lease expires, again and again, past the deadline: the failure is recorded as
    an attempt with its reason and the usual retry/deadline rules apply."""
    from certs.trust import TrustStore
    from gateway.identity import ApIdentity

    _, auth = sender  # tenant, participant and outbound settings
    receiver = await receiver_factory()
    ec_file = tmp_path / "ec.cert.pem"
    ec_file.write_bytes(_ec_certificate_pem())
    settings.routes = {BUYER: {"url": receiver.url, "certificate": str(ec_file)}}
    settings.outbound.deadline_hours = 0.5 / 3600  # half a second: the first retry would be too late
    identity = ApIdentity("PNO000001", pki["us"].key, pki["us"].cert, TrustStore.from_pem(pki["ca"].cert_pem()))
    client = await make_client(identity=identity, run_workers=True)
    status, body = await submit(client, auth, invoice)
    assert status == 202, body
    details = await settle(client, auth, body["id"], timeout=10.0)
    assert details["state"] == "failed", details
    log = details["attempts"]
    assert log and {a["outcome"] for a in log} == {"transient"}
    assert all("no RSA key" in a["error"] and a["finished_at"] for a in log)
    assert "deadline" in details["last_error"] and "internal error" in details["last_error"]
    assert receiver.requests == 0


WILDCARD_INVOICE = ("peppol-doctype-wildcard::urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##"
                    "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1")


@pytest.mark.parametrize("options", [
    {"document_type": WILDCARD_INVOICE},
    {"process": "busdox-procid-transport::busdox:noprocess"},
])
async def test_sbdh_names_the_same_identifier_schemes_as_the_as4_header(sender, receiver_factory, invoice, options):
    """A receiver cross-checks SBDH DOCUMENTID/PROCESSID (scheme and value) against eb:Action and
    eb:Service/@type (ours does: gateway/as4/usermessage.py _cross_check). A document type or process
    override in another scheme must reach the SBDH with that scheme."""
    import json as _json

    from aiohttp import FormData

    from gateway.sbdh import parse_sbdh

    start, auth = sender
    receiver = await receiver_factory()
    client = await start(receiver)
    form = FormData()
    form.add_field("file", invoice, filename="invoice.xml", content_type="application/xml")
    form.add_field("options", _json.dumps(options), content_type="application/json")
    resp = await client.post("/api/v1/documents", data=form, headers=auth)
    assert resp.status == 202, await resp.text()
    details = await settle(client, auth, (await resp.json())["id"])
    assert details["state"] == "delivered", details
    sb = parse_sbdh(receiver.payloads[details["as4_message_id"]])
    assert sb.action == details["document_type"]
    assert f"{sb.process_scheme}::{sb.process_id}" == details["process"]


def _encoded(invoice: bytes, kind: str) -> bytes:
    text = invoice.decode("utf-8").replace("<cbc:Name>John Doe</cbc:Name>", "<cbc:Name>Bjørn Ødegård</cbc:Name>", 1)
    assert "Bjørn" in text
    if kind == "bom":
        return b"\xef\xbb\xbf" + text.encode("utf-8")
    if kind == "latin-1":
        return text.replace('encoding="UTF-8"', 'encoding="ISO-8859-1"', 1).encode("iso-8859-1")
    if kind == "utf-16":
        return text.replace('encoding="UTF-8"', 'encoding="UTF-16"', 1).encode("utf-16")
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["bom", "latin-1", "utf-16"])
async def test_documents_in_other_encodings_are_sent_as_utf8(sender, receiver_factory, invoice, kind):
    """The validator accepts a BOM and any declared encoding; the SBD (and so the Peppol payload) is
    UTF-8. Such a document must be delivered with its text intact, not fail on every attempt (BOM,
    UTF-16) or be sent as invalid UTF-8 (Latin-1)."""
    from lxml import etree

    start, auth = sender
    receiver = await receiver_factory()
    client = await start(receiver)
    status, body = await submit(client, auth, _encoded(invoice, kind))
    assert status == 202, body
    details = await settle(client, auth, body["id"])
    assert details["state"] == "delivered", details
    sbd = receiver.payloads[details["as4_message_id"]]
    sbd.decode("utf-8")  # strictly UTF-8
    root = etree.fromstring(sbd)
    names = root.xpath("//*[local-name()='Name']/text()")
    assert "Bjørn Ødegård" in names
