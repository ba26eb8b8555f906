"""Delivery Status Notifications (RFC 3464 `multipart/report; report-type=delivery-status`).

A 250 reply only means "accepted by the next hop"; the real outcome of an e-mail arrives later as a
DSN in the bounce mailbox (the envelope sender). This parses one into the delivery it concerns
(via the Message-ID we derive from the delivery id, or our own header in the returned headers) and
a `TrackEvent`: `Action: failed` → failed, `delivered` → delivered; `delayed`/`relayed` are not final
and yield nothing.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
from dataclasses import dataclass
from email.message import EmailMessage

from gateway.channels.base import TrackEvent
from gateway.channels.email.message import DELIVERY_HEADER

_MSGID_LOCAL = re.compile(r"<sendgw\.([A-Za-z0-9._-]+)@[^>]+>")


@dataclass(frozen=True)
class Bounce:
    message_id: str | None
    delivery_id: str | None
    recipient: str | None
    event: TrackEvent | None  # None for non-final actions (delayed, relayed, expanded)


def _fields(text: str) -> list[dict[str, str]]:
    """Per-message and per-recipient field groups of a message/delivery-status body."""
    groups, current = [], {}
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            if current:
                groups.append(current)
                current = {}
            continue
        if line[0] in " \t" and current:
            last = next(reversed(current))
            current[last] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if sep:
            current[name.strip().lower()] = value.strip()
    if current:
        groups.append(current)
    return groups


def parse_dsn(raw: bytes, *, now: dt.datetime | None = None) -> Bounce | None:
    """A DSN's meaning, or None when `raw` is not a delivery-status report."""
    msg: EmailMessage = email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[assignment]
    if msg.get_content_type() != "multipart/report" or msg.get_param("report-type") != "delivery-status":
        return None
    status_text, original = None, None
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/delivery-status":
            payload = part.get_payload()
            if isinstance(payload, list):  # the email package parses it into header blocks
                status_text = "\n\n".join(p.as_string() for p in payload)
            else:
                status_text = part.get_payload(decode=True).decode("utf-8", "replace")
        elif ctype in ("message/rfc822", "text/rfc822-headers"):
            inner = part.get_payload()
            if isinstance(inner, list) and inner:
                original = inner[0]
            else:
                original = email.message_from_bytes(part.get_payload(decode=True) or b"", policy=email.policy.default)
    if status_text is None:
        return None
    groups = _fields(status_text)
    recipients = [g for g in groups if "action" in g]
    if not recipients:
        return None
    rcpt = recipients[0]
    message_id = original.get("Message-ID") if original is not None else None
    delivery_id = original.get(DELIVERY_HEADER) if original is not None else None
    if not delivery_id and message_id:
        m = _MSGID_LOCAL.search(message_id)
        delivery_id = m.group(1) if m else None
    action = rcpt.get("action", "").lower()
    recipient = rcpt.get("final-recipient", "").partition(";")[2].strip() or None
    detail = f"{rcpt.get('status', '')} {rcpt.get('diagnostic-code', '')}".strip()
    at = now or dt.datetime.now(dt.timezone.utc)
    if action == "failed":
        event = TrackEvent("failed", at, f"bounce for {recipient}: {detail}")
    elif action == "delivered":
        event = TrackEvent("delivered", at, f"delivered to {recipient}")
    else:
        event = None
    return Bounce(str(message_id) if message_id else None, delivery_id, recipient, event)
