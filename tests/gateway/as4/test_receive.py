"""Round trip and hostile inputs: each rejection asserts the precise ebMS code and check."""

from __future__ import annotations

import base64
import datetime as dt
import gzip

import pytest
from lxml import etree

from certs.devpki import make_ap_cert
from gateway.as4 import EbmsError, Limits, receive_user_message
from gateway.as4.blob import Blob
from gateway.as4.constants import NSMAP
from gateway.as4.crypto import aes_gcm_decrypt_blob, aes_gcm_encrypt
from gateway.as4.wssec import decrypt_session_key, index_ids, parse_encryption

from .conftest import ACTION, C1, C4, NOW, PROC, Mutable, build, make_sbd


def receive(pki, body, content_type, **kw):
    return receive_user_message(body, content_type, our_key=pki.receiver.key, our_cert=pki.receiver.cert,
                                trust=kw.pop("trust", pki.trust), now=kw.pop("now", NOW), **kw)


def rejected(pki, body, content_type, **kw) -> EbmsError:
    with pytest.raises(EbmsError) as e:
        receive(pki, body, content_type, **kw)
    return e.value


def test_round_trip(pki, sbd):
    out = build(pki, sbd, conversation_id="conv-1")
    rec = receive(pki, out.read_bytes(), out.content_type)
    h = rec.header
    assert (h.message_id, h.conversation_id, h.from_party, h.to_party) == (
        "msg-1@sendgw.test", "conv-1", "PNO000001", "PNO000002")
    assert (h.service, h.service_type, h.action) == (PROC, "cenbii-procid-ubl", ACTION)
    assert (h.original_sender, h.final_recipient) == (C1, C4)
    assert rec.payload.read_bytes() == sbd
    assert rec.sbdh.sender == C1 and rec.sbdh.receiver == C4 and rec.sbdh.country_c1 == "NO"
    assert rec.signer_certificate == pki.sender.cert
    assert [r.digest_value for r in rec.signed_references] == [r.digest_value for r in out.signed_references]
    doc = rec.business_document().read_bytes()
    assert etree.fromstring(doc).tag == "{urn:oasis:names:specification:ubl:schema:xsd:Invoice-2}Invoice"
    rec.close()


def test_build_is_deterministic_in_its_signed_part(pki, sbd):
    seq = iter(range(1000))
    rnd = lambda n: bytes([next(seq) % 256]) * n  # noqa: E731
    a = build(pki, sbd, random=rnd)
    seq = iter(range(1000))
    b = build(pki, sbd, random=rnd)
    assert a.signed_references == b.signed_references
    ma, mb = Mutable(a), Mutable(b)
    sv = lambda m: m.find(".//ds:SignatureValue").text  # noqa: E731
    assert sv(ma) == sv(mb)
    assert ma.attachments == mb.attachments  # same key, IV and gzip bytes -> same ciphertext


def test_large_payload_from_file_streams(pki, tmp_path):
    sbd = make_sbd(__import__("os").urandom(1_500_000).hex().encode())
    src = tmp_path / "sbd.xml"
    src.write_bytes(sbd)
    out = build(pki, src, tmp_dir=tmp_path, spill_bytes=64 * 1024)
    assert not out.blob.in_memory
    body = tmp_path / "body.mime"
    out.save_to(body)
    with open(body, "rb") as fh:
        rec = receive(pki, fh, out.content_type, tmp_dir=tmp_path,
                      limits=Limits(spill_bytes=64 * 1024))
    assert not rec.payload.in_memory
    assert rec.payload.read_bytes() == sbd
    rec.close()


def test_test_service_message_is_accepted_without_crosscheck(pki, sbd):
    out = build(pki, sbd, service="http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/service",
                action="http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/test", service_type=None)
    assert receive(pki, out.read_bytes(), out.content_type).is_test_message


# ---------------------------------------------------------------------------------------------
# hostile inputs
# ---------------------------------------------------------------------------------------------

def test_tampered_payload_ciphertext(pki, sbd):
    m = Mutable(build(pki, sbd))
    cid, data = m.attachments[0]
    data = bytearray(data)
    data[40] ^= 0x01
    m.attachments[0] = (cid, bytes(data))
    e = rejected(pki, *m.pack())
    assert (e.code, e.check) == ("EBMS:0102", "payload-decryption")
    assert e.ref_to_message_id == "msg-1@sendgw.test"


