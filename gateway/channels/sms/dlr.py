"""LINK Mobility delivery reports (DLR): parsing, result-code mapping and the callback endpoint.

Common POSTs a report to the *gate* configured by LINK support (the URL we give them) when a
message reaches a state; a multipart message gets one report per part with id `{id}${n}`. The
receiver must answer 200 or Common retries. Fields (JSON gate format): refId, id, operator,
sentTimestamp, timestamp (RFC 3339 UTC), resultCode, operatorResultCode, segments,
gateCustomParameters, customParameters. Form-encoded gates carry the same keys.

Authentication of the callback: LINK does not sign DLRs; they come from LINK's published IP
ranges. We therefore (a) put a shared secret into the gate URL we register (`?token=...`) or, if
LINK's gate can add headers, a header (`X-Sendgw-Dlr-Token`), compared in constant time, and
(b) optionally allow-list source networks. Proposed mount path: `POST /callbacks/sms/linkmobility`.
"""

from __future__ import annotations

import datetime as dt
import hmac
import ipaddress
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable, Mapping
from urllib.parse import parse_qsl

from gateway.channels.base import TrackEvent, TrackState

log = logging.getLogger(__name__)

DLR_PATH = "/callbacks/sms/linkmobility"
TOKEN_HEADER = "X-Sendgw-Dlr-Token"
TOKEN_PARAM = "token"

#: resultCode → (our state, final?, description). Source: LINK/Sergel "Common" result codes.
RESULT_CODES: dict[int, tuple[TrackState, bool, str]] = {
    0: ("failed", True, "Unknown error"),
    1: ("failed", True, "Temporary routing error"),
    2: ("failed", True, "Permanent routing error"),
    3: ("failed", True, "Maximum throttling exceeded"),
    4: ("failed", True, "Timeout"),
    5: ("failed", True, "Operator unknown error"),
    6: ("failed", True, "Operator error"),
    104: ("failed", True, "Configuration error"),
    105: ("failed", True, "Internal error"),
    1000: ("accepted", False, "Sent (to operator)"),
    1001: ("delivered", True, "Billed and delivered"),
    1002: ("failed", True, "Expired"),
    1003: ("failed", True, "Deleted"),
    1004: ("failed", True, "Mobile full"),
    1005: ("accepted", False, "Queued"),
    1006: ("failed", True, "Not delivered"),
    1007: ("delivered", True, "Delivered, billing delayed"),
    1008: ("accepted", False, "Billed OK (charged before sending)"),
    1009: ("failed", True, "Billed OK and NOT delivered"),
    1010: ("failed", True, "Expired, absence of operator delivery report"),
    1011: ("accepted", False, "Billed OK and sent (to operator)"),
    1012: ("accepted", False, "Delayed (temporary billing error, will retry)"),
    1013: ("accepted", False, "Sent to operator, billing delayed"),
    2104: ("failed", True, "Unknown subscriber"),
    2105: ("failed", True, "Destination permanently blocked"),
    2106: ("failed", True, "Number error"),
    2107: ("failed", True, "Destination temporarily blocked"),
}


def describe(code: int) -> tuple[TrackState, bool, str]:
    if code in RESULT_CODES:
        return RESULT_CODES[code]
    if 2000 <= code < 5000:  # input/subscriber/encoding/content errors
        return ("failed", True, f"Rejected (resultCode {code})")
    return ("failed", True, f"Unknown resultCode {code}")


class DlrError(ValueError):
    """A delivery report that cannot be read."""


@dataclass(frozen=True)
class DeliveryReport:
    message_id: str  # Common's id of the whole message (part suffix removed)
    part: int | None  # n of `{id}${n}` for multipart messages
    ref_id: str | None  # our refId (the delivery id)
    result_code: int
    final: bool
    event: TrackEvent
    operator: str | None = None
    segments: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


