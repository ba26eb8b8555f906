"""Real-world vectors from shared/interop: foreign receipts verify, NEG- vectors fail with the
code their README expects, the real phase4 UserMessage signature verifies over its XML parts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12

from certs.trust import TrustStore
from gateway.as4 import EbmsError, receive_user_message, verify_receipt
from gateway.as4.constants import NSMAP
from gateway.as4.mime import parse_multipart
from gateway.as4.signals import certificate_checker
from gateway.as4.wssec import index_ids, verify_signature
from gateway.as4.xml import parse_xml

UTC = dt.timezone.utc


def split_dump(data: bytes) -> tuple[dict[str, str], bytes]:
    """phase4 dump: HTTP headers, blank line, body."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        i = data.find(sep)
        if i >= 0 and (data.find(b"\n\n") < 0 or i <= data.find(b"\n\n") + 2):
            head, body = data[:i], data[i + len(sep):]
            break
    headers = {}
    unfolded = head.decode("latin-1").replace("\r\n", "\n").replace("\n\t", " ").replace("\n ", " ")
    for line in unfolded.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return headers, body


RECEIPTS = [
    ("receipt-phase4-POP000306-g2.as4in", "peppol-test-g2", dt.datetime(2022, 3, 7, 18, tzinfo=UTC), "POP000306",
     "3b3775c9-e88d-47f9-be5a-8e045ca2bc07@phase4"),
    ("receipt-governikus-POP000260-g2.as4in", "peppol-test-g2", dt.datetime(2022, 3, 7, 18, tzinfo=UTC),
     "POP000260", None),
    ("receipt-holodeck-dataport-PDE000357-g2.as4in", "peppol-test-g2", dt.datetime(2022, 3, 7, 18, tzinfo=UTC),
     "PDE000357", "669beff6-bf89-4776-9a27-eddece68083d@phase4"),
    ("receipt-btc-PDE000576-g3.xml", "peppol-test", dt.datetime(2025, 12, 5, 15, tzinfo=UTC), "PDE000576",
     "035e0a83-6dc5-427b-bcee-483475c65153@phase4"),
]


def _body(path: Path) -> bytes:
    data = path.read_bytes()
    return split_dump(data)[1] if path.suffix == ".as4in" else data


@pytest.mark.parametrize("name,trust_set,at,cn,ref", RECEIPTS)
def test_real_receipts_verify(shared_dir, trust_dir, name, trust_set, at, cn, ref):
    trust = TrustStore.from_config([trust_set], "ap", trust_dir)
    sig = verify_receipt(_body(shared_dir / "interop/phase4" / name), None, ref, None, trust=trust, now=at)
    assert sig.is_receipt and sig.signature_verified
    assert sig.signer_certificate.subject.rfc4514_string().count(f"CN={cn}") == 1
    assert len(sig.receipt_references) == 3
    assert {r.uri.split(":")[0][:1] for r in sig.receipt_references} == {"#", "c"}


def test_receipt_rejected_with_wrong_trust_or_time(shared_dir, trust_dir):
    body = _body(shared_dir / "interop/phase4/receipt-btc-PDE000576-g3.xml")
    g2 = TrustStore.from_config(["peppol-test-g2"], "ap", trust_dir)
    with pytest.raises(EbmsError) as e:
        verify_receipt(body, None, None, None, trust=g2, now=dt.datetime(2025, 12, 5, tzinfo=UTC))
    assert (e.value.code, e.value.check) == ("EBMS:0302", "certificate-untrusted")
    g3 = TrustStore.from_config(["peppol-test"], "ap", trust_dir)
    with pytest.raises(EbmsError) as e:
        verify_receipt(body, None, None, None, trust=g3, now=dt.datetime(2028, 1, 1, tzinfo=UTC))
    assert (e.value.code, e.value.check) == ("EBMS:0302", "certificate-expired")
    prod = TrustStore.from_config(["peppol-prod"], "ap", trust_dir)
    with pytest.raises(EbmsError) as e:
        verify_receipt(body, None, None, None, trust=prod, now=dt.datetime(2025, 12, 5, tzinfo=UTC))
    assert e.value.check == "certificate-untrusted"


def test_receipt_wrong_ref_to_message_id(shared_dir, trust_dir):
    body = _body(shared_dir / "interop/phase4/receipt-btc-PDE000576-g3.xml")
    trust = TrustStore.from_config(["peppol-test"], "ap", trust_dir)
    with pytest.raises(EbmsError) as e:
        verify_receipt(body, None, "other@x", None, trust=trust, now=dt.datetime(2025, 12, 5, tzinfo=UTC))
    assert (e.value.code, e.value.check) == ("EBMS:0302", "ref-to-message-id")


def test_neg_receipt_prefix_rewritten(shared_dir, trust_dir):
    body = _body(shared_dir / "interop/phase4/NEG-receipt-holodeck-dataport-prefix-rewritten.as4in")
    trust = TrustStore.from_config(["peppol-test-g2"], "ap", trust_dir)
    with pytest.raises(EbmsError) as e:
        verify_receipt(body, None, None, None, trust=trust, now=dt.datetime(2022, 3, 7, tzinfo=UTC))
    assert (e.value.code, e.value.check) == ("EBMS:0302", "digest-mismatch")


