"""Multichannel fallback: deliver an invoice on the first channel of the issuer's priority list
that can reach the recipient, fall through on "not reachable" or a terminal failure, and track
every delivery to delivered / opened / paid or failed.

Per tenant, a routing configuration holds the ordered channel lists (B2C and B2B may differ; B2G
is always Peppol only), each channel's settings and credentials, and a cost per delivery in NOK:

    {"b2c": ["efaktura", "avtalegiro", "digipost", "email", "sms", "print"],
     "b2b": ["peppol", "email", "print"],
     "channels": {"email": {"cost_nok": "0.10", "settings": {...}}, ...},
     "print_cost_nok": "14.00"}

Documents enter the engine in state `routing`: when Peppol answers NOT_SERVICED or the receiver
is not registered, or when a tenant submits straight to the B2C route. Every decision (channel
tried, why skipped, result) is a `channel_deliveries` row plus an event, visible through the API.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, func, insert, select, update

from gateway.channels.base import (
    ChannelAdapter,
    ChannelError,
    DeliveryRequest,
    PostalAddress,
    Recipient,
    TrackEvent,
)
from gateway.channels.registry import ADAPTERS, CHANNELS, PEPPOL, build_adapter, parse_config
from gateway.invoice import InvoiceError, InvoiceFacts, extract_invoice_facts
from gateway.norwegian_ids import NorwegianIdError, validate_fodselsnummer
from gateway.polling import Waker, poll_forever
from gateway.store.db import run_db
from gateway.store.messages import add_event, add_evidence, evidence_of
from gateway.store.outbox import DELIVERED, FAILED, OPENED, PAID, ROUTING, decisions_of, set_state
from gateway.store.queue import claim_due
from gateway.store.schema import channel_deliveries, messages, tenant_routing
from gateway.webhooks import backoff, enqueue

log = logging.getLogger("sendgw.routing")

SEGMENTS = ("b2c", "b2b", "b2g")
DEFAULT_PRINT_COST = Decimal("15.00")
SUCCESS_STATES = ("accepted", "delivered", "opened", "paid")
ATTEMPTED_STATES = (*SUCCESS_STATES, "failed", "returned")
SECRET_WORDS = ("password", "secret", "token", "key", "credential")


class RoutingConfigError(ValueError):
    """A routing configuration that cannot be used; the message says which field and why."""


# --- configuration -------------------------------------------------------------------------------


def _decimal(value: Any, where: str) -> Decimal:
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise RoutingConfigError(f"{where} must be a decimal amount in NOK, got {value!r}") from None
    if not d.is_finite() or d < 0:  # NaN/Infinity, and 1e400 from JSON, would crash quantize()
        raise RoutingConfigError(f"{where} must be a non-negative amount")
    try:
        return d.quantize(Decimal("0.0001"))
    except InvalidOperation:
        raise RoutingConfigError(f"{where} is too large") from None


@dataclass(frozen=True)
class ChannelSetup:
    cost_nok: Decimal
    settings: dict[str, Any]


@dataclass(frozen=True)
class RoutingConfig:
    b2c: tuple[str, ...] = ()
    b2b: tuple[str, ...] = ()
    channels: dict[str, ChannelSetup] = field(default_factory=dict)
    print_cost_nok: Decimal = DEFAULT_PRINT_COST

    @classmethod
    def parse(cls, data: Any) -> "RoutingConfig":
        """Validate a configuration document (every channel's settings are checked by its adapter)."""
        if not isinstance(data, dict):
            raise RoutingConfigError("routing configuration must be a JSON object")
        unknown = set(data) - {"b2c", "b2b", "b2g", "channels", "print_cost_nok"}
        if unknown:
            raise RoutingConfigError(f"unknown field(s): {', '.join(sorted(unknown))}")
        if "b2g" in data and data["b2g"] != [PEPPOL]:
            raise RoutingConfigError("b2g is always Peppol/EHF only and cannot be changed")
        lists = {}
        for seg in ("b2c", "b2b"):
            items = data.get(seg, [])
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise RoutingConfigError(f"{seg} must be a list of channel names")
            for name in items:
                if name not in CHANNELS:
                    raise RoutingConfigError(f"{seg}: unknown channel {name!r} (known: {', '.join(CHANNELS)})")
            if len(set(items)) != len(items):
                raise RoutingConfigError(f"{seg}: a channel is listed twice")
            lists[seg] = tuple(items)
        channels: dict[str, ChannelSetup] = {}
        raw_channels = data.get("channels", {})
        if not isinstance(raw_channels, dict):
            raise RoutingConfigError("channels must be an object keyed by channel name")
        for name, setup in raw_channels.items():
            if name not in CHANNELS:
                raise RoutingConfigError(f"channels: unknown channel {name!r}")
            if not isinstance(setup, dict) or set(setup) - {"cost_nok", "settings"}:
                raise RoutingConfigError(f"channels.{name} must be {{\"cost_nok\", \"settings\"}}")
            settings = setup.get("settings", {})
            if not isinstance(settings, dict):
                raise RoutingConfigError(f"channels.{name}.settings must be an object")
            if name != PEPPOL:
                try:
                    parse_config(name, settings)
                except ChannelError as exc:
                    raise RoutingConfigError(f"channels.{name}.settings: {exc.message}") from exc
            channels[name] = ChannelSetup(_decimal(setup.get("cost_nok", "0"), f"channels.{name}.cost_nok"), settings)
        for seg, items in lists.items():
            for name in items:
                if name != PEPPOL and name not in channels:
                    raise RoutingConfigError(f"{seg} lists {name!r} but channels.{name} has no settings")
        return cls(lists["b2c"], lists["b2b"], channels,
                   _decimal(data.get("print_cost_nok", DEFAULT_PRINT_COST), "print_cost_nok"))

    def to_dict(self, *, mask_secrets: bool = False) -> dict[str, Any]:
        def mask(settings: dict[str, Any]) -> dict[str, Any]:
            return {k: ("********" if mask_secrets and v and any(w in k.lower() for w in SECRET_WORDS) else v)
                    for k, v in settings.items()}

        return {"b2c": list(self.b2c), "b2b": list(self.b2b), "b2g": [PEPPOL],
                "channels": {n: {"cost_nok": str(c.cost_nok), "settings": mask(c.settings)}
                             for n, c in self.channels.items()},
                "print_cost_nok": str(self.print_cost_nok)}

    def order(self, segment: str) -> tuple[str, ...]:
        return {"b2c": self.b2c, "b2b": self.b2b}.get(segment, ())

    def cost(self, channel: str) -> Decimal:
        setup = self.channels.get(channel)
        return setup.cost_nok if setup else Decimal("0")

    def has_fallback(self, segment: str) -> bool:
        return any(c != PEPPOL for c in self.order(segment))


def load_routing(conn: Connection, tenant_id: str) -> RoutingConfig:
    raw = conn.execute(select(tenant_routing.c.config).where(tenant_routing.c.tenant_id == tenant_id)).scalar()
    return RoutingConfig.parse(raw) if raw else RoutingConfig()


def save_routing(engine: Engine, tenant_id: str, config: RoutingConfig) -> None:
    data = config.to_dict()
    data.pop("b2g")
    now = dt.datetime.now(dt.timezone.utc)
    with engine.begin() as conn:
        exists = conn.execute(select(tenant_routing.c.tenant_id).where(tenant_routing.c.tenant_id == tenant_id)).first()
        if exists:
            conn.execute(update(tenant_routing).where(tenant_routing.c.tenant_id == tenant_id)
                         .values(config=data, updated_at=now))
        else:
            conn.execute(insert(tenant_routing).values(tenant_id=tenant_id, config=data, updated_at=now))


def merge_secrets(new: dict[str, Any], old: RoutingConfig) -> dict[str, Any]:
    """A PUT may send back masked secrets ("********") from a GET: keep the stored values."""
    channels = new.get("channels")
    for name, setup in (channels.items() if isinstance(channels, dict) else ()):
        if isinstance(setup, dict) and isinstance(setup.get("settings"), dict) and name in old.channels:
            for k, v in setup["settings"].items():
                if v == "********":
                    setup["settings"][k] = old.channels[name].settings.get(k)
    return new


# --- recipient facts ---------------------------------------------------------------------------

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_EMAIL = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+$")


class RecipientHintError(ValueError):
    """A recipient hint given on submit is invalid (the message names the field)."""


def normalise_phone(value: str) -> str:
    digits = re.sub(r"[\s\-().]", "", value)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if re.fullmatch(r"[0-9]{8}", digits):
        digits = "+47" + digits  # a Norwegian national number
    if not _E164.match(digits):
        raise RecipientHintError(f"phone {value!r} is not an E.164 or Norwegian number")
    return digits


def parse_hints(hints: Any) -> dict[str, Any]:
    """Validate the `recipient` submit option; returns the normalised hints."""
    if hints is None:
        return {}
    if not isinstance(hints, dict):
        raise RecipientHintError("recipient must be an object")
    allowed = {"name", "fodselsnummer", "orgnr", "birth_date", "email", "phone", "address", "preferred_channel"}
    unknown = set(hints) - allowed
    if unknown:
        raise RecipientHintError(f"unknown recipient field(s): {', '.join(sorted(unknown))}")
    out: dict[str, Any] = {}
    for key in ("name", "email", "phone", "fodselsnummer", "orgnr", "birth_date", "preferred_channel"):
        if hints.get(key) is not None and not isinstance(hints[key], str):
            raise RecipientHintError(f"recipient.{key} must be a string")
    if hints.get("name"):
        out["name"] = hints["name"].strip()
    if hints.get("fodselsnummer"):
        try:
            out["fodselsnummer"] = validate_fodselsnummer(hints["fodselsnummer"])
        except NorwegianIdError as exc:
            raise RecipientHintError(f"recipient.fodselsnummer: {exc}") from exc
    if hints.get("orgnr"):
        from stdnum.no import orgnr

        if not orgnr.is_valid(hints["orgnr"]):
            raise RecipientHintError("recipient.orgnr fails the MOD11 check")
        out["orgnr"] = orgnr.compact(hints["orgnr"])
    if hints.get("birth_date"):
        try:
            out["birth_date"] = dt.date.fromisoformat(hints["birth_date"]).isoformat()
        except ValueError:
            raise RecipientHintError("recipient.birth_date must be YYYY-MM-DD") from None
    if hints.get("email"):
        if not _EMAIL.match(hints["email"].strip()):
            raise RecipientHintError(f"recipient.email {hints['email']!r} is not an e-mail address")
        out["email"] = hints["email"].strip()
    if hints.get("phone"):
        out["phone"] = normalise_phone(hints["phone"])
    if hints.get("preferred_channel"):
        if hints["preferred_channel"] not in CHANNELS:
            raise RecipientHintError(f"recipient.preferred_channel must be one of {', '.join(CHANNELS)}")
        out["preferred_channel"] = hints["preferred_channel"]
    if hints.get("address") is not None:
        a = hints["address"]
        if not isinstance(a, dict) or not isinstance(a.get("lines", []), list):
            raise RecipientHintError("recipient.address must be {lines: [..], postcode, city, country}")
        postcode, city = str(a.get("postcode", "")).strip(), str(a.get("city", "")).strip()
        country = str(a.get("country", "NO")).strip().upper()
        if not postcode or not city or not a.get("lines"):
            raise RecipientHintError("recipient.address needs lines, postcode and city")
        if country == "NO" and not re.fullmatch(r"[0-9]{4}", postcode):
            raise RecipientHintError("recipient.address.postcode must be 4 digits in Norway")
        out["address"] = {"lines": [str(x) for x in a["lines"]], "postcode": postcode, "city": city,
                          "country": country}
    return out


def recipient_from(facts: InvoiceFacts, hints: dict[str, Any]) -> Recipient:
    """Recipient facts: the UBL's AccountingCustomerParty, overridden by validated submit hints."""
    buyer = facts.buyer
    address = None
    if hints.get("address"):
        a = hints["address"]
        address = PostalAddress(tuple(a["lines"]), a["postcode"], a["city"], a["country"])
    elif buyer.address and buyer.address.postal_zone and buyer.address.city:
        lines = tuple(x for x in (buyer.address.street, buyer.address.additional_street,
                                  buyer.address.address_line) if x)
        if lines:
            address = PostalAddress(lines, buyer.address.postal_zone, buyer.address.city,
                                    (buyer.address.country or "NO").upper())
    phone = hints.get("phone")
    if not phone and buyer.contact and buyer.contact.telephone:
        try:
            phone = normalise_phone(buyer.contact.telephone)
        except RecipientHintError:
            phone = None
    email = hints.get("email") or (buyer.contact.email if buyer.contact else None)
    if email and not _EMAIL.match(email):
        email = None
    return Recipient(
        name=hints.get("name") or buyer.legal_name or buyer.name,
        orgnr=hints.get("orgnr") or (None if hints.get("fodselsnummer") else buyer.orgnr),
        fodselsnummer=hints.get("fodselsnummer"),
        birth_date=dt.date.fromisoformat(hints["birth_date"]) if hints.get("birth_date") else None,
        email=email,
        phone=phone,
        address=address,
        preferred_channel=hints.get("preferred_channel"),
        kid=facts.kid,
    )


# --- decisions -------------------------------------------------------------------------------


def delivery_id_for(message_id: str, channel: str) -> str:
    """Stable per (document, channel): the idempotency key every retry presents to the channel."""
    return str(uuid.uuid5(uuid.UUID(message_id), f"sendgw-channel:{channel}"))


def _upsert_decision(conn: Connection, row, position: int, channel: str, state: str, *, reason: str | None = None,
                     detail: str | None = None, channel_ref: str | None = None, cost: Decimal | None = None,
                     summary: dict | None = None, attempt: bool = False, now: dt.datetime) -> None:
    did = delivery_id_for(row.id, channel)
    existing = conn.execute(select(channel_deliveries.c.attempts).where(channel_deliveries.c.id == did)).first()
    values = {"state": state, "reason": reason, "detail": (detail or "")[:2000] or None, "updated_at": now,
              "position": position}
    if channel_ref is not None:
        values["channel_ref"] = channel_ref
    if cost is not None:
        values["cost_nok"] = str(cost)
    if summary is not None:
        values["summary"] = summary
    if existing:
        values["attempts"] = existing.attempts + (1 if attempt else 0)
        conn.execute(update(channel_deliveries).where(channel_deliveries.c.id == did).values(**values))
    else:
        conn.execute(insert(channel_deliveries).values(id=did, message_id=row.id, tenant_id=row.tenant_id,
                                                       channel=channel, attempts=1 if attempt else 0,
                                                       created_at=now, **values))
    add_event(conn, row.id, f"channel-{state}", {"channel": channel, "reason": reason, "detail": detail}, now)


# --- payments ------------------------------------------------------------------------------------

#: a delivery in one of these states is open for payment (the document is delivered or opened)
OPEN_FOR_PAYMENT = ("accepted", "delivered", "opened")
OSLO = ZoneInfo("Europe/Oslo")


@dataclass(frozen=True)
class OpenDocument:
    delivery_id: str
    channel: str
    message_id: str
    amount_ore: int | None
    account: str | None  # the Norwegian account the invoice asks to be paid to, if it names one


def _payment_facts(document: bytes) -> tuple[str | None, int | None, str | None]:
    """(KID, amount payable in øre, kontonummer) of an invoice; None where it has none (credit notes,
    other currencies and fractions of an øre have no amount a NOK payment can match)."""
    try:
        facts = extract_invoice_facts(document)
    except InvoiceError:
        return None, None, None
    kid = "".join(facts.kid.split()) if facts.kid else None
    ore = facts.payable_amount * 100
    amount = (int(ore) if facts.requests_payment and facts.currency == "NOK" and ore == ore.to_integral_value()
              else None)
    return kid, amount, facts.kontonummer


# --- the engine ----------------------------------------------------------------------------------


class RoutingEngine:
    """Works the `routing` queue and tracks deliveries; any number may run against one database."""

    def __init__(self, engine: Engine, payloads, settings, *, session=None, render=None,
                 clock=lambda: dt.datetime.now(dt.timezone.utc), poll_seconds: float = 0.5,
                 track_interval: float = 60.0):
        self.engine, self.payloads, self.settings = engine, payloads, settings
        self.session, self.clock, self.poll = session, clock, poll_seconds
        self.track_interval = track_interval
        self.owner = f"routing-{uuid.uuid4().hex[:12]}"
        self._render = render
        self._adapters: dict[tuple[str, str], ChannelAdapter] = {}
        self._payment_facts: dict[str, tuple[str | None, int | None, str | None]] = {}  # document sha → facts
        self._waker = Waker()

    def wake(self) -> None:
        self._waker.wake()

    async def close(self) -> None:
        for adapter in self._adapters.values():
            await adapter.close()
        self._adapters.clear()

    def adapter(self, config: RoutingConfig, name: str) -> ChannelAdapter:
        settings = config.channels[name].settings
        key = (name, hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest())
        if key not in self._adapters:
            self._adapters[key] = build_adapter(name, settings, self.session)
        return self._adapters[key]

    async def _pdf(self, row, document: bytes) -> bytes:
        def stored():
            with self.engine.connect() as conn:
                found = evidence_of(conn, row.id, "pdf")
                return self.payloads.get(conn, found[-1].payload_sha256) if found else None

        pdf = await run_db(stored)
        if pdf is None:
            render = self._render
            if render is None:
                from gateway.render import render_pdf_async as render
            pdf = await render(document)

            def keep():
                with self.engine.begin() as conn:
                    add_evidence(conn, self.payloads, row.id, "pdf", pdf, "application/pdf", self.clock())

            await run_db(keep)
        return pdf

    def _claim(self) -> list[Any]:
        now = self.clock()
        with self.engine.begin() as conn:
            ids = claim_due(conn, messages, states=[ROUTING], now=now, owner=self.owner,
                            lease=dt.timedelta(seconds=self.settings.outbound.lease_seconds), limit=8,
                            extra_where=messages.c.direction == "out")
            return list(conn.execute(select(messages).where(messages.c.id.in_(ids))))

    def _context(self, row):
        with self.engine.connect() as conn:
            config = load_routing(conn, row.tenant_id)
            document = self.payloads.get(conn, row.document_sha256)
            done = {r.channel: r for r in conn.execute(
                select(channel_deliveries).where(channel_deliveries.c.message_id == row.id))}
        return config, document, done

    def _finish_message(self, row, state: str, reason: str | None, **values) -> None:
        now = self.clock()
        with self.engine.begin() as conn:
            if not set_state(conn, row.id, state, owner=self.owner, now=now, last_error=reason, **values):
                return
            add_event(conn, row.id, state, {"reason": reason}, now)
            enqueue(conn, row.tenant_id, "document.status",
                    {"id": row.id, "state": state, "receiver": row.receiver, "reason": reason,
                     "decisions": decisions_of(conn, row.id)}, row.id, now)

    def _decide(self, row, position, channel, state, **kw) -> None:
        with self.engine.begin() as conn:
            _upsert_decision(conn, row, position, channel, state, now=self.clock(), **kw)

    async def process(self, row) -> None:
        config, document, done = await run_db(self._context, row)
        options = row.options or {}
        try:
            facts = extract_invoice_facts(document)
        except InvoiceError as exc:
            await run_db(self._finish_message, row, FAILED, f"cannot read the invoice for B2C delivery: {exc}")
            return
        recipient = recipient_from(facts, options.get("recipient") or {})
        segment = options.get("segment") or ("b2b" if recipient.orgnr else "b2c")
        order = [c for c in config.order(segment) if c != PEPPOL] if segment != "b2g" else []
        if recipient.preferred_channel in order:
            order.remove(recipient.preferred_channel)
            order.insert(0, recipient.preferred_channel)
        if not order:
            await run_db(self._finish_message, row, "undeliverable" if segment != "b2g" else FAILED,
                         f"{row.last_error or 'no Peppol endpoint'}; no {segment} fallback channels configured")
            return
        issuer_orgnr = facts.seller.orgnr
        for position, name in enumerate(order):
            previous = done.get(name)
            if previous is not None and previous.state in ("skipped", "failed", "returned"):
                continue  # decided before (this document fell through it already)
            if previous is not None and previous.state in SUCCESS_STATES:
                # a worker recorded the channel's acceptance and stopped before finishing the document:
                # finish it from the record; submitting again could send the invoice twice
                await run_db(self._finish_message, row,
                             {"opened": OPENED, "paid": PAID}.get(previous.state, DELIVERED), None,
                             next_attempt_at=None)
                return
            adapter = self.adapter(config, name)
            try:
                reach = await adapter.reachability(recipient)
            except ChannelError as exc:
                if exc.transient:
                    await run_db(self._retry, row, position, name, exc)
                    return
                await run_db(self._decide, row, position, name, "failed", reason=exc.code, detail=exc.message)
                continue
            if not reach.reachable:
                await run_db(self._decide, row, position, name, "skipped", reason=reach.reason, detail=reach.detail)
                continue
            try:
                pdf = await self._pdf(row, document)
                request = DeliveryRequest(
                    delivery_id=delivery_id_for(row.id, name), issuer_orgnr=issuer_orgnr, invoice=facts,
                    ubl=document, pdf=pdf, recipient=recipient, reachability=reach,
                    options={"vipps": bool(options.get("vipps"))})
                rendered = adapter.render(request)
                result = await adapter.submit(rendered)
            except ChannelError as exc:
                if exc.transient:
                    await run_db(self._retry, row, position, name, exc)
                    return
                await run_db(self._decide, row, position, name, "failed", reason=exc.code, detail=exc.message,
                             attempt=True)
                continue
            state = "delivered" if result.state == "delivered" else "accepted"
            await run_db(self._decide, row, position, name, state, reason="ok", detail=result.detail,
                         channel_ref=result.channel_ref, cost=config.cost(name), summary=rendered.summary,
                         attempt=True)
            await run_db(self._finish_message, row, DELIVERED, None, next_attempt_at=None)
            return
        await run_db(self._finish_message, row, FAILED,
                      f"no channel in the {segment} priority list could deliver: "
                      + ", ".join(f"{d}" for d in order), next_attempt_at=None)

    def _retry(self, row, position: int, channel: str, exc: ChannelError) -> None:
        now = self.clock()
        with self.engine.begin() as conn:
            _upsert_decision(conn, row, position, channel, "submitting", reason=exc.code, detail=exc.message,
                             attempt=True, now=now)
            attempts = conn.execute(select(channel_deliveries.c.attempts).where(
                channel_deliveries.c.id == delivery_id_for(row.id, channel))).scalar() or 1
            cfg = self.settings.outbound
            when = now + dt.timedelta(seconds=backoff(attempts, cfg.first_retry_seconds, cfg.max_retry_seconds))
            if row.deadline_at is not None and when > row.deadline_at:
                _upsert_decision(conn, row, position, channel, "failed", reason="deadline",
                                 detail=f"still failing at the deadline: {exc.message}", now=now)
                set_state(conn, row.id, ROUTING, owner=self.owner, now=now, next_attempt_at=now)
            else:
                set_state(conn, row.id, ROUTING, owner=self.owner, now=now, next_attempt_at=when,
                          last_error=f"{channel}: {exc.message}")

    # -- tracking ------------------------------------------------------------------------------

    def apply_event(self, delivery_id: str, event: TrackEvent, *, channel: str | None = None) -> bool:
        """Record what a channel reported later (opened, paid, failed...). Terminal failures send
        the document back to the routing queue to fall through to the next channel. With `channel`,
        only a delivery on that channel is touched (a pushed report names the delivery itself)."""
        now = self.clock()
        order = {"accepted": 0, "delivered": 1, "opened": 2, "paid": 3}
        with self.engine.begin() as conn:
            d = conn.execute(select(channel_deliveries).where(channel_deliveries.c.id == delivery_id)).first()
            if d is None or d.state not in SUCCESS_STATES or (channel is not None and d.channel != channel):
                return False
            if event.state in ("failed", "returned") and d.state == "paid":
                return False  # money arrived: a late failure report cannot undo the delivery
            if event.state in ("failed", "returned"):
                conn.execute(update(channel_deliveries).where(channel_deliveries.c.id == d.id).values(
                    state=event.state, reason=event.state, detail=event.detail, updated_at=now))
                add_event(conn, d.message_id, f"channel-{event.state}", {"channel": d.channel, "detail": event.detail},
                          now)
                conn.execute(update(messages).where(messages.c.id == d.message_id).values(
                    state=ROUTING, next_attempt_at=now, updated_at=now, lease_owner=None, lease_expires_at=None,
                    last_error=f"{d.channel}: {event.state}: {event.detail}"))
                return True
            if order.get(event.state, -1) <= order.get(d.state, -1):
                return False
            conn.execute(update(channel_deliveries).where(channel_deliveries.c.id == d.id).values(
                state=event.state, detail=event.detail or d.detail, updated_at=now))
            add_event(conn, d.message_id, f"channel-{event.state}",
                      {"channel": d.channel, "detail": event.detail,
                       "amount": str(event.amount) if event.amount is not None else None}, now)
            message_state = {"delivered": DELIVERED, "opened": OPENED, "paid": PAID}.get(event.state)
            if message_state:
                conn.execute(update(messages).where(messages.c.id == d.message_id).values(
                    state=message_state, updated_at=now))
                tenant_id = conn.execute(select(messages.c.tenant_id).where(messages.c.id == d.message_id)).scalar()
                enqueue(conn, tenant_id, "document.status",
                        {"id": d.message_id, "state": message_state, "channel": d.channel}, d.message_id, now)
            return True

    def apply_channel_event(self, channel: str, channel_ref: str, event: TrackEvent) -> bool:
        """A pushed event (SMS delivery report, e-mail bounce...) for a channel reference."""
        with self.engine.connect() as conn:
            did = conn.execute(select(channel_deliveries.c.id).where(
                channel_deliveries.c.channel == channel, channel_deliveries.c.channel_ref == channel_ref)).scalar()
        return bool(did) and self.apply_event(did, event)

    def _due_for_tracking(self) -> list[Any]:
        cutoff = self.clock() - dt.timedelta(seconds=self.track_interval)
        with self.engine.connect() as conn:
            return list(conn.execute(
                select(channel_deliveries, messages.c.tenant_id.label("msg_tenant"))
                .join(messages, messages.c.id == channel_deliveries.c.message_id)
                .where(channel_deliveries.c.state.in_(("accepted", "delivered", "opened")),
                       channel_deliveries.c.channel_ref.is_not(None),
                       (channel_deliveries.c.tracked_at.is_(None)) | (channel_deliveries.c.tracked_at < cutoff))
                .limit(50)))

    def _tracked(self, delivery_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(channel_deliveries).where(channel_deliveries.c.id == delivery_id)
                         .values(tracked_at=self.clock()))

    async def track_once(self) -> int:
        rows = await run_db(self._due_for_tracking)
        for d in rows:
            config = await run_db(lambda: _load(self.engine, d.tenant_id))
            if d.channel not in config.channels:
                continue
            try:
                events = await self.adapter(config, d.channel).track(d.channel_ref)
            except ChannelError as exc:
                log.warning("tracking %s on %s failed: %s", d.id, d.channel, exc)
                events = []
            for event in events:
                await run_db(self.apply_event, d.id, event)
            await run_db(self._tracked, d.id)
        return len(rows)

    # -- payments settled to the issuer's account (OCR) -------------------------------------------

    async def settle_once(self) -> int:
        """Mark documents delivered on any channel `paid` from the tenant's OCR settlement files.

        The OCR files come through the AvtaleGiro channel's incoming directory and hold every KID
        payment to the agreement account. AvtaleGiro matches its own claims first; each payment it
        could not match is offered once here, to the tenant's documents delivered on another channel
        (see `_offer`). Returns the number of documents marked paid."""
        done = 0
        for tenant_id, config in await run_db(self._ocr_tenants):
            try:
                adapter = self.adapter(config, "avtalegiro")
                if not hasattr(adapter, "routed_payments"):
                    continue
                await adapter.refresh()
                pending = await asyncio.to_thread(adapter.routed_payments)
                if not pending:
                    continue
                offers = []
                fresh = [p for p in pending if p.routed is None]
                if fresh:
                    documents = await run_db(self._open_for_payment, tenant_id, {p.kid for p in fresh})
                    offers = [self._offer(p, documents.get(p.kid, [])) for p in fresh]
                assigned = await asyncio.to_thread(adapter.assign_routed_payments, offers) if offers else {}
                todo = [(p, assigned[p.id]) for p in fresh if p.id in assigned]
                todo += [(p, p.delivery_id) for p in pending if p.routed == "assigned" and p.delivery_id]
                for p, delivery_id in todo:
                    event = TrackEvent("paid", dt.datetime.combine(p.settlement_date, dt.time(0), OSLO),
                                       p.describe(), p.amount)
                    changed = await run_db(self.apply_event, delivery_id, event)
                    state = await run_db(self._delivery_state, delivery_id)
                    done += int(changed)
                    await asyncio.to_thread(
                        adapter.confirm_routed_payment, p.id, state == "paid",
                        None if state == "paid" else f"{p.describe()}: document delivery {delivery_id} was no "
                        f"longer open for payment (state {state}) when the payment was applied")
            except Exception:
                log.exception("settling OCR payments for tenant %s failed; tried again next round", tenant_id)
        return done

    def _ocr_tenants(self) -> list[tuple[str, RoutingConfig]]:
        """Tenants with an AvtaleGiro channel configured (listed or not): they receive OCR files."""
        with self.engine.connect() as conn:
            rows = list(conn.execute(select(tenant_routing.c.tenant_id, tenant_routing.c.config)))
        out = []
        for r in rows:
            if isinstance(r.config, dict) and "avtalegiro" in (r.config.get("channels") or {}):
                try:
                    out.append((r.tenant_id, RoutingConfig.parse(r.config)))
                except RoutingConfigError as exc:
                    log.warning("tenant %s: routing configuration unusable: %s", r.tenant_id, exc)
        return out

    def _delivery_state(self, delivery_id: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(channel_deliveries.c.state)
                                .where(channel_deliveries.c.id == delivery_id)).scalar()

    def _open_for_payment(self, tenant_id: str, kids: set[str]) -> dict[str, list[OpenDocument]]:
        """KID → the tenant's documents with that KID delivered on a channel other than AvtaleGiro and
        not paid (delivery accepted, delivered or opened), oldest document first."""
        out: dict[str, list[OpenDocument]] = {}
        with self.engine.connect() as conn:
            rows = list(conn.execute(
                select(channel_deliveries.c.id, channel_deliveries.c.channel, channel_deliveries.c.message_id,
                       messages.c.document_sha256)
                .join(messages, messages.c.id == channel_deliveries.c.message_id)
                .where(channel_deliveries.c.tenant_id == tenant_id, messages.c.tenant_id == tenant_id,
                       channel_deliveries.c.channel != "avtalegiro",
                       channel_deliveries.c.state.in_(OPEN_FOR_PAYMENT),
                       messages.c.state.in_((DELIVERED, OPENED)))
                .order_by(messages.c.created_at, messages.c.id)))
            needles = [k.encode() for k in kids]
            for r in rows:
                facts = self._payment_facts.get(r.document_sha256)
                if facts is None:
                    document = self.payloads.get(conn, r.document_sha256) if r.document_sha256 else None
                    if not document or not any(n in document for n in needles):
                        continue  # cheap: a document without any of these KIDs in its bytes cannot match
                    facts = _payment_facts(document)
                    if len(self._payment_facts) > 50_000:
                        self._payment_facts.clear()
                    self._payment_facts[r.document_sha256] = facts
                kid, amount_ore, account = facts
                if kid in kids:
                    out.setdefault(kid, []).append(OpenDocument(r.id, r.channel, r.message_id, amount_ore, account))
        return out

    @staticmethod
    def _offer(p, documents: list[OpenDocument]):
        """Which documents a payment pays: same KID, exactly the same amount, an invoice account (when it
        names a Norwegian one) equal to the account the payment was settled to; the oldest first."""
        from gateway.channels.avtalegiro.adapter import RoutedOffer

        documents = [d for d in documents if d.amount_ore is not None]  # credit notes etc. are never paid
        same_account = [d for d in documents if d.account in (None, p.account)]
        exact = [d for d in same_account if d.amount_ore == p.amount_ore]
        if exact:
            return RoutedOffer(p.id, tuple(
                (d.delivery_id, f"{p.describe()}: pays document {d.message_id} delivered by {d.channel}")
                for d in exact))
        if same_account:
            expected = ", ".join(f"document {d.message_id} ({d.channel}) {d.amount_ore}" for d in same_account)
            return RoutedOffer(p.id, (), "amount_mismatch",
                               f"paid {p.amount_ore} øre; open invoice(s) with KID {p.kid} expect: {expected} øre "
                               f"({p.detail})")
        if documents:
            names = ", ".join(f"document {d.message_id} names account {d.account}" for d in documents)
            return RoutedOffer(p.id, (), None, f"{p.detail}; settled to account {p.account}, but {names}")
        return RoutedOffer(p.id)

    async def run_once(self) -> int:
        rows = await run_db(self._claim)
        for row in rows:
            try:
                await self.process(row)
            except Exception:
                log.exception("routing %s failed unexpectedly; the lease will expire and it is retried", row.id)
        return len(rows)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        last_track = last_settle = 0.0

        async def round_() -> int:
            nonlocal last_track, last_settle
            n = await self.run_once()
            if loop.time() - last_track >= min(self.track_interval, 1.0):
                last_track = loop.time()
                await self.track_once()
            if loop.time() - last_settle >= self.track_interval:
                last_settle = loop.time()
                await self.settle_once()
            return n

        try:
            await poll_forever(round_, self._waker, self.poll, log, "routing")
        finally:
            await self.close()


def _load(engine: Engine, tenant_id: str) -> RoutingConfig:
    with engine.connect() as conn:
        return load_routing(conn, tenant_id)


def has_fallback(conn: Connection, tenant_id: str, options: dict | None) -> bool:
    """Whether a document the Peppol network cannot take has somewhere else to go."""
    try:
        config = load_routing(conn, tenant_id)
    except RoutingConfigError:
        return False
    segment = (options or {}).get("segment")
    if segment == "b2g":
        return False
    if segment in ("b2c", "b2b"):
        return config.has_fallback(segment)
    return config.has_fallback("b2c") or config.has_fallback("b2b")


# --- savings report ------------------------------------------------------------------------------


def channel_report(engine: Engine, tenant_id: str, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """Per channel: invoices attempted, delivery rate, cost, and the saving against print-only."""
    with engine.connect() as conn:
        config = load_routing(conn, tenant_id)
        rows = list(conn.execute(
            select(channel_deliveries.c.channel, channel_deliveries.c.state, channel_deliveries.c.cost_nok)
            .where(channel_deliveries.c.tenant_id == tenant_id, channel_deliveries.c.state.in_(ATTEMPTED_STATES),
                   channel_deliveries.c.created_at >= start, channel_deliveries.c.created_at < end)))
        via_channel = select(channel_deliveries.c.message_id)
        peppol = conn.execute(
            select(func.count()).select_from(messages)
            .where(messages.c.tenant_id == tenant_id, messages.c.direction == "out",
                   messages.c.state == DELIVERED, messages.c.created_at >= start, messages.c.created_at < end,
                   messages.c.id.not_in(via_channel))).scalar() or 0
        peppol_failed = conn.execute(
            select(func.count()).select_from(messages)
            .where(messages.c.tenant_id == tenant_id, messages.c.direction == "out",
                   messages.c.state == FAILED, messages.c.created_at >= start, messages.c.created_at < end,
                   messages.c.id.not_in(via_channel))).scalar() or 0
    stats: dict[str, dict[str, Any]] = {}

    def bucket(name: str) -> dict[str, Any]:
        return stats.setdefault(name, {"channel": name, "invoices": 0, "delivered": 0, "cost_nok": Decimal("0")})

    if peppol or peppol_failed:
        b = bucket(PEPPOL)
        b["invoices"] += peppol + peppol_failed
        b["delivered"] += peppol
        b["cost_nok"] += config.cost(PEPPOL) * peppol
    for r in rows:
        b = bucket(r.channel)
        b["invoices"] += 1
        if r.state in SUCCESS_STATES:
            b["delivered"] += 1
            b["cost_nok"] += Decimal(r.cost_nok or "0")
    out = []
    total_cost, total_saving, total_delivered = Decimal("0"), Decimal("0"), 0
    for name in CHANNELS:
        if name not in stats:
            continue
        b = stats[name]
        print_equivalent = config.print_cost_nok * b["delivered"]
        saving = print_equivalent - b["cost_nok"]
        total_cost += b["cost_nok"]
        total_saving += saving
        total_delivered += b["delivered"]
        out.append({"channel": name, "invoices": b["invoices"], "delivered": b["delivered"],
                    "delivery_rate": round(b["delivered"] / b["invoices"], 4) if b["invoices"] else None,
                    "cost_nok": str(b["cost_nok"].quantize(Decimal("0.01"))),
                    "saving_vs_print_nok": str(saving.quantize(Decimal("0.01")))})
    return {"from": start.isoformat(), "to": end.isoformat(), "print_cost_nok": str(config.print_cost_nok),
            "channels": out, "total": {"delivered": total_delivered,
                                       "cost_nok": str(total_cost.quantize(Decimal("0.01"))),
                                       "saving_vs_print_nok": str(total_saving.quantize(Decimal("0.01")))}}


__all__ = ["ADAPTERS", "RoutingConfig", "RoutingConfigError", "RoutingEngine", "channel_report", "has_fallback",
           "parse_hints", "recipient_from"]
