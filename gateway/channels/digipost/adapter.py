"""Digipost as a delivery channel: identification → multipart invoice message → document events.

* reachability: `POST /identification`; DIGIPOST → reachable (mailbox); IDENTIFIED → reachable only
  when print fallback is configured and we hold the payer's postal address (the person has no mailbox,
  Digipost prints the letter); UNIDENTIFIED / INVALID → not reachable. Results are cached (TTL, bounded).
* render (pure): the v8 `message` with the invoice PDF as primary document and the `invoice` data type
  (due date, sum, creditor account, KID) when the invoice asks for a payment to a Norwegian account,
  optional `print-details` (print fallback) and `print-if-unread` (paper after N days unread); message-id
  and document UUID are UUIDv5 of the delivery id, so a retry is recognised as the same message.
* submit: POST /messages; a 409 / DUPLICATE_* answer means an earlier attempt got through → success.
* track: document events OPENED → opened, POSTMARKED → delivered (paper), PRINT_FAILED → failed, ...
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import time
import uuid as uuidlib
from collections import OrderedDict
from dataclasses import dataclass, fields
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Mapping
from zoneinfo import ZoneInfo

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
    TrackState,
)
from gateway.channels.digipost import schema, signing
from gateway.channels.digipost.client import (
    DigipostClient,
    DigipostError,
    DocumentPart,
    TokenProvider,
    boundary_for,
    build_multipart,
    derive_uuid,
    utcnow,
)
from gateway.channels.digipost.schema import (
    DocumentSpec,
    InvoiceData,
    MessageSpec,
    NameAndAddress,
    PrintDetails,
    PrintRecipient,
    RecipientId,
)
from gateway import norwegian_ids

OSLO = ZoneInfo("Europe/Oslo")
DEFAULT_UUID_NAMESPACE = "5c0d1f0e-2b8e-5a53-9d57-6a1c9f3d7e21"

# Digipost document event → our state (None: informative only, no state change).
EVENT_STATES: dict[str, TrackState | None] = {
    "OPENED": "opened",
    "POSTMARKED": "delivered",
    "PRINT_FAILED": "failed",
    "SHREDDED": "returned",
    "EMAIL_MESSAGE_SENT": "delivered",
    "EMAIL_MESSAGE_FAILED": "failed",
    "PEPPOL_DELIVERED": "delivered",
    "PEPPOL_FAILED": "failed",
    "EMAIL_NOTIFICATION_FAILED": None,
    "SMS_NOTIFICATION_FAILED": None,
    "MOVE_FILES_FROM_PUBLIC_SECTOR": None,
}


@dataclass(frozen=True)
class ReturnAddress:
    name: str
    lines: tuple[str, ...]
    postcode: str
    city: str
    country: str = "NO"

    def to_print(self) -> PrintRecipient:
        return PrintRecipient(self.name[:130], tuple(l[:100] for l in self.lines), self.postcode, self.city[:80],
                              None if self.country == "NO" else self.country)


@dataclass(frozen=True)
class DigipostConfig:
    """Per-tenant Digipost settings (see docs/channels-digipost.md for every key)."""

    broker_id: str  # X-Digipost-UserId: the sender/broker account id (not the orgnr)
    base_url: str = "https://api.digipost.no"
    auth_mode: str = "signature"  # "signature" (X-Digipost-Signature) | "bearer" (OAuth2 over mTLS)
    sender_id: str | None = None  # message sender-id when the broker sends on behalf of another sender
    # signature mode
    private_key_pem: str | None = None
    private_key_path: str | None = None
    private_key_password: str | None = None
    # bearer mode (token endpoint over mutual TLS)
    token_url: str | None = None  # e.g. https://midp.test.digipost.no/oauth2/token (test); prod: ask Digipost
    client_id: str | None = None
    client_cert_path: str | None = None
    client_key_path: str | None = None
    token_scope: str | None = None  # default "dpost-api:<broker_id>"
    token_resource: str | None = None  # default base_url
    # TLS trust for the API and token endpoint (None → system store)
    ca_file: str | None = None
    # response verification
    digipost_certificate_pem: str | None = None
    digipost_certificate_path: str | None = None
    verify_responses: bool = True
    trust_entrypoint_certificate: bool = True  # fetch GET / for the certificate when none is configured
    use_entrypoint_links: bool = True  # resource paths from GET / links; the *_path keys are the fallback
    identification_path: str = "/identification"
    messages_path: str = "/messages"
    events_path: str = "/documents/events"
    timeout_seconds: float = 30.0
    # reachability cache
    reachability_ttl_seconds: float = 24 * 3600
    reachability_cache_size: int = 10_000
    # print
    print_fallback: bool = False
    print_if_unread_days: int | None = None
    return_address: ReturnAddress | None = None
    print_color: str = "MONOCHROME"
    nondeliverable_handling: str = "RETURN_TO_SENDER"
    # documents
    authentication_level: str = "PASSWORD"
    sensitivity_level: str = "NORMAL"
    subject_template: str = "Faktura {number} fra {seller}"
    credit_note_subject_template: str = "Kreditnota {number} fra {seller}"
    invoice_data_type: bool = True  # attach the `invoice` data type to payable NOK invoices
    # tracking
    events_lookback_days: int = 60
    events_page_size: int = 100
    events_cache_seconds: float = 30.0
    uuid_namespace: str = DEFAULT_UUID_NAMESPACE

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "DigipostConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown digipost config keys: {sorted(unknown)}")
        values = dict(d)
        if "broker_id" not in values:
            raise ValueError("digipost config needs broker_id (the X-Digipost-UserId)")
        values["broker_id"] = str(values["broker_id"])
        if values.get("sender_id") is not None:
            values["sender_id"] = str(values["sender_id"])
        ra = values.get("return_address")
        if isinstance(ra, Mapping):
            values["return_address"] = ReturnAddress(
                name=ra["name"], lines=tuple(ra.get("lines", ())), postcode=str(ra["postcode"]), city=ra["city"],
                country=ra.get("country", "NO"))
        cfg = cls(**values)
        cfg.check()
        return cfg

    def check(self) -> None:
        if self.auth_mode not in ("signature", "bearer"):
            raise ValueError("auth_mode must be 'signature' or 'bearer'")
        if self.auth_mode == "signature" and not (self.private_key_pem or self.private_key_path):
            raise ValueError("signature mode needs private_key_pem or private_key_path")
        if self.auth_mode == "bearer" and not (self.token_url and self.client_id):
            raise ValueError("bearer mode needs token_url and client_id")
        if (self.print_fallback or self.print_if_unread_days) and self.return_address is None:
            raise ValueError("print needs a return_address")
        if self.print_if_unread_days is not None and self.print_if_unread_days < 1:
            raise ValueError("print_if_unread_days must be ≥ 1")
        if self.print_color not in schema.PRINT_COLORS:
            raise ValueError(f"print_color must be one of {schema.PRINT_COLORS}")
        if self.nondeliverable_handling not in schema.NONDELIVERABLE_HANDLING:
            raise ValueError(f"nondeliverable_handling must be one of {schema.NONDELIVERABLE_HANDLING}")
        if self.authentication_level not in schema.AUTHENTICATION_LEVELS:
            raise ValueError(f"authentication_level must be one of {schema.AUTHENTICATION_LEVELS}")
        if self.sensitivity_level not in schema.SENSITIVITY_LEVELS:
            raise ValueError(f"sensitivity_level must be one of {schema.SENSITIVITY_LEVELS}")


@dataclass(frozen=True)
class DigipostPayload:
    """What `render` produces and `submit` sends: the exact multipart request body."""

    message_id: str
    document_uuid: str
    content_type: str
    body: bytes
    message_xml: bytes
    print_fallback: bool
    print_if_unread_after: dt.datetime | None


def recipient_identifier(recipient: Recipient) -> RecipientId | None:
    """The strongest identifier we hold: fødselsnummer, orgnr, then name + address (± phone, e-mail,
    birth date, which the v8 schema carries inside `name-and-address`)."""
    if recipient.fodselsnummer:
        return RecipientId("personal-identification-number", "".join(recipient.fodselsnummer.split()))
    if recipient.orgnr:
        return RecipientId("organisation-number", "".join(recipient.orgnr.split()))
    addr = recipient.address
    if recipient.name and addr and addr.lines and addr.postcode and addr.city:
        return RecipientId("name-and-address", NameAndAddress(
            fullname=recipient.name[:130],
            addressline1=addr.lines[0][:100],
            addressline2=addr.lines[1][:100] if len(addr.lines) > 1 else None,
            postalcode=addr.postcode[:10],
            city=addr.city[:80],
            birth_date=recipient.birth_date,
            phone_number=recipient.phone,
            email_address=recipient.email,
        ))
    return None


def print_recipient(recipient: Recipient) -> PrintRecipient | None:
    addr = recipient.address
    if not (recipient.name and addr and addr.postcode and addr.city):
        return None
    return PrintRecipient(recipient.name[:130], tuple(l[:100] for l in addr.lines if l.strip())[:3],
                          addr.postcode, addr.city[:80], None if addr.country in ("", "NO") else addr.country)


class _TTLCache:
    """Bounded LRU with per-entry expiry (monotonic clock)."""

    def __init__(self, ttl: float, size: int, now: Callable[[], float] = time.monotonic):
        self.ttl, self.size, self._now = ttl, size, now
        self._data: OrderedDict[str, tuple[float, Any]] = OrderedDict()

    def get(self, key: str) -> Any | None:
        item = self._data.get(key)
        if item is None:
            return None
        expires, value = item
        if expires <= self._now():
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return value

    def put(self, key: str, value: Any) -> None:
        self._data[key] = (self._now() + self.ttl, value)
        self._data.move_to_end(key)
        while len(self._data) > self.size:
            self._data.popitem(last=False)


class DigipostAdapter(ChannelAdapter):
    name = "digipost"

    def __init__(self, config: DigipostConfig, session: aiohttp.ClientSession | None = None, *,
                 clock: Callable[[], dt.datetime] = utcnow, monotonic: Callable[[], float] = time.monotonic,
                 client: DigipostClient | None = None):
        self.config = config
        self._clock = clock
        self._ns = uuidlib.UUID(config.uuid_namespace)
        self._cache = _TTLCache(config.reachability_ttl_seconds, config.reachability_cache_size, monotonic)
        self._monotonic = monotonic
        self._events: dict[str, list[schema.DocumentEvent]] = {}
        self._events_fetched_at = float("-inf")
        self._events_lock = asyncio.Lock()
        self.client = client or self._make_client(session)

    # -- construction -------------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext | None:
        cfg = self.config
        if not (cfg.ca_file or (cfg.auth_mode == "bearer" and cfg.client_cert_path)):
            return None
        ctx = ssl.create_default_context(cafile=cfg.ca_file) if cfg.ca_file else ssl.create_default_context()
        if cfg.auth_mode == "bearer" and cfg.client_cert_path:
            ctx.load_cert_chain(cfg.client_cert_path, cfg.client_key_path)
        return ctx

    def _make_client(self, session: aiohttp.ClientSession | None) -> DigipostClient:
        cfg = self.config
        ctx = self._ssl_context()
        key = tokens = None
        if cfg.auth_mode == "signature":
            pem = cfg.private_key_pem.encode() if cfg.private_key_pem else Path(cfg.private_key_path).read_bytes()
            key = signing.load_private_key(pem, cfg.private_key_password.encode() if cfg.private_key_password else None)
        else:
            tokens = TokenProvider(
                token_url=cfg.token_url, client_id=cfg.client_id,
                scope=cfg.token_scope or f"dpost-api:{cfg.broker_id}",
                resource=cfg.token_resource or cfg.base_url, ssl_context=ctx, timeout=cfg.timeout_seconds,
                monotonic=self._monotonic)
        cert = cfg.digipost_certificate_pem or (
            Path(cfg.digipost_certificate_path).read_text() if cfg.digipost_certificate_path else None)
        return DigipostClient(
            base_url=cfg.base_url, broker_id=cfg.broker_id, private_key=key, token_provider=tokens,
            digipost_public_key=signing.load_public_key(cert) if cert else None,
            verify_responses=cfg.verify_responses, trust_entrypoint_certificate=cfg.trust_entrypoint_certificate,
            session=session, ssl_context=ctx, timeout=cfg.timeout_seconds, clock=self._clock,
            paths={"create_message": cfg.messages_path, "identify_recipient": cfg.identification_path,
                   "document_events": cfg.events_path},
            use_entrypoint_links=cfg.use_entrypoint_links)

    async def close(self) -> None:
        await self.client.close()

    # -- reachability -------------------------------------------------------------------

    @property
    def prints(self) -> bool:
        return self.config.print_fallback and self.config.return_address is not None

    async def reachability(self, recipient: Recipient) -> Reachability:
        rid = recipient_identifier(recipient)
        if rid is None:
            return Reachability.no("no-identifier", "need fødselsnummer, orgnr or full name and postal address")
        key = rid.describe()
        cached = self._cache.get(key)
        if cached is None:
            cached = await self.client.identify(rid)
            self._cache.put(key, cached)
            was_cached = False
        else:
            was_cached = True
        reach = self._decide(cached, recipient)
        return Reachability(reach.reachable, reach.reason, reach.detail, reach.reference, was_cached)

    def _decide(self, res: schema.IdentificationResult, recipient: Recipient) -> Reachability:
        if res.result == "DIGIPOST":
            return Reachability.ok("Digipost mailbox", reference=res.digipost_address)
        if res.result == "IDENTIFIED":
            if not self.prints:
                return Reachability.no("no-mailbox", "person identified but has no Digipost mailbox; print is off")
            if print_recipient(recipient) is None:
                return Reachability.no("no-postal-address", "no mailbox, and no postal address for print")
            return Reachability(True, "ok", "no mailbox: Digipost prints and posts the letter",
                                f"print:{res.person_alias or ''}")
        if res.result == "UNIDENTIFIED":
            reason = "ambiguous" if res.reason == "MULTIPLE_MATCHES" else "not-registered"
            return Reachability.no(reason, f"Digipost identification: UNIDENTIFIED {res.reason or ''}".strip())
        return Reachability.no("invalid-identifier", f"Digipost identification: INVALID {res.reason or ''}".strip())

    # -- render -------------------------------------------------------------------------

    def _subject(self, request: DeliveryRequest) -> str:
        inv = request.invoice
        template = self.config.credit_note_subject_template if inv.is_credit_note else self.config.subject_template
        seller = inv.seller.name or request.issuer_orgnr or ""
        return template.format(number=inv.number, seller=seller).strip()[:255] or f"Faktura {inv.number}"[:255]

    def invoice_data(self, request: DeliveryRequest) -> InvoiceData | None:
        """The `invoice` data type, only for a real payable NOK invoice to a valid Norwegian account."""
        inv = request.invoice
        if not self.config.invoice_data_type or not inv.requests_payment or inv.currency != "NOK":
            return None
        account = inv.kontonummer
        if not account or inv.due_date is None:
            return None
        try:
            account = norwegian_ids.validate_kontonr(account)
        except norwegian_ids.NorwegianIdError:
            return None
        due = dt.datetime.combine(inv.due_date, dt.time(0, 0), tzinfo=OSLO)
        due = due.replace(tzinfo=dt.timezone(due.utcoffset()))
        return InvoiceData(due, inv.payable_amount.quantize(Decimal("0.01")), account, inv.kid or None)

    def render(self, request: DeliveryRequest) -> Rendered:
        if not request.pdf or not request.pdf.startswith(b"%PDF-"):
            raise ChannelError("invalid-data", "Digipost needs the invoice as a PDF")
        rid = recipient_identifier(request.recipient)
        reference = request.reachability.reference or ""
        if rid is None:
            raise ChannelError("not-reachable", "no Digipost identifier for this recipient")
        if rid.kind == "name-and-address" and reference and not reference.startswith("print:"):
            rid = RecipientId("digipost-address", reference)  # exact mailbox found by identification
        cfg = self.config
        printable = print_recipient(request.recipient)
        wants_print = self.prints and printable is not None
        if reference.startswith("print:") and not wants_print:
            raise ChannelError("not-reachable", "recipient has no mailbox and print fallback is unavailable")
        pd = None
        if cfg.return_address is not None and printable is not None:
            pd = PrintDetails(printable, cfg.return_address.to_print(), cfg.print_color, cfg.nondeliverable_handling)
        message_id = derive_uuid(self._ns, request.delivery_id, "message")
        doc_uuid = derive_uuid(self._ns, request.delivery_id, "invoice-pdf")
        invoice = self.invoice_data(request)
        piu_after = None
        if cfg.print_if_unread_days and pd is not None and not reference.startswith("print:"):
            piu_after = (self._clock() + dt.timedelta(days=cfg.print_if_unread_days)).astimezone(dt.timezone.utc)
        msg = MessageSpec(
            message_id=message_id,
            sender_id=cfg.sender_id,
            recipient=rid,
            print_details=pd if wants_print else None,
            invoice_reference=request.invoice.number[:100] if invoice else None,
            primary=DocumentSpec(uuid=doc_uuid, subject=self._subject(request), file_type="pdf",
                                 authentication_level=cfg.authentication_level,
                                 sensitivity_level=cfg.sensitivity_level, invoice=invoice),
            print_if_unread_after=piu_after,
            print_if_unread_details=pd if piu_after else None,
        )
        message_xml = schema.build_message(msg)
        content_type, body = build_multipart(message_xml, [DocumentPart(doc_uuid, "application/pdf", request.pdf)],
                                             boundary_for(request.delivery_id))
        payload = DigipostPayload(message_id, doc_uuid, content_type, body, message_xml, wants_print, piu_after)
        summary = {
            "message_id": message_id, "document_uuid": doc_uuid, "recipient": rid.kind,
            "subject": msg.primary.subject, "invoice_data_type": invoice is not None,
            "print_fallback": wants_print, "print_if_unread_after": piu_after.isoformat() if piu_after else None,
            "bytes": len(body),
        }
        if invoice is not None:
            summary.update(kid=invoice.kid, amount=str(invoice.sum), account=invoice.creditor_account,
                           due_date=invoice.due_date.date().isoformat())
        return Rendered(request.delivery_id, self.name, payload, summary)

    # -- submit -------------------------------------------------------------------------

    async def submit(self, rendered: Rendered) -> SubmitResult:
        payload: DigipostPayload = rendered.payload
        result = await self.client.send_message(payload.content_type, payload.body)
        if result.duplicate:
            return SubmitResult("accepted", payload.document_uuid,
                                f"already submitted earlier (Digipost: {result.detail})")
        delivery = result.delivery
        assert delivery is not None
        if delivery.primary_uuid and delivery.primary_uuid != payload.document_uuid:
            raise DigipostError("protocol", "message-delivery names another document than we sent")
        if delivery.delivery_method == "DIGIPOST" and delivery.status == "DELIVERED":
            return SubmitResult("delivered", payload.document_uuid, "delivered to the Digipost mailbox")
        if delivery.status == "DELIVERED_TO_PRINT" or delivery.delivery_method == "PRINT":
            return SubmitResult("accepted", payload.document_uuid, "handed to Digipost print")
        return SubmitResult("accepted", payload.document_uuid,
                            f"{delivery.delivery_method} {delivery.status}")

    # -- track --------------------------------------------------------------------------

    async def _refresh_events(self) -> None:
        async with self._events_lock:
            if self._monotonic() - self._events_fetched_at < self.config.events_cache_seconds:
                return
            end = self._clock() + dt.timedelta(minutes=1)
            start = end - dt.timedelta(days=self.config.events_lookback_days)
            events = await self.client.all_document_events(start, end, page_size=self.config.events_page_size)
            grouped: dict[str, list[schema.DocumentEvent]] = {}
            for ev in events:
                grouped.setdefault(ev.uuid, []).append(ev)
            self._events = grouped
            self._events_fetched_at = self._monotonic()

    async def track(self, channel_ref: str) -> list[TrackEvent]:
        await self._refresh_events()
        out = []
        for ev in sorted(self._events.get(channel_ref, ()), key=lambda e: e.created):
            state = EVENT_STATES.get(ev.type)
            if state is None:
                continue
            detail = ev.type
            if ev.type == "POSTMARKED":
                detail = f"POSTMARKED (paper letter) {ev.metadata.get('postmarked-date', '')}".strip()
            elif ev.metadata.get("error-code"):
                detail = f"{ev.type} {ev.metadata['error-code']}"
            out.append(TrackEvent(state, ev.created, detail))
        return out