def _session_key(pki, m: Mutable) -> bytes:
    info = parse_encryption(m.security, [m.attachments[0][0]], pki.receiver.cert, index_ids(m.root))
    return decrypt_session_key(info, pki.receiver.key)


def test_payload_replaced_after_signing(pki, sbd):
    """Valid AES-GCM, but not the signed content: the attachment digest must catch it."""
    m = Mutable(build(pki, sbd))
    key = _session_key(pki, m)
    cid, _ = m.attachments[0]
    out = []
    aes_gcm_encrypt([gzip.compress(make_sbd(b"evil"))], key, b"\x01" * 12, out.append)
    m.attachments[0] = (cid, b"".join(out))
    e = rejected(pki, *m.pack())
    assert (e.code, e.check) == ("EBMS:0102", "payload-digest")


def test_tampered_header(pki, sbd):
    m = Mutable(build(pki, sbd))
    m.find(".//eb:ConversationId").text = "forged"
    e = rejected(pki, *m.pack())
    assert (e.code, e.check) == ("EBMS:0101", "digest-mismatch")


def test_tampered_signed_info(pki, sbd):
    m = Mutable(build(pki, sbd))
    m.find(".//eb:Action").text = "busdox-docid-qns::other"
    m.resign(pki.sender.key)
    m.find(".//ds:SignatureValue").text = base64.b64encode(b"\x00" * 256).decode()
    e = rejected(pki, *m.pack())
    assert (e.code, e.check) == ("EBMS:0101", "signature-value")


def test_untrusted_signer(pki, other_ca, sbd):
    rogue = make_ap_cert("PNO000001", other_ca, now=NOW)
    out = build(pki, sbd, signer=rogue)
    e = rejected(pki, out.read_bytes(), out.content_type)
    assert (e.code, e.check) == ("EBMS:0101", "certificate-untrusted")


def test_expired_signer(pki, sbd):
    old = make_ap_cert("PNO000001", pki.ca, now=NOW, not_before=NOW - dt.timedelta(days=400),
                       not_after=NOW - dt.timedelta(days=1))
    out = build(pki, sbd, signer=old)
    e = rejected(pki, out.read_bytes(), out.content_type)
    assert (e.code, e.check) == ("EBMS:0101", "certificate-expired")


def test_signer_without_digital_signature_usage(pki, sbd):
    from cryptography import x509
    ku = x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=True,
                       data_encipherment=True, key_agreement=False, key_cert_sign=False, crl_sign=False,
                       encipher_only=False, decipher_only=False)
    bad = make_ap_cert("PNO000001", pki.ca, now=NOW, key_usage=ku)
    out = build(pki, sbd, signer=bad)
    e = rejected(pki, out.read_bytes(), out.content_type)
    assert (e.code, e.check) == ("EBMS:0101", "certificate-key-usage")


def test_signer_that_is_a_ca(pki, sbd):
    bad = make_ap_cert("PNO000001", pki.ca, now=NOW, ca_flag=True)
    out = build(pki, sbd, signer=bad)
    e = rejected(pki, out.read_bytes(), out.content_type)
    assert (e.code, e.check) == ("EBMS:0101", "certificate-not-a-leaf")


def test_signer_not_yet_valid(pki, sbd):
    early = make_ap_cert("PNO000001", pki.ca, now=NOW, not_before=NOW + dt.timedelta(days=1),
                         not_after=NOW + dt.timedelta(days=30))
    out = build(pki, sbd, signer=early)
    e = rejected(pki, out.read_bytes(), out.content_type)
    assert (e.code, e.check) == ("EBMS:0101", "certificate-not-yet-valid")


def test_cn_not_from_party(pki, sbd):
    out = build(pki, sbd, from_party="PNO000009")
    e = rejected(pki, out.read_bytes(), out.content_type)
    assert (e.code, e.check) == ("EBMS:0101", "from-party-cn")


def test_unsigned(pki, sbd):
    m = Mutable(build(pki, sbd))
    sig = m.find(".//ds:Signature")
    sig.getparent().remove(sig)
    e = rejected(pki, *m.pack())
    assert (e.code, e.check) == ("EBMS:0103", "unsigned")


def test_no_security_header(pki, sbd):
    m = Mutable(build(pki, sbd))
    m.header.remove(m.security)
    e = rejected(pki, *m.pack())
    assert (e.code, e.check) == ("EBMS:0103", "unsigned")


