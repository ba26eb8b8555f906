"""A LINK Mobility "Common" SMS gateway for tests: a real aiohttp server on 127.0.0.1.

Enforces what Common enforces for `POST /sms/send`: Basic or bearer auth (tokens from
`POST /auth/token`, client-credentials, form-encoded), the account's platformId/platformPartnerId,
required fields, destination MSISDN in E.164 with '+', sender rules per sourceTON (alphanumeric 2-11
a-z/A-Z/0-9 starting with a letter; MSISDN; short number), no 4-byte characters, at most 254
segments, validity time between 15 min and 48 h, registered delivery-report gates. Answers
`{"messageId", "resultCode": 1005, "description": "Queued", "smsCount"}` and later POSTs delivery
reports to the gate URL (one per part, `{id}${n}` for multipart), retrying until the receiver
answers 200. Outcomes per destination are seeded (default: 1000 then 1001).

Errors use the shape `{"status": http, "resultCode": code, "description": text}` with Common's
resultCodes (2000 invalid source, 2106 number error, 4001 invalid content...): the exact error
body of the real service is not in the public documents (see docs/channels-sms.md).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from gateway.channels.sms.numbers import ALPHANUMERIC_SENDER, E164, SHORTNUMBER
from gateway.channels.sms.text import MAX_SEGMENTS, has_non_bmp, segment_info

MIN_VALIDITY_MS, MAX_VALIDITY_MS = 15 * 60 * 1000, 48 * 3600 * 1000


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class LinkSimulator:
    username: str = "sendgw"
    password: str = "secret"
    client_id: str = "sendgw-client"
    client_secret: str = "client-secret"
    platform_id: str = "COMMON_API"
    platform_partner_id: str = "12345"
    gates: dict[str, str] = field(default_factory=dict)  # gate id → callback URL
    outcomes: dict[str, list[int]] = field(default_factory=dict)  # destination → resultCodes in order
    default_outcome: tuple[int, ...] = (1000, 1001)
    dlr_delay: float = 0.05  # seconds before the first report
    dlr_retry_delay: float = 0.05
    dlr_max_attempts: int = 5
    response_delay: float = 0.0  # stall /sms/send (timeouts)
    dedupe_ref_id: bool = False  # the public doc says refId is only a reference; opt-in for tests
    token_ttl: int = 3600

    def __post_init__(self) -> None:
        self.requests: list[dict[str, Any]] = []  # accepted send bodies
        self.rejected: list[tuple[int, dict[str, Any]]] = []
        self.messages: dict[str, dict[str, Any]] = {}  # messageId → record
        self.dlr_attempts: list[tuple[str, int]] = []  # (url, http status or -1)
        self.tokens: dict[str, float] = {}
        self._by_ref: dict[str, str] = {}
        self._tasks: set[asyncio.Task] = set()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.base_url = ""

    # --------------------------------------------------------------- lifecycle

    async def start(self) -> "LinkSimulator":
        app = web.Application()
        app.router.add_post("/auth/token", self._token)
        app.router.add_post("/sms/send", self._send)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        self._session = aiohttp.ClientSession()
        return self

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session:
            await self._session.close()
        if self._runner:
            await self._runner.cleanup()

    async def __aenter__(self) -> "LinkSimulator":
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def wait_for_reports(self, timeout: float = 5.0) -> None:
        """Wait until every scheduled delivery report has been attempted."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._tasks and asyncio.get_running_loop().time() < deadline:
            await asyncio.wait(set(self._tasks), timeout=deadline - asyncio.get_running_loop().time())

    # --------------------------------------------------------------- endpoints

    async def _token(self, request: web.Request) -> web.Response:
        if request.content_type != "application/x-www-form-urlencoded":
            return web.json_response({"error": "invalid_request"}, status=400)
        form = await request.post()
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return web.json_response({"error": "invalid_client"}, status=401)
        token = secrets.token_urlsafe(24)
        self.tokens[token] = asyncio.get_running_loop().time() + self.token_ttl
        return web.json_response({"access_token": token, "token_type": "Bearer", "expires_in": self.token_ttl})

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, pw = base64.b64decode(value).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            return secrets.compare_digest(user, self.username) and secrets.compare_digest(pw, self.password)
        if scheme.lower() == "bearer":
            expiry = self.tokens.get(value)
            return expiry is not None and expiry > asyncio.get_running_loop().time()
        return False

    def _error(self, status: int, code: int, text: str, body: dict[str, Any] | None = None) -> web.Response:
        self.rejected.append((status, body or {}))
        return web.json_response({"status": status, "resultCode": code, "description": text}, status=status)

    async def _send(self, request: web.Request) -> web.Response:
        if self.response_delay:
            await asyncio.sleep(self.response_delay)
        if not self._authorized(request):
            return self._error(401, 104, "Unauthorized")
        try:
            body = json.loads(await request.read())
        except ValueError:
            return self._error(400, 4003, "Malformed JSON")
        if not isinstance(body, dict):
            return self._error(400, 4003, "Body must be a JSON object")
        if body.get("platformId") != self.platform_id or body.get("platformPartnerId") != self.platform_partner_id:
            return self._error(403, 104, "Unknown platformId/platformPartnerId for this user", body)
        problem = self._validate(body)
        if problem:
            return self._error(400, problem[0], problem[1], body)
        ref = body.get("refId")
        if self.dedupe_ref_id and ref and ref in self._by_ref:
            known = self.messages[self._by_ref[ref]]
            return web.json_response({"messageId": known["id"], "resultCode": 1005, "description": "Queued",
                                      "smsCount": known["segments"]})
        info = segment_info(body.get("userData", ""))
        message_id = secrets.token_urlsafe(16)
        record = {"id": message_id, "body": body, "segments": info.segments, "encoding": info.encoding,
                  "sent": _now()}
        self.messages[message_id] = record
        self.requests.append(body)
        if ref:
            self._by_ref[ref] = message_id
        if body.get("useDeliveryReport", True):
            task = asyncio.create_task(self._report(record))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return web.json_response({"messageId": message_id, "resultCode": 1005, "description": "Queued",
                                  "smsCount": info.segments})

    def _validate(self, body: dict[str, Any]) -> tuple[int, str] | None:
        for key in ("source", "destination", "userData"):
            if not isinstance(body.get(key), str) or not body.get(key):
                return 4003 if key == "userData" else 2000 if key == "source" else 2106, f"Missing {key}"
        source, ton = body["source"], body.get("sourceTON", "ALPHANUMERIC")
        if ton == "ALPHANUMERIC" and not ALPHANUMERIC_SENDER.match(source):
            return 2000, "Invalid source: alphanumeric sender must be 2-11 chars a-z, A-Z, 0-9, starting with a letter"
        if ton == "MSISDN" and not E164.match(source):
            return 2000, "Invalid source MSISDN"
        if ton == "SHORTNUMBER" and not SHORTNUMBER.match(source):
            return 2000, "Invalid source short number"
        if ton not in ("ALPHANUMERIC", "MSISDN", "SHORTNUMBER"):
            return 2000, f"Invalid sourceTON {ton}"
        if body.get("destinationTON", "MSISDN") != "MSISDN":
            return 2102, "Only MSISDN destinations are supported"
        if not E164.match(body["destination"]):
            return 2106, "Number error: destination must be an MSISDN with a leading + and country code"
        if body.get("dcs", "TEXT") not in ("TEXT", "GSM", "UCS2"):
            return 4005, "Invalid data coding"
        text = body["userData"]
        if has_non_bmp(text):
            return 4001, "Invalid message content: 4-byte unicode characters are not supported"
        if segment_info(text).segments > MAX_SEGMENTS:
            return 4003, f"Message longer than {MAX_SEGMENTS} segments"
        validity = body.get("relativeValidityTime")
        if validity is not None and (not isinstance(validity, int) or not MIN_VALIDITY_MS <= validity <= MAX_VALIDITY_MS):
            return 4003, "relativeValidityTime must be between 15 minutes and 48 hours (ms)"
        if body.get("priority") not in (None, "HIGH", "NORMAL", "LOW"):
            return 4003, "Invalid priority"
        gates = body.get("deliveryReportGates") or []
        if body.get("useDeliveryReport", True):
            if not gates:
                return 4000, "useDeliveryReport requires deliveryReportGates"
            unknown = [g for g in gates if g not in self.gates]
            if unknown:
                return 104, f"Unknown delivery report gate(s): {', '.join(unknown)}"
        return None

    # --------------------------------------------------------------- delivery reports

    async def _report(self, record: dict[str, Any]) -> None:
        body = record["body"]
        codes = self.outcomes.get(body["destination"], list(self.default_outcome))
        await asyncio.sleep(self.dlr_delay)
        parts = range(record["segments"]) if record["segments"] > 1 else [None]
        for code in codes:
            for part in parts:
                report = {
                    "refId": body.get("refId"),
                    "id": record["id"] if part is None else f"{record['id']}${part}",
                    "operator": "no.telenor", "sentTimestamp": record["sent"], "timestamp": _now(),
                    "resultCode": code, "operatorResultCode": "0" if code == 1001 else str(code),
                    "segments": record["segments"], "gateCustomParameters": {},
                    "customParameters": {"source": body["source"], "destination": body["destination"]},
                }
                for gate in body.get("deliveryReportGates") or []:
                    await self._post_report(self.gates[gate], report)

    async def _post_report(self, url: str, report: dict[str, Any]) -> None:
        assert self._session is not None
        for _ in range(self.dlr_max_attempts):
            try:
                async with self._session.post(url, json=report, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                    self.dlr_attempts.append((url, resp.status))
                    if resp.status == 200:
                        return
            except (aiohttp.ClientError, asyncio.TimeoutError):
                self.dlr_attempts.append((url, -1))
            await asyncio.sleep(self.dlr_retry_delay)
