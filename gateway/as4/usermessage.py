"""Build and receive Peppol AS4 UserMessages (sans-IO: bytes/files in, values out).

Receive order (first failure wins; see docs/as4.md for the full table):
 1. MIME (0007)  2. SOAP XML, no DOCTYPE (0009)  3. ebMS structure: one Messaging/UserMessage (0003),
 MessageId (0009), CompressionType gzip (0003), PartInfo <-> attachments (0011)
 4. WS-Security: signed (0103), algorithms, wrapping, coverage, trust, signature, digests (0101),
 CN = From PartyId (0101), encrypted (0103), encryption structure/algorithms (0102)
 5. Peppol P-Mode: parties, roles, AgreementRef, MPC, Service/Action (0009/0010), properties (0004),
 payloads as attachments (0003)  6. decrypt + attachment digest (0102)  7. gunzip with cap (0303)
 8. SBDH rules and SBDH <-> header cross-check (0004).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from certs.trust import CertificateError, TrustStore, common_name
from gateway import sbdh as sbdh_mod

from .blob import Blob, BlobWriter
from .constants import (
    AGREEMENT_REF, COMPRESSION_GZIP, DEFAULT_MPC, NS_EB, NS_S12, NS_WSSE, NS_WSU, PARTICIPANT_SCHEME,
    PARTY_ID_TYPE, PROP_FINAL_RECIPIENT, PROP_ORIGINAL_SENDER, PROP_TRACKING_IDENTIFIER, ROLE_INITIATOR,
    ROLE_RESPONDER, SERVICE_TYPE_DEFAULT, TEST_ACTION, TEST_SERVICE, WSU_ID,
)
from .crypto import (
    DecompressError, DecryptError, aes_gcm_decrypt_blob, aes_gcm_encrypt, gunzip_blob, gzip_stream,
)
from .errors import (
    EbmsError, failed_authentication, failed_decryption, invalid_header, mime_inconsistency, pmode_mismatch,
    value_inconsistent,
)
from .header import UserMessageHeader, message_id_hint, read_header
from .limits import DEFAULT_LIMITS, Limits
from .mime import (
    MimeMessage, MimePart, make_boundary, multipart_content_type, parse_content_type, parse_multipart,
    write_multipart,
)
from .wssec import (
    SignedReference, VerifiedSignature, decrypt_session_key, index_ids, make_bst, make_encrypted_data,
    make_encrypted_key, make_signature, parse_encryption, verify_signature,
)
from .xml import UnsafeXmlError, parse_xml

TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")
S12 = "{%s}" % NS_S12
EB = "{%s}" % NS_EB
WSSE = "{%s}" % NS_WSSE


# ------------------------------------------------------------------------------------------------
# outbound
# ------------------------------------------------------------------------------------------------

@dataclass
class OutboundMessage:
    """The exact bytes to POST. Store `body` before the first attempt and re-send those bytes on
    retries: the NRR digests in `signed_references` then stay valid (AS4 §3.2 / CEF retries)."""

    message_id: str
    conversation_id: str
    content_type: str
    body: Blob  # the MIME body, in memory or in a temp file we own (bytes(out.body) / .path / .open())
    soap: bytes
    signed_references: list[SignedReference]
    payload_digest: bytes  # SHA-256 of the gzip bytes that were signed

    @property
    def blob(self) -> Blob:
        return self.body

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers to send with the body."""
        return {"Content-Type": self.content_type, "MIME-Version": "1.0"}

    def read_bytes(self) -> bytes:
        return self.body.read_bytes()

    def save_to(self, path: Path | str) -> Path:
        return self.body.save_to(path)

    def close(self) -> None:
        self.body.close()


def format_timestamp(ts: dt.datetime) -> str:
    if ts.tzinfo is None:
        raise ValueError("timestamp must be timezone-aware")
    return ts.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _payload_chunks(payload: bytes | Blob | Path):
    if isinstance(payload, (bytes, bytearray)):
        payload = Blob.from_bytes(bytes(payload))
    elif isinstance(payload, Path):
        payload = Blob.from_path(payload)
    return payload.chunks()