def test_unencrypted_payload(pki, sbd):
    m = Mutable(build(pki, sbd))
    key = _session_key(pki, m)
    cid, data = m.attachments[0]
    plain = aes_gcm_decrypt_blob(Blob.from_bytes(data), key).read_bytes()  # the signed gzip bytes
    for tag in ("xenc:EncryptedKey", "xenc:EncryptedData"):
        el = m.find("S12:Header/wsse:Security/" + tag)
        el.getparent().remove(el)
    m.attachments[0] = (cid, plain)
    e = rejected(pki, *m.pack())
    assert (e.code, e.check) == ("EBMS:0103", "unencrypted")


@pytest.mark.parametrize("path,attr,value,code,check", [
    (".//ds:SignatureMethod", "Algorithm", "http://www.w3.org/2000/09/xmldsig#rsa-sha1", "EBMS:0101",
     "signature-algorithm"),
    (".//ds:SignedInfo/ds:Reference/ds:DigestMethod", "Algorithm", "http://www.w3.org/2000/09/xmldsig#sha1",
     "EBMS:0101", "digest-algorithm"),
    (".//ds:CanonicalizationMethod", "Algorithm", "http://www.w3.org/TR/2001/REC-xml-c14n-20010315", "EBMS:0101",
     "c14n-algorithm"),
    (".//ds:SignedInfo/ds:Reference/ds:Transforms/ds:Transform", "Algorithm",
     "http://www.w3.org/TR/1999/REC-xslt-19991116", "EBMS:0101", "transform"),
    (".//xenc:EncryptedData/xenc:EncryptionMethod", "Algorithm", "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
     "EBMS:0102", "data-encryption-algorithm"),
    (".//xenc:EncryptedKey/xenc:EncryptionMethod", "Algorithm", "http://www.w3.org/2001/04/xmlenc#rsa-1_5",
     "EBMS:0102", "key-transport-algorithm"),
    (".//xenc:EncryptedKey/xenc:EncryptionMethod/xenc11:MGF", "Algorithm", "http://www.w3.org/2009/xmlenc11#mgf1sha1",
     "EBMS:0102", "key-transport-algorithm"),
])
def test_wrong_algorithms(pki, sbd, path, attr, value, code, check):
    m = Mutable(build(pki, sbd))
    m.find(path).set(attr, value)
    m.resign(pki.sender.key)
    e = rejected(pki, *m.pack())
    assert (e.code, e.check) == (code, check)


def test_short_rsa_key_refused(pki, sbd):
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "PNO000001")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(pki.ca.cert.subject)
            .public_key(small.public_key()).serial_number(7).not_valid_before(NOW - dt.timedelta(days=1))
            .not_valid_after(NOW + dt.timedelta(days=10))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(pki.ca.key, hashes.SHA256()))
    out = build(pki, sbd, signer=type(pki.sender)(small, cert))
    e = rejected(pki, out.read_bytes(), out.content_type)
    assert (e.code, e.check) == ("EBMS:0101", "key-type")


# --- signature wrapping shapes ---------------------------------------------------------------

def test_wrapping_moved_original_forged_in_place(pki, sbd):
    """Original signed Messaging moved into wsse:Security, forged copy (same Id) in its place."""
    m = Mutable(build(pki, sbd))
    original = m.messaging
    forged = etree.fromstring(etree.tostring(original))
    forged.find(".//eb:Action", NSMAP).text = "busdox-docid-qns::forged"
    m.header.replace(original, forged)
    m.security.append(original)
    e = rejected(pki, *m.pack())
    assert (e.code, e.check) == ("EBMS:0101", "wrapping")


def test_wrapping_duplicate_id_on_other_element(pki, sbd):
    """Forged Messaging under a fresh Id; the signed Id now sits on an unrelated wrapper element."""
    m = Mutable(build(pki, sbd))
    wsu_id = "{%s}Id" % NSMAP["wsu"]
    signed_id = m.messaging.get(wsu_id)
    wrapper = etree.SubElement(m.header, "{urn:evil}Wrapper", {wsu_id: signed_id})
    wrapper.append(etree.fromstring(b"<x/>"))
    e = rejected(pki, *m.pack())
    assert (e.code, e.check) == ("EBMS:0101", "duplicate-id")


