"""Trust anchors and certificate path checks for Peppol AP and SMP certificates.

A trust set is a list of CA certificates (the Peppol G3 test or production CAs, or a test CA's
PEM). A leaf certificate is trusted when a path leads from it, through CA certificates of the set
only, to a self-signed root of the set, and every certificate on the path is valid at the given
time. Certificates offered by the peer (a BinarySecurityToken chain, an SMP response) are never
used as intermediates: Peppol separates AP and SMP hierarchies by trust set, not by chain.

Named sets ("peppol-test", "peppol-prod", and the retired "peppol-test-g2"/"peppol-prod-g2" for
historical vectors) come from certs/manifest.json and are read from the trust cache filled by
`sendgw certs sync`; any other entry is a path to a PEM file with one or more CA certificates.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal, Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

MANIFEST = Path(__file__).with_name("manifest.json")
Purpose = Literal["ap", "smp"]


class TrustError(Exception):
    """A trust set cannot be loaded (missing or tampered anchor file, unknown set name)."""


class CertificateError(Exception):
    """A certificate is not trusted. `code` is machine-readable: untrusted, expired,
    not-yet-valid, not-a-leaf, bad-signature."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def load_manifest() -> dict:
    return json.loads(MANIFEST.read_text(encoding="utf-8"))


def fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def load_pem_certificates(data: bytes) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise TrustError(f"not a PEM certificate file: {exc}") from exc


def sync_trust(source_dir: Path, trust_dir: Path) -> list[str]:
    """Copy every pinned CA certificate from `source_dir` into `trust_dir`, checking fingerprints.

    Returns the file names installed. A missing or tampered file raises TrustError naming it and
    leaves the cache as it was for that file.
    """
    manifest = load_manifest()
    trust_dir.mkdir(parents=True, exist_ok=True)
    installed = []
    for entry in manifest["certificates"]:
        src = source_dir / entry["file"]
        if not src.is_file():
            raise TrustError(f"{src}: missing (pinned in certs/manifest.json)")
        certs = load_pem_certificates(src.read_bytes())
        if len(certs) != 1 or fingerprint(certs[0]) != entry["sha256"]:
            raise TrustError(f"{src}: SHA-256 fingerprint does not match the pinned {entry['sha256']}")
        tmp = trust_dir / (entry["file"] + ".tmp")
        shutil.copyfile(src, tmp)
        tmp.replace(trust_dir / entry["file"])
        installed.append(entry["file"])
    return installed


def _load_named(name: str, purpose: Purpose, trust_dir: Path) -> list[x509.Certificate]:
    manifest = load_manifest()
    sets = manifest["anchor_sets"]
    if name not in sets:
        raise TrustError(f"unknown trust set {name!r} (known: {', '.join(sorted(sets))}, or a PEM path)")
    pins = {e["file"]: e["sha256"] for e in manifest["certificates"]}
    out = []
    for file in sets[name][purpose]:
        path = trust_dir / file
        if not path.is_file():
            raise TrustError(f"{path}: missing; run `sendgw certs sync` to install the Peppol CA certificates")
        certs = load_pem_certificates(path.read_bytes())
        if len(certs) != 1 or fingerprint(certs[0]) != pins[file]:
            raise TrustError(f"{path}: fingerprint does not match certs/manifest.json (tampered?)")
        out.extend(certs)
    return out


@dataclass(frozen=True)
class TrustStore:
    """An immutable set of CA certificates that leaf certificates must chain to."""

    anchors: tuple[x509.Certificate, ...]

    @classmethod
    def from_pem(cls, data: bytes) -> "TrustStore":
        return cls(tuple(load_pem_certificates(data)))

    @classmethod
    def from_config(
        cls,
        entries: Sequence[str],
        purpose: Purpose,
        trust_dir: Path,
        base_dir: Path | None = None,
    ) -> "TrustStore":
        """Build a store from config entries: set names from the manifest, or PEM file paths."""
        certs: list[x509.Certificate] = []
        for entry in entries:
            if entry.startswith("peppol-"):
                certs.extend(_load_named(entry, purpose, trust_dir))
            else:
                path = Path(entry)
                if not path.is_absolute() and base_dir is not None:
                    path = base_dir / path
                if not path.is_file():
                    raise TrustError(f"trust anchor file {path} not found")
                certs.extend(load_pem_certificates(path.read_bytes()))
        if not certs:
            raise TrustError("empty trust set")
        return cls(tuple(certs))

    def __add__(self, other: "TrustStore") -> "TrustStore":
        return TrustStore(self.anchors + other.anchors)

    def _issuers_of(self, cert: x509.Certificate) -> Iterable[x509.Certificate]:
        for ca in self.anchors:
            if ca.subject != cert.issuer:
                continue
            try:
                cert.verify_directly_issued_by(ca)
            except (ValueError, TypeError, InvalidSignature):
                continue
            yield ca

    def verify(self, leaf: x509.Certificate, at: dt.datetime) -> list[x509.Certificate]:
        """Check that `leaf` chains to this set and that the whole path is valid at `at`.

        Returns the path [leaf, ..., root]; raises CertificateError otherwise.
        """
        if at.tzinfo is None:
            raise ValueError("`at` must be timezone-aware")
        _check_validity(leaf, at, "certificate")
        if _is_ca(leaf):
            raise CertificateError("not-a-leaf", f"{_cn(leaf)} is a CA certificate, not an end-entity one")
        path = [leaf]
        current = leaf
        for _ in range(8):  # Peppol paths are leaf -> issuing CA -> root
            issuers = list(self._issuers_of(current))
            if not issuers:
                raise CertificateError(
                    "untrusted",
                    f"{_cn(leaf)}: issuer {current.issuer.rfc4514_string()} is not in the trusted CA set",
                )
            issuer = issuers[0]
            if not _is_ca(issuer):
                raise CertificateError("untrusted", f"{_cn(issuer)} is not a CA certificate")
            _check_validity(issuer, at, "CA certificate")
            path.append(issuer)
            if issuer.subject == issuer.issuer:
                return path
            current = issuer
        raise CertificateError("untrusted", f"{_cn(leaf)}: certificate path too long")


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _cn(cert: x509.Certificate) -> str:
    attrs = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else cert.subject.rfc4514_string()


def common_name(cert: x509.Certificate) -> str:
    """The subject CN (the Peppol seat id for AP certificates)."""
    return _cn(cert)


def _check_validity(cert: x509.Certificate, at: dt.datetime, what: str) -> None:
    if at < cert.not_valid_before_utc:
        raise CertificateError(
            "not-yet-valid", f"{what} {_cn(cert)} is not valid before {cert.not_valid_before_utc:%Y-%m-%d}"
        )
    if at > cert.not_valid_after_utc:
        raise CertificateError("expired", f"{what} {_cn(cert)} expired on {cert.not_valid_after_utc:%Y-%m-%d}")