def build_user_message(
    payload: bytes | Blob | Path,
    *,
    message_id: str,
    timestamp: dt.datetime,
    from_party: str,
    to_party: str,
    service: str,
    action: str,
    original_sender: str,
    final_recipient: str,
    signing_key: rsa.RSAPrivateKey,
    signing_cert: x509.Certificate,
    receiver_cert: x509.Certificate,
    conversation_id: str | None = None,
    service_type: str | None = SERVICE_TYPE_DEFAULT,
    mime_type: str = "application/xml",
    random: Callable[[int], bytes] = os.urandom,
    tmp_dir: Path | str | None = None,
    spill_bytes: int = DEFAULT_LIMITS.spill_bytes,
) -> OutboundMessage:
    """Sign, compress and encrypt one SBD payload into a Peppol AS4 MIME message.

    Deterministic for the same inputs and `random` source, except the RSA-OAEP padding of the
    EncryptedKey (randomised inside OpenSSL). The signed part (header, digests, SignatureValue)
    is fully deterministic: gzip uses mtime 0.
    """
    if "@" not in message_id:
        raise ValueError("message_id must follow RFC 2822 msg-id syntax (local@domain)")
    seed = random(16).hex()
    session_key = random(16)
    iv = random(12)
    boundary = make_boundary(random(12))
    conversation_id = conversation_id or message_id
    cid = f"payload-{seed}@sendgw"
    ids = {k: f"{k}-{seed}" for k in ("msg", "body", "bst-recv", "bst-sign", "ek", "ed", "sig", "ki", "str")}

    # compress -> digest -> encrypt, one pass, chunk by chunk
    digest = hashlib.sha256()
    enc_writer = BlobWriter(tmp_dir, spill_at=spill_bytes)

    def gz_chunks():
        for chunk in gzip_stream(_payload_chunks(payload)):
            digest.update(chunk)
            yield chunk

    aes_gcm_encrypt(gz_chunks(), session_key, iv, enc_writer.write)
    encrypted = enc_writer.finish()
    payload_digest = digest.digest()

    env = etree.Element(S12 + "Envelope", nsmap={"S12": NS_S12})
    header = etree.SubElement(env, S12 + "Header")
    sec = etree.SubElement(header, WSSE + "Security", {S12 + "mustUnderstand": "true"},
                           nsmap={"wsse": NS_WSSE, "wsu": NS_WSU})
    make_bst(sec, receiver_cert, ids["bst-recv"])
    make_encrypted_key(sec, receiver_cert, ids["bst-recv"], ids["ek"], session_key, [ids["ed"]])
    make_encrypted_data(sec, ids["ed"], ids["ek"], cid)
    make_bst(sec, signing_cert, ids["bst-sign"])
    messaging = etree.SubElement(header, EB + "Messaging", {S12 + "mustUnderstand": "true", WSU_ID: ids["msg"]},
                                 nsmap={"eb": NS_EB, "wsu": NS_WSU})
    um = etree.SubElement(messaging, EB + "UserMessage")
    mi = etree.SubElement(um, EB + "MessageInfo")
    etree.SubElement(mi, EB + "Timestamp").text = format_timestamp(timestamp)
    etree.SubElement(mi, EB + "MessageId").text = message_id
    pi = etree.SubElement(um, EB + "PartyInfo")
    for tag, party, role in (("From", from_party, ROLE_INITIATOR), ("To", to_party, ROLE_RESPONDER)):
        p = etree.SubElement(pi, EB + tag)
        etree.SubElement(p, EB + "PartyId", {"type": PARTY_ID_TYPE}).text = party
        etree.SubElement(p, EB + "Role").text = role
    ci = etree.SubElement(um, EB + "CollaborationInfo")
    etree.SubElement(ci, EB + "AgreementRef").text = AGREEMENT_REF
    svc = etree.SubElement(ci, EB + "Service", {"type": service_type} if service_type else {})
    svc.text = service
    etree.SubElement(ci, EB + "Action").text = action
    etree.SubElement(ci, EB + "ConversationId").text = conversation_id
    mp = etree.SubElement(um, EB + "MessageProperties")
    for name, value in ((PROP_ORIGINAL_SENDER, original_sender), (PROP_FINAL_RECIPIENT, final_recipient)):
        etree.SubElement(mp, EB + "Property", {"name": name, "type": PARTICIPANT_SCHEME}).text = value
    pl = etree.SubElement(um, EB + "PayloadInfo")
    part = etree.SubElement(pl, EB + "PartInfo", {"href": "cid:" + cid})
    pp = etree.SubElement(part, EB + "PartProperties")
    etree.SubElement(pp, EB + "Property", {"name": "MimeType"}).text = mime_type
    etree.SubElement(pp, EB + "Property", {"name": "CompressionType"}).text = COMPRESSION_GZIP
    body = etree.SubElement(env, S12 + "Body", {WSU_ID: ids["body"]}, nsmap={"wsu": NS_WSU})

    _, refs = make_signature(sec, signing_key, ids["bst-sign"], ids["sig"],
                             [(ids["msg"], messaging), (ids["body"], body)], [(cid, payload_digest)],
                             ids["ki"], ids["str"])
    soap = etree.tostring(env, xml_declaration=True, encoding="UTF-8")

    out = BlobWriter(tmp_dir, spill_at=spill_bytes)
    write_multipart(out, boundary, soap, [(cid, encrypted)])
    encrypted.close()
    return OutboundMessage(message_id, conversation_id, multipart_content_type(boundary), out.finish(), soap,
                           refs, payload_digest)