def test_wrapping_reference_to_other_element(pki, sbd):
    """Signature re-pointed at the BST (a signed element that is not eb:Messaging)."""
    m = Mutable(build(pki, sbd))
    wsu_id = "{%s}Id" % NSMAP["wsu"]
    bst = m.find("S12:Header/wsse:Security/wsse:BinarySecurityToken")
    m.find(".//ds:SignedInfo/ds:Reference").set("URI", "#" + bst.get(wsu_id))
    m.resign(pki.sender.key)
    e = rejected(pki, *m.pack())
    assert (e.code, e.check) == ("EBMS:0101", "reference-target")


def test_wrapping_messaging_not_covered(pki, sbd):
    m = Mutable(build(pki, sbd))
    ref = m.find(".//ds:SignedInfo/ds:Reference")
    ref.getparent().remove(ref)
    m.resign(pki.sender.key)
    e = rejected(pki, *m.pack())
    assert (e.code, e.check) == ("EBMS:0101", "signature-coverage")


def test_wrapping_second_body(pki, sbd):
    m = Mutable(build(pki, sbd))
    body = m.find("S12:Body")
    m.header.append(etree.fromstring(etree.tostring(body)))
    e = rejected(pki, *m.pack())
    assert (e.code, e.check) == ("EBMS:0101", "wrapping")


def test_wrapping_second_security_header(pki, sbd):
    m = Mutable(build(pki, sbd))
    extra = etree.SubElement(m.header, "{%s}Security" % NSMAP["wsse"])
    extra.append(etree.fromstring(etree.tostring(m.find(".//ds:Signature"))))
    e = rejected(pki, *m.pack())
    assert e.code == "EBMS:0101" and e.check in ("wrapping", "duplicate-id")


def test_wrapping_reference_to_foreign_attachment(pki, sbd):
    m = Mutable(build(pki, sbd))
    si = m.find(".//ds:SignedInfo")
    extra = etree.fromstring(etree.tostring(si.findall("ds:Reference", NSMAP)[-1]))
    extra.set("URI", "cid:not-here@evil")
    si.append(extra)
    m.resign(pki.sender.key)
    e = rejected(pki, *m.pack())
    assert (e.code, e.check) == ("EBMS:0101", "reference-target")


def test_wrapping_signature_key_by_issuer_serial(pki, sbd):
    m = Mutable(build(pki, sbd))
    strf = m.find(".//ds:Signature/ds:KeyInfo/wsse:SecurityTokenReference")
    for c in list(strf):
        strf.remove(c)
    etree.SubElement(strf, "{%s}KeyIdentifier" % NSMAP["wsse"]).text = "AAAA"
    e = rejected(pki, *m.pack())
    assert (e.code, e.check) == ("EBMS:0101", "key-reference")


# --- P-Mode, structure, SBDH ---------------------------------------------------------------------

@pytest.mark.parametrize("mutate,code,check", [
    (lambda m: setattr(m.find(".//eb:AgreementRef"), "text", "urn:other:agreement"), "EBMS:0010", "agreement-ref"),
    (lambda m: m.find(".//eb:AgreementRef").set("pmode", "x"), "EBMS:0010", "agreement-ref"),
    (lambda m: m.find(".//eb:From/eb:PartyId").set("type", "urn:oasis:names:tc:ebcore:partyid-type:unregistered"),
     "EBMS:0010", "party-id-type"),
    (lambda m: setattr(m.find(".//eb:To/eb:Role"), "text", "urn:x"), "EBMS:0010", "role"),
    (lambda m: m.find(".//eb:UserMessage").set("mpc", "urn:other"), "EBMS:0010", "mpc"),
    (lambda m: m.find(".//eb:Service").attrib.pop("type"), "EBMS:0010", "service-type"),
    (lambda m: m.find(".//eb:MessageProperties/eb:Property").attrib.pop("type"), "EBMS:0004", "message-properties"),
    (lambda m: etree.SubElement(m.find(".//eb:MessageProperties"), "{%s}Property" % NSMAP["eb"],
                                {"name": "trackingIdentifier"}), "EBMS:0004", "tracking-identifier"),
    (lambda m: m.find(".//eb:From").remove(m.find(".//eb:From/eb:PartyId")), "EBMS:0009", "party-id"),
    (lambda m: setattr(m.find(".//eb:PartInfo//eb:Property[@name='CompressionType']"), "text", "application/x-rar"),
     "EBMS:0003", "compression-type"),
])
def test_pmode_and_structure(pki, sbd, mutate, code, check):
    m = Mutable(build(pki, sbd))
    mutate(m)
    m.resign(pki.sender.key)
    e = rejected(pki, *m.pack())
    assert (e.code, e.check) == (code, check)


