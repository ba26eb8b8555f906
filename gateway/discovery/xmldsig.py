"""Verify the enveloped XML signature of an SMP response (XMLDSig 1.0, `Reference URI=""`).

Why a small dedicated verifier instead of plain signxml: SMP responses in the wild (the vefa-peppol
samples, old phoss-smp) are valid per XMLDSig but trip two canonicalisation pitfalls:

1. The `URI=""` reference has only the enveloped-signature transform, so its node-set is turned into
   octets with *inclusive* C14N 1.0 (XMLDSig §4.3.3.2), whatever CanonicalizationMethod SignedInfo
   names. We canonicalise the whole document (comments dropped, as `URI=""` requires) after removing
   the Signature element but keeping the text that followed it.
2. lxml can emit a spurious `xmlns=""` when canonicalising a sub-element whose Signature declares a
   default namespace. SignedInfo is therefore serialised (which copies every in-scope namespace
   declaration onto it) and re-parsed before it is canonicalised on its own.

Only what Peppol needs is accepted: one Signature child of the root, one Reference with URI="",
enveloped-signature (optionally followed by a C14N transform), RSA PKCS#1 v1.5 with SHA-256/384/512,
and SHA-1 only when the caller allows it. The function is pure: bytes in, signer certificate out.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from gateway.discovery.errors import DiscoveryError
from gateway.discovery.xmlparse import parse_xml

DS = "http://www.w3.org/2000/09/xmldsig#"
C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N_COMMENTS = C14N + "#WithComments"
C14N11 = "http://www.w3.org/2006/12/xml-c14n11"
C14N11_COMMENTS = C14N11 + "#WithComments"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
EXC_C14N_COMMENTS = EXC_C14N + "WithComments"
ENVELOPED = DS + "enveloped-signature"

_C14N_METHODS = {
    C14N: (False, False),
    C14N_COMMENTS: (False, True),
    # C14N 1.1 differs from 1.0 only in xml:id/xml:base/xml:lang inheritance into document subsets,
    # which SMP documents do not use; signxml signs with 1.1 by default.
    C14N11: (False, False),
    C14N11_COMMENTS: (False, True),
    EXC_C14N: (True, False),
    EXC_C14N_COMMENTS: (True, True),
}
_SIGNATURE_METHODS: dict[str, type[hashes.HashAlgorithm]] = {
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": hashes.SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": hashes.SHA384,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": hashes.SHA512,
    DS + "rsa-sha1": hashes.SHA1,
}
_DIGEST_METHODS = {
    "http://www.w3.org/2001/04/xmlenc#sha256": "sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384": "sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512": "sha512",
    DS + "sha1": "sha1",
}
_SHA1 = {DS + "rsa-sha1", DS + "sha1"}


@dataclass(frozen=True)
class VerifiedDocument:
    """A document whose enveloped signature verified. Only `root` minus the Signature is signed."""

    root: etree._Element
    signer: x509.Certificate
    signature_method: str
    digest_method: str


def _q(name: str) -> str:
    return f"{{{DS}}}{name}"


def _one(parent: etree._Element, name: str, what: str) -> etree._Element:
    found = parent.findall(_q(name))
    if len(found) != 1:
        raise DiscoveryError("signature-malformed", f"expected exactly one ds:{name} in {what}, found {len(found)}")
    return found[0]


def _b64(text: str | None, what: str) -> bytes:
    compact = "".join((text or "").split())  # SMPs wrap base64 and put &#13; CRs in it
    try:
        data = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DiscoveryError("signature-malformed", f"{what} is not valid base64") from exc
    if not data:
        raise DiscoveryError("signature-malformed", f"{what} is empty")
    return data


def _c14n_subtree(element: etree._Element, exclusive: bool, comments: bool, prefixes: list[str] | None) -> bytes:
    # Serialise (copies in-scope namespace declarations), re-parse, canonicalise: avoids lxml's
    # spurious xmlns="" on sub-elements (pitfall 2 in the module docstring).
    standalone = parse_xml(etree.tostring(element))
    return etree.tostring(
        standalone, method="c14n", exclusive=exclusive, with_comments=comments,
        inclusive_ns_prefixes=prefixes if exclusive else None,
    )


def _inclusive_prefixes(transform: etree._Element) -> list[str] | None:
    for child in transform:
        if child.tag == f"{{{EXC_C14N}}}InclusiveNamespaces":
            return [p for p in (child.get("PrefixList") or "").split() if p != "#default"] or None
    return None


def _signer_certificate(signature: etree._Element) -> x509.Certificate:
    key_info = signature.find(_q("KeyInfo"))
    if key_info is None:
        raise DiscoveryError("signature-no-certificate", "ds:KeyInfo is missing")
    certs = []
    for node in key_info.iter(_q("X509Certificate")):
        try:
            certs.append(x509.load_der_x509_certificate(_b64(node.text, "ds:X509Certificate")))
        except ValueError as exc:
            raise DiscoveryError("signature-malformed", f"ds:X509Certificate is not a certificate: {exc}") from exc
    if not certs:
        raise DiscoveryError("signature-no-certificate", "ds:KeyInfo holds no ds:X509Certificate")
    # With several certificates, the signer is the one that issued none of the others.
    issuers = {c.issuer for c in certs}
    leaves = [c for c in certs if c.subject not in issuers or c.subject == c.issuer] or certs
    return leaves[0]


def verify_enveloped(data: bytes, allow_sha1: bool = False) -> VerifiedDocument:
    """Parse `data` and verify its enveloped signature; return the root and the signer certificate.

    Raises DiscoveryError with code: not-xml, signature-missing, signature-malformed,
    signature-algorithm, signature-no-certificate, digest-mismatch, signature-invalid.
    The signer certificate is *not* checked against any trust set here.
    """
    doc = parse_xml(data)
    root = doc.getroot()
    sigs = [el for el in root.iter(_q("Signature"))]
    if not sigs:
        raise DiscoveryError("signature-missing", "the SMP response is not signed (no ds:Signature)")
    if len(sigs) != 1 or sigs[0].getparent() is not root:
        raise DiscoveryError("signature-malformed", "expected exactly one ds:Signature, as a child of the root element")
    signature = sigs[0]
    signed_info = _one(signature, "SignedInfo", "ds:Signature")

    c14n_alg = _one(signed_info, "CanonicalizationMethod", "ds:SignedInfo").get("Algorithm")
    if c14n_alg not in _C14N_METHODS:
        raise DiscoveryError("signature-algorithm", f"unsupported CanonicalizationMethod {c14n_alg!r}")
    sig_alg = _one(signed_info, "SignatureMethod", "ds:SignedInfo").get("Algorithm")
    if sig_alg not in _SIGNATURE_METHODS:
        raise DiscoveryError("signature-algorithm", f"unsupported SignatureMethod {sig_alg!r}")
    if sig_alg in _SHA1 and not allow_sha1:
        raise DiscoveryError("signature-algorithm", f"SHA-1 signature {sig_alg} refused (allow_sha1 is off)")

    reference = _one(signed_info, "Reference", "ds:SignedInfo")
    if reference.get("URI") != "":
        raise DiscoveryError("signature-malformed", f"Reference URI must be \"\" (whole document), got {reference.get('URI')!r}")
    digest_alg = _one(reference, "DigestMethod", "ds:Reference").get("Algorithm")
    if digest_alg not in _DIGEST_METHODS:
        raise DiscoveryError("signature-algorithm", f"unsupported DigestMethod {digest_alg!r}")
    if digest_alg in _SHA1 and not allow_sha1:
        raise DiscoveryError("signature-algorithm", f"SHA-1 digest {digest_alg} refused (allow_sha1 is off)")
    expected_digest = _b64(_one(reference, "DigestValue", "ds:Reference").text, "ds:DigestValue")

    transforms_el = reference.find(_q("Transforms"))
    transforms = [] if transforms_el is None else list(transforms_el.iterchildren(_q("Transform")))
    algs = [t.get("Algorithm") for t in transforms]
    if not algs or algs[0] != ENVELOPED or len(algs) > 2 or (len(algs) == 2 and algs[1] not in _C14N_METHODS):
        raise DiscoveryError("signature-malformed", f"unsupported Reference transforms {algs}: expected enveloped-signature [+ C14N]")
    # Default after a node-set transform is inclusive C14N 1.0; URI="" never includes comments.
    ref_exclusive, ref_comments, ref_prefixes = False, False, None
    if len(algs) == 2:
        ref_exclusive, _ = _C14N_METHODS[algs[1]]
        ref_prefixes = _inclusive_prefixes(transforms[1])

    signer = _signer_certificate(signature)
    signed_info_c14n = _c14n_subtree(
        signed_info, *_C14N_METHODS[c14n_alg],
        _inclusive_prefixes(_one(signed_info, "CanonicalizationMethod", "ds:SignedInfo")),
    )
    signature_value = _b64(_one(signature, "SignatureValue", "ds:Signature").text, "ds:SignatureValue")

    # Enveloped-signature transform: drop the Signature element but keep the text that follows it.
    parent = signature.getparent()
    tail = signature.tail
    previous = signature.getprevious()
    parent.remove(signature)
    if tail:
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    try:
        octets = etree.tostring(doc, method="c14n", exclusive=ref_exclusive, with_comments=ref_comments,
                                inclusive_ns_prefixes=ref_prefixes if ref_exclusive else None)
    finally:
        signature.tail = None
    actual_digest = hashlib.new(_DIGEST_METHODS[digest_alg], octets).digest()
    if not hmac.compare_digest(actual_digest, expected_digest):
        raise DiscoveryError("digest-mismatch", "the signed content was changed: reference digest does not match")

    public_key = signer.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise DiscoveryError("signature-algorithm", "the signer certificate does not hold an RSA key")
    try:
        hash_cls = _SIGNATURE_METHODS[sig_alg]
        public_key.verify(signature_value, signed_info_c14n, padding.PKCS1v15(), hash_cls())  # type: ignore[abstract]
    except InvalidSignature as exc:
        raise DiscoveryError("signature-invalid", "ds:SignatureValue does not verify with the signer certificate") from exc
    return VerifiedDocument(root=root, signer=signer, signature_method=sig_alg, digest_method=digest_alg)
