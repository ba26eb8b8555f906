"""SMS channel adapter ("SMS-faktura"): a short Norwegian notice with amount, due date, account,
KID and a link to the invoice, sent through LINK Mobility; outcome from delivery reports."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import aiohttp

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
from gateway.channels.notice import PaymentNotice
from gateway.channels.reachcache import ReachabilityCache
from gateway.channels.sms.client import LinkMobilityClient, LinkSettings, build_send_body
from gateway.channels.sms.dlr import DeliveryReport, make_dlr_handler
from gateway.channels.sms.numbers import is_norwegian_mobile, normalize_msisdn, sender_ton
from gateway.channels.sms.text import MAX_SEGMENTS, render_notice_text, segment_info

_IGNORED_KEYS = {"cost", "cost_nok", "enabled", "channel", "name"}
MIN_VALIDITY_MS, MAX_VALIDITY_MS = 15 * 60 * 1000, 48 * 3600 * 1000


@dataclass(frozen=True)
class SmsConfig:
    base_url: str
    platform_id: str
    platform_partner_id: str
    sender: str  # alphanumeric (2-11, starts with a letter), +MSISDN or short number
    auth: str = "basic"  # "basic" or "oauth2"
    username: str | None = None
    password: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    send_path: str = "/sms/send"
    token_path: str = "/auth/token"
    delivery_report_gates: tuple[str, ...] = ()  # gate ids from LINK support; empty → no DLRs
    relative_validity_ms: int | None = None  # provider default 48 h
    priority: str | None = None  # HIGH / NORMAL / LOW
    link_template: str | None = None  # e.g. "https://faktura.example.no/f/{delivery_id}"
    max_segments: int = 3  # refuse notices longer than this (cost control)
    allow_foreign_numbers: bool = False  # only Norwegian mobiles (+47 4/9...) by default
    timeout: float = 15.0
    reachability_ttl: float = 3600.0
    reachability_cache_size: int = 10_000
    dlr_secret: str | None = None  # shared secret expected on the DLR callback
    dlr_allowed_networks: tuple[str, ...] = ()  # LINK's DLR source ranges, if enforced
    memory_entries: int = 100_000  # submitted/tracked messages kept in memory (engine persists the rest)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SmsConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known - _IGNORED_KEYS
        if unknown:
            raise ValueError(f"unknown SMS channel settings: {', '.join(sorted(unknown))}")
        values = {k: v for k, v in d.items() if k in known}
        for key in ("base_url", "platform_id", "platform_partner_id", "sender"):
            if not values.get(key):
                raise ValueError(f"SMS channel setting {key!r} is required")
        for key in ("delivery_report_gates", "dlr_allowed_networks"):
            if key in values:
                raw = values[key]
                values[key] = (raw,) if isinstance(raw, str) else tuple(raw)
        cfg = cls(**values)
        sender_ton(cfg.sender)  # raises ValueError for senders LINK rejects
        if cfg.auth == "basic" and not (cfg.username and cfg.password):
            raise ValueError("basic auth needs username and password")
        if cfg.auth == "oauth2" and not (cfg.client_id and cfg.client_secret):
            raise ValueError("oauth2 needs client_id and client_secret")
        if cfg.auth not in ("basic", "oauth2"):
            raise ValueError("auth must be 'basic' or 'oauth2'")
        if cfg.relative_validity_ms is not None and not MIN_VALIDITY_MS <= int(cfg.relative_validity_ms) <= MAX_VALIDITY_MS:
            raise ValueError("relative_validity_ms must be between 15 minutes and 48 hours")
        if not 1 <= int(cfg.max_segments) <= MAX_SEGMENTS:
            raise ValueError(f"max_segments must be 1..{MAX_SEGMENTS}")
        if cfg.priority is not None and cfg.priority not in ("HIGH", "NORMAL", "LOW"):
            raise ValueError("priority must be HIGH, NORMAL or LOW")
        return dataclasses.replace(cfg, timeout=float(cfg.timeout), max_segments=int(cfg.max_segments))

    def link_settings(self) -> LinkSettings:
        return LinkSettings(self.base_url, self.platform_id, self.platform_partner_id, self.auth,  # type: ignore[arg-type]
                            self.username, self.password, self.client_id, self.client_secret,
                            self.send_path, self.token_path, self.timeout)


@dataclass
class _Tracked:
    delivery_id: str
    segments: int
    events: list[TrackEvent] = field(default_factory=list)
    parts_delivered: set[int] = field(default_factory=set)
    finished: bool = False


class SmsAdapter(ChannelAdapter):
    name: ClassVar[str] = "sms"

    def __init__(self, config: SmsConfig, session: aiohttp.ClientSession | None = None):
        self.config = config
        self._client = LinkMobilityClient(config.link_settings(), session)
        self._cache = ReachabilityCache(config.reachability_ttl, config.reachability_cache_size)
        # delivery id → result (no double send) and LINK message id → state; bounded, oldest evicted
        self._submitted: OrderedDict[str, SubmitResult] = OrderedDict()
        self._tracked: OrderedDict[str, _Tracked] = OrderedDict()

    async def reachability(self, recipient: Recipient) -> Reachability:
        if not recipient.phone:
            return Reachability.no("no-phone", "recipient has no mobile number")
        msisdn = normalize_msisdn(recipient.phone)
        if msisdn is None:
            return Reachability.no("invalid-phone", f"{recipient.phone!r} is not a valid phone number")
        cached = self._cache.get(msisdn)
        if cached is not None:
            return cached
        if is_norwegian_mobile(msisdn):
            answer = Reachability.ok("Norwegian mobile number", msisdn)
        elif msisdn.startswith("+47"):
            answer = Reachability.no("not-mobile", f"{msisdn} is not a Norwegian mobile number (4xx/9xx)")
        elif self.config.allow_foreign_numbers:
            answer = Reachability.ok("foreign mobile number (not verified)", msisdn)
        else:
            answer = Reachability.no("foreign-number", f"{msisdn}: only Norwegian mobiles are enabled")
        return self._cache.put(msisdn, answer)

    def render(self, request: DeliveryRequest) -> Rendered:
        candidates = (request.reachability.reference, request.recipient.phone)
        destination = next((n for n in map(normalize_msisdn, candidates) if n), None)
        if destination is None:
            raise ChannelError("invalid-phone", f"no usable mobile number for delivery {request.delivery_id}")
        link = None
        if self.config.link_template:
            link = self.config.link_template.format(
                delivery_id=request.delivery_id, invoice_number=request.invoice.number,
                issuer_orgnr=request.issuer_orgnr or "")
        text = render_notice_text(PaymentNotice.from_facts(request.invoice), link)
        info = segment_info(text)
        if info.segments > self.config.max_segments:
            raise ChannelError("text-too-long", f"notice needs {info.segments} SMS segments "
                               f"(max {self.config.max_segments})")
        body = build_send_body(
            self.config.link_settings(), source=self.config.sender, source_ton=sender_ton(self.config.sender),
            destination=destination, text=text, ref_id=request.delivery_id,
            gates=list(self.config.delivery_report_gates), relative_validity_ms=self.config.relative_validity_ms,
            priority=self.config.priority)
        return Rendered(request.delivery_id, self.name, body, {
            "to": destination, "text": text, "encoding": info.encoding, "segments": info.segments,
            "characters": len(text), "link": link,
        })

    async def submit(self, rendered: Rendered) -> SubmitResult:
        previous = self._submitted.get(rendered.delivery_id)
        if previous is not None:  # LINK does not deduplicate on refId; we do not send twice
            return previous
        result = await self._client.send(rendered.payload)
        segments = result.sms_count or int(rendered.summary.get("segments") or 1)
        self._remember(self._tracked, result.message_id, _Tracked(rendered.delivery_id, segments))
        outcome = SubmitResult("accepted", result.message_id,
                               f"LINK resultCode {result.result_code} {result.description}; {segments} segment(s)")
        self._remember(self._submitted, rendered.delivery_id, outcome)
        return outcome

    def _remember(self, store: OrderedDict, key: str, value: Any) -> None:
        store[key] = value
        store.move_to_end(key)
        while len(store) > self.config.memory_entries:
            store.popitem(last=False)

    async def record_delivery_report(self, report: DeliveryReport) -> None:
        """DLR callback target: fold per-part reports into one message outcome."""
        tracked = self._tracked.get(report.message_id)
        if tracked is None:
            tracked = _Tracked(report.ref_id or "", report.segments or 1)
            self._remember(self._tracked, report.message_id, tracked)
        if tracked.finished:
            return
        event = report.event
        if event.state == "failed":
            tracked.events.append(event)
            tracked.finished = True
        elif event.state == "delivered":
            tracked.parts_delivered.add(report.part or 0)
            if len(tracked.parts_delivered) >= tracked.segments or report.part is None:
                tracked.events.append(event)
                tracked.finished = True
        elif not tracked.events:
            tracked.events.append(event)  # first interim status (sent to operator / queued)

    def dlr_handler(self):
        """The aiohttp handler to mount at `POST /callbacks/sms/linkmobility`."""
        return make_dlr_handler(self.record_delivery_report, secret=self.config.dlr_secret,
                                allowed_networks=self.config.dlr_allowed_networks)

    async def track(self, channel_ref: str) -> list[TrackEvent]:
        tracked = self._tracked.get(channel_ref)
        return list(tracked.events) if tracked else []

    async def close(self) -> None:
        await self._client.close()