def test_two_user_messages(pki, sbd):
    m = Mutable(build(pki, sbd))
    m.messaging.append(etree.fromstring(etree.tostring(m.find(".//eb:UserMessage"))))
    m.resign(pki.sender.key)
    e = rejected(pki, *m.pack())
    assert (e.code, e.check) == ("EBMS:0003", "user-message-count")


def test_addressed_to_another_ap(pki, sbd):
    out = build(pki, sbd, to_party="PNO000777")
    e = rejected(pki, out.read_bytes(), out.content_type)
    assert (e.code, e.check) == ("EBMS:0010", "to-party")


def test_partinfo_without_attachment_and_vice_versa(pki, sbd):
    m = Mutable(build(pki, sbd))
    cid, data = m.attachments[0]
    m.attachments.append(("extra@evil", data))
    e = rejected(pki, *m.pack())
    assert (e.code, e.check) == ("EBMS:0011", "part-without-partinfo")
    m.attachments = []
    e = rejected(pki, *m.pack())
    assert (e.code, e.check) == ("EBMS:0011", "partinfo-without-part")


@pytest.mark.parametrize("kw,field", [
    (dict(original_sender="0192:000000000"), "Sender"),
    (dict(final_recipient="0192:000000000"), "Receiver"),
    (dict(action="busdox-docid-qns::urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2::CreditNote##x::2.1"),
     "DOCUMENTID"),
    (dict(service="urn:fdc:peppol.eu:2017:poacc:other:01:1.0"), "PROCESSID"),
])
def test_sbdh_header_mismatch(pki, sbd, kw, field):
    out = build(pki, sbd, **kw)
    e = rejected(pki, out.read_bytes(), out.content_type)
    assert (e.code, e.check) == ("EBMS:0004", "sbdh-header-mismatch")
    assert field in e.reason


def test_participant_comparison_is_case_insensitive(pki):
    sbd = make_sbd(sender="0192:ABC123")
    out = build(pki, sbd, original_sender="0192:abc123")
    assert receive(pki, out.read_bytes(), out.content_type).sbdh.sender == "0192:ABC123"


def test_invalid_sbdh_payload(pki):
    out = build(pki, b"<Invoice xmlns='urn:x'/>")
    e = rejected(pki, out.read_bytes(), out.content_type)
    assert (e.code, e.check) == ("EBMS:0004", "sbdh-invalid-root")


def test_xxe_in_sbdh_payload(pki):
    evil = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
    out = build(pki, evil)
    e = rejected(pki, out.read_bytes(), out.content_type)
    assert (e.code, e.check) == ("EBMS:0004", "sbdh-invalid-xml")


def test_decompression_bomb(pki):
    sbd = make_sbd(b"A" * 4_000_000)  # gzips to a few KB
    out = build(pki, sbd)
    assert out.blob.size < 100_000
    e = rejected(pki, out.read_bytes(), out.content_type, limits=Limits(max_decompressed_bytes=1_000_000))
    assert (e.code, e.check) == ("EBMS:0303", "decompression-bomb")


def test_corrupt_gzip(pki, sbd):
    """Signed and encrypted, but the signed bytes are not gzip."""
    import gateway.as4.usermessage as um
    real = um.gzip_stream
    um.gzip_stream = lambda chunks: iter([b"not gzip at all"])
    try:
        out = build(pki, sbd)
    finally:
        um.gzip_stream = real
    e = rejected(pki, out.read_bytes(), out.content_type)
    assert (e.code, e.check) == ("EBMS:0303", "decompression")


XXE_SOAP = b"""<?xml version="1.0"?>
<!DOCTYPE S12:Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<S12:Envelope xmlns:S12="http://www.w3.org/2003/05/soap-envelope"><S12:Header/><S12:Body>&xxe;</S12:Body></S12:Envelope>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]><S12:Envelope xmlns:S12="http://www.w3.org/2003/05/soap-envelope"><S12:Body>&c;</S12:Body></S12:Envelope>"""


