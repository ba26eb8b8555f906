"""A real client for the Digipost REST API (v8): identification, multipart send, document events.

Wire protocol (digipost-api-client-java, Digipost technical docs):

* every request carries `Accept: application/vnd.digipost-v8+xml`, `Date` (RFC 1123), `X-Digipost-UserId`
  (the broker/sender id), and with a body `X-Content-SHA256`;
* auth is either the classic `X-Digipost-Signature` (RSA-SHA256 over the canonical string, see
  `signing.py`) or `Authorization: Bearer <token>`, the token fetched with the OAuth2 client-credentials
  grant from a token endpoint over mutual TLS (`grant_type`, `client_id`, `scope=dpost-api:<broker id>`,
  `resource=<api base URI>`; JSON `access_token` + `expires_in`); a 401 drops the cached token and the
  request is retried once with a fresh one;
* every response except the entrypoint and 401s is checked: `Date` within ±5 min, `X-Content-SHA256`
  equal to the body's hash, and `X-Digipost-Signature` verified with Digipost's certificate (configured,
  or the `certificate` of the entrypoint `GET /`);
* `POST /messages` body is `multipart/vnd.digipost-v8+xml`: the message XML part
  (`Content-Disposition: attachment; filename="message"`), then one part per document named by its UUID.

Pure request building / response parsing lives in `schema.py`, `signing.py` and the functions below;
the class only does I/O.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import ssl
import time
import uuid as uuidlib
from dataclasses import dataclass
from typing import Callable, Mapping
from urllib.parse import urlencode, urlsplit

import aiohttp
from yarl import URL
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.channels.base import ChannelError
from gateway.channels.digipost import schema, signing
from gateway.channels.digipost.schema import (
    ApiError,
    DocumentEvent,
    EntryPoint,
    IdentificationResult,
    MessageDelivery,
    RecipientId,
    SchemaError,
)

Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# Error codes (Digipost `error-code`) that mean our credentials/signature were refused.
AUTH_ERROR_CODES = frozenset({
    "INVALID_SIGNATURE", "MISSING_SIGNATURE", "MISSING_CERTIFICATE", "REVOKED_CERTIFICATE",
    "INVALID_USER_ID_HEADER", "UNKNOWN_USER_ID", "MISSING_DATE_HEADER", "INVALID_DATE_HEADER",
    "DATE_HEADER_OUTSIDE_ACCEPTED_INTERVAL", "MISSING_SHA256", "INVALID_SHA256", "BROKER_NOT_AUTHORIZED",
    "NOT_APPROVED_FOR_REST_API_USAGE", "ILLEGAL_ACCESS", "ACCOUNT_DEACTIVATED",
})
DUPLICATE_ERROR_CODES = frozenset({"DUPLICATE_MESSAGE", "DUPLICATE_DOCUMENT_ID", "MESSAGE_ALREADY_SENT",
                                   "DIGIPOST_MESSAGE_ALREADY_DELIVERED", "PRINT_MESSAGE_ALREADY_DELIVERED"})
NOT_REACHABLE_ERROR_CODES = frozenset({"UNKNOWN_RECIPIENT", "UNKNOWN_USER", "MISSING_RECIPIENT"})
CONFIG_ERROR_CODES = frozenset({"NOT_APPROVED_FOR_PRINT", "NOT_APPROVED_FOR_DIRECT_PRINT", "UNKNOWN_SENDER",
                                "ORGANISATION_LETTERS_PER_MONTH_EXCEEDED", "NOT_APPROVED_FOR_IDPORTEN",
                                "NOT_APPROVED_FOR_PREENCRYPT", "NOTIFICATION_ADDRESSES_NOT_ALLOWED"})


class DigipostError(ChannelError):
    """A refused or failed Digipost call, with the HTTP status and Digipost's `error` when known.

    `code` (ours, for the routing engine): `auth-refused`, `invalid-data`, `not-reachable`,
    `duplicate`, `configuration`, `timeout`, `unavailable`, `response-not-trusted`, `protocol`.
    """

    def __init__(self, code: str, message: str, *, transient: bool = False, status: int | None = None,
                 api_error: ApiError | None = None):
        super().__init__(code, message, transient=transient)
        self.status, self.api_error = status, api_error


def classify_error(status: int, api_error: ApiError | None) -> DigipostError:
    """Map a non-2xx response to our error code (Digipost's error-code first, then the status)."""
    dcode = api_error.code if api_error else ""
    text = f"HTTP {status}" + (f" {dcode}: {api_error.message}" if api_error else "")
    if dcode in DUPLICATE_ERROR_CODES or status == 409:
        return DigipostError("duplicate", text, status=status, api_error=api_error)
    if dcode in AUTH_ERROR_CODES:
        return DigipostError("auth-refused", text, status=status, api_error=api_error)
    if dcode in CONFIG_ERROR_CODES:
        return DigipostError("configuration", text, status=status, api_error=api_error)
    if dcode in NOT_REACHABLE_ERROR_CODES or status == 404:
        return DigipostError("not-reachable", text, status=status, api_error=api_error)
    if status in (401, 403):
        return DigipostError("auth-refused", text, status=status, api_error=api_error)
    if status == 429 or status >= 500:
        return DigipostError("unavailable", text, transient=True, status=status, api_error=api_error)
    return DigipostError("invalid-data", text, status=status, api_error=api_error)


# --------------------------------------------------------------------------- multipart (pure)


@dataclass(frozen=True)
class DocumentPart:
    uuid: str
    content_type: str
    content: bytes


def boundary_for(key: str) -> str:
    """A deterministic multipart boundary (so rendering stays pure and replayable)."""
    return "digipost-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def build_multipart(message_xml: bytes, documents: list[DocumentPart], boundary: str) -> tuple[str, bytes]:
    """(`Content-Type` header value, body) of the `multipart/vnd.digipost-v8+xml` send request."""
    crlf = b"\r\n"
    delim = b"--" + boundary.encode("ascii")
    for part in documents:
        if delim in part.content:
            raise ValueError("multipart boundary occurs in a document")
    chunks = [
        delim, crlf,
        f"Content-Type: {schema.MEDIA_TYPE}; charset=UTF-8".encode("ascii"), crlf,
        b'Content-Disposition: attachment; filename="message"', crlf, crlf,
        message_xml, crlf,
    ]
    for part in documents:
        chunks += [
            delim, crlf,
            f"Content-Type: {part.content_type}".encode("ascii"), crlf,
            f'Content-Disposition: attachment; filename="{part.uuid}"'.encode("ascii"), crlf, crlf,
            part.content, crlf,
        ]
    chunks += [delim, b"--", crlf]
    return f'{schema.MULTIPART_MEDIA_TYPE}; boundary="{boundary}"', b"".join(chunks)


# --------------------------------------------------------------------------- OAuth2 token (mTLS)


class TokenProvider:
    """Client-credentials access tokens from Digipost's token endpoint, fetched over mutual TLS.

    Mirrors `MutualTlsTokenProvider`: cached until 30 s before expiry (`expires_in`, else the JWT `exp`,
    else 60 s), at least 5 s; `invalidate(token)` drops only that token.
    """

    REFRESH_MARGIN = 30.0
    MINIMUM_CACHE = 5.0
    FALLBACK_LIFETIME = 60.0

    def __init__(self, *, token_url: str, client_id: str, scope: str, resource: str,
                 ssl_context: ssl.SSLContext | None, timeout: float = 30.0,
                 monotonic: Callable[[], float] = time.monotonic):
        self.token_url, self.client_id, self.scope, self.resource = token_url, client_id, scope, resource
        self._ssl, self._timeout, self._monotonic = ssl_context, timeout, monotonic
        self._token: str | None = None
        self._valid_until = float("-inf")
        self._lock = asyncio.Lock()

    def form(self) -> dict[str, str]:
        return {"grant_type": "client_credentials", "client_id": self.client_id,
                "scope": self.scope, "resource": self.resource}

    async def get(self, session: aiohttp.ClientSession) -> str:
        if self._token and self._monotonic() < self._valid_until:
            return self._token
        async with self._lock:
            if self._token and self._monotonic() < self._valid_until:
                return self._token
            return await self._fetch(session)

    def invalidate(self, token: str) -> None:
        if self._token == token:
            self._valid_until = float("-inf")

    async def _fetch(self, session: aiohttp.ClientSession) -> str:
        try:
            async with session.post(self.token_url, data=self.form(), ssl=self._ssl if self._ssl else None,
                                    timeout=aiohttp.ClientTimeout(total=self._timeout)) as resp:
                body = await resp.read()
                status = resp.status
        except asyncio.TimeoutError as exc:
            raise DigipostError("timeout", f"token endpoint {self.token_url} timed out", transient=True) from exc
        except aiohttp.ClientError as exc:
            raise DigipostError("unavailable", f"token endpoint {self.token_url}: {exc}", transient=True) from exc
        if status != 200:
            text = body[:300].decode("utf-8", "replace")
            if status in (400, 401, 403):
                raise DigipostError("auth-refused", f"token endpoint returned HTTP {status}: {text}", status=status)
            raise DigipostError("unavailable", f"token endpoint returned HTTP {status}: {text}",
                                transient=status >= 500 or status == 429, status=status)
        try:
            payload = json.loads(body)
            token = payload["access_token"]
            if not isinstance(token, str) or not token:
                raise KeyError("access_token")
        except (ValueError, KeyError, TypeError) as exc:
            raise DigipostError("protocol", "token endpoint response has no access_token") from exc
        lifetime = _token_lifetime(payload, token)
        now = self._monotonic()
        refresh_at = now + lifetime - self.REFRESH_MARGIN
        minimum = now + self.MINIMUM_CACHE
        self._token = token
        self._valid_until = refresh_at if refresh_at > minimum else min(minimum, now + lifetime)
        return token


def _token_lifetime(payload: Mapping, token: str) -> float:
    expires_in = payload.get("expires_in")
    if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool):
        return float(expires_in)
    try:
        import base64

        part = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        return float(claims["exp"]) - time.time()
    except Exception:  # noqa: BLE001 - opaque token: fall back like the Java client
        return TokenProvider.FALLBACK_LIFETIME


