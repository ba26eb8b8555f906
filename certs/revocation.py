"""Revocation status of one certificate from a CRL or an OCSP response, without any I/O.

Bytes go in (a CRL, an OCSP response), a `RevocationStatus` comes out, so every rule can be tested
with generated data and the network edge (gateway/revocation.py) only fetches and caches. Only a
positive, verified answer counts: a CRL or OCSP response that is not signed by the certificate's
issuer (or its delegated OCSP responder), names another issuer or certificate, or does not cover
the checked instant gives "unknown", never "good". A listed certificate is "revoked" from its
revocation date on, whatever the reason code (certificateHold included).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

State = Literal["good", "revoked", "unknown"]

# Tolerated clock difference between us and the CA for thisUpdate/nextUpdate.
CLOCK_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class RevocationStatus:
    """The answer of one source. `next_update` tells the caller how long it may reuse it."""

    state: State
    reason: str
    source: str = ""
    next_update: dt.datetime | None = None


def _http_uris(names) -> list[str]:
    return [n.value for n in names or ()
            if isinstance(n, x509.UniformResourceIdentifier) and n.value.lower().startswith(("http://", "https://"))]


def crl_urls(cert: x509.Certificate) -> list[str]:
    """HTTP(S) CRL distribution points of `cert` (LDAP ones are skipped: we only fetch over HTTP)."""
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    urls: list[str] = []
    for point in points:
        for url in _http_uris(point.full_name):
            if url not in urls:
                urls.append(url)
    return urls


def ocsp_urls(cert: x509.Certificate) -> list[str]:
    """HTTP(S) OCSP responders named in the certificate's Authority Information Access."""
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    urls: list[str] = []
    for desc in aia:
        if desc.access_method == AuthorityInformationAccessOID.OCSP:
            for url in _http_uris([desc.access_location]):
                if url not in urls:
                    urls.append(url)
    return urls


def _unknown(reason: str, source: str) -> RevocationStatus:
    return RevocationStatus("unknown", reason, source)


def _covers(this_update: dt.datetime, next_update: dt.datetime | None, at: dt.datetime, what: str) -> str | None:
    """Why [this_update, next_update] (with clock skew) does not cover `at`, or None when it does."""
    if at + CLOCK_SKEW < this_update:
        return f"{what} is not valid before {this_update:%Y-%m-%d %H:%M:%S}Z"
    if next_update is not None and at - CLOCK_SKEW > next_update:
        return f"{what} is stale (nextUpdate {next_update:%Y-%m-%d %H:%M:%S}Z)"
    return None


# --- CRL -----------------------------------------------------------------------------------------


def load_crl(data: bytes) -> x509.CertificateRevocationList:
    """A CRL from DER or PEM bytes; ValueError when it is neither."""
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_crl(data)
    return x509.load_der_x509_crl(data)


def check_crl(cert: x509.Certificate, issuer: x509.Certificate,
              crl: bytes | x509.CertificateRevocationList, at: dt.datetime, source: str = "") -> RevocationStatus:
    """Status of `cert` at `at` according to a complete CRL issued and signed by `issuer`."""
    if isinstance(crl, (bytes, bytearray)):
        try:
            crl = load_crl(bytes(crl))
        except ValueError as exc:
            return _unknown(f"not a CRL: {exc}", source)
    if crl.issuer != issuer.subject:
        return _unknown(f"CRL is issued by {crl.issuer.rfc4514_string()}, not by {issuer.subject.rfc4514_string()}",
                        source)
    try:
        signed = crl.is_signature_valid(issuer.public_key())
    except (TypeError, ValueError, UnsupportedAlgorithm):
        signed = False
    if not signed:
        return _unknown("CRL signature does not verify with the issuer's key", source)
    try:  # a delta CRL lists only changes: absence from it says nothing
        crl.extensions.get_extension_for_class(x509.DeltaCRLIndicator)
        return _unknown("delta CRL (not a complete CRL)", source)
    except x509.ExtensionNotFound:
        pass
    try:
        idp = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
    except x509.ExtensionNotFound:
        idp = None
    if idp is not None:
        is_ca = _is_ca(cert)
        if idp.indirect_crl or idp.only_some_reasons is not None or idp.only_contains_attribute_certs:
            return _unknown("partitioned or indirect CRL (not supported)", source)
        if (idp.only_contains_ca_certs and not is_ca) or (idp.only_contains_user_certs and is_ca):
            return _unknown("CRL scope does not include this certificate", source)
    next_update = crl.next_update_utc
    problem = _covers(crl.last_update_utc, next_update, at, "CRL")
    if problem:
        return _unknown(problem, source)
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    if entry is not None and entry.revocation_date_utc <= at:
        return RevocationStatus("revoked", f"revoked on {entry.revocation_date_utc:%Y-%m-%d %H:%M:%S}Z"
                                f"{_reason_of(entry)} (CRL)", source, next_update)
    return RevocationStatus("good", "not listed in the CRL", source, next_update)