@pytest.mark.parametrize("soap", [XXE_SOAP, BILLION_LAUGHS])
def test_xxe_in_envelope(pki, soap):
    e = rejected(pki, soap, "application/soap+xml")
    assert (e.code, e.check) == ("EBMS:0009", "soap-xml")
    body = (b"--b\r\nContent-Type: application/soap+xml\r\n\r\n" + soap + b"\r\n--b--\r\n")
    e = rejected(pki, body, 'multipart/related; boundary="b"; type="application/soap+xml"')
    assert (e.code, e.check) == ("EBMS:0009", "soap-xml")


@pytest.mark.parametrize("body,ctype,check", [
    (b"garbage", "text/plain", "content-type"),
    (b"garbage", "multipart/related", "boundary"),
    (b"--b\r\nContent-Type: application/soap+xml\r\n\r\n<x/>", 'multipart/related; boundary="b"', "truncated"),
    (b"--b\r\nContent-Type: text/xml\r\n\r\n<x/>\r\n--b--", 'multipart/related; boundary="b"', "soap-part"),
    (b"--b\r\nX: " + b"y" * 10000 + b"\r\n\r\n<x/>\r\n--b--", 'multipart/related; boundary="b"', "mime-header-size"),
    (b"--b\r\n" + b"Content-Type: application/soap+xml\r\n\r\n<x/>\r\n--b\r\n" * 20 + b"\r\n--b--",
     'multipart/related; boundary="b"', "mime-part-count"),
])
def test_broken_mime(pki, body, ctype, check):
    e = rejected(pki, body, ctype)
    assert (e.code, e.check) == ("EBMS:0007", check)


def test_message_size_cap(pki, sbd):
    out = build(pki, sbd)
    e = rejected(pki, out.read_bytes(), out.content_type, limits=Limits(max_message_bytes=1000))
    assert (e.code, e.check, e.http_status) == ("EBMS:0007", "message-size", 413)


def test_unknown_must_understand_header(pki, sbd):
    m = Mutable(build(pki, sbd))
    etree.SubElement(m.header, "{urn:other}Block", {"{%s}mustUnderstand" % NSMAP["S12"]: "true"})
    e = rejected(pki, *m.pack())
    assert (e.code, e.check) == ("EBMS:0009", "must-understand")


def test_bad_timestamp(pki, sbd):
    m = Mutable(build(pki, sbd))
    m.find(".//eb:Timestamp").text = "yesterday"
    m.resign(pki.sender.key)
    e = rejected(pki, *m.pack())
    assert (e.code, e.check) == ("EBMS:0009", "timestamp")


def test_lf_only_framing_and_base64_parts_are_parsed(pki, sbd):
    """Real peers send bare-LF MIME and base64 parts (phase4's WrongCompression vector does both)."""
    from gateway.as4.mime import parse_multipart
    body = (b"--b\nContent-Type: application/soap+xml\n\n<x/>\n--b\nContent-ID: <p1>\n"
            b"Content-Transfer-Encoding: base64\n\n" + base64.encodebytes(b"payload bytes") + b"\n--b--\n")
    mime = parse_multipart(body, 'multipart/related; boundary="b"; type="application/soap+xml"')
    assert mime.soap == b"<x/>" and mime.attachments[0].content_id == "p1"
    assert mime.attachments[0].blob.read_bytes() == b"payload bytes"