# ------------------------------------------------------------------------------------------------
# inbound
# ------------------------------------------------------------------------------------------------

@dataclass
class ReceivedMessage:
    """A verified, decrypted, decompressed and SBDH-checked UserMessage.

    `payload` is the SBD document (SBDH + business document) in memory or a temp file we own:
    call `close()` (or move it with `payload.save_to`) when done. `reference_xml` are the sender's
    ds:Reference elements as received, for the receipt's NonRepudiationInformation.
    """

    header: UserMessageHeader
    signer_certificate: x509.Certificate
    signed_references: list[SignedReference]
    reference_xml: list[bytes]
    sbdh: sbdh_mod.Sbdh | None
    payload: Blob
    extra_payloads: list[tuple[str, Blob]]
    soap: bytes
    is_test_message: bool = False
    warnings: tuple[str, ...] = ()

    @property
    def message_id(self) -> str:
        return self.header.message_id

    def business_document(self, tmp_dir=None) -> Blob:
        """The business document cut out of the SBD (namespaces it inherited are re-declared)."""
        return sbdh_mod.unwrap_business_document(self.payload, tmp_dir)

    def close(self) -> None:
        self.payload.close()
        for _, b in self.extra_payloads:
            b.close()


def same_message(stored: list[SignedReference], received: list[SignedReference]) -> bool:
    """True when a message with an already-seen MessageId is a retry of the same message (identical
    signed digests, as AS4 retries must be) rather than a conflicting reuse of the id."""
    key = lambda refs: sorted((r.uri, r.digest_method, r.digest_value) for r in refs)  # noqa: E731
    return key(stored) == key(received)


def _trust_checker(trust: TrustStore | Callable[[x509.Certificate], None], now: dt.datetime):
    if callable(trust) and not isinstance(trust, TrustStore):
        return trust

    def check(cert: x509.Certificate) -> None:
        try:
            trust.verify(cert, at=now)
        except CertificateError as exc:
            raise failed_authentication(f"signing certificate rejected: {exc}", f"certificate-{exc.code}")
        try:
            ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
            if not ku.digital_signature:
                raise failed_authentication("signing certificate lacks the digitalSignature key usage",
                                            "certificate-key-usage")
        except x509.ExtensionNotFound:
            pass

    return check


def _read_source(body, content_type, limits, tmp_dir) -> MimeMessage:
    mtype, _ = parse_content_type(content_type or "")
    if mtype == "application/soap+xml":
        if isinstance(body, Path):
            with open(body, "rb") as fh:  # never more than the cap into memory
                data = fh.read(limits.max_soap_bytes + 1)
        else:
            data = body if isinstance(body, (bytes, bytearray)) else body.read(limits.max_soap_bytes + 1)
        if len(data) > limits.max_soap_bytes:
            raise mime_inconsistency("SOAP message too large", "soap-size")
        return MimeMessage(bytes(data), {"content-type": content_type}, [])
    return parse_multipart(body, content_type, limits, tmp_dir)