# --------------------------------------------------------------------------- the client


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class SendResult:
    delivery: MessageDelivery | None  # None when Digipost said the message already exists
    duplicate: bool = False
    detail: str = ""


class DigipostClient:
    """One broker's connection to Digipost. Share one per tenant; `close()` when done."""

    def __init__(
        self,
        *,
        base_url: str,
        broker_id: str,
        private_key: rsa.RSAPrivateKey | None = None,
        token_provider: TokenProvider | None = None,
        digipost_public_key: rsa.RSAPublicKey | None = None,
        verify_responses: bool = True,
        trust_entrypoint_certificate: bool = True,
        session: aiohttp.ClientSession | None = None,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 30.0,
        clock: Clock = utcnow,
        paths: Mapping[str, str] | None = None,
        use_entrypoint_links: bool = True,
        user_agent: str = "sendgw-digipost/1",
    ):
        if (private_key is None) == (token_provider is None):
            raise ValueError("configure exactly one of private_key (signature) or token_provider (bearer)")
        self.base_url = base_url.rstrip("/")
        self._base_path = urlsplit(self.base_url).path  # a path prefix is part of what gets signed
        self.broker_id = str(broker_id)
        self._key, self._tokens = private_key, token_provider
        self._digipost_key = digipost_public_key
        self._verify, self._trust_ep = verify_responses, trust_entrypoint_certificate
        self._session, self._owns_session = session, session is None
        self._ssl, self._timeout, self._clock = ssl_context, timeout, clock
        self._paths = {"create_message": "/messages", "identify_recipient": "/identification",
                       "document_events": "/documents/events", **(paths or {})}
        self._use_links, self._links_loaded = use_entrypoint_links, False
        self._user_agent = user_agent

    @property
    def mode(self) -> str:
        return "signature" if self._key is not None else "bearer"

    async def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        return self._session

    async def close(self) -> None:
        if self._owns_session and self._session is not None and not self._session.closed:
            await self._session.close()

    # -- public operations --------------------------------------------------------------

    async def entrypoint(self) -> EntryPoint:
        """`GET /`: Digipost's certificate and links. Not signature-checked (it carries the key)."""
        resp = await self._send("GET", "/", verify=False)
        if resp.status != 200:
            raise classify_error(resp.status, schema.parse_error(resp.body))
        try:
            return schema.parse_entrypoint(resp.body)
        except SchemaError as exc:
            raise DigipostError("protocol", f"bad entrypoint: {exc}") from exc

    async def identify(self, rid: RecipientId) -> IdentificationResult:
        path = await self._path("identify_recipient")
        resp = await self._send("POST", path, body=schema.build_identification(rid),
                                content_type=schema.MEDIA_TYPE)
        if resp.status != 200:
            raise classify_error(resp.status, schema.parse_error(resp.body))
        try:
            return schema.parse_identification_result(resp.body)
        except SchemaError as exc:
            raise DigipostError("protocol", f"bad identification-result: {exc}") from exc

    async def send_message(self, content_type: str, body: bytes) -> SendResult:
        """POST the multipart message. A duplicate (409 / DUPLICATE_*) is reported, not raised."""
        path = await self._path("create_message")
        resp = await self._send("POST", path, body=body, content_type=content_type,
                                extra={"MIME-Version": "1.0"})
        if resp.status in (200, 201):
            try:
                return SendResult(schema.parse_message_delivery(resp.body))
            except SchemaError as exc:
                raise DigipostError("protocol", f"bad message-delivery: {exc}", transient=True) from exc
        err = classify_error(resp.status, schema.parse_error(resp.body))
        if err.code == "duplicate":
            return SendResult(None, duplicate=True, detail=err.message)
        raise err

    async def document_events(self, start: dt.datetime, end: dt.datetime, *, offset: int = 0,
                              max_results: int = 100) -> list[DocumentEvent]:
        """One page of the sender's document events created in [start, end)."""
        path = await self._path("document_events")
        query = urlencode({
            "from": _java_datetime(start), "to": _java_datetime(end),
            "offset": str(offset), "maxResults": str(max_results),
        })
        resp = await self._send("GET", path, query=query)
        if resp.status != 200:
            raise classify_error(resp.status, schema.parse_error(resp.body))
        try:
            return schema.parse_document_events(resp.body)
        except SchemaError as exc:
            raise DigipostError("protocol", f"bad document-events: {exc}", transient=True) from exc

    async def all_document_events(self, start: dt.datetime, end: dt.datetime, *, page_size: int = 100,
                                  max_pages: int = 50) -> list[DocumentEvent]:
        out: list[DocumentEvent] = []
        for page in range(max_pages):
            batch = await self.document_events(start, end, offset=page * page_size, max_results=page_size)
            out.extend(batch)
            if len(batch) < page_size:
                break
        return out

    # -- plumbing -----------------------------------------------------------------------

    async def _path(self, rel: str) -> str:
        """The resource path: from the entrypoint's links when enabled (as the Java client does), else the
        configured default. An entrypoint that answers but has no usable links leaves the defaults."""
        if self._use_links and not self._links_loaded:
            try:
                ep = await self.entrypoint()
            except DigipostError as exc:
                if exc.transient:
                    raise
                ep = EntryPoint(None, {})
            for name in ("create_message", "identify_recipient", "document_events"):
                link_path = urlsplit(ep.links.get(name, "")).path
                if link_path:
                    if self._base_path and link_path.startswith(self._base_path + "/"):
                        link_path = link_path[len(self._base_path):]
                    self._paths[name] = link_path
            if ep.certificate and self._digipost_key is None and self._trust_ep:
                self._digipost_key = signing.load_public_key(ep.certificate)
            self._links_loaded = True
        return self._paths[rel]

    async def _digipost_public_key(self):
        if self._digipost_key is None:
            if not self._trust_ep:
                raise DigipostError("configuration", "no Digipost certificate configured to verify responses")
            ep = await self.entrypoint()
            if not ep.certificate:
                raise DigipostError("response-not-trusted", "entrypoint carries no certificate", transient=True)
            self._digipost_key = signing.load_public_key(ep.certificate)
        return self._digipost_key

    def request_headers(self, method: str, path: str, query: str, body: bytes | None,
                        content_type: str | None, now: dt.datetime) -> dict[str, str]:
        """Headers for one request; in signature mode including `X-Digipost-Signature` (pure)."""
        headers = {
            "Accept": schema.MEDIA_TYPE,
            "Date": signing.http_date(now),
            signing.H_USER_ID: self.broker_id,
            "User-Agent": self._user_agent,
        }
        if body is not None:
            headers[signing.H_CONTENT_SHA256] = signing.content_sha256(body)
            if content_type:
                headers["Content-Type"] = content_type
        if self._key is not None:
            canonical = signing.canonical_request(method, path, headers, query)
            headers[signing.H_SIGNATURE] = signing.sign(self._key, canonical)
        return headers

    async def _send(self, method: str, path: str, *, query: str = "", body: bytes | None = None,
                    content_type: str | None = None, extra: Mapping[str, str] | None = None,
                    verify: bool = True, _retried: bool = False) -> Response:
        session = await self._http()
        wire_path = self._base_path + path
        headers = self.request_headers(method, wire_path, query, body, content_type, self._clock())
        headers["Accept-Encoding"] = "identity"  # hashes and signatures cover the bytes as sent
        headers.update(extra or {})
        token = None
        if self._tokens is not None:
            token = await self._tokens.get(session)
            headers["Authorization"] = f"Bearer {token}"
        # encoded=True: send the path and query byte-for-byte as signed (no re-quoting by yarl)
        url = URL(self.base_url + path + (f"?{query}" if query else ""), encoded=True)
        try:
            async with session.request(method, url, data=body, headers=headers, ssl=self._ssl if self._ssl else None,
                                       timeout=aiohttp.ClientTimeout(total=self._timeout),
                                       allow_redirects=False, auto_decompress=False) as resp:
                raw = await resp.read()
                response = Response(resp.status, {k: v for k, v in resp.headers.items()}, raw)
        except asyncio.TimeoutError as exc:
            raise DigipostError("timeout", f"{method} {path} timed out after {self._timeout}s", transient=True) from exc
        except aiohttp.ClientError as exc:
            raise DigipostError("unavailable", f"{method} {path}: {exc}", transient=True) from exc
        if response.status == 401 and token is not None and not _retried:
            self._tokens.invalidate(token)  # type: ignore[union-attr]
            return await self._send(method, path, query=query, body=body, content_type=content_type,
                                    extra=extra, verify=verify, _retried=True)
        if verify and self._verify and response.status != 401:
            await self.verify_response(wire_path, response)
        return response

    async def verify_response(self, path: str, response: Response) -> None:
        """Content hash, Digipost's signature, then the Date window; raises `response-not-trusted`.

        The Date check guards against replayed responses. It is waived for one authentic answer only:
        Digipost's own DATE_HEADER_OUTSIDE_ACCEPTED_INTERVAL error, which says that *our* clock is off,
        so the caller sees "auth refused" instead of a misleading "untrusted response".
        """
        headers = {k.lower(): v for k, v in response.headers.items()}
        if response.body:
            declared = headers.get("x-content-sha256")
            if declared != signing.content_sha256(response.body):
                raise DigipostError("response-not-trusted", "response X-Content-SHA256 does not match the body",
                                    transient=True, status=response.status)
        signature = headers.get("x-digipost-signature")
        if not signature:
            raise DigipostError("response-not-trusted", "response is not signed (no X-Digipost-Signature)",
                                transient=True, status=response.status)
        key = await self._digipost_public_key()
        canonical = signing.canonical_response(response.status, path, response.headers)
        if not signing.verify(key, canonical, signature):
            raise DigipostError("response-not-trusted", "response signature does not verify with Digipost's key",
                                transient=True, status=response.status)
        date = headers.get("date")
        if date and signing.date_within_window(date, self._clock()):
            return
        if response.status >= 400:
            err = schema.parse_error(response.body)
            if err is not None and err.code == "DATE_HEADER_OUTSIDE_ACCEPTED_INTERVAL":
                return
        raise DigipostError("response-not-trusted", f"response Date {date!r} missing or outside ±5 min",
                            transient=True, status=response.status)


def _java_datetime(value: dt.datetime) -> str:
    """`yyyy-MM-dd'T'HH:mm:ss.SSSxxx`, the format the Java client sends for event windows."""
    value = value.astimezone(dt.timezone.utc) if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}" + value.strftime("%z")[:3] + ":" + value.strftime("%z")[3:]


def derive_uuid(namespace: uuidlib.UUID, *parts: str) -> str:
    """A stable UUID (v5) for a delivery: retries reuse it, so Digipost can reject true duplicates."""
    return str(uuidlib.uuid5(namespace, "/".join(parts)))