@pytest.mark.slow
def test_large_receive_memory_is_bounded(pki, tmp_path):
    """30 MB of poorly compressible payload: Python heap stays far below the payload size."""
    import os
    import tracemalloc
    sbd = make_sbd(os.urandom(15_000_000).hex().encode())
    src = tmp_path / "sbd.xml"
    src.write_bytes(sbd)
    del sbd
    out = build(pki, src, tmp_dir=tmp_path)
    body = out.save_to(tmp_path / "body.mime")
    assert body.stat().st_size > 15_000_000
    tracemalloc.start()
    try:
        with open(body, "rb") as fh:
            rec = receive(pki, fh, out.content_type, tmp_dir=tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 12_000_000, peak
    assert rec.payload.size == src.stat().st_size and rec.payload.path is not None
    rec.close()


def _ek_key_identifier(m: Mutable, ski: bytes) -> None:
    strf = m.find(".//xenc:EncryptedKey/ds:KeyInfo/wsse:SecurityTokenReference")
    for c in list(strf):
        strf.remove(c)
    kid = etree.SubElement(strf, "{%s}KeyIdentifier" % NSMAP["wsse"], {
        "ValueType": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0"
                     "#X509SubjectKeyIdentifier"})
    kid.text = base64.b64encode(ski).decode()


def test_encrypted_key_by_subject_key_identifier(pki, sbd):
    """CEF's sample references the recipient by SKI: accepted when it is ours, refused otherwise."""
    from cryptography import x509
    ours = pki.receiver.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    m = Mutable(build(pki, sbd))
    _ek_key_identifier(m, ours)
    assert receive(pki, *m.pack()).payload.read_bytes() == sbd
    m = Mutable(build(pki, sbd))
    _ek_key_identifier(m, b"\x01" * 20)
    e = rejected(pki, *m.pack())
    assert (e.code, e.check) == ("EBMS:0102", "wrong-recipient")


def test_encrypted_for_another_certificate(pki, sbd):
    other = make_ap_cert("PNO000002", pki.ca, now=NOW)  # same CN, different key
    out = build(pki, sbd, receiver_cert=other.cert)
    e = rejected(pki, out.read_bytes(), out.content_type)
    assert (e.code, e.check) == ("EBMS:0102", "wrong-recipient")


@pytest.mark.parametrize("tamper", ["ciphertext", "none", "bomb"])
def test_no_temp_files_left_behind(pki, tmp_path, tamper):
    import os
    spool = tmp_path / "spool"
    spool.mkdir()
    sbd = make_sbd(os.urandom(300_000).hex().encode())
    m = Mutable(build(pki, sbd))
    if tamper == "ciphertext":
        cid, data = m.attachments[0]
        m.attachments[0] = (cid, data[:-1] + bytes([data[-1] ^ 1]))
    limits = Limits(spill_bytes=16 * 1024, max_decompressed_bytes=100_000 if tamper == "bomb" else 10**9)
    body, ct = m.pack()
    try:
        rec = receive(pki, body, ct, tmp_dir=spool, limits=limits)
    except EbmsError:
        pass
    else:
        assert not rec.payload.in_memory
        rec.close()
    assert list(spool.iterdir()) == []


def test_plain_soap_body_from_a_file_is_read_only_up_to_the_cap(pki, tmp_path):
    """An application/soap+xml body spilled to a file by the server: never read whole into memory."""
    import tracemalloc
    big = tmp_path / "big.xml"
    big.write_bytes(b"<x>" + b"a" * 30_000_000 + b"</x>")
    tracemalloc.start()
    try:
        e = rejected(pki, big, "application/soap+xml")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (e.code, e.check) == ("EBMS:0007", "soap-size")
    assert peak < 5_000_000, peak


def test_comment_inside_a_signed_header_value_does_not_truncate_it(pki, sbd):
    """exc-c14n drops comments, so a comment can be slipped into a signed value without breaking
    the signature; the value read must be the signed one (XPath string value), not the text before
    the comment (the SAML comment-truncation attack; here it changed the MessageId of a replay)."""
    out = build(pki, sbd, conversation_id="conv-1")
    body = out.read_bytes()
    body = body.replace(b">msg-1@sendgw.test<", b">msg-1<!-- x -->@sendgw.test<", 1)
    body = body.replace(b">" + C4.encode() + b"<", b">0192:<!---->987654325<", 1)
    rec = receive(pki, body, out.content_type)
    assert rec.header.message_id == "msg-1@sendgw.test"
    assert rec.header.final_recipient == C4


@pytest.mark.parametrize("path", [".//eb:MessageId", ".//eb:Action", ".//eb:Service", ".//eb:To/eb:Role",
                                  ".//eb:ConversationId", ".//eb:CollaborationInfo", ".//eb:To"])
def test_repeated_single_header_element(pki, sbd, path):
    """A second copy of an element the ebMS schema allows once was silently ignored (the first
    one won); it is an invalid header (EBMS:0009, as the `as4` library answers)."""
    m = Mutable(build(pki, sbd))
    el = m.find(path)
    el.addnext(etree.fromstring(etree.tostring(el)))
    m.resign(pki.sender.key)
    e = rejected(pki, *m.pack())
    assert (e.code, e.check) == ("EBMS:0009", "repeated-element")
    assert e.ref_to_message_id == "msg-1@sendgw.test"