def _timestamp(value: Any) -> dt.datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def _decode(body: bytes | str | Mapping[str, Any], content_type: str | None) -> Mapping[str, Any]:
    if isinstance(body, Mapping):
        return body
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
    except UnicodeDecodeError:
        raise DlrError("delivery report is not UTF-8") from None
    if content_type and "x-www-form-urlencoded" in content_type:
        return dict(parse_qsl(text, keep_blank_values=True))
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: [[[[… nested too deep for the parser
        if "=" in text and "{" not in text:
            return dict(parse_qsl(text, keep_blank_values=True))
        raise DlrError("delivery report is neither JSON nor form data") from None
    if not isinstance(data, dict):
        raise DlrError("delivery report must be a JSON object")
    return data


def read_delivery_report(body: bytes | str | Mapping[str, Any], content_type: str | None = None, *,
                         now: dt.datetime | None = None) -> DeliveryReport:
    """The full report: ids, result code and our TrackEvent."""
    data = _decode(body, content_type)
    raw_id, ref_id = data.get("id"), data.get("refId") or None
    if not raw_id or not isinstance(raw_id, str):
        raise DlrError("delivery report without message id")
    # a malformed report is refused (400), never left to fail in the callback (500 = retried forever)
    if "\x00" in raw_id or (ref_id is not None and (not isinstance(ref_id, str) or "\x00" in ref_id)):
        raise DlrError("delivery report id and refId must be text")
    try:
        code = int(data.get("resultCode"))  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise DlrError("delivery report without an integer resultCode") from None
    message_id, sep, suffix = raw_id.partition("$")
    part = int(suffix) if sep and suffix.isdigit() else None
    state, final, text = describe(code)
    at = _timestamp(data.get("timestamp")) or now or dt.datetime.now(dt.timezone.utc)
    operator = data.get("operator") or None
    detail = f"LINK resultCode {code} {text}" + (f" (operator {operator})" if operator else "")
    if part is not None:
        detail += f", part {part}"
    segments = data.get("segments")
    return DeliveryReport(
        message_id=message_id, part=part, ref_id=ref_id, result_code=code, final=final,
        event=TrackEvent(state, at, detail), operator=operator,
        segments=int(segments) if str(segments or "").isdigit() else None, raw=dict(data),
    )


def parse_delivery_report(body: bytes | str | Mapping[str, Any], content_type: str | None = None) -> TrackEvent:
    """A LINK delivery report body as our TrackEvent (delivered / failed / accepted for interim codes)."""
    return read_delivery_report(body, content_type).event


def make_dlr_handler(
    callback: Callable[[DeliveryReport], Awaitable[None]],
    *,
    secret: str | None = None,
    allowed_networks: Iterable[str] = (),
) -> Callable[[Any], Awaitable[Any]]:
    """An aiohttp handler for `POST /callbacks/sms/linkmobility`.

    401 when the shared secret (query `token` or header `X-Sendgw-Dlr-Token`) is configured and
    missing/wrong, 403 when the peer is outside `allowed_networks`, 400 for an unreadable report
    (Common would retry forever on 5xx, so a malformed report is refused, not retried), 500 when our
    callback fails (so Common retries), 200 "OK" once recorded.
    """
    from aiohttp import web

    networks = [ipaddress.ip_network(n, strict=False) for n in allowed_networks]

    async def handler(request: web.Request) -> web.Response:
        if networks:
            try:
                peer = ipaddress.ip_address(request.remote or "")
            except ValueError:
                peer = None
            if peer is None or not any(peer in n for n in networks):
                return web.Response(status=403, text="forbidden")
        if secret is not None:
            given = request.query.get(TOKEN_PARAM) or request.headers.get(TOKEN_HEADER) or ""
            if not hmac.compare_digest(given.encode(), secret.encode()):
                return web.Response(status=401, text="unauthorized")
        body = await request.read()
        try:
            report = read_delivery_report(body, request.content_type)
        except DlrError as exc:
            return web.Response(status=400, text=str(exc))
        try:
            await callback(report)
        except Exception:  # make Common retry rather than lose the report
            log.exception("delivery report callback failed for %s", report.message_id)
            return web.Response(status=500, text="error")
        return web.Response(status=200, text="OK")

    return handler
