"""Our signed Receipt / Error signals and verification of receipts on the sending side."""

from __future__ import annotations

import pytest
from lxml import etree

from certs.devpki import make_ap_cert
from gateway.as4 import (
    EbmsError, build_error_signal, build_receipt, not_serviced, parse_signal, receive_user_message, verify_receipt,
)
from gateway.as4.constants import NSMAP
from gateway.as4.signals import certificate_checker

from .conftest import NOW, build


@pytest.fixture()
def exchange(pki, sbd):
    out = build(pki, sbd)
    rec = receive_user_message(out.read_bytes(), out.content_type, our_key=pki.receiver.key,
                               our_cert=pki.receiver.cert, trust=pki.trust, now=NOW)
    receipt = build_receipt(rec.message_id, rec.reference_xml, message_id="rcpt-1@sendgw.test", timestamp=NOW,
                            signing_key=pki.receiver.key, signing_cert=pki.receiver.cert)
    return out, rec, receipt


def test_receipt_shape(exchange):
    out, rec, receipt = exchange
    root = etree.fromstring(receipt)
    sm = root.find("S12:Header/eb:Messaging/eb:SignalMessage", NSMAP)
    assert sm.findtext("eb:MessageInfo/eb:RefToMessageId", namespaces=NSMAP) == out.message_id
    assert sm.findtext("eb:MessageInfo/eb:Timestamp", namespaces=NSMAP).endswith("Z")
    parts = sm.findall("eb:Receipt/ebbp:NonRepudiationInformation/ebbp:MessagePartNRInformation", NSMAP)
    assert len(parts) == 3
    assert [p.find("ds:Reference", NSMAP).get("URI") for p in parts] == [r.uri for r in out.signed_references]
    assert root.find("S12:Header/wsse:Security/ds:Signature", NSMAP) is not None


def test_receipt_verifies(exchange, pki):
    out, _, receipt = exchange
    sig = verify_receipt(receipt, pki.receiver.cert, out.message_id, out.signed_references,
                         trust=pki.trust, now=NOW)
    assert sig.is_receipt and sig.signer_certificate == pki.receiver.cert
    assert [r.digest_value for r in sig.receipt_references] == [r.digest_value for r in out.signed_references]


def test_receipt_from_wrong_ap(exchange, pki):
    out, rec, _ = exchange
    other = make_ap_cert("PNO000003", pki.ca, now=NOW)
    forged = build_receipt(rec.message_id, rec.reference_xml, message_id="r@x", timestamp=NOW,
                           signing_key=other.key, signing_cert=other.cert)
    with pytest.raises(EbmsError) as e:
        verify_receipt(forged, pki.receiver.cert, out.message_id, out.signed_references)
    assert (e.value.code, e.value.check) == ("EBMS:0302", "unexpected-signer")


def test_receipt_tampered(exchange, pki):
    out, _, receipt = exchange
    tampered = receipt.replace(out.message_id.encode(), b"other@x", 1)
    with pytest.raises(EbmsError) as e:
        verify_receipt(tampered, pki.receiver.cert, None, None)
    assert (e.value.code, e.value.check) == ("EBMS:0302", "digest-mismatch")


def test_receipt_with_wrong_digest(exchange, pki):
    out, rec, _ = exchange
    refs = [x.replace(b"DigestValue>", b"DigestValue>AAAA", 1) if b"cid:" in x else x for x in rec.reference_xml]
    bad = build_receipt(rec.message_id, refs, message_id="r@x", timestamp=NOW,
                        signing_key=pki.receiver.key, signing_cert=pki.receiver.cert)
    with pytest.raises(EbmsError) as e:
        verify_receipt(bad, pki.receiver.cert, out.message_id, out.signed_references)
    assert (e.value.code, e.value.check) == ("EBMS:0302", "nri-mismatch")


def test_receipt_missing_a_part(exchange, pki):
    out, rec, _ = exchange
    bad = build_receipt(rec.message_id, rec.reference_xml[:2], message_id="r@x", timestamp=NOW,
                        signing_key=pki.receiver.key, signing_cert=pki.receiver.cert)
    with pytest.raises(EbmsError) as e:
        verify_receipt(bad, pki.receiver.cert, out.message_id, out.signed_references)
    assert e.value.check == "nri-mismatch"


def test_unsigned_receipt(exchange, pki):
    out, _, receipt = exchange
    root = etree.fromstring(receipt)
    sec = root.find("S12:Header/wsse:Security", NSMAP)
    sec.getparent().remove(sec)
    with pytest.raises(EbmsError) as e:
        verify_receipt(etree.tostring(root), pki.receiver.cert, out.message_id, out.signed_references)
    assert (e.value.code, e.value.check) == ("EBMS:0302", "unsigned")