def _single(root: etree._Element, tag: str, parent: etree._Element, what: str) -> etree._Element | None:
    """The one `tag` element, which must be a direct child of `parent`; extra or moved copies
    anywhere in the envelope are a wrapping attempt."""
    found = list(root.iter(tag))
    if not found:
        return None
    if len(found) > 1 or found[0].getparent() is not parent:
        raise failed_authentication(f"{what} must occur exactly once, directly under {etree.QName(parent).localname}"
                                    " (extra or moved copy found)", "wrapping")
    return found[0]


def receive_user_message(
    body: bytes | BinaryIO | Path,
    content_type: str,
    our_key: rsa.RSAPrivateKey,
    our_cert: x509.Certificate,
    trust: TrustStore | Callable[[x509.Certificate], None],
    now: dt.datetime,
    limits: Limits | None = None,
    *,
    caps: Limits | None = None,
    tmp_dir: Path | str | None = None,
    check_to_party: bool = True,
) -> ReceivedMessage:
    """Verify, decrypt and unpack a received Peppol AS4 UserMessage, or raise EbmsError (with
    `ref_to_message_id` set whenever the MessageId could be read). `caps` is an alias of `limits`."""
    limits = limits or caps or DEFAULT_LIMITS
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    mime = _read_source(body, content_type, limits, tmp_dir)
    msg_id = None
    keep: list[Blob] = []
    try:
        try:
            root = parse_xml(mime.soap, what="SOAP envelope")
        except UnsafeXmlError as exc:
            raise invalid_header(str(exc), "soap-xml")
        msg_id = message_id_hint(root)
        result = _receive(root, mime, our_key, our_cert, _trust_checker(trust, now), limits, tmp_dir,
                          check_to_party, keep)
        return result
    except EbmsError as exc:
        for b in keep:
            b.close()
        raise exc.with_ref(msg_id)
    finally:
        mime.close()


