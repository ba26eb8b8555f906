"""Load the AP signing/decryption key and certificate from PEM files or a PKCS#12 store
(the `[ap] key/certificate` or `[ap] pkcs12/password` settings)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12


class CredentialError(ValueError):
    """The AP key/certificate cannot be loaded or do not belong together."""


@dataclass(frozen=True)
class Credentials:
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()


def load_credentials(*, key: str | Path = "", certificate: str | Path = "", pkcs12_path: str | Path = "",
                     password: str | bytes | None = None) -> Credentials:
    pw = password.encode() if isinstance(password, str) else password
    try:
        if pkcs12_path:
            k, c, extra = pkcs12.load_key_and_certificates(Path(pkcs12_path).read_bytes(), pw or None)
            chain = tuple(extra or ())
        elif key and certificate:
            k = serialization.load_pem_private_key(Path(key).read_bytes(), pw or None)
            certs = x509.load_pem_x509_certificates(Path(certificate).read_bytes())
            c, chain = certs[0], tuple(certs[1:])
        else:
            raise CredentialError("configure [ap] key + certificate (PEM) or [ap] pkcs12 (+ password)")
    except (OSError, ValueError, TypeError) as exc:
        if isinstance(exc, CredentialError):
            raise
        raise CredentialError(f"cannot load the AP key/certificate: {exc}") from exc
    if not isinstance(k, rsa.RSAPrivateKey) or c is None:
        raise CredentialError("the AP key must be an RSA private key with its certificate")
    if k.public_key().public_numbers() != c.public_key().public_numbers():
        raise CredentialError("the AP private key does not match the AP certificate")
    if k.key_size < 2048:
        raise CredentialError("the AP key must be RSA 2048 bits or more")
    return Credentials(k, c, chain)