def test_not_serviced_error_signal(pki):
    err = not_serviced("0192:987654325 is not served here", "msg-9@x")
    raw = build_error_signal(err, message_id="err-1@sendgw.test", timestamp=NOW,
                             signing_key=pki.receiver.key, signing_cert=pki.receiver.cert)
    root = etree.fromstring(raw)
    e = root.find(".//eb:Error", NSMAP)
    assert dict(e.attrib) == {"errorCode": "EBMS:0004", "severity": "failure", "category": "Content",
                              "origin": "ebMS", "shortDescription": "Other", "refToMessageInError": "msg-9@x"}
    assert e.findtext("eb:ErrorDetail", namespaces=NSMAP) == "PEPPOL:NOT_SERVICED"
    assert root.findtext(".//eb:RefToMessageId", namespaces=NSMAP) == "msg-9@x"
    sig = parse_signal(raw, check_certificate=certificate_checker(pki.receiver.cert))
    assert sig.signature_verified and sig.errors[0].is_not_serviced
    with pytest.raises(EbmsError) as exc:
        verify_receipt(raw, pki.receiver.cert, "msg-9@x", [])
    assert exc.value.peer and exc.value.is_not_serviced and exc.value.code == "EBMS:0004"


def test_error_signal_for_a_receive_failure(pki, sbd):
    out = build(pki, sbd, from_party="PNO000009")
    with pytest.raises(EbmsError) as e:
        receive_user_message(out.read_bytes(), out.content_type, our_key=pki.receiver.key,
                             our_cert=pki.receiver.cert, trust=pki.trust, now=NOW)
    raw = build_error_signal(e.value, message_id="err-2@x", timestamp=NOW, signing_key=pki.receiver.key,
                             signing_cert=pki.receiver.cert)
    sig = parse_signal(raw, check_certificate=certificate_checker(pki.receiver.cert))
    assert sig.ref_to_message_id == out.message_id
    assert (sig.errors[0].code, sig.errors[0].short_description) == ("EBMS:0101", "FailedAuthentication")


def test_peer_errors_with_unknown_codes(pki):
    raw = build_error_signal(EbmsError("EBMS:0004", "dup"), message_id="e@x", timestamp=NOW,
                             signing_key=pki.receiver.key, signing_cert=pki.receiver.cert)
    raw = raw.replace(b'errorCode="EBMS:0004"', b'errorCode="EBMS:4001"')
    sig = parse_signal(raw, check_certificate=None)
    assert sig.errors[0].code == "EBMS:4001" and not sig.signature_verified


def test_signal_must_be_soap12_and_wellformed():
    with pytest.raises(EbmsError) as e:
        parse_signal(b"<x/>", check_certificate=None)
    assert e.value.check == "soap-version"
    with pytest.raises(EbmsError) as e:
        parse_signal(b"<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>", check_certificate=None)
    assert e.value.check == "signal-xml"


def test_unsigned_peer_error_is_reported_unauthenticated(pki):
    raw = build_error_signal(not_serviced("no", "m@x"), message_id="e@x", timestamp=NOW,
                             signing_key=pki.receiver.key, signing_cert=pki.receiver.cert)
    root = etree.fromstring(raw)
    sec = root.find("S12:Header/wsse:Security", NSMAP)
    sec.getparent().remove(sec)
    with pytest.raises(EbmsError) as e:
        verify_receipt(etree.tostring(root), pki.receiver.cert, "m@x", [])
    assert e.value.peer and e.value.is_not_serviced and e.value.authenticated is False
    with pytest.raises(EbmsError) as e:
        verify_receipt(raw, pki.receiver.cert, "m@x", [])
    assert e.value.authenticated is True


def test_positional_api_and_outbound_object(pki, sbd):
    out = build(pki, sbd)
    assert out.headers["Content-Type"].startswith("multipart/related") and out.body.in_memory
    rec = receive_user_message(bytes(out.body), out.content_type, pki.receiver.key, pki.receiver.cert, pki.trust, NOW)
    receipt = build_receipt(rec.message_id, rec.reference_xml, message_id="r@x", timestamp=NOW,
                            signing_key=pki.receiver.key, signing_cert=pki.receiver.cert)
    assert verify_receipt(receipt, pki.receiver.cert, out).ref_to_message_id == out.message_id


def test_duplicate_helpers(pki, sbd):
    from gateway.as4 import duplicate, same_message
    a, b = build(pki, sbd), build(pki, sbd + b" ")
    assert same_message(a.signed_references, list(reversed(a.signed_references)))
    assert not same_message(a.signed_references, b.signed_references)
    raw = build_error_signal(duplicate(a.message_id), message_id="e@x", timestamp=NOW,
                             signing_key=pki.receiver.key, signing_cert=pki.receiver.cert)
    err = parse_signal(raw, check_certificate=None).errors[0]
    assert (err.code, err.detail, err.ref_to_message_in_error) == ("EBMS:0004", "DUPLICATE_MESSAGE_ID", a.message_id)
