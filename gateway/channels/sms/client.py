"""LINK Mobility "Common" SMS REST client: `POST {base}/sms/send` (JSON), Basic auth or OAuth2.

Request fields follow LINK's "SMS REST API – MT and Delivery Reports": source, sourceTON,
destination (+MSISDN), destinationTON, userData, dcs, useDeliveryReport, deliveryReportGates,
relativeValidityTime (ms), priority, platformId, platformPartnerId, refId. A successful submit
returns `{"messageId": ..., "resultCode": 1005, "description": "Queued"}` (1005 = queued; the final
outcome arrives later as a delivery report). OAuth2: client-credentials grant posted form-encoded
to `{base}/auth/token`; the bearer token is cached until shortly before `expires_in`.

`build_send_body` and `interpret_send_response` are pure and unit-tested; `LinkMobilityClient` is
the aiohttp edge.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp

from gateway.channels.base import ChannelError

AuthMode = Literal["basic", "oauth2"]
#: submit-time resultCodes that mean "accepted for delivery"
ACCEPTED_CODES = frozenset({1000, 1005, 1008, 1011, 1012, 1013})


@dataclass(frozen=True)
class LinkSettings:
    base_url: str
    platform_id: str
    platform_partner_id: str
    auth: AuthMode = "basic"
    username: str | None = None
    password: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    send_path: str = "/sms/send"
    token_path: str = "/auth/token"
    timeout: float = 15.0


@dataclass(frozen=True)
class SendResult:
    message_id: str
    result_code: int
    description: str
    sms_count: int | None = None


def build_send_body(
    settings: LinkSettings, *, source: str, source_ton: str, destination: str, text: str, ref_id: str,
    gates: list[str], relative_validity_ms: int | None = None, priority: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "source": source,
        "sourceTON": source_ton,
        "destination": destination,
        "destinationTON": "MSISDN",
        "userData": text,
        "dcs": "TEXT",
        "platformId": settings.platform_id,
        "platformPartnerId": settings.platform_partner_id,
        "refId": ref_id,
        # LINK: "If you do not specify any Gates ... make sure to set useDeliveryReport to FALSE"
        "useDeliveryReport": bool(gates),
    }
    if gates:
        body["deliveryReportGates"] = list(gates)
    if relative_validity_ms is not None:
        body["relativeValidityTime"] = int(relative_validity_ms)
    if priority:
        body["priority"] = priority
    return body


def _error_text(payload: Any, fallback: str) -> tuple[int | None, str]:
    if isinstance(payload, dict):
        code = payload.get("resultCode", payload.get("errorCode", payload.get("code")))
        text = payload.get("description") or payload.get("message") or payload.get("error") or payload.get("detail")
        try:
            code = int(code) if code is not None else None
        except (TypeError, ValueError):
            code = None
        return code, str(text or fallback)
    return None, fallback


def interpret_send_response(status: int, body: bytes) -> SendResult:
    """A `SendResult`, or the ChannelError the routing engine should see."""
    try:
        payload: Any = json.loads(body) if body else None
    except ValueError:
        payload = None
    snippet = body[:200].decode("utf-8", "replace")
    if status in (401, 403):
        code, text = _error_text(payload, snippet or "unauthorized")
        return _raise(ChannelError("auth-refused", f"LINK refused credentials/platform ({status}): {text}"))
    if status == 429 or status >= 500:
        _, text = _error_text(payload, snippet)
        return _raise(ChannelError("provider-unavailable", f"LINK answered {status}: {text}", transient=True))
    if 400 <= status < 500:
        code, text = _error_text(payload, snippet)
        return _raise(ChannelError("invalid-request", f"LINK rejected the message ({status}"
                                   + (f", resultCode {code}" if code is not None else "") + f"): {text}"))
    if not (200 <= status < 300) or not isinstance(payload, dict) or not payload.get("messageId"):
        return _raise(ChannelError("bad-response", f"unexpected LINK response {status}: {snippet}", transient=True))
    code = payload.get("resultCode")
    try:
        code = int(code) if code is not None else 1005
    except (TypeError, ValueError):
        code = 1005
    if code not in ACCEPTED_CODES:
        return _raise(ChannelError("rejected", f"LINK resultCode {code}: {payload.get('description', '')}"))
    count = payload.get("smsCount", payload.get("segments"))
    return SendResult(str(payload["messageId"]), code, str(payload.get("description") or ""),
                      int(count) if isinstance(count, int) else None)


def _raise(err: ChannelError):
    raise err


class LinkMobilityClient:
    def __init__(self, settings: LinkSettings, session: aiohttp.ClientSession | None = None):
        self.settings = settings
        self._session = session
        self._own_session = session is None
        self._token: tuple[str, float] | None = None
        self._token_lock = asyncio.Lock()

    def _url(self, path: str) -> str:
        return self.settings.base_url.rstrip("/") + path

    async def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        return self._session

    async def _bearer(self, *, refresh: bool = False) -> str:
        async with self._token_lock:
            if not refresh and self._token and self._token[1] > time.monotonic():
                return self._token[0]
            s = self.settings
            form = {"grant_type": "client_credentials", "client_id": s.client_id or "",
                    "client_secret": s.client_secret or ""}
            session = await self._http()
            async with session.post(self._url(s.token_path), data=form,
                                    timeout=aiohttp.ClientTimeout(total=s.timeout)) as resp:
                body = await resp.read()
                if resp.status in (400, 401, 403):
                    raise ChannelError("auth-refused", f"LINK token endpoint refused the client ({resp.status})")
                if resp.status != 200:
                    raise ChannelError("provider-unavailable", f"LINK token endpoint answered {resp.status}",
                                       transient=True)
            try:
                data = json.loads(body)
                token, ttl = data["access_token"], float(data.get("expires_in", 300))
            except (ValueError, KeyError, TypeError):
                raise ChannelError("bad-response", "LINK token response without access_token", transient=True) from None
            self._token = (token, time.monotonic() + max(ttl - 30, ttl / 2))
            return token

    async def _auth_header(self, *, refresh: bool = False) -> dict[str, str]:
        s = self.settings
        if s.auth == "oauth2":
            return {"Authorization": f"Bearer {await self._bearer(refresh=refresh)}"}
        raw = f"{s.username or ''}:{s.password or ''}".encode("utf-8")
        return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}

    async def send(self, body: dict[str, Any]) -> SendResult:
        try:
            status, raw = await self._post(body)
            if status == 401 and self.settings.auth == "oauth2":  # token revoked/expired early: once more
                status, raw = await self._post(body, refresh=True)
        except ChannelError:
            raise
        except (asyncio.TimeoutError, TimeoutError) as exc:
            raise ChannelError("timeout", f"LINK did not answer within {self.settings.timeout}s", transient=True) from exc
        except aiohttp.ClientError as exc:
            raise ChannelError("connection-failed", f"cannot reach LINK: {exc}", transient=True) from exc
        return interpret_send_response(status, raw)

    async def _post(self, body: dict[str, Any], *, refresh: bool = False) -> tuple[int, bytes]:
        session = await self._http()
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   **await self._auth_header(refresh=refresh)}
        async with session.post(self._url(self.settings.send_path), data=json.dumps(body).encode(),
                                headers=headers,
                                timeout=aiohttp.ClientTimeout(total=self.settings.timeout)) as resp:
            return resp.status, await resp.read()

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None