def _receive(root, mime: MimeMessage, our_key, our_cert, check_cert, limits: Limits, tmp_dir,
             check_to_party: bool, keep: list[Blob]) -> ReceivedMessage:
    # --- 2/3: SOAP and ebMS structure ------------------------------------------------------------
    if root.tag != S12 + "Envelope":
        raise invalid_header(f"root element {root.tag} is not a SOAP 1.2 Envelope", "soap-version")
    header_el = root.find(S12 + "Header")
    if header_el is None:
        raise invalid_header("SOAP Header missing", "soap-header")
    messaging = _single(root, EB + "Messaging", header_el, "eb:Messaging")
    if messaging is None:
        raise invalid_header("eb:Messaging header missing", "messaging")
    body_el = _single(root, S12 + "Body", root, "S12:Body")
    if body_el is None:
        raise invalid_header("SOAP Body missing", "soap-body")
    for block in header_el:
        if isinstance(block.tag, str) and block is not messaging and block.tag != WSSE + "Security" \
                and block.get(S12 + "mustUnderstand") in ("true", "1"):
            raise invalid_header(f"header block {block.tag} must be understood but is not supported",
                                 "must-understand")
    hdr = read_header(messaging)
    for part in hdr.parts:
        ctype = part.prop("CompressionType")
        if ctype is not None and ctype != COMPRESSION_GZIP:
            raise value_inconsistent(f"CompressionType {ctype!r} is not application/gzip", "compression-type")
    att_by_cid: dict[str, MimePart] = {}
    for att in mime.attachments:
        cid = att.content_id
        if not cid:
            raise mime_inconsistency("attachment without Content-ID", "content-id")
        if cid in att_by_cid:
            raise mime_inconsistency(f"Content-ID {cid!r} used twice", "content-id")
        att_by_cid[cid] = att
    hrefs = [p.href for p in hdr.parts if p.href]
    for href in hrefs:
        if not href.startswith("cid:"):
            raise EbmsError("EBMS:0011", f"PartInfo href {href!r} is not a cid: attachment reference",
                            check="external-payload")
    cids = [h[4:] for h in hrefs]
    if len(set(cids)) != len(cids):
        raise value_inconsistent("two PartInfo elements reference the same attachment", "duplicate-partinfo")
    for cid in cids:
        if cid not in att_by_cid:
            raise EbmsError("EBMS:0011", f"PartInfo cid:{cid} has no MIME attachment", check="partinfo-without-part")
    for cid in att_by_cid:
        if cid not in cids:
            raise EbmsError("EBMS:0011", f"MIME attachment {cid!r} has no PartInfo", check="part-without-partinfo")
    attachment_cids = [a.content_id for a in mime.attachments]

    # --- 4: WS-Security ---------------------------------------------------------------------------
    security = _single(root, WSSE + "Security", header_el, "wsse:Security")
    if security is None:
        raise EbmsError("EBMS:0103", "message is not signed (no wsse:Security header)", check="unsigned")
    ids = index_ids(root)
    verified: VerifiedSignature = verify_signature(root, security, messaging=messaging, body=body_el,
                                                   attachment_cids=attachment_cids,
                                                   check_certificate=check_cert, ids=ids)
    cn = common_name(verified.certificate)
    if hdr.from_party_ids and hdr.from_party != cn:
        raise failed_authentication(f"From PartyId {hdr.from_party!r} does not match the signing certificate "
                                    f"CN {cn!r}", "from-party-cn")
    enc = parse_encryption(security, attachment_cids, our_cert, ids) if attachment_cids else None
    if enc is None:
        raise EbmsError("EBMS:0011", "message carries no payload attachment (Peppol payloads must be MIME "
                        "attachments)", check="no-payload")

    # --- 5: Peppol P-Mode ------------------------------------------------------------------------
    is_test = _check_pmode(hdr, body_el, our_cert if check_to_party else None)

    # --- 6/7: decrypt, digest, decompress ---------------------------------------------------------
    key = decrypt_session_key(enc, our_key)
    payloads: list[tuple[str, Blob]] = []
    for att in mime.attachments:
        cid = att.content_id
        h = hashlib.sha256()
        try:
            plain = aes_gcm_decrypt_blob(att.blob, key, tmp_dir, limits.spill_bytes, on_plain=h.update)
        except DecryptError as exc:
            raise failed_decryption(f"attachment {cid}: {exc}", "payload-decryption")
        keep.append(plain)
        if h.digest() != verified.attachment_digests[cid]:
            raise failed_decryption(f"attachment {cid} does not match its signed digest (altered after signing)",
                                    "payload-digest")
        try:
            unzipped = gunzip_blob(plain, limits.max_decompressed_bytes, tmp_dir, limits.spill_bytes)
        except DecompressError as exc:
            raise EbmsError("EBMS:0303", f"attachment {cid}: {exc}",
                            check="decompression-bomb" if exc.too_large else "decompression")
        finally:
            plain.close()
        keep.append(unzipped)
        payloads.append((cid, unzipped))

    # --- 8: SBDH ----------------------------------------------------------------------------------
    first = payloads[0][1]
    try:
        sb = sbdh_mod.read_sbdh(first, limits.max_sbdh_header_bytes, limits.sbdh_full_parse_bytes)
    except sbdh_mod.SbdhError as exc:
        raise EbmsError("EBMS:0004", f"invalid SBDH: {exc.message}", check=f"sbdh-{exc.code}")
    if not is_test:
        _cross_check(hdr, sb)
    ref_xml = [etree.tostring(r) for r in verified.reference_elements]
    return ReceivedMessage(
        header=hdr, signer_certificate=verified.certificate, signed_references=verified.references,
        reference_xml=ref_xml, sbdh=sb, payload=first, extra_payloads=payloads[1:], soap=mime.soap,
        is_test_message=is_test, warnings=sb.warnings,
    )


