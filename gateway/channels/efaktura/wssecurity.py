"""WS-Security UsernameToken (OASIS Username Token Profile 1.0/1.1): build and verify.

MPS' public WSDL pages do not show the credential mechanism (§2 "Auth", §15 of the channel notes);
the usual choices for JAX-WS services of that generation are a UsernameToken in the SOAP header
and/or a TLS client certificate. Both are supported and configurable; this module does the header.

PasswordDigest = Base64(SHA-1(nonce + created + password)) per the profile; `Created` is an
xs:dateTime in UTC, and verifiers bound its age (we use ±5 minutes) and refuse replayed nonces.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
from dataclasses import dataclass

from lxml import etree

WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
_PROFILE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
PASSWORD_TEXT = _PROFILE + "#PasswordText"
PASSWORD_DIGEST = _PROFILE + "#PasswordDigest"
BASE64_BINARY = ("http://docs.oasis-open.org/wss/2004/01/"
                 "oasis-200401-wss-soap-message-security-1.0#Base64Binary")


def _ts(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{moment.microsecond // 1000:03d}Z"


def password_digest(nonce: bytes, created: str, password: str) -> str:
    return base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode()).digest()).decode()


def username_token_header(username: str, password: str, *, digest: bool = False,
                          now: dt.datetime | None = None, nonce: bytes | None = None) -> etree._Element:
    """A `wsse:Security` element carrying one UsernameToken (to put in `soap:Header`)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    nonce = nonce if nonce is not None else os.urandom(16)
    created = _ts(now)
    sec = etree.Element(f"{{{WSSE}}}Security", nsmap={"wsse": WSSE, "wsu": WSU})
    tok = etree.SubElement(sec, f"{{{WSSE}}}UsernameToken")
    etree.SubElement(tok, f"{{{WSSE}}}Username").text = username
    pw = etree.SubElement(tok, f"{{{WSSE}}}Password")
    if digest:
        pw.set("Type", PASSWORD_DIGEST)
        pw.text = password_digest(nonce, created, password)
    else:
        pw.set("Type", PASSWORD_TEXT)
        pw.text = password
    n = etree.SubElement(tok, f"{{{WSSE}}}Nonce")
    n.set("EncodingType", BASE64_BINARY)
    n.text = base64.b64encode(nonce).decode()
    etree.SubElement(tok, f"{{{WSU}}}Created").text = created
    return sec


@dataclass(frozen=True)
class UsernameToken:
    username: str
    password: str | None  # as sent (text) or the digest
    password_type: str
    nonce: bytes | None
    created: dt.datetime | None
    created_raw: str | None


class WsSecurityError(Exception):
    """`code` is the WS-Security fault subcode: InvalidSecurity, InvalidSecurityToken, FailedAuthentication."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def parse_username_token(header: etree._Element | None) -> UsernameToken:
    """Extract the UsernameToken from a `soap:Header`; raise `WsSecurityError` if absent/malformed."""
    if header is None:
        raise WsSecurityError("InvalidSecurity", "no SOAP header / wsse:Security")
    sec = header.find(f"{{{WSSE}}}Security")
    if sec is None:
        raise WsSecurityError("InvalidSecurity", "no wsse:Security header")
    tok = sec.find(f"{{{WSSE}}}UsernameToken")
    if tok is None:
        raise WsSecurityError("InvalidSecurityToken", "no wsse:UsernameToken")
    user = tok.findtext(f"{{{WSSE}}}Username")
    pw_el = tok.find(f"{{{WSSE}}}Password")
    if not user or pw_el is None:
        raise WsSecurityError("InvalidSecurityToken", "UsernameToken needs Username and Password")
    ptype = pw_el.get("Type", PASSWORD_TEXT)
    if ptype not in (PASSWORD_TEXT, PASSWORD_DIGEST):
        raise WsSecurityError("InvalidSecurityToken", f"unsupported password type {ptype}")
    nonce_text = tok.findtext(f"{{{WSSE}}}Nonce")
    try:
        nonce = base64.b64decode(nonce_text, validate=True) if nonce_text else None
    except ValueError as exc:
        raise WsSecurityError("InvalidSecurityToken", "Nonce is not base64") from exc
    created_raw = tok.findtext(f"{{{WSU}}}Created")
    created = None
    if created_raw:
        try:
            created = dt.datetime.fromisoformat(created_raw.replace("Z", "+00:00"))
        except ValueError as exc:
            raise WsSecurityError("InvalidSecurityToken", "Created is not an xs:dateTime") from exc
        if created.tzinfo is None:
            raise WsSecurityError("InvalidSecurityToken", "Created must carry a time zone")
    return UsernameToken(user, pw_el.text or "", ptype, nonce, created, created_raw)


def verify_password(token: UsernameToken, expected_password: str) -> bool:
    if token.password_type == PASSWORD_TEXT:
        return hmac.compare_digest((token.password or "").encode(), expected_password.encode())
    if token.nonce is None or token.created_raw is None:
        return False
    want = password_digest(token.nonce, token.created_raw, expected_password)
    return hmac.compare_digest((token.password or "").encode(), want.encode())