def _reason_of(entry: x509.RevokedCertificate) -> str:
    try:
        return f", reason {entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.name}"
    except x509.ExtensionNotFound:
        return ""


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


# --- OCSP ----------------------------------------------------------------------------------------


def build_ocsp_request(cert: x509.Certificate, issuer: x509.Certificate) -> bytes:
    """DER OCSP request for `cert`. SHA-1 CertID and no nonce: that is what every responder
    (DigiCert's included) answers from its pre-signed cache, and the CertID is not a security hash."""
    return (ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
            .public_bytes(serialization.Encoding.DER))


def _verify(public_key, signature: bytes, data: bytes, hash_algorithm) -> bool:
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, padding.PKCS1v15(), hash_algorithm)
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(hash_algorithm))
        elif isinstance(public_key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            public_key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, TypeError, ValueError, UnsupportedAlgorithm):
        return False
    return True


def _responder_is(cert: x509.Certificate, response: ocsp.OCSPResponse) -> bool:
    if response.responder_name is not None:
        return response.responder_name == cert.subject
    return response.responder_key_hash == x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest


def _signer(response: ocsp.OCSPResponse, issuer: x509.Certificate, at: dt.datetime) -> x509.Certificate | str:
    """The certificate whose key must have signed the response, or why there is none."""
    if _responder_is(issuer, response):
        return issuer
    for candidate in response.certificates:
        if not _responder_is(candidate, response):
            continue
        if candidate.issuer != issuer.subject:
            return "delegated OCSP responder certificate is not issued by the certificate's issuer"
        try:
            candidate.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            return "delegated OCSP responder certificate is not signed by the certificate's issuer"
        try:
            eku = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            eku = []
        if ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
            return "delegated OCSP responder certificate lacks the OCSPSigning extended key usage"
        if not (candidate.not_valid_before_utc - CLOCK_SKEW <= at <= candidate.not_valid_after_utc + CLOCK_SKEW):
            return "delegated OCSP responder certificate is not valid at the checked time"
        return candidate
    return "OCSP response is signed neither by the issuer nor by a responder certificate it carries"


def check_ocsp(response_bytes: bytes, cert: x509.Certificate, issuer: x509.Certificate, at: dt.datetime,
               source: str = "") -> RevocationStatus:
    """Status of `cert` at `at` from a DER OCSP response (RFC 6960 basic response)."""
    try:
        response = ocsp.load_der_ocsp_response(response_bytes)
    except ValueError as exc:
        return _unknown(f"not an OCSP response: {exc}", source)
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return _unknown(f"OCSP responder answered {response.response_status.name}", source)
    signer = _signer(response, issuer, at)
    if isinstance(signer, str):
        return _unknown(signer, source)
    if not _verify(signer.public_key(), response.signature, response.tbs_response_bytes,
                   response.signature_hash_algorithm):
        return _unknown("OCSP response signature does not verify", source)
    single = None
    for candidate in response.responses:
        try:
            want = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, candidate.hash_algorithm).build()
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
        if (candidate.serial_number == want.serial_number and candidate.issuer_key_hash == want.issuer_key_hash
                and candidate.issuer_name_hash == want.issuer_name_hash):
            single = candidate
            break
    if single is None:
        return _unknown("OCSP response is not about this certificate", source)
    next_update = single.next_update_utc
    problem = _covers(single.this_update_utc, next_update, at, "OCSP response")
    if problem:
        return _unknown(problem, source)
    if single.certificate_status == ocsp.OCSPCertStatus.REVOKED:
        when = single.revocation_time_utc
        if when is not None and when > at:
            return RevocationStatus("good", "not revoked at the checked time (OCSP)", source, next_update)
        reason = f", reason {single.revocation_reason.name}" if single.revocation_reason else ""
        return RevocationStatus("revoked", f"revoked on {when:%Y-%m-%d %H:%M:%S}Z{reason} (OCSP)", source,
                                next_update)
    if single.certificate_status == ocsp.OCSPCertStatus.GOOD:
        return RevocationStatus("good", "OCSP status good", source, next_update)
    return RevocationStatus("unknown", "OCSP responder does not know this certificate", source, next_update)