def _check_pmode(hdr: UserMessageHeader, body_el, our_cert: x509.Certificate | None) -> bool:
    for label, ids, role, want in (("From", hdr.from_party_ids, hdr.from_role, ROLE_INITIATOR),
                                   ("To", hdr.to_party_ids, hdr.to_role, ROLE_RESPONDER)):
        if not ids or not ids[0][0]:
            raise invalid_header(f"{label}/PartyId is missing", "party-id")
        if len(ids) != 1:
            raise pmode_mismatch(f"{label} must carry exactly one PartyId", "party-id-count")
        if ids[0][1] != PARTY_ID_TYPE:
            raise pmode_mismatch(f"{label}/PartyId type {ids[0][1]!r} is not {PARTY_ID_TYPE}", "party-id-type")
        if role != want:
            raise pmode_mismatch(f"{label}/Role {role!r} is not {want}", "role")
    if our_cert is not None and hdr.to_party != common_name(our_cert):
        raise pmode_mismatch(f"message is addressed to {hdr.to_party!r}, not to this access point "
                             f"({common_name(our_cert)})", "to-party")
    if hdr.agreement_ref != AGREEMENT_REF:
        raise pmode_mismatch(f"AgreementRef {hdr.agreement_ref!r} is not {AGREEMENT_REF}", "agreement-ref")
    if hdr.agreement_ref_attrs:
        raise pmode_mismatch("AgreementRef must not carry type or pmode attributes", "agreement-ref")
    if hdr.mpc is not None and hdr.mpc != DEFAULT_MPC:
        raise pmode_mismatch(f"MPC {hdr.mpc!r} is not the default MPC", "mpc")
    if hdr.ref_to_message_id:
        raise pmode_mismatch("a One-Way UserMessage must not carry RefToMessageId", "mep")
    if not TIMESTAMP_RE.match(hdr.timestamp):
        raise invalid_header(f"eb:Timestamp {hdr.timestamp!r} is not an xs:dateTime", "timestamp")
    if not hdr.service:
        raise invalid_header("eb:Service is missing", "service")
    if not hdr.action:
        raise invalid_header("eb:Action is missing", "action")
    if not hdr.conversation_id:
        raise invalid_header("eb:ConversationId is missing", "conversation-id")
    is_test = hdr.service == TEST_SERVICE and hdr.action == TEST_ACTION
    if not is_test and not hdr.service_type:
        raise pmode_mismatch("eb:Service must carry the process identifier scheme as @type", "service-type")
    names = [p.name for p in hdr.properties]
    if PROP_TRACKING_IDENTIFIER in names:
        raise EbmsError("EBMS:0004", "the trackingIdentifier property must not be used in Peppol",
                        check="tracking-identifier")
    for name in (PROP_ORIGINAL_SENDER, PROP_FINAL_RECIPIENT):
        props = [p for p in hdr.properties if p.name == name]
        if len(props) != 1 or not props[0].value:
            raise EbmsError("EBMS:0004", f"MessageProperty {name} must occur exactly once with a value",
                            check="message-properties")
        if not props[0].type:
            raise EbmsError("EBMS:0004", f"MessageProperty {name} has no type", check="message-properties")
    if len(body_el) or (body_el.text or "").strip():
        raise value_inconsistent("the SOAP Body must be empty: Peppol payloads are MIME attachments", "body-payload")
    for part in hdr.parts:
        if not part.href:
            raise value_inconsistent("PartInfo without href (payload in the SOAP Body) is not allowed", "body-payload")
        if part.prop("CompressionType") is None:
            raise value_inconsistent(f"PartInfo {part.href} lacks CompressionType application/gzip",
                                     "compression-type")
        if not part.prop("MimeType"):
            raise value_inconsistent(f"PartInfo {part.href} lacks the MimeType property", "mime-type")
    return is_test


def _cross_check(hdr: UserMessageHeader, sb: sbdh_mod.Sbdh) -> None:
    def mismatch(what: str, header_value: str, sbdh_value: str) -> EbmsError:
        return EbmsError("EBMS:0004", f"SBDH {what} {sbdh_value!r} does not match the AS4 header {header_value!r}",
                         check="sbdh-header-mismatch")

    osender, frecip = hdr.get_property(PROP_ORIGINAL_SENDER), hdr.get_property(PROP_FINAL_RECIPIENT)
    if osender.type != sb.sender_authority or osender.value.lower() != sb.sender.lower():
        raise mismatch("Sender", f"{osender.type}::{osender.value}", f"{sb.sender_authority}::{sb.sender}")
    if frecip.type != sb.receiver_authority or frecip.value.lower() != sb.receiver.lower():
        raise mismatch("Receiver", f"{frecip.type}::{frecip.value}", f"{sb.receiver_authority}::{sb.receiver}")
    if hdr.action != sb.action:
        raise mismatch("DOCUMENTID", hdr.action, sb.action)
    if hdr.service != sb.process_id or (hdr.service_type or "") != sb.process_scheme:
        raise mismatch("PROCESSID", f"{hdr.service_type}::{hdr.service}", f"{sb.process_scheme}::{sb.process_id}")
