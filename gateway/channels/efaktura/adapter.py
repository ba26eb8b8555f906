"""`EfakturaAdapter`: eFaktura 2.0 through MPS as a routing-engine channel, Vipps included.

Reachability = the consumer has an eFaktura identifier ("Ja takk til alle", or "Alltid Vipps
eFaktura", which is the same consent) and is not on the issuer's blocked-consumer list; both answers
are cached with TTLs (bounded), because the registry changes but lookups cost time and money.
Render builds the `addInvoices` request (pure); submit sends it under a consignment id derived from
the delivery id, so a retry is recognised by MPS as a duplicate (209) and confirmed instead of sent
twice; track polls consignment and invoice status. eFaktura never reports payment or opening:
"paid" comes from OCR/bank reconciliation by KID elsewhere.

Vipps is not a separate API in 2026 (channel notes §4): a delivery "via Vipps" is an eFaktura
delivery that the consumer sees in Vipps if they chose so. `options["vipps"]` (or the tenant's
`vipps` flag) is therefore recorded in the rendered summary and the submit detail, and nothing else.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any, Callable, Literal

import aiohttp
from lxml import etree

from gateway.channels.base import (ChannelAdapter, ChannelError, DeliveryRequest, Reachability, Recipient,
                                   Rendered, SubmitResult, TrackEvent)
from gateway.channels.efaktura.client import (ClaimInvoice, ClientSettings, EfakturaClient, EfakturaError,
                                              IdentifierLookup, IdentifierResult, build_add_invoices)
from gateway.channels.efaktura.schema import NAMESPACE
from gateway.kid import KidError, validate_kid
from gateway.norwegian_ids import NorwegianIdError, validate_fodselsnummer, validate_kontonr, validate_orgnr

DEFAULT_URL = "https://efaktura-services.nets.no/invoicing-nets-submitter/v1/"

#: MPS invoice/consignment states → ours. Unknown states produce no event (logged in detail).
STATE_MAP: dict[str, str] = {
    "RECEIVED": "accepted", "PENDING": "accepted", "IN_PROGRESS": "accepted", "PROCESSING": "accepted",
    "ACCEPTED": "accepted",
    "PROCESSED": "delivered", "DELIVERED": "delivered", "SENT": "delivered", "AVAILABLE": "delivered",
    "REJECTED": "failed", "FAILED": "failed", "ERROR": "failed", "STOPPED": "failed", "CANCELLED": "failed",
    "CANCELED": "failed", "DELETED": "failed",
}

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,40}$")
_POSTCODE = re.compile(r"^[0-9A-Za-z \-]{2,10}$")
_PHONE = re.compile(r"^\+?[0-9]{5,15}$")


@dataclass(frozen=True)
class EfakturaConfig:
    """Per-tenant settings; build with `EfakturaConfig.from_dict(d)`."""

    issuer_orgnr: str
    issuer_name: str | None = None
    url: str = DEFAULT_URL
    namespace: str = NAMESPACE
    blacklist_url: str | None = None  # None: same endpoint as `url`
    blacklist_namespace: str | None = None
    check_blacklist: bool = True
    username: str | None = None
    password: str | None = None
    password_digest: bool = False
    client_cert_file: str | None = None
    client_key_file: str | None = None
    ca_file: str | None = None
    verify_tls: bool = True
    timeout_seconds: float = 30.0
    service_provider_orgnr: str | None = None
    identifier_ttl_seconds: float = 24 * 3600.0  # positive lookups
    negative_ttl_seconds: float = 3600.0  # NOT_FOUND / AMBIGUOUS
    blacklist_ttl_seconds: float = 3600.0
    cache_max_entries: int = 10_000
    consignment_id_format: Literal["text40", "digits11"] = "text40"
    kid_algorithm: Literal["mod10", "mod11"] | None = None  # None: either
    require_kid: bool = True
    lookup_by_name: bool = True
    address_by_ssn: bool = False  # address invoices by fødselsnummer instead of the identifier
    vipps: bool = False  # default for request.options["vipps"]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EfakturaConfig":
        known = {f.name: f for f in fields(cls)}
        unknown = set(d) - set(known)
        if unknown:
            raise ValueError(f"unknown eFaktura config keys: {sorted(unknown)}")
        if not d.get("issuer_orgnr"):
            raise ValueError("eFaktura config needs issuer_orgnr")
        values = dict(d)
        values["issuer_orgnr"] = validate_orgnr(str(values["issuer_orgnr"]))
        if values.get("service_provider_orgnr"):
            values["service_provider_orgnr"] = validate_orgnr(str(values["service_provider_orgnr"]))
        for key in ("timeout_seconds", "identifier_ttl_seconds", "negative_ttl_seconds", "blacklist_ttl_seconds"):
            if key in values:
                values[key] = float(values[key])
                if values[key] < 0:
                    raise ValueError(f"{key} must be >= 0")
        if "cache_max_entries" in values:
            values["cache_max_entries"] = int(values["cache_max_entries"])
        for key in ("check_blacklist", "password_digest", "verify_tls", "require_kid", "lookup_by_name",
                    "address_by_ssn", "vipps"):
            if key in values and not isinstance(values[key], bool):
                raise ValueError(f"{key} must be true or false")
        if values.get("consignment_id_format", "text40") not in ("text40", "digits11"):
            raise ValueError("consignment_id_format must be text40 or digits11")
        if values.get("kid_algorithm") not in (None, "mod10", "mod11"):
            raise ValueError("kid_algorithm must be mod10, mod11 or empty")
        if bool(values.get("client_cert_file")) != bool(values.get("client_key_file")) and \
                values.get("client_key_file"):
            raise ValueError("client_key_file needs client_cert_file")
        return cls(**values)

    def client_settings(self) -> ClientSettings:
        return ClientSettings(
            url=self.url, namespace=self.namespace, blacklist_url=self.blacklist_url,
            blacklist_namespace=self.blacklist_namespace, username=self.username, password=self.password,
            password_digest=self.password_digest, client_cert_file=self.client_cert_file,
            client_key_file=self.client_key_file, ca_file=self.ca_file, verify_tls=self.verify_tls,
            timeout_seconds=self.timeout_seconds, service_provider_orgnr=self.service_provider_orgnr)


class TtlCache:
    """A small bounded LRU with per-entry expiry (monotonic clock, injectable for tests)."""

    def __init__(self, max_entries: int, clock: Callable[[], float] = time.monotonic):
        self.max_entries, self.clock = max(1, max_entries), clock
        self._data: OrderedDict[Any, tuple[float, Any]] = OrderedDict()

    def get(self, key: Any) -> Any | None:
        item = self._data.get(key)
        if item is None:
            return None
        expires, value = item
        if self.clock() >= expires:
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return value

    def put(self, key: Any, value: Any, ttl: float) -> None:
        if ttl <= 0:
            return
        self._data[key] = (self.clock() + ttl, value)
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


def consignment_id_for(delivery_id: str, fmt: str = "text40") -> str:
    """A consignment id that is a pure function of the delivery id (idempotency key towards MPS).

    `text40` (current WSDL, 1-40 characters): the delivery id itself when it fits, else a hash.
    `digits11` (older WSDL, `[0-9]{11}`): a hash reduced to 11 digits; with 10^11 values the
    collision odds are ~n²/2·10^11 per issuer (≈5 % at 100 000 invoices), so prefer text40.
    """
    digest = hashlib.sha256(delivery_id.encode()).hexdigest()
    if fmt == "digits11":
        return f"{int(digest, 16) % 10**11:011d}"
    if _SAFE_ID.match(delivery_id):
        return delivery_id
    return "sg-" + digest[:37]


def split_name(name: str | None) -> tuple[str, str] | None:
    """`Kari Anne Nordmann` → (`Kari Anne`, `Nordmann`); Norwegian order, surname last."""
    parts = (name or "").split()
    if len(parts) < 2:
        return None
    return " ".join(parts[:-1])[:35], parts[-1][:35]


class EfakturaAdapter(ChannelAdapter):
    name = "efaktura"

    def __init__(self, config: EfakturaConfig, session: aiohttp.ClientSession | None = None, *,
                 clock: Callable[[], float] = time.monotonic):
        self.config = config
        self.client = EfakturaClient(config.client_settings(), session)
        self._cache = TtlCache(config.cache_max_entries, clock)

    async def close(self) -> None:
        await self.client.close()

    # -- reachability ----------------------------------------------------------------------------

    def lookup_for(self, recipient: Recipient) -> IdentifierLookup | str:
        """The lookup to make, or a reason code why none can be made."""
        if recipient.fodselsnummer:
            try:
                ssn = validate_fodselsnummer(recipient.fodselsnummer, allow_2032_rule=True)
            except NorwegianIdError:
                ssn = None
            if ssn:
                return IdentifierLookup(social_security_number=ssn)
        if not self.config.lookup_by_name:
            return "invalid-fnr" if recipient.fodselsnummer else "no-fnr"
        names = split_name(recipient.name)
        addr = recipient.address
        if names is None or addr is None or not addr.lines or not addr.postcode:
            return "invalid-fnr" if recipient.fodselsnummer else "insufficient-data"
        if not _POSTCODE.match(addr.postcode):
            return "insufficient-data"
        phone = re.sub(r"[^\d+]", "", recipient.phone or "")
        phone = phone if _PHONE.match(phone) else None  # optional: drop what the service would refuse
        email = recipient.email if recipient.email and "@" in recipient.email and len(recipient.email) <= 100 else None
        return IdentifierLookup(first_name=names[0], last_name=names[1], street_address=addr.lines[0][:100],
                                postal_code=addr.postcode, postal_place=(addr.city or None) and addr.city[:35],
                                country_code=(addr.country or "NO").upper(), email=email,
                                phone=phone, date_of_birth=recipient.birth_date)

    async def _identifier(self, lookup: IdentifierLookup) -> tuple[IdentifierResult, bool]:
        key = ("id", self.config.issuer_orgnr, lookup)
        hit = self._cache.get(key)
        if hit is not None:
            return hit, True
        [result] = await self.client.get_identifiers(self.config.issuer_orgnr, [lookup])
        ttl = self.config.identifier_ttl_seconds if result.found else self.config.negative_ttl_seconds
        self._cache.put(key, result, ttl)
        return result, False

    async def blocked_identifiers(self) -> frozenset[str]:
        key = ("blacklist", self.config.issuer_orgnr)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        entries = await self.client.get_blacklist(self.config.issuer_orgnr)
        blocked = frozenset(x for e in entries for x in (e.efaktura_identifier, e.social_security_number) if x)
        self._cache.put(key, blocked, self.config.blacklist_ttl_seconds)
        return blocked

    async def reachability(self, recipient: Recipient) -> Reachability:
        if not recipient.is_consumer:
            return Reachability.no("not-consumer", "eFaktura B2C is for consumers; organisations get EHF")
        lookup = self.lookup_for(recipient)
        if isinstance(lookup, str):
            return Reachability.no(lookup, "need a valid fødselsnummer, or name + street address + postcode")
        result, cached = await self._identifier(lookup)
        how = "fødselsnummer" if lookup.by_ssn else "name and address"
        if not result.found:
            reason = "ambiguous" if result.status == "AMBIGUOUS" else "not-registered"
            return Reachability(False, reason, f"eFaktura lookup by {how}: {result.status}", cached=cached)
        if self.config.check_blacklist:
            blocked = await self.blocked_identifiers()
            if result.efaktura_identifier in blocked or (lookup.social_security_number or "") in blocked:
                return Reachability(False, "blocked-issuer",
                                    f"consumer has blocked eFaktura from {self.config.issuer_orgnr}", cached=cached)
        return Reachability(True, "ok", f"eFaktura identifier found by {how}", result.efaktura_identifier,
                            cached=cached)

    # -- render ----------------------------------------------------------------------------------

    def render(self, request: DeliveryRequest) -> Rendered:
        cfg, inv = self.config, request.invoice
        if inv.is_credit_note or not inv.requests_payment:
            raise ChannelError("unsupported-document", "eFaktura carries payment claims only (no credit notes "
                               "or zero amounts)")
        problems: list[str] = []
        # The claim is issued under the eFaktura agreement (`issuer_orgnr`): the same issuer the
        # lookup and the blocked-issuer check used. MPS refuses an invoice from another seller.
        issuer = cfg.issuer_orgnr
        if request.issuer_orgnr:
            try:
                seller = validate_orgnr(request.issuer_orgnr)
            except NorwegianIdError as exc:
                problems.append(f"seller orgnr: {exc.message}")
            else:
                if seller != issuer:
                    problems.append(f"seller orgnr {seller} is not the eFaktura issuer {issuer} of this "
                                    "agreement")
        if inv.currency != "NOK":
            problems.append(f"currency {inv.currency}: eFaktura claims are in NOK")
        kid = inv.kid
        if kid:
            try:
                kid = validate_kid(kid, cfg.kid_algorithm)
            except KidError as exc:
                problems.append(f"KID: {exc.message}")
        elif cfg.require_kid:
            problems.append("KID missing (cac:PaymentMeans/cbc:PaymentID)")
        account = inv.kontonummer
        if not account:
            problems.append("no Norwegian account number (kontonummer) in PaymentMeans")
        else:
            try:
                account = validate_kontonr(account)
            except NorwegianIdError as exc:
                problems.append(f"account: {exc.message}")
        due = inv.due_date or next((m.due_date for m in inv.payment_means if m.due_date), None)
        if due is None:
            problems.append("due date missing")
        if not inv.number or len(inv.number) > 100:
            problems.append("invoice number must be 1-100 characters")
        amount = inv.payable_amount.quantize(Decimal("0.01"))
        if amount != inv.payable_amount:
            problems.append(f"amount {inv.payable_amount} has more than two decimals")
        if not request.pdf.startswith(b"%PDF-"):
            problems.append("presentation is not a PDF")
        ident = request.reachability.reference
        ssn = None
        if request.recipient.fodselsnummer and (cfg.address_by_ssn or not ident):
            try:
                ssn = validate_fodselsnummer(request.recipient.fodselsnummer, allow_2032_rule=True)
            except NorwegianIdError as exc:
                problems.append(f"fødselsnummer: {exc.message}")
        if cfg.address_by_ssn and ssn:
            ident = None
        if not ident and not ssn:
            raise ChannelError("not-reachable", "no eFaktura identifier or fødselsnummer for the recipient")
        if problems:
            raise ChannelError("invalid-data", "cannot send as eFaktura: " + "; ".join(problems))
        cid = consignment_id_for(request.delivery_id, cfg.consignment_id_format)
        claim = ClaimInvoice(invoice_number=inv.number, issuer_orgnr=issuer, kid=kid or "", amount=amount,
                             due_date=due, account=account or "", pdf=request.pdf,  # type: ignore[arg-type]
                             efaktura_identifier=ident, social_security_number=None if ident else ssn,
                             issuer_name=cfg.issuer_name or inv.seller.name, issue_date=inv.issue_date)
        message_id = "sendgw-" + hashlib.sha256(request.delivery_id.encode()).hexdigest()[:40]
        body = build_add_invoices(cid, [claim], namespace=cfg.namespace, message_id=message_id,
                                  service_provider=cfg.service_provider_orgnr)
        vipps = bool(request.options.get("vipps", cfg.vipps))
        summary = {
            "consignment_id": cid, "invoice_number": inv.number, "issuer_orgnr": issuer, "kid": kid,
            "amount": str(amount), "due_date": due.isoformat(), "account": account,  # type: ignore[union-attr]
            "addressed_by": "efakturaIdentifier" if ident else "socialSecurityNumber",
            "efaktura_identifier": ident, "pdf_bytes": len(request.pdf), "vipps": vipps,
        }
        if vipps:
            summary["vipps_note"] = ("Vipps = eFaktura: shown in Vipps when the consumer chose "
                                     "'Alltid Vipps eFaktura'; no Vipps-only delivery or Vipps status")
        return Rendered(request.delivery_id, self.name, etree.tostring(body, encoding="UTF-8"), summary)

    # -- submit ----------------------------------------------------------------------------------

    async def submit(self, rendered: Rendered) -> SubmitResult:
        body = etree.fromstring(rendered.payload, etree.XMLParser(resolve_entities=False, no_network=True,
                                                                  load_dtd=False))
        cid = rendered.summary["consignment_id"]
        try:
            result = await self.client.add_invoices(body)
            detail = f"eFaktura consignment {cid}: {result.status}"
        except EfakturaError as exc:
            if exc.code != "duplicate-consignment":
                raise
            status = await self.client.get_consignment_status(cid)
            detail = f"eFaktura consignment {cid} was already submitted ({status.status}); not sent again"
        if rendered.summary.get("vipps"):
            detail += "; vipps=yes (delivered as eFaktura, visible in Vipps if the consumer chose it)"
        return SubmitResult("accepted", cid, detail)

    # -- track -----------------------------------------------------------------------------------

    async def track(self, channel_ref: str) -> list[TrackEvent]:
        """One getInvoiceStatus poll; getConsignmentStatus only when it lists no invoice."""
        statuses = await self.client.get_invoice_status(channel_ref)
        events: list[TrackEvent] = []
        for st in statuses:
            state = STATE_MAP.get(st.status)
            if state is None:
                continue
            detail = f"invoice {st.invoice_number}: {st.status}"
            if st.error_code or st.error_message:
                detail += " (" + " ".join(x for x in (st.error_code, st.error_message) if x) + ")"
            events.append(TrackEvent(state, st.status_time or _now(), detail))  # type: ignore[arg-type]
        if not statuses:
            consignment = await self.client.get_consignment_status(channel_ref)
            state = STATE_MAP.get(consignment.status)
            if state is not None:
                events.append(TrackEvent(state, consignment.status_time or _now(),  # type: ignore[arg-type]
                                         f"consignment {channel_ref}: {consignment.status}"))
        return events


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
