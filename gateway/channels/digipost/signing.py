"""Digipost's classic message security: content hash, Date window and X-Digipost-Signature.

Both the client and the simulator use these functions, so the canonical strings are defined once,
exactly as Digipost documents them and as `digipost-api-client-java` builds them
(`RequestMessageSignatureUtil` / `ResponseMessageSignatureUtil`):

Request (RSA-SHA256, "SHA256WithRSAEncryption", base64 in `X-Digipost-Signature`)::

    METHOD\\n                       upper-case verb
    /lower-cased/raw/path\\n
    date: <Date>\\n                  the signed headers present, sorted, lower-case keys
    x-content-sha256: <hash>\\n       (only when the request has a body)
    x-digipost-userid: <id>\\n
    <lower-cased raw query>\\n        an empty line when there is no query

Response (signed by Digipost, verified with Digipost's certificate)::

    <status code>\\n
    /lower-cased/request/path\\n     path of the request, without the query
    date: ...\\n / x-content-sha256: ...\\n / x-digipost-userid: ...\\n   (those present)

`Content-MD5` is also a signed header when present (legacy); we never send it.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from email.utils import format_datetime, parsedate_to_datetime
from typing import Mapping

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SIGNED_HEADERS = ("content-md5", "date", "x-content-sha256", "x-digipost-userid")
DATE_WINDOW = dt.timedelta(minutes=5)

H_SIGNATURE = "X-Digipost-Signature"
H_USER_ID = "X-Digipost-UserId"
H_CONTENT_SHA256 = "X-Content-SHA256"


def content_sha256(body: bytes) -> str:
    """Base64 of the SHA-256 of the body bytes (the `X-Content-SHA256` value)."""
    return base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def http_date(when: dt.datetime) -> str:
    """RFC 1123 date in GMT, e.g. `Wed, 29 Jun 2011 14:58:11 GMT`."""
    return format_datetime(when.astimezone(dt.timezone.utc).replace(microsecond=0), usegmt=True)


def parse_http_date(value: str) -> dt.datetime:
    """Parse an RFC 1123 date; raises ValueError when it is not one."""
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError) as exc:
        raise ValueError(f"not an RFC 1123 date: {value!r}") from exc
    if parsed is None or parsed.tzinfo is None:
        raise ValueError(f"RFC 1123 date without zone: {value!r}")
    return parsed


def date_within_window(value: str, now: dt.datetime, window: dt.timedelta = DATE_WINDOW) -> bool:
    """True when `value` parses and lies within ±window of `now`."""
    try:
        when = parse_http_date(value)
    except ValueError:
        return False
    return abs(when - now) <= window


def _canonical_headers(headers: Mapping[str, str]) -> str:
    lowered = {k.lower(): v for k, v in headers.items() if k.lower() in SIGNED_HEADERS}
    return "".join(f"{k}: {lowered[k]}\n" for k in sorted(lowered))


def canonical_request(method: str, path: str, headers: Mapping[str, str], query: str = "") -> str:
    """The string a request signature covers (see module docstring)."""
    return (
        f"{method.upper()}\n"
        f"{path.lower()}\n"
        f"{_canonical_headers(headers)}"
        f"{query.lower()}\n"
    )


def canonical_response(status: int, path: str, headers: Mapping[str, str]) -> str:
    """The string a response signature covers: status, request path, signed headers."""
    return f"{status}\n{path.split('?', 1)[0].lower()}\n{_canonical_headers(headers)}"


def sign(private_key: rsa.RSAPrivateKey, canonical: str) -> str:
    """Base64 RSA-SHA256 (PKCS#1 v1.5) signature of the canonical string."""
    raw = private_key.sign(canonical.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(raw).decode("ascii")


def verify(public_key: rsa.RSAPublicKey, canonical: str, signature_b64: str) -> bool:
    """True when `signature_b64` is a valid RSA-SHA256 signature of `canonical`."""
    try:
        raw = base64.b64decode(signature_b64.encode("ascii"), validate=True)
        public_key.verify(raw, canonical.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def load_private_key(pem: bytes, password: bytes | None = None) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=password)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("Digipost signing needs an RSA private key")
    return key


def load_public_key(pem: bytes | str) -> rsa.RSAPublicKey:
    """RSA public key from a PEM certificate, a PEM public key, or bare base64 DER of a certificate.

    The entrypoint's `certificate` element carries Digipost's certificate as PEM text.
    """
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    data = data.strip()
    if b"BEGIN CERTIFICATE" in data:
        key = x509.load_pem_x509_certificate(data).public_key()
    elif b"BEGIN PUBLIC KEY" in data:
        key = serialization.load_pem_public_key(data)
    else:
        key = x509.load_der_x509_certificate(base64.b64decode(b"".join(data.split()))).public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("Digipost signatures use RSA keys")
    return key