def test_soap11_receipt_is_not_a_peppol_receipt(shared_dir):
    body = (shared_dir / "interop/phase4/receipt-soap11-dummy-ph-as4.xml").read_bytes()
    with pytest.raises(EbmsError) as e:
        verify_receipt(body, None, None, None, trust=TrustStore(()), now=dt.datetime(2030, 1, 1, tzinfo=UTC))
    assert (e.value.code, e.value.check) == ("EBMS:0302", "soap-version")


@pytest.fixture(scope="module")
def expired_ap(shared_dir):
    data = (shared_dir / "interop/phase4/peppol-expired-test-ap-POP000306-g2-pw-peppol.p12").read_bytes()
    key, cert, _ = pkcs12.load_key_and_certificates(data, b"peppol")
    return key, cert


@pytest.mark.parametrize("name,check", [
    ("NEG-usermessage-unknown-signature-method.xml", "signature-algorithm"),
    ("NEG-usermessage-unknown-digest-method.xml", "digest-algorithm"),
])
def test_neg_usermessages_wrong_algorithms(shared_dir, expired_ap, name, check):
    key, cert = expired_ap
    body = (shared_dir / "interop/phase4" / name).read_bytes()
    with pytest.raises(EbmsError) as e:
        receive_user_message(body, "application/soap+xml; charset=UTF-8", our_key=key, our_cert=cert,
                             trust=TrustStore(()), now=dt.datetime(2016, 12, 21, tzinfo=UTC))
    assert (e.value.code, e.value.check) == ("EBMS:0101", check)
    assert e.value.ref_to_message_id and e.value.ref_to_message_id.endswith("@ph-as4")


def test_neg_usermessage_rar_compression(shared_dir, expired_ap):
    key, cert = expired_ap
    headers, body = split_dump((shared_dir / "interop/phase4/NEG-usermessage-compressiontype-rar.mime").read_bytes())
    with pytest.raises(EbmsError) as e:
        receive_user_message(body, headers["content-type"], our_key=key, our_cert=cert, trust=TrustStore(()),
                             now=dt.datetime(2016, 12, 21, tzinfo=UTC))
    assert (e.value.code, e.value.check) == ("EBMS:0003", "compression-type")
    assert e.value.ref_to_message_id == "c42e883b-aab1-47bf-b2f4-4e89ce309591@ph-as4"


def test_phase4_usermessage_signature_verifies(shared_dir, trust_dir):
    headers, body = split_dump(
        (shared_dir / "interop/phase4/usermessage-phase4-signed-g3-encrypted-g2.as4out").read_bytes())
    mime = parse_multipart(body, headers["content-type"])
    assert len(mime.attachments) == 1
    root = parse_xml(mime.soap)
    hdr = root.find("S12:Header", NSMAP)
    trust = TrustStore.from_config(["peppol-test"], "ap", trust_dir)
    at = dt.datetime(2026, 1, 29, 16, tzinfo=UTC)
    v = verify_signature(root, hdr.find("wsse:Security", NSMAP), messaging=hdr.find("eb:Messaging", NSMAP),
                         body=root.find("S12:Body", NSMAP), attachment_cids=[mime.attachments[0].content_id],
                         check_certificate=certificate_checker(trust=trust, now=at), ids=index_ids(root))
    assert "CN=POP000306" in v.certificate.subject.rfc4514_string()
    assert [r.uri[:4] for r in v.references] == ["#pha", "#id-", "cid:"]
    mime.close()


def test_phase4_usermessage_is_refused_for_another_recipient(shared_dir, trust_dir, expired_ap):
    key, cert = expired_ap  # a POP000306 G2 certificate, but not the one the payload was encrypted for
    headers, body = split_dump(
        (shared_dir / "interop/phase4/usermessage-phase4-signed-g3-encrypted-g2.as4out").read_bytes())
    trust = TrustStore.from_config(["peppol-test"], "ap", trust_dir)
    with pytest.raises(EbmsError) as e:
        receive_user_message(body, headers["content-type"], our_key=key, our_cert=cert, trust=trust,
                             now=dt.datetime(2026, 1, 29, 16, tzinfo=UTC))
    assert (e.value.code, e.value.check) == ("EBMS:0102", "wrong-recipient")


def test_as4_library_envelope_signature(shared_dir):
    """The `as4` package's own test envelope: signature verifies with its sender certificate."""
    from cryptography import x509
    root = parse_xml((shared_dir / "interop/as4/test_soap_envelope.xml").read_bytes())
    cert = x509.load_pem_x509_certificate((shared_dir / "interop/as4/test_sender_public_cert.pem").read_bytes())
    hdr = root.find("S12:Header", NSMAP)
    sec = hdr.find("wsse:Security", NSMAP)
    cids = [r.get("URI")[4:] for r in root.iter("{http://www.w3.org/2000/09/xmldsig#}Reference")
            if (r.get("URI") or "").startswith("cid:")]
    v = verify_signature(root, sec, messaging=hdr.find("eb:Messaging", NSMAP), body=root.find("S12:Body", NSMAP),
                         attachment_cids=cids, check_certificate=certificate_checker(receiver_cert=cert))
    assert v.certificate == cert


def test_shared_xml_samples_parse_with_the_hardened_parser(shared_dir):
    """Hardening must not reject real samples: every SMP/SBDH/MLS/report sample parses."""
    files = [p for d in ("peppol-commons", "vefa-peppol", "phase4") for p in (shared_dir / "interop" / d).glob("*.xml")]
    assert len(files) >= 20
    for p in files:
        assert parse_xml(p.read_bytes()) is not None, p
