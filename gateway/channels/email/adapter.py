"""E-mail channel adapter: reachability (address syntax, optional MX), MIME rendering, SMTP submit,
and tracking through DSN bounces fed back by the bounce mailbox reader."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import asyncio
import logging
import os
from dataclasses import dataclass, fields
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any, ClassVar

from gateway.channels.base import (
    ChannelAdapter,
    ChannelError,
    DeliveryRequest,
    Reachability,
    Recipient,
    Rendered,
    SubmitResult,
    TrackEvent,
)
from gateway.channels.email.addresses import (
    address_problem,
    ascii_address,
    domain_of,
    has_mail_exchanger,
    normalize_address,
)
from gateway.channels.email.bounces import Bounce, parse_dsn
from gateway.channels.email.client import SmtpClient, SmtpSettings
from gateway.channels.email.message import build_invoice_message
from gateway.channels.notice import PaymentNotice
from gateway.channels.reachcache import ReachabilityCache

log = logging.getLogger(__name__)

_IGNORED_KEYS = {"cost", "cost_nok", "enabled", "channel", "name"}  # routing-engine keys, not ours


@dataclass(frozen=True)
class EmailConfig:
    host: str
    from_address: str
    port: int = 587
    security: str = "starttls"  # "starttls" (587), "tls" (implicit, 465) or "none" (tests/local relay only)
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0
    tls_ca_file: str | None = None
    tls_verify: bool = True
    local_hostname: str | None = None
    from_name: str | None = None  # default: the seller's name from the invoice
    reply_to: str | None = None
    envelope_from: str | None = None  # bounce mailbox (Return-Path); default from_address
    bounce_dir: str | None = None  # where the bounce mailbox drops DSNs, one message per file; read by track()
    message_id_domain: str | None = None  # default: domain of from_address
    attach_ubl: bool = True
    mx_check: bool = False
    mx_timeout: float = 5.0
    reachability_ttl: float = 3600.0
    reachability_cache_size: int = 10_000
    dkim_domain: str | None = None
    dkim_selector: str | None = None
    dkim_private_key: str | None = None  # PEM text
    dkim_private_key_file: str | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EmailConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known - _IGNORED_KEYS
        if unknown:
            raise ValueError(f"unknown e-mail channel settings: {', '.join(sorted(unknown))}")
        values = {k: v for k, v in d.items() if k in known}
        for key in ("host", "from_address"):
            if not values.get(key):
                raise ValueError(f"e-mail channel setting {key!r} is required")
        cfg = cls(**values)
        if cfg.security not in ("starttls", "tls", "none"):
            raise ValueError("security must be 'starttls', 'tls' or 'none'")
        if address_problem(cfg.from_address):
            raise ValueError(f"from_address: {address_problem(cfg.from_address)}")
        if (cfg.dkim_private_key or cfg.dkim_private_key_file) and not (cfg.dkim_domain and cfg.dkim_selector):
            raise ValueError("DKIM signing needs dkim_domain and dkim_selector")
        return dataclasses.replace(cfg, port=int(cfg.port), timeout=float(cfg.timeout))

    def smtp_settings(self) -> SmtpSettings:
        return SmtpSettings(self.host, self.port, self.security, self.username, self.password,  # type: ignore[arg-type]
                            self.timeout, self.tls_ca_file, self.tls_verify, self.local_hostname)


class EmailAdapter(ChannelAdapter):
    name: ClassVar[str] = "email"

    def __init__(self, config: EmailConfig, session: Any = None):
        self.config = config
        self._client = SmtpClient(config.smtp_settings())
        self._cache = ReachabilityCache(config.reachability_ttl, config.reachability_cache_size)
        self._events: dict[str, list[TrackEvent]] = {}
        self._bounce_files: set[str] = set()  # names in bounce_dir already read by this adapter
        self._dkim_key: bytes | None = None
        if config.dkim_private_key:
            self._dkim_key = config.dkim_private_key.encode()
        elif config.dkim_private_key_file:
            self._dkim_key = Path(config.dkim_private_key_file).read_bytes()

    # ------------------------------------------------------------------ reachability

    async def reachability(self, recipient: Recipient) -> Reachability:
        if not recipient.email:
            return Reachability.no("no-email", "recipient has no e-mail address")
        address = normalize_address(recipient.email)
        problem = address_problem(address)
        if problem:
            return Reachability.no("invalid-email", f"{address!r}: {problem}")
        key = address.lower()
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        if self.config.mx_check:
            domain = domain_of(address)
            mx = await has_mail_exchanger(domain, timeout=self.config.mx_timeout)
            if mx is False:
                return self._cache.put(key, Reachability.no("no-mx", f"domain {domain} does not receive mail"))
            if mx is None:  # DNS trouble: do not cache, do not block the channel on it
                return Reachability.ok(f"MX look-up for {domain} unanswered; address syntax valid", address)
        return self._cache.put(key, Reachability.ok("e-mail address valid", address))

    # ------------------------------------------------------------------ render

    def render(self, request: DeliveryRequest) -> Rendered:
        candidates = (request.reachability.reference, request.recipient.email)
        to = next((c for c in candidates if c and not address_problem(c)), None)
        if to is None:
            raise ChannelError("invalid-email", f"no usable e-mail address for delivery {request.delivery_id}")
        to = ascii_address(to)
        notice = PaymentNotice.from_facts(request.invoice)
        domain = self.config.message_id_domain or domain_of(self.config.from_address)
        msg = build_invoice_message(
            notice, to=to, to_name=request.recipient.name,
            sender=self.config.from_address, sender_name=self.config.from_name,
            delivery_id=request.delivery_id, message_id_domain=domain, pdf=request.pdf,
            ubl=request.ubl if self.config.attach_ubl else None, reply_to=self.config.reply_to,
        )
        attachments = [p.get_filename() for p in msg.iter_attachments()]
        return Rendered(request.delivery_id, self.name, msg, {
            "to": to, "subject": str(msg["Subject"]), "message_id": str(msg["Message-ID"]),
            "attachments": attachments, "pdf_bytes": len(request.pdf),
        })

    # ------------------------------------------------------------------ submit

    def _prepare(self, message: EmailMessage) -> bytes | EmailMessage:
        msg = copy.deepcopy(message)
        if "Date" not in msg:
            msg["Date"] = format_datetime(dt.datetime.now(dt.timezone.utc))
        if self._dkim_key is None:
            return msg
        import dkim  # dkimpy; only needed when a key is configured

        raw = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
        signature = dkim.sign(
            raw, self.config.dkim_selector.encode(), self.config.dkim_domain.encode(), self._dkim_key,  # type: ignore[union-attr]
            include_headers=[b"from", b"to", b"subject", b"date", b"message-id", b"content-type", b"mime-version"],
        )
        return signature + raw

    async def submit(self, rendered: Rendered) -> SubmitResult:
        message: EmailMessage = rendered.payload
        to = rendered.summary.get("to") or str(message["To"])
        prepared = self._prepare(message)
        envelope_from = self.config.envelope_from or self.config.from_address
        if isinstance(prepared, bytes):
            outcome = await self._client.send_raw(prepared, envelope_from=envelope_from, recipients=[to])
        else:
            outcome = await self._client.send(prepared, envelope_from=envelope_from, recipients=[to])
        if to not in outcome.accepted:
            raise ChannelError("recipient-refused", f"server did not accept {to}")
        ref = str(message["Message-ID"])
        return SubmitResult("accepted", ref, f"SMTP {outcome.response}".strip())

    # ------------------------------------------------------------------ track

    def ingest_bounce(self, raw: bytes) -> Bounce | None:
        """Feed one message from the bounce mailbox; later `track(message_id)` reports it."""
        bounce = parse_dsn(raw)
        if bounce and bounce.event and bounce.message_id:
            self._events.setdefault(bounce.message_id, []).append(bounce.event)
        return bounce

    def _unread_bounce_files(self) -> list[tuple[str, bytes]]:
        """(name, bytes) of the files in bounce_dir not read yet; names starting with '.' are skipped
        (write, then rename). Files are never removed: a restarted gateway reads them again, and
        re-applying an event is harmless."""
        directory = self.config.bounce_dir
        try:
            names = sorted(os.listdir(directory))  # type: ignore[arg-type]
        except OSError as exc:
            log.warning("cannot read bounce_dir %s: %s", directory, exc)
            return []
        found = []
        for name in names:
            if name.startswith(".") or name in self._bounce_files:
                continue
            path = Path(directory, name)  # type: ignore[arg-type]
            try:
                if path.is_file():
                    found.append((name, path.read_bytes()))
            except OSError:
                continue  # vanished or unreadable: try again next time
        return found

    async def track(self, channel_ref: str) -> list[TrackEvent]:
        if self.config.bounce_dir:
            for name, raw in await asyncio.to_thread(self._unread_bounce_files):
                if name in self._bounce_files:
                    continue
                self._bounce_files.add(name)
                try:
                    self.ingest_bounce(raw)
                except Exception:  # a malformed message must not stop tracking
                    log.warning("bounce file %s is not a readable DSN", name, exc_info=True)
        return list(self._events.get(channel_ref, ()))

    async def close(self) -> None:
        self._cache.clear()
