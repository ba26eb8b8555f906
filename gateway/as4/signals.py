"""Signal messages: the signed NRR Receipt and signed eb:Error signals we answer with, and
parsing/verification of the signals a receiving AP returns to us.

A Receipt echoes every ds:Reference of the received message's signature as
ebbp:MessagePartNRInformation (exact copies), and is itself signed over eb:Messaging and Body.
Verifying a receipt checks: SOAP 1.2, one SignalMessage, signature by exactly the receiving AP's
certificate and covering its Messaging and Body (same wrapping defences as for UserMessages),
RefToMessageId = our MessageId, and that the acknowledged digests are exactly the ones we signed.
Any failure is EBMS:0302 InvalidReceipt.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from certs.trust import CertificateError, TrustStore

from .constants import NS_DS, NS_EB, NS_EBBP, NS_S11, NS_S12, NS_WSSE, NS_WSU, NS_XML, WSU_ID
from .errors import EbmsError
from .mime import parse_content_type, parse_multipart
from .usermessage import OutboundMessage, format_timestamp
from .wssec import SignedReference, index_ids, make_bst, make_signature, verify_signature
from .xml import UnsafeXmlError, parse_xml, text

S12 = "{%s}" % NS_S12
EB = "{%s}" % NS_EB
EBBP = "{%s}" % NS_EBBP
DS = "{%s}" % NS_DS
WSSE = "{%s}" % NS_WSSE

SIGNAL_CONTENT_TYPE = "application/soap+xml; charset=UTF-8"


# ------------------------------------------------------------------------------------------------
# building (receiver side)
# ------------------------------------------------------------------------------------------------

def _signal_envelope(message_id: str, timestamp: dt.datetime, ref_to: str | None, seed: str):
    env = etree.Element(S12 + "Envelope", nsmap={"S12": NS_S12})
    header = etree.SubElement(env, S12 + "Header")
    sec = etree.SubElement(header, WSSE + "Security", {S12 + "mustUnderstand": "true"},
                           nsmap={"wsse": NS_WSSE, "wsu": NS_WSU})
    messaging = etree.SubElement(header, EB + "Messaging", {S12 + "mustUnderstand": "true", WSU_ID: f"msg-{seed}"},
                                 nsmap={"eb": NS_EB, "wsu": NS_WSU})
    sm = etree.SubElement(messaging, EB + "SignalMessage")
    mi = etree.SubElement(sm, EB + "MessageInfo")
    etree.SubElement(mi, EB + "Timestamp").text = format_timestamp(timestamp)
    etree.SubElement(mi, EB + "MessageId").text = message_id
    if ref_to:
        etree.SubElement(mi, EB + "RefToMessageId").text = ref_to
    body = etree.SubElement(env, S12 + "Body", {WSU_ID: f"body-{seed}"}, nsmap={"wsu": NS_WSU})
    return env, sec, messaging, sm, body


def _sign_signal(env, sec, messaging, body, seed: str, key: rsa.RSAPrivateKey, cert: x509.Certificate) -> bytes:
    make_bst(sec, cert, f"bst-{seed}")
    make_signature(sec, key, f"bst-{seed}", f"sig-{seed}", [(f"msg-{seed}", messaging), (f"body-{seed}", body)], [],
                   f"ki-{seed}", f"str-{seed}")
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


def build_receipt(
    ref_to_message_id: str,
    reference_xml: Sequence[bytes],
    *,
    message_id: str,
    timestamp: dt.datetime,
    signing_key: rsa.RSAPrivateKey,
    signing_cert: x509.Certificate,
    random: Callable[[int], bytes] = os.urandom,
) -> bytes:
    """A signed NRR Receipt for a received UserMessage (`ReceivedMessage.message_id` and
    `.reference_xml`). Build it, persist message + receipt, then send it (HTTP 200,
    Content-Type SIGNAL_CONTENT_TYPE)."""
    if not reference_xml:
        raise ValueError("a non-repudiation receipt needs the signed references of the message")
    seed = random(16).hex()
    env, sec, messaging, sm, body = _signal_envelope(message_id, timestamp, ref_to_message_id, seed)
    receipt = etree.SubElement(sm, EB + "Receipt")
    nri = etree.SubElement(receipt, EBBP + "NonRepudiationInformation", nsmap={"ebbp": NS_EBBP})
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    for raw in reference_xml:
        part = etree.SubElement(nri, EBBP + "MessagePartNRInformation")
        ref = etree.fromstring(raw, parser)
        if ref.tag != DS + "Reference":
            raise ValueError("reference_xml must hold ds:Reference elements")
        part.append(ref)
    return _sign_signal(env, sec, messaging, body, seed, signing_key, signing_cert)


def build_error_signal(
    errors: EbmsError | Iterable[EbmsError],
    *,
    message_id: str,
    timestamp: dt.datetime,
    signing_key: rsa.RSAPrivateKey,
    signing_cert: x509.Certificate,
    ref_to_message_id: str | None = None,
    random: Callable[[int], bytes] = os.urandom,
) -> bytes:
    """A signed eb:Error signal for one or more EbmsErrors (RefToMessageId = the offending
    MessageId when known)."""
    errs = [errors] if isinstance(errors, EbmsError) else list(errors)
    if not errs:
        raise ValueError("no errors")
    ref = ref_to_message_id or next((e.ref_to_message_id for e in errs if e.ref_to_message_id), None)
    seed = random(16).hex()
    env, sec, messaging, sm, body = _signal_envelope(message_id, timestamp, ref, seed)
    for e in errs:
        attrs = {"errorCode": e.code, "severity": e.severity, "category": e.category, "origin": "ebMS",
                 "shortDescription": e.short_description}
        if e.ref_to_message_id or ref:
            attrs["refToMessageInError"] = e.ref_to_message_id or ref
        el = etree.SubElement(sm, EB + "Error", attrs)
        etree.SubElement(el, EB + "Description", {"{%s}lang" % NS_XML: "en"}).text = e.reason
        etree.SubElement(el, EB + "ErrorDetail").text = e.detail
    return _sign_signal(env, sec, messaging, body, seed, signing_key, signing_cert)


# ------------------------------------------------------------------------------------------------
# parsing / verification (sender side)
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SignalError:
    code: str
    severity: str
    category: str
    short_description: str
    description: str
    detail: str
    ref_to_message_in_error: str | None

    @property
    def is_not_serviced(self) -> bool:
        return self.code == "EBMS:0004" and "PEPPOL:NOT_SERVICED" in (self.detail or "")


@dataclass
class Signal:
    """A parsed signal. `receipt_references` is set for receipts, `errors` for error signals."""

    message_id: str
    timestamp: str
    ref_to_message_id: str | None
    is_receipt: bool
    receipt_references: list[SignedReference] = field(default_factory=list)
    errors: list[SignalError] = field(default_factory=list)
    signer_certificate: x509.Certificate | None = None
    signature_verified: bool = False
    raw: bytes = b""


Receipt = Signal


def _invalid(reason: str, check: str) -> EbmsError:
    return EbmsError("EBMS:0302", reason, check=check)


def _soap_of(body: bytes, content_type: str | None) -> bytes:
    if content_type:
        mtype, _ = parse_content_type(content_type)
        if mtype == "multipart/related":
            mime = parse_multipart(body, content_type)
            mime.close()
            return mime.soap
    return body


def parse_signal(
    body: bytes,
    *,
    check_certificate: Callable[[x509.Certificate], None] | None,
    content_type: str | None = None,
) -> Signal:
    """Parse a Receipt or Error signal. With `check_certificate` the signature is required and
    verified (raising EBMS:0302 on any problem); without it the signal is parsed unverified."""
    soap = _soap_of(body, content_type)
    try:
        root = parse_xml(soap, what="signal")
    except UnsafeXmlError as exc:
        raise _invalid(str(exc), "signal-xml")
    if root.tag == "{%s}Envelope" % NS_S11:
        raise _invalid("SOAP 1.1 signal: Peppol requires SOAP 1.2", "soap-version")
    if root.tag != S12 + "Envelope":
        raise _invalid(f"signal root {root.tag} is not a SOAP 1.2 Envelope", "soap-version")
    header = root.find(S12 + "Header")
    msgs = list(root.iter(EB + "Messaging"))
    bodies = list(root.iter(S12 + "Body"))
    if header is None or len(msgs) != 1 or msgs[0].getparent() is not header:
        raise _invalid("signal must carry exactly one eb:Messaging directly in the SOAP Header", "messaging")
    if len(bodies) != 1 or bodies[0].getparent() is not root:
        raise _invalid("signal must carry exactly one S12:Body", "soap-body")
    messaging, body_el = msgs[0], bodies[0]
    sms = messaging.findall(EB + "SignalMessage")
    if len(sms) != 1 or messaging.findall(EB + "UserMessage"):
        raise _invalid("expected exactly one eb:SignalMessage", "signal-count")
    sm = sms[0]
    mi = sm.find(EB + "MessageInfo")
    sig = Signal(message_id=text(mi.find(EB + "MessageId")) if mi is not None else "",
                 timestamp=text(mi.find(EB + "Timestamp")) if mi is not None else "",
                 ref_to_message_id=(text(mi.find(EB + "RefToMessageId")) or None) if mi is not None else None,
                 is_receipt=sm.find(EB + "Receipt") is not None, raw=soap)
    for e in sm.findall(EB + "Error"):
        sig.errors.append(SignalError(
            code=e.get("errorCode") or "", severity=e.get("severity") or "", category=e.get("category") or "",
            short_description=e.get("shortDescription") or "", description=text(e.find(EB + "Description")),
            detail=text(e.find(EB + "ErrorDetail")), ref_to_message_in_error=e.get("refToMessageInError")))
    if sig.is_receipt and sig.errors:
        raise _invalid("signal carries both a Receipt and Errors", "signal-count")
    if not sig.is_receipt and not sig.errors:
        raise _invalid("signal is neither a Receipt nor an Error", "signal-kind")
    if sig.is_receipt:
        receipt = sm.find(EB + "Receipt")
        nri = receipt.find(EBBP + "NonRepudiationInformation")
        if nri is None:
            raise _invalid("Receipt has no ebbp:NonRepudiationInformation (not a Peppol NRR receipt)", "nri")
        for part in nri.findall(EBBP + "MessagePartNRInformation"):
            ref = part.find(DS + "Reference")
            if ref is None:
                raise _invalid("MessagePartNRInformation without ds:Reference", "nri")
            transforms = tuple(t.get("Algorithm") or "" for t in ref.findall(DS + "Transforms/" + DS + "Transform"))
            dm = ref.find(DS + "DigestMethod")
            sig.receipt_references.append(SignedReference(
                ref.get("URI") or "", dm.get("Algorithm") if dm is not None else "",
                "".join(text(ref.find(DS + "DigestValue")).split()), transforms))
        if not sig.receipt_references:
            raise _invalid("Receipt acknowledges no message parts", "nri")
    if check_certificate is not None:
        security = root.find(S12 + "Header/" + WSSE + "Security")
        if security is None or len(list(root.iter(WSSE + "Security"))) != 1:
            raise _invalid("signal is not signed (exactly one wsse:Security expected)", "unsigned")
        try:
            v = verify_signature(root, security, messaging=messaging, body=body_el, attachment_cids=[],
                                 check_certificate=check_certificate, ids=index_ids(root))
        except EbmsError as exc:
            raise _invalid(f"signal signature: {exc.reason}", exc.check or "signature")
        sig.signer_certificate = v.certificate
        sig.signature_verified = True
    return sig


def certificate_checker(receiver_cert: x509.Certificate | None = None, trust: TrustStore | None = None,
                        now: dt.datetime | None = None) -> Callable[[x509.Certificate], None]:
    """Accept exactly `receiver_cert` (the SMP endpoint certificate) and/or a chain to `trust` at `now`."""
    if receiver_cert is None and trust is None:
        raise ValueError("need the receiver certificate or a trust store")

    def check(cert: x509.Certificate) -> None:
        if receiver_cert is not None and cert.public_bytes(serialization.Encoding.DER) != \
                receiver_cert.public_bytes(serialization.Encoding.DER):
            raise EbmsError("EBMS:0101", f"signed by {cert.subject.rfc4514_string()}, not by the receiving AP "
                            f"{receiver_cert.subject.rfc4514_string()}", check="unexpected-signer")
        if trust is not None:
            if now is None:
                raise ValueError("`now` is required with a trust store")
            try:
                trust.verify(cert, at=now)
            except CertificateError as exc:
                raise EbmsError("EBMS:0101", f"signer not trusted: {exc}", check=f"certificate-{exc.code}")

    return check


def verify_receipt(
    body: bytes,
    receiver_cert: x509.Certificate | None,
    sent_message_id: "str | OutboundMessage | None",
    sent_references: Sequence[SignedReference] | None = None,
    *,
    trust: TrustStore | None = None,
    now: dt.datetime | None = None,
    content_type: str | None = None,
) -> Signal:
    """Verify the synchronous answer to a UserMessage we sent.

    Returns the verified Receipt. An eb:Error answer raises EbmsError(peer=True) with the peer's
    code (check `.is_not_serviced`; `.authenticated` is False when the error signal was unsigned or
    its signature did not verify; `.signal` holds the parsed signal); an invalid receipt raises
    EbmsError EBMS:0302.
    `sent_message_id` may be the OutboundMessage itself (its MessageId and signed references are
    used). `sent_references=None` with a plain id skips the NRI comparison (only for checking
    foreign receipts).
    """
    if isinstance(sent_message_id, OutboundMessage):
        sent_references = sent_message_id.signed_references if sent_references is None else sent_references
        sent_message_id = sent_message_id.message_id
    checker = certificate_checker(receiver_cert, trust, now)
    unverified = parse_signal(body, check_certificate=None, content_type=content_type)
    if unverified.errors:
        # Report the peer's error even when it is unsigned or signed by someone else (some APs send
        # unsigned error signals); `authenticated` tells the caller whether to trust it as final.
        try:
            sig = parse_signal(body, check_certificate=checker, content_type=content_type)
            authenticated = True
        except EbmsError:
            sig, authenticated = unverified, False
        first = sig.errors[0]
        err = EbmsError(first.code, first.description or first.short_description, check="peer-error",
                        detail=first.detail, severity=first.severity, ref_to_message_id=sig.ref_to_message_id,
                        peer=True, short_description=first.short_description, category_override=first.category)
        err.authenticated = authenticated
        err.signal = sig
        raise err
    sig = parse_signal(body, check_certificate=checker, content_type=content_type)
    if sent_message_id is not None and sig.ref_to_message_id != sent_message_id:
        raise _invalid(f"receipt refers to {sig.ref_to_message_id!r}, not to {sent_message_id!r}", "ref-to-message-id")
    if sent_references is not None:
        want = {(r.uri, r.digest_method, r.digest_value) for r in sent_references}
        got = {(r.uri, r.digest_method, r.digest_value) for r in sig.receipt_references}
        if got != want:
            missing = sorted(u for u, _, _ in want - got)
            extra = sorted(u for u, _, _ in got - want)
            raise _invalid(f"receipt digests differ from what we signed (missing/different: {missing}, "
                           f"unknown: {extra})", "nri-mismatch")
    return sig
