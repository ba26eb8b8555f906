"""WS-Security 1.1.1 for Peppol AS4: BinarySecurityToken, XML signature (RSA-SHA256, exc-c14n)
over eb:Messaging, the SOAP Body and every attachment, and attachment encryption (AES-128-GCM with
RSA-OAEP/MGF1-SHA256 key transport).

Verification is strict by design (signature-wrapping defence): all Ids in the envelope must be
unique, each `#id` reference must resolve to the very eb:Messaging / S12:Body element the caller
processes, the reference set must be exactly {Messaging, Body, every attachment}, and only the Peppol
algorithms are accepted. The signing certificate comes only from a BST inside the same wsse:Security.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from typing import Callable, Iterable

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from .constants import (
    BST_ENCODING_BASE64, BST_VALUE_TYPE_X509V3, C14N_EXC, DIGEST_SHA256, ENC_AES128_GCM,
    ENC_TYPE_ATTACHMENT_CONTENT_ONLY, KEYID_SKI, KT_RSA_OAEP, MGF1_SHA256, NS_DS, NS_EC, NS_WSSE,
    NS_WSSE11, NS_XENC, NS_XENC11, SIG_RSA_SHA256, TOKEN_TYPE_ENCRYPTED_KEY,
    TRANSFORM_ATTACHMENT_CIPHERTEXT, TRANSFORM_ATTACHMENT_CONTENT, WSU_ID,
)
from .errors import EbmsError, failed_authentication, failed_decryption, policy_noncompliance
from .xml import c14n, element_ids

DS = "{%s}" % NS_DS
WSSE = "{%s}" % NS_WSSE
XENC = "{%s}" % NS_XENC
XENC11 = "{%s}" % NS_XENC11
EC = "{%s}" % NS_EC

MIN_RSA_BITS = 2048


@dataclass(frozen=True)
class SignedReference:
    """One ds:Reference as signed: what the NRR receipt must echo back."""

    uri: str
    digest_method: str
    digest_value: str  # base64, whitespace removed
    transforms: tuple[str, ...]

    @property
    def digest(self) -> bytes:
        return base64.b64decode(self.digest_value)


@dataclass
class VerifiedSignature:
    certificate: x509.Certificate
    references: list[SignedReference]
    reference_elements: list[etree._Element]  # the ds:Reference elements as received (for NRI)
    attachment_digests: dict[str, bytes] = field(default_factory=dict)  # cid -> expected SHA-256


def _b64(text: str | None) -> bytes:
    try:
        return base64.b64decode("".join((text or "").split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"invalid base64: {exc}") from exc


def _sub(parent: etree._Element, tag: str, attrib: dict | None = None, text: str | None = None) -> etree._Element:
    el = etree.SubElement(parent, tag, attrib or {})
    if text is not None:
        el.text = text
    return el


# ------------------------------------------------------------------------------------------------
# building
# ------------------------------------------------------------------------------------------------

def make_bst(parent: etree._Element, cert: x509.Certificate, bst_id: str) -> etree._Element:
    return _sub(parent, WSSE + "BinarySecurityToken",
                {"EncodingType": BST_ENCODING_BASE64, "ValueType": BST_VALUE_TYPE_X509V3, WSU_ID: bst_id},
                base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii"))


def digest_element(el: etree._Element, prefixes: list[str] | None = None) -> bytes:
    return hashlib.sha256(c14n(el, prefixes)).digest()


def make_signature(parent: etree._Element, key: rsa.RSAPrivateKey, bst_id: str, sig_id: str,
                   xml_refs: Iterable[tuple[str, etree._Element]],
                   cid_refs: Iterable[tuple[str, bytes]], key_info_id: str, str_id: str
                   ) -> tuple[etree._Element, list[SignedReference]]:
    """Append a ds:Signature to `parent` (the wsse:Security header).

    `xml_refs` are (wsu:Id, element) pairs digested with exc-c14n in place; `cid_refs` are
    (content-id, SHA-256 of the attachment content) pairs with the SwA content transform.
    """
    sig = _sub(parent, DS + "Signature", {"Id": sig_id})
    si = _sub(sig, DS + "SignedInfo")
    _sub(si, DS + "CanonicalizationMethod", {"Algorithm": C14N_EXC})
    _sub(si, DS + "SignatureMethod", {"Algorithm": SIG_RSA_SHA256})
    signed: list[SignedReference] = []

    def add_ref(uri: str, transform: str, digest: bytes) -> None:
        ref = _sub(si, DS + "Reference", {"URI": uri})
        tr = _sub(ref, DS + "Transforms")
        _sub(tr, DS + "Transform", {"Algorithm": transform})
        _sub(ref, DS + "DigestMethod", {"Algorithm": DIGEST_SHA256})
        value = base64.b64encode(digest).decode("ascii")
        _sub(ref, DS + "DigestValue", text=value)
        signed.append(SignedReference(uri, DIGEST_SHA256, value, (transform,)))

    for ident, el in xml_refs:
        add_ref("#" + ident, C14N_EXC, digest_element(el))
    for cid, digest in cid_refs:
        add_ref("cid:" + cid, TRANSFORM_ATTACHMENT_CONTENT, digest)
    value = key.sign(c14n(si), padding.PKCS1v15(), hashes.SHA256())
    _sub(sig, DS + "SignatureValue", text=base64.b64encode(value).decode("ascii"))
    ki = _sub(sig, DS + "KeyInfo", {"Id": key_info_id})
    st = _sub(ki, WSSE + "SecurityTokenReference", {WSU_ID: str_id})
    _sub(st, WSSE + "Reference", {"URI": "#" + bst_id, "ValueType": BST_VALUE_TYPE_X509V3})
    return sig, signed


def oaep() -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def make_encrypted_key(parent: etree._Element, receiver_cert: x509.Certificate, receiver_bst_id: str,
                       ek_id: str, session_key: bytes, data_ids: Iterable[str]) -> etree._Element:
    pub = receiver_cert.public_key()
    if not isinstance(pub, rsa.RSAPublicKey):
        raise ValueError("receiver certificate has no RSA key")
    ek = _sub(parent, XENC + "EncryptedKey", {"Id": ek_id})
    em = _sub(ek, XENC + "EncryptionMethod", {"Algorithm": KT_RSA_OAEP})
    _sub(em, DS + "DigestMethod", {"Algorithm": DIGEST_SHA256})
    _sub(em, XENC11 + "MGF", {"Algorithm": MGF1_SHA256})
    ki = _sub(ek, DS + "KeyInfo")
    st = _sub(ki, WSSE + "SecurityTokenReference")
    _sub(st, WSSE + "Reference", {"URI": "#" + receiver_bst_id, "ValueType": BST_VALUE_TYPE_X509V3})
    cd = _sub(ek, XENC + "CipherData")
    _sub(cd, XENC + "CipherValue", text=base64.b64encode(pub.encrypt(session_key, oaep())).decode("ascii"))
    rl = _sub(ek, XENC + "ReferenceList")
    for data_id in data_ids:
        _sub(rl, XENC + "DataReference", {"URI": "#" + data_id})
    return ek


def make_encrypted_data(parent: etree._Element, ed_id: str, ek_id: str, cid: str) -> etree._Element:
    ed = _sub(parent, XENC + "EncryptedData",
              {"Id": ed_id, "MimeType": "application/gzip", "Type": ENC_TYPE_ATTACHMENT_CONTENT_ONLY})
    _sub(ed, XENC + "EncryptionMethod", {"Algorithm": ENC_AES128_GCM})
    ki = _sub(ed, DS + "KeyInfo")
    st = _sub(ki, WSSE + "SecurityTokenReference",
              {"{%s}TokenType" % NS_WSSE11: TOKEN_TYPE_ENCRYPTED_KEY})
    _sub(st, WSSE + "Reference", {"URI": "#" + ek_id})
    cd = _sub(ed, XENC + "CipherData")
    cr = _sub(cd, XENC + "CipherReference", {"URI": "cid:" + cid})
    trs = _sub(cr, XENC + "Transforms")
    _sub(trs, DS + "Transform", {"Algorithm": TRANSFORM_ATTACHMENT_CIPHERTEXT})
    return ed


# ------------------------------------------------------------------------------------------------
# verification
# ------------------------------------------------------------------------------------------------

def index_ids(root: etree._Element) -> dict[str, etree._Element]:
    """Map every Id in the envelope to its element; a repeated Id is a wrapping attempt (0101)."""
    seen: dict[str, etree._Element] = {}
    for value, el in element_ids(root):
        if value in seen and seen[value] is not el:
            raise failed_authentication(f"Id {value!r} occurs more than once in the envelope", "duplicate-id")
        seen[value] = el
    return seen


def _prefix_list(method: etree._Element) -> list[str]:
    prefixes: list[str] = []
    for child in method:
        if not isinstance(child.tag, str):
            continue
        if child.tag != EC + "InclusiveNamespaces":
            raise failed_authentication(f"unexpected element {child.tag} in {method.tag}", "signature-structure")
        prefixes.extend((child.get("PrefixList") or "").split())
    return ["#default" if p == "#default" else p for p in prefixes]


def _children(el: etree._Element) -> list[etree._Element]:
    return [c for c in el if isinstance(c.tag, str)]


def find_bst_certificate(security: etree._Element, uri: str) -> x509.Certificate:
    if not uri.startswith("#"):
        raise failed_authentication(f"signature key reference {uri!r} is not a local BST reference",
                                    "key-reference")
    ident = uri[1:]
    matches = [b for b in security.findall(WSSE + "BinarySecurityToken") if b.get(WSU_ID) == ident]
    if len(matches) != 1:
        raise failed_authentication(f"signature key reference {uri!r} does not resolve to a BinarySecurityToken "
                                    "in this wsse:Security header", "key-reference")
    bst = matches[0]
    if bst.get("ValueType") != BST_VALUE_TYPE_X509V3:
        raise failed_authentication(f"BinarySecurityToken ValueType {bst.get('ValueType')!r} is not X509v3",
                                    "bst-value-type")
    enc = bst.get("EncodingType")
    if enc not in (None, BST_ENCODING_BASE64):
        raise failed_authentication(f"BinarySecurityToken EncodingType {enc!r} not supported", "bst-encoding")
    try:
        return load_certificate_strict(_b64(bst.text))
    except ValueError as exc:
        raise failed_authentication(f"BinarySecurityToken is not an X.509 certificate: {exc}", "bst-certificate")


def load_certificate_strict(der: bytes) -> x509.Certificate:
    """Parse a DER certificate and touch every field we use: `cryptography` parses lazily, so a
    malformed subject or extension would otherwise surface later as an unexpected ValueError."""
    try:
        cert = x509.load_der_x509_certificate(der)
        cert.subject.rfc4514_string()
        cert.issuer.rfc4514_string()
        list(cert.extensions)
        cert.public_key()
        cert.not_valid_before_utc, cert.not_valid_after_utc
        cert.signature_hash_algorithm
    except ValueError:
        raise
    except Exception as exc:  # UnsupportedAlgorithm and friends
        raise ValueError(str(exc)) from exc
    return cert


def signing_certificate(signature: etree._Element, security: etree._Element) -> x509.Certificate:
    key_info = signature.find(DS + "KeyInfo")
    if key_info is None:
        raise failed_authentication("ds:Signature has no KeyInfo", "key-reference")
    kids = _children(key_info)
    if len(kids) != 1 or kids[0].tag != WSSE + "SecurityTokenReference":
        raise failed_authentication("signature KeyInfo must hold exactly one wsse:SecurityTokenReference",
                                    "key-reference")
    refs = _children(kids[0])
    if len(refs) != 1 or refs[0].tag != WSSE + "Reference":
        raise failed_authentication("signature key must be referenced by wsse:Reference to a BinarySecurityToken "
                                    "(KeyIdentifier/IssuerSerial cannot be resolved for a sender)", "key-reference")
    vt = refs[0].get("ValueType")
    if vt not in (None, BST_VALUE_TYPE_X509V3):
        raise failed_authentication(f"security token reference ValueType {vt!r} is not X509v3", "key-reference")
    return find_bst_certificate(security, refs[0].get("URI") or "")


def verify_signature(
    root: etree._Element,
    security: etree._Element,
    *,
    messaging: etree._Element,
    body: etree._Element,
    attachment_cids: list[str],
    check_certificate: Callable[[x509.Certificate], None],
    ids: dict[str, etree._Element] | None = None,
) -> VerifiedSignature:
    """Verify the single ds:Signature in `security` and that it covers exactly `messaging`, `body`
    and each attachment in `attachment_cids`. Attachment digests are returned for the caller to
    compare once the attachment is decrypted. Raises EbmsError (0101 / 0103)."""
    ids = ids if ids is not None else index_ids(root)
    all_sigs = list(root.iter(DS + "Signature"))
    sigs = security.findall(DS + "Signature")
    if not sigs:
        raise policy_noncompliance("message is not signed (no ds:Signature in wsse:Security)", "unsigned")
    if len(sigs) != 1 or len(all_sigs) != 1:
        raise failed_authentication("exactly one ds:Signature is allowed in the envelope", "signature-count")
    sig = sigs[0]
    kids = _children(sig)
    tags = [k.tag for k in kids]
    if tags[:2] != [DS + "SignedInfo", DS + "SignatureValue"] or any(
            t not in (DS + "KeyInfo",) for t in tags[2:]) or tags.count(DS + "KeyInfo") != 1:
        raise failed_authentication("ds:Signature must contain SignedInfo, SignatureValue and KeyInfo only",
                                    "signature-structure")
    si = kids[0]
    si_kids = _children(si)
    if len(si_kids) < 3 or si_kids[0].tag != DS + "CanonicalizationMethod" or si_kids[1].tag != DS + "SignatureMethod":
        raise failed_authentication("malformed ds:SignedInfo", "signature-structure")
    c14n_method, sig_method, ref_els = si_kids[0], si_kids[1], si_kids[2:]
    if c14n_method.get("Algorithm") != C14N_EXC:
        raise failed_authentication(f"CanonicalizationMethod {c14n_method.get('Algorithm')!r} is not exclusive "
                                    "c14n", "c14n-algorithm")
    if sig_method.get("Algorithm") != SIG_RSA_SHA256:
        raise failed_authentication(f"SignatureMethod {sig_method.get('Algorithm')!r} is not rsa-sha256",
                                    "signature-algorithm")
    if _children(sig_method):
        raise failed_authentication("SignatureMethod must not carry parameters (HMACOutputLength)",
                                    "signature-algorithm")
    si_prefixes = _prefix_list(c14n_method)

    # --- references: parse and check algorithms and coverage before any crypto ---------------------
    references: list[SignedReference] = []
    xml_targets: list[tuple[SignedReference, etree._Element, list[str]]] = []
    cid_digests: dict[str, bytes] = {}
    covered_messaging = covered_body = 0
    for ref in ref_els:
        if ref.tag != DS + "Reference":
            raise failed_authentication(f"unexpected {ref.tag} in SignedInfo", "signature-structure")
        uri = ref.get("URI")
        rk = _children(ref)
        rtags = [k.tag for k in rk]
        if rtags != [DS + "Transforms", DS + "DigestMethod", DS + "DigestValue"]:
            raise failed_authentication(f"reference {uri!r} must have Transforms, DigestMethod, DigestValue",
                                        "signature-structure")
        transforms = _children(rk[0])
        alg = rk[1].get("Algorithm")
        if alg != DIGEST_SHA256:
            raise failed_authentication(f"DigestMethod {alg!r} of reference {uri!r} is not sha256",
                                        "digest-algorithm")
        try:
            digest_value = _b64(rk[2].text)
        except ValueError:
            raise failed_authentication(f"DigestValue of {uri!r} is not base64", "digest-value")
        if len(transforms) != 1 or transforms[0].tag != DS + "Transform":
            raise failed_authentication(f"reference {uri!r} must have exactly one transform", "transform")
        t_alg = transforms[0].get("Algorithm")
        sref = SignedReference(uri or "", alg, base64.b64encode(digest_value).decode("ascii"), (t_alg,))
        if uri is None:
            raise failed_authentication("reference without URI", "reference-uri")
        if uri.startswith("cid:"):
            if t_alg != TRANSFORM_ATTACHMENT_CONTENT:
                raise failed_authentication(f"attachment reference {uri!r} must use the "
                                            "Attachment-Content-Signature-Transform", "transform")
            _prefix_list(transforms[0])  # tolerate (meaningless) InclusiveNamespaces, nothing else
            cid = uri[4:]
            if cid in cid_digests:
                raise failed_authentication(f"attachment {uri!r} referenced twice", "duplicate-reference")
            if cid not in attachment_cids:
                raise failed_authentication(f"signature references {uri!r}, which is not an attachment of this "
                                            "message", "reference-target")
            cid_digests[cid] = digest_value
        elif uri.startswith("#") and len(uri) > 1:
            if t_alg != C14N_EXC:
                raise failed_authentication(f"reference {uri!r} transform {t_alg!r} is not exclusive c14n",
                                            "transform")
            prefixes = _prefix_list(transforms[0])
            target = ids.get(uri[1:])
            if target is None:
                raise failed_authentication(f"signature reference {uri!r} resolves to no element", "reference-target")
            if target is messaging:
                covered_messaging += 1
            elif target is body:
                covered_body += 1
            else:
                raise failed_authentication(f"signature reference {uri!r} points at {etree.QName(target).localname}, "
                                            "not at the processed eb:Messaging or S12:Body", "reference-target")
            xml_targets.append((sref, target, prefixes))
        else:
            raise failed_authentication(f"reference URI {uri!r} is neither a local #id nor cid:", "reference-uri")
        references.append(sref)
    if covered_messaging != 1 or covered_body != 1:
        raise failed_authentication("signature must cover eb:Messaging and S12:Body exactly once each",
                                    "signature-coverage")
    missing = [c for c in attachment_cids if c not in cid_digests]
    if missing:
        raise failed_authentication(f"attachment(s) {', '.join(missing)} not covered by the signature",
                                    "signature-coverage")

    # --- key, trust, signature value, XML digests --------------------------------------------------
    cert = signing_certificate(sig, security)
    pub = cert.public_key()
    if not isinstance(pub, rsa.RSAPublicKey) or pub.key_size < MIN_RSA_BITS:
        raise failed_authentication("signing certificate must carry an RSA key of at least 2048 bits", "key-type")
    check_certificate(cert)
    try:
        sig_value = _b64(kids[1].text)
    except ValueError:
        raise failed_authentication("SignatureValue is not base64", "signature-value")
    try:
        pub.verify(sig_value, c14n(si, si_prefixes), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise failed_authentication("SignatureValue does not verify with the signing certificate",
                                    "signature-value")
    for sref, target, prefixes in xml_targets:
        if digest_element(target, prefixes) != sref.digest:
            what = "eb:Messaging" if target is messaging else "S12:Body"
            raise failed_authentication(f"digest of {what} ({sref.uri}) does not match: the header was altered "
                                        "after signing", "digest-mismatch")
    return VerifiedSignature(cert, references, list(ref_els), cid_digests)


# ------------------------------------------------------------------------------------------------
# decryption
# ------------------------------------------------------------------------------------------------

@dataclass
class EncryptionInfo:
    encrypted_key: bytes                 # RSA-OAEP ciphertext of the AES key
    data_by_cid: dict[str, str]          # attachment cid -> EncryptedData Id


def _ski(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None


def parse_encryption(security: etree._Element, attachment_cids: list[str], our_cert: x509.Certificate,
                     ids: dict[str, etree._Element]) -> EncryptionInfo:
    """Check the EncryptedKey/EncryptedData structure: every attachment encrypted with AES-128-GCM under
    one RSA-OAEP (MGF1-SHA256, SHA-256) key addressed to our certificate."""
    eks = security.findall(XENC + "EncryptedKey")
    if not eks:
        raise policy_noncompliance("payload is not encrypted (no xenc:EncryptedKey)", "unencrypted")
    if len(eks) != 1:
        raise failed_decryption("more than one xenc:EncryptedKey", "encrypted-key-count")
    ek = eks[0]
    em = ek.find(XENC + "EncryptionMethod")
    if em is None or em.get("Algorithm") != KT_RSA_OAEP:
        raise failed_decryption(f"key transport {None if em is None else em.get('Algorithm')!r} is not "
                                "xmlenc11#rsa-oaep", "key-transport-algorithm")
    dm = em.find(DS + "DigestMethod")
    mgf = em.find(XENC11 + "MGF")
    if dm is None or dm.get("Algorithm") != DIGEST_SHA256:
        raise failed_decryption("RSA-OAEP digest must be SHA-256", "key-transport-algorithm")
    if mgf is None or mgf.get("Algorithm") != MGF1_SHA256:
        raise failed_decryption("RSA-OAEP mask generation must be MGF1-SHA256", "key-transport-algorithm")
    if em.find(XENC + "OAEPparams") is not None:
        raise failed_decryption("OAEP label (OAEPparams) is not supported", "key-transport-algorithm")
    _check_key_addressed_to_us(ek, security, our_cert)
    cv = ek.find(XENC + "CipherData/" + XENC + "CipherValue")
    if cv is None:
        raise failed_decryption("EncryptedKey has no CipherValue", "encrypted-key")
    try:
        encrypted_key = _b64(cv.text)
    except ValueError:
        raise failed_decryption("EncryptedKey CipherValue is not base64", "encrypted-key")
    data_refs = [r.get("URI") or "" for r in ek.findall(XENC + "ReferenceList/" + XENC + "DataReference")]
    ek_id = ek.get("Id")
    data_by_cid: dict[str, str] = {}
    for uri in data_refs:
        ed = ids.get(uri[1:]) if uri.startswith("#") else None
        if ed is None or ed.tag != XENC + "EncryptedData" or ed.getparent() is not security:
            raise failed_decryption(f"DataReference {uri!r} does not resolve to an EncryptedData in the "
                                    "security header", "encrypted-data")
        if ed.get("Type") != ENC_TYPE_ATTACHMENT_CONTENT_ONLY:
            raise failed_decryption(f"EncryptedData Type {ed.get('Type')!r} is not Attachment-Content-Only",
                                    "encrypted-data-type")
        alg = ed.find(XENC + "EncryptionMethod")
        if alg is None or alg.get("Algorithm") != ENC_AES128_GCM:
            raise failed_decryption(f"data encryption {None if alg is None else alg.get('Algorithm')!r} is not "
                                    "aes128-gcm", "data-encryption-algorithm")
        str_ref = ed.find(DS + "KeyInfo/" + WSSE + "SecurityTokenReference/" + WSSE + "Reference")
        if str_ref is not None and ek_id and str_ref.get("URI") != "#" + ek_id:
            raise failed_decryption("EncryptedData refers to another EncryptedKey", "encrypted-data")
        cr = ed.find(XENC + "CipherData/" + XENC + "CipherReference")
        curi = cr.get("URI") if cr is not None else None
        if not curi or not curi.startswith("cid:"):
            raise failed_decryption("EncryptedData must reference its attachment by cid:", "cipher-reference")
        trs = cr.findall(XENC + "Transforms/" + DS + "Transform")
        if [t.get("Algorithm") for t in trs] not in ([TRANSFORM_ATTACHMENT_CIPHERTEXT], []):
            raise failed_decryption("CipherReference transform must be Attachment-Ciphertext-Transform",
                                    "cipher-reference")
        cid = curi[4:]
        if cid not in attachment_cids:
            raise failed_decryption(f"EncryptedData references {curi!r}, which is not an attachment", "cipher-reference")
        if cid in data_by_cid:
            raise failed_decryption(f"attachment {curi!r} encrypted twice", "cipher-reference")
        data_by_cid[cid] = ed.get("Id") or ""
    missing = [c for c in attachment_cids if c not in data_by_cid]
    if missing:
        raise policy_noncompliance(f"attachment(s) {', '.join(missing)} are not encrypted", "unencrypted")
    return EncryptionInfo(encrypted_key, data_by_cid)


def _check_key_addressed_to_us(ek: etree._Element, security: etree._Element, our_cert: x509.Certificate) -> None:
    st = ek.find(DS + "KeyInfo/" + WSSE + "SecurityTokenReference")
    if st is None:
        return  # no hint: decryption itself will tell
    ref = st.find(WSSE + "Reference")
    if ref is not None:
        try:
            cert = find_bst_certificate(security, ref.get("URI") or "")
        except EbmsError as exc:
            raise failed_decryption(f"EncryptedKey token reference: {exc.reason}", "encrypted-key-token")
        if cert != our_cert:
            raise failed_decryption(f"payload is encrypted for {cert.subject.rfc4514_string()}, not for our "
                                    "certificate", "wrong-recipient")
        return
    kid = st.find(WSSE + "KeyIdentifier")
    if kid is not None and kid.get("ValueType") == KEYID_SKI:
        try:
            ski = _b64(kid.text)
        except ValueError:
            raise failed_decryption("invalid SubjectKeyIdentifier", "encrypted-key-token")
        ours = _ski(our_cert) or x509.SubjectKeyIdentifier.from_public_key(our_cert.public_key()).digest
        if ski != ours:
            raise failed_decryption("payload is encrypted for another key (SubjectKeyIdentifier)", "wrong-recipient")
        return
    serial = st.find(DS + "X509Data/" + DS + "X509IssuerSerial/" + DS + "X509SerialNumber")
    if serial is not None and (serial.text or "").strip() != str(our_cert.serial_number):
        raise failed_decryption("payload is encrypted for another certificate (IssuerSerial)", "wrong-recipient")


def decrypt_session_key(info: EncryptionInfo, our_key: rsa.RSAPrivateKey) -> bytes:
    try:
        key = our_key.decrypt(info.encrypted_key, oaep())
    except ValueError:
        raise failed_decryption("the AES key cannot be decrypted with our private key", "key-decryption")
    if len(key) != 16:
        raise failed_decryption(f"decrypted key is {len(key) * 8} bits, AES-128 expected", "key-length")
    return key
