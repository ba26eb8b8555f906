"""Development PKI: a self-made root CA and Peppol-profile AP certificates.

Used by `sendgw certs dev-pki` to run a gateway without real Peppol certificates, and by tests to
mint CAs and leaf certificates with any defect (expired, untrusted, wrong CN, missing key usage).
The AP leaf follows the Peppol AP profile: CN = seat id, KeyUsage digitalSignature +
keyEncipherment + dataEncipherment, EKU clientAuth, RSA >= 2048.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Issued:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def new_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    if bits < 2048:
        raise ValueError("Peppol requires RSA keys of at least 2048 bits")
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _name(cn: str, ou: str | None = None, o: str | None = None, c: str | None = None) -> x509.Name:
    attrs = []
    if c:
        attrs.append(x509.NameAttribute(NameOID.COUNTRY_NAME, c))
    if o:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o))
    if ou:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def make_ca(cn: str = "SEND DEV ACCESS POINT CA", *, now: dt.datetime, days: int = 3650,
            issuer: Issued | None = None, key: rsa.RSAPrivateKey | None = None,
            not_before: dt.datetime | None = None, not_after: dt.datetime | None = None) -> Issued:
    """A CA certificate: self-signed root when `issuer` is None, else an intermediate."""
    key = key or new_key()
    subject = _name(cn, "FOR TEST ONLY", "SEND gateway development", "NO")
    nb = not_before or now - dt.timedelta(days=1)
    na = not_after or now + dt.timedelta(days=days)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(os.urandom(16), "big") >> 1)
        .not_valid_before(nb)
        .not_valid_after(na)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None if issuer is None else 0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
    cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
    return Issued(key, cert)


def make_ap_cert(seat_id: str, ca: Issued, *, now: dt.datetime, days: int = 730,
                 not_before: dt.datetime | None = None, not_after: dt.datetime | None = None,
                 key: rsa.RSAPrivateKey | None = None, ou: str = "PEPPOL TEST AP",
                 organisation: str = "SEND gateway development", country: str = "NO",
                 key_usage: bool | x509.KeyUsage = True, ca_flag: bool = False) -> Issued:
    """An AP leaf certificate (Peppol AP profile) issued by `ca`. Pass `key_usage=False` (no
    extension), a custom `x509.KeyUsage`, or `ca_flag=True` to mint deliberately broken certificates
    for negative tests."""
    key = key or new_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(seat_id, ou, organisation, country))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(os.urandom(16), "big") >> 1)
        .not_valid_before(not_before or now - dt.timedelta(days=1))
        .not_valid_after(not_after or now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca_flag, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    )
    if isinstance(key_usage, x509.KeyUsage):
        builder = builder.add_extension(key_usage, critical=True)
    elif key_usage:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                          data_encipherment=True, key_agreement=False, key_cert_sign=False, crl_sign=False,
                          encipher_only=False, decipher_only=False), critical=True)
    return Issued(key, builder.sign(ca.key, hashes.SHA256()))


def write_dev_pki(directory: Path, seat_id: str, *, now: dt.datetime, overwrite: bool = False) -> dict[str, Path]:
    """Create ca.cert.pem, ap.key.pem and ap.cert.pem in `directory` (key files mode 0600)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"ca_cert": directory / "ca.cert.pem", "ap_key": directory / "ap.key.pem",
             "ap_cert": directory / "ap.cert.pem"}
    existing = [p for p in paths.values() if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} exists (use --force to replace)")
    ca = make_ca(now=now)
    ap = make_ap_cert(seat_id, ca, now=now)
    paths["ca_cert"].write_bytes(ca.cert_pem())
    fd = os.open(paths["ap_key"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(ap.key_pem())
    paths["ap_cert"].write_bytes(ap.cert_pem())
    return paths
