"""Interop with the independent PyPI `as4` library (test dependency), both directions, with a test
CA and AP certificates generated here."""

from __future__ import annotations

import pytest

as4 = pytest.importorskip("as4")
from as4 import AS4LocalPrivateKey  # noqa: E402
from as4.peppol import (  # noqa: E402
    BusdoxDocidQnsDocumentIdentifier, PeppolAS4MessageBuilderArgs, PeppolSendingExchange,
    create_peppol_external_party, create_peppol_internal_party, parse_peppol_message, peppol_security_policy,
)
from as4.profiles.peppol.profile import PeppolAS4Profile  # noqa: E402

from certs.devpki import make_ap_cert  # noqa: E402
from gateway.as4 import EbmsError, build_receipt, receive_user_message, verify_receipt  # noqa: E402
from gateway.sbdh import unwrap_business_document  # noqa: E402

from .conftest import ACTION, C1, C4, DOC, INVOICE, NOW, PROC, build  # noqa: E402


def as4_sender_exchange(pki):
    lp = create_peppol_internal_party("PNO000001", pki.sender.cert, AS4LocalPrivateKey(pki.sender.key))
    rp = create_peppol_external_party("PNO000002", pki.receiver.cert)
    return PeppolSendingExchange(profile=PeppolAS4Profile, local_party=lp, remote_party=rp)


def as4_args(instance="3f1c2b9e-1111-4222-8333-444455556666"):
    return PeppolAS4MessageBuilderArgs(
        sender=C1, recipient=C4, document_type_identifier=BusdoxDocidQnsDocumentIdentifier.from_identifier_value(DOC),
        document_identification_instance_identifier=instance, process_identifier=PROC, c1_country_id="NO")


def test_as4_message_received_by_us_and_our_receipt_verified_by_as4(pki):
    invoice = INVOICE % b"from the as4 library"
    ex = as4_sender_exchange(pki)
    headers, body = ex.build(invoice, as4_args())
    rec = receive_user_message(body, headers["Content-Type"], our_key=pki.receiver.key, our_cert=pki.receiver.cert,
                               trust=pki.trust, now=NOW)
    assert rec.message_id == ex.message_id
    assert rec.header.from_party == "PNO000001" and rec.header.action == ACTION
    assert rec.sbdh.instance_identifier == "3f1c2b9e-1111-4222-8333-444455556666"
    assert (rec.sbdh.sender, rec.sbdh.receiver, rec.sbdh.process_id) == (C1, C4, PROC)
    doc = unwrap_business_document(rec.payload).read_bytes()
    assert b"from the as4 library" in doc
    receipt = build_receipt(rec.message_id, rec.reference_xml, message_id="rcpt-1@sendgw.test", timestamp=NOW,
                            signing_key=pki.receiver.key, signing_cert=pki.receiver.cert)
    ex.receive_signal(receipt)
    assert ex.state == "acknowledged"


def test_as4_message_tampered_is_rejected_by_us(pki):
    ex = as4_sender_exchange(pki)
    headers, body = ex.build(INVOICE % b"x", as4_args())
    tampered = body.replace(b"urn:fdc:peppol.eu:2017:poacc:billing:01:1.0</", b"urn:fdc:peppol.eu:2017:poacc:billing:02:1.0</", 1)
    assert tampered != body
    with pytest.raises(EbmsError) as e:
        receive_user_message(tampered, headers["Content-Type"], our_key=pki.receiver.key, our_cert=pki.receiver.cert,
                             trust=pki.trust, now=NOW)
    assert (e.value.code, e.value.check) == ("EBMS:0101", "digest-mismatch")


def test_our_message_accepted_by_as4_and_its_receipt_verified_by_us(pki, sbd):
    out = build(pki, sbd)
    local = create_peppol_internal_party("PNO000002", pki.receiver.cert, AS4LocalPrivateKey(pki.receiver.key))
    ex = parse_peppol_message({"Content-Type": out.content_type}, out.read_bytes(), local,
                              security_policy=peppol_security_policy(pki.ca.cert))
    assert ex.message.parse_error is None
    assert ex.state == "received"
    assert list(ex.message.decrypted_data.values()) == [sbd]
    _, receipt = ex.build_signal()
    sig = verify_receipt(receipt, pki.receiver.cert, out.message_id, out.signed_references)
    assert sig.is_receipt and sig.ref_to_message_id == out.message_id


def test_as4_receipt_for_another_message_is_rejected(pki, sbd):
    out1, out2 = build(pki, sbd, message_id="a@x"), build(pki, sbd, message_id="b@x")
    local = create_peppol_internal_party("PNO000002", pki.receiver.cert, AS4LocalPrivateKey(pki.receiver.key))
    ex = parse_peppol_message({"Content-Type": out1.content_type}, out1.read_bytes(), local,
                              security_policy=peppol_security_policy(pki.ca.cert))
    _, receipt = ex.build_signal()
    with pytest.raises(EbmsError) as e:
        verify_receipt(receipt, pki.receiver.cert, out2.message_id, out2.signed_references)
    assert (e.value.code, e.value.check) == ("EBMS:0302", "ref-to-message-id")
    with pytest.raises(EbmsError) as e:
        verify_receipt(receipt, pki.receiver.cert, out1.message_id, out2.signed_references)
    assert (e.value.code, e.value.check) == ("EBMS:0302", "nri-mismatch")


def test_as4_rejects_our_message_signed_by_untrusted_ca(pki, other_ca, sbd):
    rogue = make_ap_cert("PNO000001", other_ca, now=NOW)
    out = build(pki, sbd, signer=rogue)
    local = create_peppol_internal_party("PNO000002", pki.receiver.cert, AS4LocalPrivateKey(pki.receiver.key))
    ex = parse_peppol_message({"Content-Type": out.content_type}, out.read_bytes(), local,
                              security_policy=peppol_security_policy(pki.ca.cert))
    assert ex.message.parse_error is not None and ex.message.parse_error.error_code == "EBMS:0101"
    _, signal = ex.build_signal()
    with pytest.raises(EbmsError) as e:
        verify_receipt(signal, pki.receiver.cert, out.message_id, out.signed_references)
    assert e.value.peer and e.value.code == "EBMS:0101"
