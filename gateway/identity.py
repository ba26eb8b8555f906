"""Our access point identity (key, certificate, seat id) and trust sets, loaded from settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key, pkcs12

from certs.trust import TrustError, TrustStore, common_name
from gateway.config import Settings


class IdentityError(Exception):
    """The [ap] or [trust] configuration cannot be used; the message says which key and why."""


@dataclass(frozen=True)
class ApIdentity:
    seat_id: str
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    ap_trust: TrustStore


def _read(settings: Settings, value: str, what: str) -> bytes:
    path = settings.path(value)
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise IdentityError(f"[ap] {what}: cannot read {path}: {exc.strerror}") from exc


def load_identity(settings: Settings) -> ApIdentity | None:
    """The configured AP identity, or None when [ap] is not configured (AS4 then disabled)."""
    ap = settings.ap
    if not (ap.pkcs12 or ap.key or ap.certificate):
        return None
    password = ap.password.encode() if ap.password else None
    try:
        if ap.pkcs12:
            key, cert, _ = pkcs12.load_key_and_certificates(_read(settings, ap.pkcs12, "pkcs12"), password)
        else:
            if not (ap.key and ap.certificate):
                raise IdentityError("[ap] key and certificate must be set together (or use pkcs12)")
            key = load_pem_private_key(_read(settings, ap.key, "key"), password)
            cert = x509.load_pem_x509_certificate(_read(settings, ap.certificate, "certificate"))
    except (ValueError, TypeError) as exc:
        raise IdentityError(f"[ap] cannot load the key/certificate: {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey) or cert is None:
        raise IdentityError("[ap] the Peppol AS4 profile needs an RSA key and its certificate")
    if key.public_key().public_numbers() != cert.public_key().public_numbers():
        raise IdentityError("[ap] the private key does not belong to the certificate")
    cn = common_name(cert)
    seat = ap.seat_id or cn
    if seat != cn:
        raise IdentityError(f"[ap] seat_id {seat!r} differs from the certificate CN {cn!r} (the AS4 PartyId)")
    try:
        trust = TrustStore.from_config(settings.trust.ap_anchors, "ap", settings.path(settings.trust.cache),
                                       settings.base_dir)
    except TrustError as exc:
        raise IdentityError(f"[trust] ap_anchors: {exc}") from exc
    return ApIdentity(seat, key, cert, trust)
