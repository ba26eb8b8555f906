"""Independent check: libxmlsec (the python `xmlsec` binding, a test dependency) verifies our signed
Receipt and Error signals; a tampered signal and a signal checked with the wrong certificate fail.

The signed eb:Messaging and S12:Body carry wsu:Id, which xmlsec does not know as an ID attribute;
`xmlsec.tree.add_ids(root, ["Id"])` registers every attribute whose local name is Id (any namespace),
so `URI="#msg-…"` and `URI="#body-…"` resolve. Our KeyInfo is a wsse:SecurityTokenReference to the
BinarySecurityToken, which xmlsec cannot follow: the verification key is given explicitly.

The UserMessage signature is not checked here: its attachment reference (`cid:` URI with the SwA
Attachment-Content-Signature-Transform) is unknown to xmlsec."""

from __future__ import annotations

import pytest
import xmlsec
from lxml import etree

from gateway.as4 import build_error_signal, build_receipt, not_serviced, receive_user_message
from gateway.as4.constants import NSMAP

from .conftest import NOW, build


def xmlsec_verify(xml: bytes, cert_pem: bytes) -> None:
    """Verify the one ds:Signature in the WS-Security header with `cert_pem`.

    Raises xmlsec.VerificationError when a digest or the signature value does not match."""
    root = etree.fromstring(xml)
    signatures = root.findall("S12:Header/wsse:Security/ds:Signature", NSMAP)
    assert len(signatures) == 1, etree.tostring(root)
    xmlsec.tree.add_ids(root, ["Id"])
    ctx = xmlsec.SignatureContext()
    ctx.key = xmlsec.Key.from_memory(cert_pem, xmlsec.constants.KeyDataFormatCertPem)
    ctx.verify(signatures[0])


def signed_references(xml: bytes) -> list[str]:
    return [r.get("URI") for r in etree.fromstring(xml).iterfind(".//ds:SignedInfo/ds:Reference", NSMAP)]


@pytest.fixture(scope="module")
def receipt(pki, sbd) -> bytes:
    out = build(pki, sbd)
    rec = receive_user_message(out.read_bytes(), out.content_type, pki.receiver.key, pki.receiver.cert,
                               pki.trust, NOW)
    return build_receipt(rec.message_id, rec.reference_xml, message_id="r@x", timestamp=NOW,
                         signing_key=pki.receiver.key, signing_cert=pki.receiver.cert)


def test_receipt_verifies_with_xmlsec(pki, receipt):
    refs = signed_references(receipt)
    assert len(refs) == 2 and all(r.startswith("#") for r in refs)  # eb:Messaging and S12:Body
    xmlsec_verify(receipt, pki.receiver.cert_pem())


def test_tampered_receipt_fails_with_xmlsec(pki, receipt):
    tampered = receipt.replace(b"r@x", b"s@x")
    assert tampered != receipt
    with pytest.raises(xmlsec.VerificationError):
        xmlsec_verify(tampered, pki.receiver.cert_pem())


def test_tampered_receipt_body_fails_with_xmlsec(pki, receipt):
    root = etree.fromstring(receipt)
    body = root.find("S12:Body", NSMAP)
    body.append(etree.Element("{urn:x}Extra"))
    with pytest.raises(xmlsec.VerificationError):
        xmlsec_verify(etree.tostring(root), pki.receiver.cert_pem())


def test_receipt_with_wrong_certificate_fails_with_xmlsec(pki, receipt):
    with pytest.raises(xmlsec.VerificationError):
        xmlsec_verify(receipt, pki.sender.cert_pem())


def test_error_signal_verifies_with_xmlsec(pki):
    raw = build_error_signal(not_serviced("no", "m@x"), message_id="e@x", timestamp=NOW,
                             signing_key=pki.receiver.key, signing_cert=pki.receiver.cert)
    xmlsec_verify(raw, pki.receiver.cert_pem())
    with pytest.raises(xmlsec.VerificationError):
        xmlsec_verify(raw.replace(b"e@x", b"f@x"), pki.receiver.cert_pem())
