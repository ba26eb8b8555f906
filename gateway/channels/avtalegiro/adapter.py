"""`AvtaleGiroAdapter`: AvtaleGiro direct debit as a routing-engine channel, over the Nets file channel.

Reachability = an active mandate ("fast betalingsoppdrag") for the invoice's KID (`Recipient.kid`,
filled by the routing engine from the invoice). The mandate register is built from the mandate
records (NY219470) in the files Nets leaves in the incoming directory, applied in arrival order
(registration type 0 = full list replaces the register, 1 = new/changed, 2 = deleted) and kept in
the state directory so a restart loses nothing.

Delivery = one claim per claim file (80-character records, ISO-8859-1, see docs/avtalegiro.md),
written atomically into the outgoing directory the transfer agent sends to Nets. Transmission and
assignment numbers come from persistent counters and are never reused within 12 months + 1 day.
Submit is idempotent on the delivery id: the exact bytes are recorded before the file is dropped,
and a retry re-drops the *same* bytes (same transmission number), which Nets refuses as a duplicate
if it already has them, so a claim is never debited twice.

Tracking = OCR settlement files (transaction type 15 and any other OCR payment carrying the KID) are
matched by exact KID and amount (`matching.py`) → `paid`; everything that does not match is stored
and reported by `unmatched_payments()`, never dropped; those with a KID are first offered once to the
invoices delivered on other channels (`routed_payments`, matched by `RoutingEngine.settle_once`).
Receipts (see `receipts.py`) give `delivered` (Nets accepted the claim) or `failed` (rejected with
record and position, or not debited).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo

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
from gateway.channels.reachcache import ReachabilityCache
from gateway.invoice import InvoiceFacts
from gateway.kid import KidError, validate_kid
from gateway.norwegian_ids import NorwegianIdError, validate_kontonr
from gateway.render import format as fmt

from .claims import (
    Cancellation,
    Claim,
    ClaimBatch,
    ClaimError,
    ClaimFileOptions,
    build_claim_file,
)
from .client import DropConflict, IncomingEntry, NetsFileChannel
from .generators import next_banking_day
from .incoming import IncomingFile, Payment, parse_incoming_file
from .layout import CRLF, LF, LayoutRejected, fold_to_latin1
from .matching import Match, OpenInvoice, match_payments
from .receipts import RECEIPT_SUFFIX, Receipt, ReceiptError, parse_receipt
from .state import DeliveryRecord, NumbersExhausted, StateStore, identity_key

log = logging.getLogger(__name__)

OSLO = ZoneInfo("Europe/Oslo")
_IGNORED_KEYS = {"cost", "cost_nok", "enabled", "channel", "name"}
_ALIASES = {"agreement_account": "account", "payee_account": "account", "kundeenhet_id": "data_sender"}
MAX_SPEC_LINES = 42
UNMATCHED_REPORT = "unmatched-payments.json"
#: A receipt refusing only these is Nets seeing our crash-safe re-drop of a file it already has.
_DUPLICATE_CODES = frozenset({"transmission.duplicate_number", "assignment.duplicate_number"})


@dataclass(frozen=True)
class AvtaleGiroConfig:
    """Per-tenant settings; build with `AvtaleGiroConfig.from_dict(d)` (keys as the field names)."""

    data_sender: str  # our kundeenhet-ID at Nets (8 digits): transmission start of every claim file
    account: str  # the payee account of the AvtaleGiro agreement (11 digits, MOD11)
    outgoing_dir: str  # claim files are dropped here for the transfer agent to Nets
    incoming_dir: str  # files from Nets: mandate lists, OCR settlement data, receipts
    state_dir: str = ""  # counters, idempotency index, mandate register, payments (SQLite); see from_dict
    archive_dir: str | None = None  # processed incoming files; default <state_dir>/archive
    agreement_id: str | None = None  # OCR agreement id (9 digits), recorded; optional
    notify_payer: bool = True  # True: the bank notifies the payer (type 21); False: we do (type 02)
    specification: bool = True  # send specification lines (invoice summary) with type 21
    line_ending: str = "CRLF"  # CRLF or LF (to confirm with Nets)
    kid_algorithm: Literal["mod10", "mod11"] | None = None  # None: either
    kid_lengths: tuple[int, ...] | None = None  # registered KID structures (lengths), None: any 4-25
    number_start: int = 1  # first transmission/assignment number of a fresh state (migration)
    file_name_pattern: str = "AG{data_sender}.{transmission_number}.txt"
    external_ref_template: str = "{number}"  # "fremmedreferanse" on the payer's statement (max 25)
    min_lead_days: int = 1  # due date must be at least this many days ahead when rendered
    max_months_ahead: int = 12
    non_banking_due_date: Literal["next", "keep", "reject"] = "next"
    text_policy: Literal["fold", "strict"] = "fold"
    require_mandate_on_submit: bool = True  # re-check the register before dropping a new claim file
    reachability_ttl: float = 60.0
    cache_max_entries: int = 10_000
    scan_interval: float = 0.0  # at most one incoming-directory scan per interval (seconds); 0: every call
    incoming_grace_seconds: float = 60.0  # an unparsable file younger than this is retried, not rejected
    mandate_api: dict[str, Any] | None = None  # placeholder for the REST Mandate API: validated, not used yet

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AvtaleGiroConfig:
        values = {_ALIASES.get(k, k): v for k, v in d.items() if k not in _IGNORED_KEYS}
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown AvtaleGiro config keys: {sorted(unknown)}")
        for key in ("data_sender", "account", "outgoing_dir", "incoming_dir"):
            if not values.get(key):
                raise ValueError(f"AvtaleGiro config needs {key}")
        sender = str(values["data_sender"])
        if not (sender.isascii() and sender.isdigit() and len(sender) == 8):
            raise ValueError("data_sender (kundeenhet-ID) must be 8 digits")
        values["data_sender"] = sender
        try:
            values["account"] = validate_kontonr(str(values["account"]))
        except NorwegianIdError as exc:
            raise ValueError(f"account: {exc.message}") from exc
        if values.get("agreement_id") is not None:
            agreement = str(values["agreement_id"])
            if not (agreement.isdigit() and len(agreement) == 9):
                raise ValueError("agreement_id must be 9 digits")
            values["agreement_id"] = agreement
        for key in ("outgoing_dir", "incoming_dir", "state_dir", "archive_dir"):
            if values.get(key):
                values[key] = os.fspath(values[key])
            elif key in ("state_dir", "archive_dir"):
                values.pop(key, None)
        if not values.get("state_dir"):  # next to the archive, else hidden in the incoming directory
            base = values.get("archive_dir") or values["incoming_dir"]
            values["state_dir"] = os.path.join(base, ".sendgw-state")
        ending = values.get("line_ending", "CRLF")
        ending = {"\r\n": "CRLF", "\n": "LF"}.get(ending, str(ending).upper())
        if ending not in ("CRLF", "LF"):
            raise ValueError("line_ending must be CRLF or LF")
        values["line_ending"] = ending
        if isinstance(values.get("kid_algorithm"), str):
            values["kid_algorithm"] = values["kid_algorithm"].lower() or None
        if values.get("kid_algorithm") not in (None, "mod10", "mod11"):
            raise ValueError("kid_algorithm must be mod10, mod11 or empty")
        if values.get("kid_lengths") is not None:
            lengths = tuple(int(n) for n in values["kid_lengths"])
            if not lengths or len(lengths) > 3 or any(not 4 <= n <= 25 for n in lengths):
                raise ValueError("kid_lengths: 1-3 KID lengths between 4 and 25")
            values["kid_lengths"] = lengths
        for key in ("notify_payer", "specification", "require_mandate_on_submit"):
            if key in values and not isinstance(values[key], bool):
                raise ValueError(f"{key} must be true or false")
        for key in ("number_start", "min_lead_days", "max_months_ahead", "cache_max_entries"):
            if key in values:
                values[key] = int(values[key])
        if not 1 <= values.get("number_start", 1) <= 9_999_999:
            raise ValueError("number_start must be 1..9999999")
        if values.get("min_lead_days", 1) < 0 or not 1 <= values.get("max_months_ahead", 12) <= 12:
            raise ValueError("min_lead_days must be >= 0 and max_months_ahead 1..12")
        for key in ("reachability_ttl", "scan_interval", "incoming_grace_seconds"):
            if key in values:
                values[key] = float(values[key])
                if values[key] < 0:
                    raise ValueError(f"{key} must be >= 0")
        if values.get("non_banking_due_date", "next") not in ("next", "keep", "reject"):
            raise ValueError("non_banking_due_date must be next, keep or reject")
        if values.get("text_policy", "fold") not in ("fold", "strict"):
            raise ValueError("text_policy must be fold or strict")
        pattern = values.get("file_name_pattern", cls.file_name_pattern)
        try:
            sample = pattern.format(data_sender=sender, transmission_number="0000001", assignment_number="0000001",
                                    date="20260101")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"file_name_pattern: {exc!r}") from exc
        if "{transmission_number}" not in pattern or "/" in sample or "\\" in sample or sample.startswith("."):
            raise ValueError("file_name_pattern must contain {transmission_number} and name a plain, visible file")
        template = values.get("external_ref_template", cls.external_ref_template)
        try:
            template.format(number="1", kid="1", buyer_reference="")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"external_ref_template: {exc!r}") from exc
        api = values.get("mandate_api") or None
        if api is not None:
            if not isinstance(api, dict):
                raise ValueError("mandate_api must be a mapping (base_url, client_cert_file, client_key_file, ...)")
            url = str(api.get("base_url") or "")
            if url and not url.startswith("https://"):
                raise ValueError("mandate_api.base_url must be https (the Mandate API requires mutual TLS)")
            if bool(api.get("client_cert_file")) != bool(api.get("client_key_file")):
                raise ValueError("mandate_api needs client_cert_file and client_key_file together")
            api = dict(api)
        values["mandate_api"] = api
        return cls(**values)

    @property
    def archive_path(self) -> str:
        return self.archive_dir or os.path.join(self.state_dir, "archive")

    @property
    def line_terminator(self) -> str:
        return CRLF if self.line_ending == "CRLF" else LF

    def file_options(self, today: dt.date | None) -> ClaimFileOptions:
        return ClaimFileOptions(line_ending=self.line_terminator, kid_algorithm=self.kid_algorithm,
                                kid_lengths=frozenset(self.kid_lengths) if self.kid_lengths else None,
                                text_policy=self.text_policy, today=today, max_months_ahead=self.max_months_ahead)


@dataclass(frozen=True)
class ClaimDraft:
    """What `render` produces: the claim, without the numbers `submit` allocates."""

    claim: Claim
    channel_ref: str


@dataclass(frozen=True)
class UnmatchedPaymentReport:
    """A settled payment that marked no invoice paid, and why (kept until someone deals with it)."""

    id: int
    kid: str
    amount_ore: int
    settlement_date: dt.date
    transaction_type: int
    reason: str  # unknown_kid, amount_mismatch, duplicate, missing_kid, reversal, ambiguous, other_account
    detail: str
    source_file: str
    account: str
    payer_account: str | None = None

    @property
    def amount(self) -> Decimal:
        return _money(self.amount_ore)


#: unmatched reasons a document delivered on another channel can still explain (see `routed_payments`)
ROUTED_REASONS = ("unknown_kid", "amount_mismatch", "duplicate")


@dataclass(frozen=True)
class RoutedPayment:
    """A settled payment offered to the documents delivered on other channels."""

    id: int
    kid: str
    amount_ore: int
    settlement_date: dt.date
    transaction_type: int
    source_file: str
    account: str
    reason: str | None
    detail: str
    delivery_id: str | None  # set when assigned
    routed: str | None  # None: not offered yet; "assigned": paid not confirmed yet

    @property
    def amount(self) -> Decimal:
        return _money(self.amount_ore)

    def describe(self) -> str:
        """The payment reference recorded with `paid` (the same words as for a claim)."""
        return (f"settled {fmt.date(self.settlement_date)}: OCR transaction type {self.transaction_type:02d}, "
                f"KID {self.kid}, {fmt.money(_money(self.amount_ore), 'NOK')} ({self.source_file}, "
                f"payment {self.id} to account {self.account})")


@dataclass(frozen=True)
class RoutedOffer:
    """What the routing engine found for a payment: candidates (delivery id, detail) best first; else
    the reason and detail it stays unmatched with (None: keep the ones it has)."""

    payment_id: int
    candidates: tuple[tuple[str, str], ...] = ()
    reason: str | None = None
    detail: str | None = None


def _add_months(d: dt.date, months: int) -> dt.date:
    y, m = divmod(d.month - 1 + months, 12)
    for day in (d.day, 30, 29, 28):
        try:
            return dt.date(d.year + y, m + 1, day)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def _is_banking_day(d: dt.date) -> bool:
    return next_banking_day(d) == d


def specification_lines(inv: InvoiceFacts, due: dt.date) -> tuple[str, ...]:
    """The "AvtaleGiro info" text the payer's bank shows: up to 42 lines of 80 characters."""
    seller = inv.seller.name or inv.seller.legal_name or ""
    head = [
        f"Faktura {inv.number}" + (f" fra {seller}" if seller else ""),
        f"Fakturadato {fmt.date(inv.issue_date)}   Forfall {fmt.date(due)}",
        f"Å betale {fmt.money(inv.payable_amount, inv.currency)}",
    ]
    body: list[str] = []
    for line in inv.lines:
        name = " ".join((line.name or line.description or f"Linje {line.id}").split())
        amount = fmt.amount(line.line_amount)
        body.append(f"{name[:80 - len(amount) - 2]:<{78 - len(amount)}}  {amount}")
    room = MAX_SPEC_LINES - len(head) - 1
    if len(body) > room:
        rest = len(body) - (room - 1)
        body = body[:room - 1] + [f"... og {rest} linjer til (se fakturaen)"]
    lines = head + ([""] + body if body else [])
    return tuple(line[:80].rstrip() for line in lines)


def _money(ore: int) -> Decimal:
    """øre → kroner with two decimals."""
    return (Decimal(ore) / 100).quantize(Decimal("0.01"))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class AvtaleGiroAdapter(ChannelAdapter):
    name: ClassVar[str] = "avtalegiro"

    def __init__(self, config: AvtaleGiroConfig, session: Any = None, *,
                 today: Callable[[], dt.date] | None = None, clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], dt.datetime] = _now):
        self.config = config
        self.store = StateStore(config.state_dir)
        self.files = NetsFileChannel(config.outgoing_dir, config.incoming_dir, config.archive_path)
        self._today = today or (lambda: dt.datetime.now(OSLO).date())
        self._clock, self._now = clock, now
        self._cache = ReachabilityCache(config.reachability_ttl, config.cache_max_entries, clock)
        self._scan_lock = asyncio.Lock()
        self._last_scan: float | None = None
        if config.mandate_api:
            log.warning("avtalegiro: mandate_api is configured but not used yet (endpoint paths unpublished); "
                        "mandates come from the incoming Nets files only")

    # -- reachability ----------------------------------------------------------------------------

    def _kid(self, kid: str) -> str:
        kid = validate_kid(kid, self.config.kid_algorithm, min_length=4, max_length=25, allow_dash=False)
        if self.config.kid_lengths and len(kid) not in self.config.kid_lengths:
            raise KidError("kid.structure", f"KID length {len(kid)} matches no registered KID structure "
                           f"{list(self.config.kid_lengths)}")
        return kid

    async def reachability(self, recipient: Recipient) -> Reachability:
        if not recipient.kid:
            return Reachability.no("no-kid", "AvtaleGiro needs the invoice's KID (Recipient.kid) to find a mandate")
        try:
            kid = self._kid(recipient.kid)
        except KidError as exc:
            return Reachability.no("invalid-kid", f"KID {recipient.kid!r}: {exc.message}")
        await self.refresh()  # first: a scan that changes the register drops the cached answers
        hit = self._cache.get(kid)
        if hit is not None:
            return hit
        row = await asyncio.to_thread(self.store.mandate, kid)
        if row is not None and row["active"]:
            notice = "J" if row["notify"] else "N"
            answer = Reachability.ok(f"active AvtaleGiro mandate for KID {kid} (written notice {notice})", kid)
        elif row is not None:
            answer = Reachability.no("mandate-deleted", f"the AvtaleGiro mandate for KID {kid} was deleted "
                                     f"({row['source']})")
        else:
            answer = Reachability.no("no-mandate", f"no AvtaleGiro mandate for KID {kid}")
        return self._cache.put(kid, answer)

    def mandate_register(self) -> dict[str, dict[str, Any]]:
        """KID → mandate facts (active or deleted), as the incoming files left them."""
        return {r["kid"]: {"active": bool(r["active"]), "notify": bool(r["notify"]),
                           "registration_type": r["registration_type"], "serial_number": r["serial_number"],
                           "source": r["source"], "updated_at": r["updated_at"]} for r in self.store.mandates()}

    # -- render ------------------------------------------------------------------------------------

    def render(self, request: DeliveryRequest) -> Rendered:
        cfg, inv = self.config, request.invoice
        if inv.is_credit_note:
            raise ChannelError("invalid-data", "a credit note cannot be collected by AvtaleGiro")
        if inv.payable_amount <= 0:
            raise ChannelError("invalid-data", f"AvtaleGiro collects positive amounts only, not {inv.payable_amount}")
        problems: list[str] = []
        if inv.currency != "NOK":
            problems.append(f"currency {inv.currency}: AvtaleGiro claims are in NOK")
        ore = inv.payable_amount * 100
        amount_ore = int(ore) if ore == ore.to_integral_value() else None
        if amount_ore is None:
            problems.append(f"amount {inv.payable_amount} has fractions of an øre")
        kid = None
        if not inv.kid:
            problems.append("KID missing (cac:PaymentMeans/cbc:PaymentID)")
        else:
            try:
                kid = self._kid(inv.kid)
            except KidError as exc:
                problems.append(f"KID {inv.kid!r}: {exc.message}")
        if kid and request.recipient.kid and request.recipient.kid.strip() != kid:
            problems.append(f"recipient KID {request.recipient.kid} differs from the invoice KID {kid}")
        invoice_due = inv.due_date or next((m.due_date for m in inv.payment_means if m.due_date), None)
        due = invoice_due
        today = self._today()
        if due is None:
            problems.append("due date missing")
        elif due < today + dt.timedelta(days=cfg.min_lead_days):
            problems.append(f"due date {due} has passed or is too close (today {today}, "
                            f"at least {cfg.min_lead_days} day(s) ahead)")
        elif due > _add_months(today, cfg.max_months_ahead):
            problems.append(f"due date {due} is more than {cfg.max_months_ahead} months ahead")
        elif not _is_banking_day(due):
            if cfg.non_banking_due_date == "reject":
                problems.append(f"due date {due} is not a Norwegian banking day")
            elif cfg.non_banking_due_date == "next":
                due = next_banking_day(due)
                if due > _add_months(today, cfg.max_months_ahead):
                    problems.append(f"due date {due} (next banking day) is more than "
                                    f"{cfg.max_months_ahead} months ahead")
        payer_name = request.recipient.name or inv.buyer.name or inv.buyer.legal_name or ""
        external_ref = cfg.external_ref_template.format(number=inv.number, kid=kid or "",
                                                        buyer_reference=inv.buyer_reference or "")
        external_ref = " ".join(external_ref.split())
        if len(fold_to_latin1(external_ref)) > 25:
            problems.append(f"external reference {external_ref!r} is longer than 25 characters "
                            "(set external_ref_template)")
        if problems:
            raise ChannelError("invalid-data", "cannot collect by AvtaleGiro: " + "; ".join(problems))
        assert kid is not None and amount_ore is not None and due is not None
        spec = specification_lines(inv, due) if cfg.notify_payer and cfg.specification else ()
        claim = Claim(kid, amount_ore, due, payer_name, external_ref, cfg.notify_payer, spec)
        try:  # every field rule of the writer, with placeholder numbers: submit only adds the numbers
            build_claim_file(ClaimBatch(cfg.data_sender, "0000001", "0000001", cfg.account, [claim]),
                             cfg.file_options(today))
        except ClaimError as exc:
            raise ChannelError("invalid-data", f"AvtaleGiro claim: {exc.code}: {exc.message}") from exc
        channel_ref = f"{kid}:{amount_ore}:{due.isoformat()}"
        summary = {
            "kid": kid, "amount_ore": amount_ore, "amount": str(inv.payable_amount), "due_date": due.isoformat(),
            "invoice_due_date": invoice_due.isoformat() if invoice_due else None,
            "transaction_type": "21" if cfg.notify_payer else "02",
            "notified_by": "bank (AvtaleGiro info)" if cfg.notify_payer else "issuer",
            "payer_name": fold_to_latin1(" ".join(payer_name.split()))[:10], "external_ref": external_ref,
            "specification_lines": len(spec), "account": cfg.account, "data_sender": cfg.data_sender,
            "channel_ref": channel_ref, "invoice_number": inv.number,
        }
        if inv.kontonummer and inv.kontonummer != cfg.account:
            summary["note"] = (f"the invoice names account {inv.kontonummer}; AvtaleGiro debits to the agreement "
                               f"account {cfg.account}")
        return Rendered(request.delivery_id, self.name, ClaimDraft(claim, channel_ref), summary)

    # -- submit ------------------------------------------------------------------------------------

    async def submit(self, rendered: Rendered) -> SubmitResult:
        draft: ClaimDraft = rendered.payload
        try:
            existing = await asyncio.to_thread(self.store.get_delivery, rendered.delivery_id)
            if existing is None and self.config.require_mandate_on_submit:
                await self.refresh()
                row = await asyncio.to_thread(self.store.mandate, draft.claim.kid)
                if row is None or not row["active"]:
                    raise ChannelError("not-reachable", f"no active AvtaleGiro mandate for KID {draft.claim.kid} "
                                       "any more; claim not sent")
            return await asyncio.to_thread(self._submit, rendered.delivery_id, draft)
        except sqlite3.Error as exc:  # state file locked or unavailable: retrying re-drops the same bytes at most
            raise ChannelError("state-unavailable", f"AvtaleGiro state store: {exc}", transient=True) from exc

    def _file_name(self, transmission: str, assignment: str, today: dt.date) -> str:
        return self.config.file_name_pattern.format(data_sender=self.config.data_sender,
                                                    transmission_number=transmission,
                                                    assignment_number=assignment, date=today.strftime("%Y%m%d"))

    def _submit(self, delivery_id: str, draft: ClaimDraft) -> SubmitResult:
        cfg = self.config
        today = self._today()
        with self.store.transaction() as db:
            rec = self.store.get_delivery_in(db, delivery_id)
            if rec is None:
                open_same = db.execute(
                    "SELECT d.delivery_id FROM deliveries d WHERE d.channel_ref = ? AND NOT EXISTS "
                    "(SELECT 1 FROM events e WHERE e.delivery_id = d.delivery_id AND e.state = 'failed')",
                    (draft.channel_ref,)).fetchone()
                if open_same is not None:
                    raise ChannelError("duplicate-claim", f"delivery {open_same['delivery_id']} already claims "
                                       f"{draft.channel_ref} (KID:amount:due date); Nets would debit twice")
                try:
                    transmission = self.store.allocate_number(db, "transmission", today, delivery_id, cfg.number_start)
                    assignment = self.store.allocate_number(db, "assignment", today, delivery_id, cfg.number_start)
                except NumbersExhausted as exc:
                    raise ChannelError("numbers-exhausted", str(exc), transient=True) from exc
                try:
                    data = build_claim_file(ClaimBatch(cfg.data_sender, transmission, assignment, cfg.account,
                                                       [draft.claim], agreement_id=cfg.agreement_id),
                                            cfg.file_options(today))
                except ClaimError as exc:  # e.g. the due date passed between render and submit
                    raise ChannelError("invalid-data", f"AvtaleGiro claim: {exc.code}: {exc.message}") from exc
                c = draft.claim
                rec = DeliveryRecord(delivery_id, self._file_name(transmission, assignment, today), transmission,
                                     assignment, c.kid, c.amount_ore, c.due_date, draft.channel_ref, data, "pending",
                                     self._now().isoformat(), None)
                db.execute("INSERT INTO deliveries (delivery_id, file_name, transmission_number, assignment_number, "
                           "kid, amount_ore, due_date, channel_ref, data, status, created_at) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (rec.delivery_id, rec.file_name, rec.transmission_number, rec.assignment_number, rec.kid,
                            rec.amount_ore, rec.due_date.isoformat(), rec.channel_ref, rec.data, rec.status,
                            rec.created_at))
        if rec.status == "written":
            return SubmitResult("accepted", rec.channel_ref, f"claim file {rec.file_name} (transmission "
                                f"{rec.transmission_number}) was already handed over; not written again")
        try:
            written = self.files.drop(rec.file_name, rec.data)
        except DropConflict as exc:
            raise ChannelError("drop-conflict", str(exc)) from exc
        except OSError as exc:  # full disk, unmounted share, permissions: retry later with the same bytes
            raise ChannelError("drop-failed", f"cannot write to the AvtaleGiro outgoing directory: {exc}",
                               transient=True) from exc
        self.store.mark_written(delivery_id, self._now().isoformat())
        how = "written" if written else "found already waiting"
        return SubmitResult("accepted", rec.channel_ref, f"claim file {rec.file_name} {how} in the outgoing "
                            f"directory (transmission {rec.transmission_number}, assignment {rec.assignment_number})")

    def delivery(self, delivery_id: str) -> DeliveryRecord | None:
        """What was handed over for a delivery (file name, numbers, exact bytes): evidence."""
        return self.store.get_delivery(delivery_id)

    # -- cancellation --------------------------------------------------------------------------------

    async def cancel(self, channel_ref: str) -> str:
        """Send a deletion request (type 93) for a submitted claim; returns the file name written.

        Nets identifies the claim by KID, amount and due date, so they are repeated exactly.
        """
        return await asyncio.to_thread(self._cancel, channel_ref)

    def _cancel(self, channel_ref: str) -> str:
        cfg = self.config
        records = self.store.deliveries_by_ref(channel_ref)
        if not records:
            raise ChannelError("unknown-reference", f"no AvtaleGiro claim {channel_ref}")
        rec = records[-1]
        today = self._today()
        cancel_id = f"cancel:{rec.delivery_id}"
        with self.store.transaction() as db:
            done = self.store.get_delivery_in(db, cancel_id)
            if done is None:
                transmission = self.store.allocate_number(db, "transmission", today, cancel_id, cfg.number_start)
                assignment = self.store.allocate_number(db, "assignment", today, cancel_id, cfg.number_start)
                item = Cancellation(rec.kid, rec.amount_ore, rec.due_date)
                data = build_claim_file(ClaimBatch(cfg.data_sender, transmission, "", cfg.account, (), [item],
                                                   cancellation_assignment_number=assignment),
                                        cfg.file_options(None))
                done = DeliveryRecord(cancel_id, self._file_name(transmission, assignment, today), transmission,
                                      assignment, rec.kid, rec.amount_ore, rec.due_date, f"cancel:{rec.channel_ref}",
                                      data, "pending", self._now().isoformat(), None)
                db.execute("INSERT INTO deliveries (delivery_id, file_name, transmission_number, assignment_number, "
                           "kid, amount_ore, due_date, channel_ref, data, status, created_at) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (done.delivery_id, done.file_name, done.transmission_number, done.assignment_number,
                            done.kid, done.amount_ore, done.due_date.isoformat(), done.channel_ref, done.data,
                            done.status, done.created_at))
                self.store.add_event(db, rec.delivery_id, "failed", self._now().isoformat(),
                                     f"cancelled by the issuer: deletion request in {done.file_name}", "cancel")
        if done.status != "written":  # a retry re-drops the identical deletion request
            try:
                self.files.drop(done.file_name, done.data)
            except DropConflict as exc:
                raise ChannelError("drop-conflict", str(exc)) from exc
            except OSError as exc:
                raise ChannelError("drop-failed", f"cannot write the deletion request: {exc}", transient=True) from exc
            self.store.mark_written(cancel_id, self._now().isoformat())
        self._cache.clear()
        return done.file_name

    # -- incoming files --------------------------------------------------------------------------

    async def refresh(self, *, force: bool = False) -> None:
        """Process new files in the incoming directory (at most once per `scan_interval`)."""
        async with self._scan_lock:
            now = self._clock()
            if not force and self._last_scan is not None and now - self._last_scan < self.config.scan_interval:
                return
            try:
                changed = await asyncio.to_thread(self._scan)
            except (OSError, sqlite3.Error) as exc:  # answer from the stored state; try again next time
                log.error("avtalegiro: scanning %s failed: %s", self.config.incoming_dir, exc)
                return
            self._last_scan = self._clock()
            if changed:
                self._cache.clear()

    def _scan(self) -> bool:
        """Process every complete incoming file once; True when the mandate register changed."""
        changed = False
        unmatched_before = len(self.store.payments("unmatched"))
        for entry in self.files.list_incoming():
            try:
                data = entry.path.read_bytes()
            except FileNotFoundError:
                continue
            sha = hashlib.sha256(data).hexdigest()
            seen = self.store.file_record(sha)
            if seen is not None:  # processed before (crash before archiving, or the same file delivered again)
                sub = "" if seen["archived_as"] is None else "duplicates"
                try:
                    self.store.set_archived(sha, self.files.archive_file(entry, sha, sub))
                except OSError as exc:  # e.g. another worker moved it first
                    log.info("avtalegiro: %s not archived: %s", entry.name, exc)
                continue
            outcome = self._process(entry, data, sha)
            if outcome is None:
                continue  # young and unparsable: maybe still being written; retry next scan
            status, register_changed = outcome
            changed |= register_changed
            sub = "rejected" if status == "rejected" else ""
            try:
                self.store.set_archived(sha, self.files.archive_file(entry, sha, sub))
            except OSError as exc:
                log.warning("avtalegiro: cannot archive %s: %s (processed; will be moved next scan)", entry.name, exc)
        if len(self.store.payments("unmatched")) != unmatched_before:
            self._write_unmatched_report()
        return changed

    def _process(self, entry: IncomingEntry, data: bytes, sha: str) -> tuple[str, bool] | None:
        age = time.time() - entry.mtime
        if entry.name.lower().endswith(RECEIPT_SUFFIX) or data.lstrip()[:1] == b"{":
            try:
                receipt = parse_receipt(data)
            except ReceiptError as exc:
                if age < self.config.incoming_grace_seconds:
                    return None
                return self._record_file(sha, entry.name, "receipt", "rejected", str(exc)), False
            return self._apply_receipt(sha, entry.name, receipt), False
        try:
            parsed = parse_incoming_file(data, expected_recipient=self.config.data_sender)
        except LayoutRejected as exc:
            if age < self.config.incoming_grace_seconds:
                return None
            detail = "; ".join(str(i) for i in exc.issues[:5]) + (f" (+{len(exc.issues) - 5} more)"
                                                                     if len(exc.issues) > 5 else "")
            log.error("avtalegiro: rejected incoming file %s: %s", entry.name, detail)
            return self._record_file(sha, entry.name, "nets", "rejected", detail), False
        return self._apply_nets_file(sha, entry.name, parsed)

    def _record_file(self, sha: str, name: str, kind: str, status: str, detail: str) -> str:
        with self.store.transaction() as db:
            if self.store.file_seen(db, sha) is None:
                db.execute("INSERT INTO files (sha256, name, kind, status, detail, processed_at) VALUES (?, ?, ?, ?, ?, ?)",
                           (sha, name, kind, status, detail, self._now().isoformat()))
        return status

    def _apply_nets_file(self, sha: str, name: str, f: IncomingFile) -> tuple[str, bool]:
        cfg = self.config
        now = self._now().isoformat()
        notes: list[str] = []
        register_changed = False
        with self.store.transaction() as db:
            if self.store.file_seen(db, sha) is not None:
                return "processed", False
            for asg in f.mandate_assignments:
                if asg.account != cfg.account:
                    notes.append(f"mandate assignment {asg.assignment_number} is for account {asg.account}, "
                                 f"not ours ({cfg.account}): ignored")
                    continue
                source = f"{name} (Nets transmission {f.transmission_number}, assignment {asg.assignment_number})"
                if asg.full_list:  # registration type 0: the list replaces the register
                    db.execute("UPDATE mandates SET active = 0, source = ?, updated_at = ? WHERE active = 1",
                               (f"not in the full list {source}", now))
                for m in asg.mandates:
                    db.execute("INSERT OR REPLACE INTO mandates (kid, active, notify, registration_type, "
                               "serial_number, source, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                               (m.kid, int(m.active), int(m.notify), m.registration_type, m.serial_number,
                                source, now))
                register_changed = True
            ours: list[Payment] = []
            for sasg in f.settlement_assignments:
                for p in sasg.payments:
                    if sasg.account != cfg.account:
                        self._insert_payment(db, p, name, sasg.account, "unmatched", "other_account",
                                             f"settled to account {sasg.account}, not the agreement account "
                                             f"{cfg.account}", None)
                    else:
                        ours.append(p)
            paid = self._match(db, ours, name)
            db.execute("INSERT INTO files (sha256, name, kind, status, detail, processed_at) VALUES (?, ?, ?, ?, ?, ?)",
                       (sha, name, "nets", "processed",
                        "; ".join([f"{len(f.mandates)} mandates, {len(f.payments)} payments, {paid} paid",
                                   *notes]), now))
        return "processed", register_changed

    def _insert_payment(self, db: Any, p: Payment, source: str, account: str, status: str, reason: str | None,
                        detail: str, delivery_id: str | None) -> None:
        data = {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in dataclasses.asdict(p).items()}
        db.execute("INSERT INTO payments (identity, kid, amount_ore, settlement_date, transaction_type, account, "
                   "source_file, status, reason, detail, delivery_id, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (identity_key(p.identity), p.kid, p.amount_ore, p.settlement_date.isoformat(), p.transaction_type,
                    account, source, status, reason, detail, delivery_id, json.dumps(data)))

    def _match(self, db: Any, payments: list[Payment], source: str) -> int:
        """Match new payments to open claims; store every payment; add `paid` events. Returns #paid."""
        account = self.config.account
        fresh: list[Payment] = []
        for p in payments:
            if db.execute("SELECT 1 FROM payments WHERE identity = ? LIMIT 1",
                          (identity_key(p.identity),)).fetchone():
                self._insert_payment(db, p, source, account, "unmatched", "duplicate",
                                     "settlement transaction already processed from an earlier file", None)
            else:
                fresh.append(p)
        if not fresh:
            return 0
        kids = sorted({"".join(p.kid.split()) for p in fresh if p.kid})
        rows = []
        for i in range(0, len(kids), 500):  # only claims with these KIDs can match
            chunk = kids[i:i + 500]
            rows += db.execute("SELECT d.delivery_id, d.kid, d.amount_ore, d.due_date, EXISTS (SELECT 1 FROM events e WHERE "
                               "e.delivery_id = d.delivery_id AND e.state = 'paid') AS paid FROM deliveries d "
                               f"WHERE d.delivery_id NOT LIKE 'cancel:%' AND d.kid IN ({','.join('?' * len(chunk))}) "
                               "ORDER BY d.created_at",
                               chunk).fetchall()
        open_rows = [r for r in rows if not r["paid"]]
        # A KID is often the payer's customer KID, reused for every monthly claim with the same amount:
        # an AvtaleGiro debit (type 15) settles on the claim's due date (next banking day), so that
        # date picks the claim first; what is left goes through the general KID + amount matching.
        pre: list[Match] = []
        rest: list[Payment] = []
        for p in fresh:
            same = [r for r in open_rows if p.is_avtalegiro and r["kid"] == "".join(p.kid.split())
                    and r["amount_ore"] == p.amount_ore
                    and next_banking_day(dt.date.fromisoformat(r["due_date"])) == p.settlement_date]
            if same:
                open_rows.remove(same[0])
                pre.append(Match(OpenInvoice(same[0]["delivery_id"], same[0]["kid"], same[0]["amount_ore"]), p))
            else:
                rest.append(p)
        open_invoices = [OpenInvoice(r["delivery_id"], r["kid"], r["amount_ore"]) for r in open_rows]
        paid_kids = [r["kid"] for r in rows if r["paid"]] + [m.invoice.kid for m in pre]
        result = match_payments(rest, open_invoices, already_paid_kids=paid_kids)
        for m in pre + result.matched:
            p = m.payment
            detail = (f"settled {fmt.date(p.settlement_date)}: OCR transaction type {p.transaction_type:02d}, "
                      f"KID {p.kid}, {fmt.money(_money(p.amount_ore), 'NOK')} ({source})")
            self._insert_payment(db, p, source, account, "matched", None, detail, str(m.invoice.invoice_id))
            at = dt.datetime.combine(p.settlement_date, dt.time(0), OSLO).isoformat()
            self.store.add_event(db, str(m.invoice.invoice_id), "paid", at, detail, "settlement", p.amount_ore)
        for u in result.unmatched:
            self._insert_payment(db, u.payment, source, account, "unmatched", u.reason.value, u.detail,
                                 str(u.invoice.invoice_id) if u.invoice else None)
        return len(pre) + len(result.matched)

    def _apply_receipt(self, sha: str, name: str, r: Receipt) -> str:
        cfg = self.config
        notes: list[str] = []
        with self.store.transaction() as db:
            if self.store.file_seen(db, sha) is not None:
                return "processed"
            at = r.created_at.isoformat()
            if r.data_sender and r.data_sender != cfg.data_sender:
                notes.append(f"receipt for data sender {r.data_sender}, not us: ignored")
            elif r.kind == "claim_file":
                rows = db.execute("SELECT delivery_id FROM deliveries WHERE transmission_number = ?",
                                  (r.transmission_number or "",)).fetchall()
                only_duplicate = bool(r.errors) and all(e.get("code") in _DUPLICATE_CODES for e in r.errors)
                if not rows:
                    notes.append(f"no claim file with transmission number {r.transmission_number}")
                elif only_duplicate:  # our crash-safe re-drop of identical bytes: Nets has the first copy
                    notes.append(f"transmission {r.transmission_number} refused as a duplicate of a file Nets "
                                 "already has: no state change")
                for row in rows if not only_duplicate else []:
                    did = row["delivery_id"]
                    if did.startswith("cancel:"):
                        notes.append(f"cancellation {did}: {r.status}")
                        continue
                    mine = [c for c in r.claims if c.transaction_number == 1]
                    if r.status == "rejected" or not mine or mine[0].status != "accepted":
                        issues = list(mine[0].issues) if mine and mine[0].issues else list(r.errors)
                        text = Receipt(r.kind, r.created_at, errors=tuple(issues)).describe_errors() or r.status
                        self.store.add_event(db, did, "failed", at, f"Nets rejected claim file {r.file_name}: "
                                             f"{text}", "receipt")
                    else:
                        self.store.add_event(db, did, "delivered", at, f"Nets accepted claim file {r.file_name} "
                                             f"(transmission {r.transmission_number})", "receipt")
            else:  # not_debited
                for c in r.claims:
                    ref = f"{c.kid}:{c.amount_ore}:{c.due_date.isoformat()}"
                    rows = db.execute("SELECT delivery_id FROM deliveries WHERE channel_ref = ? ORDER BY created_at",
                                      (ref,)).fetchall()
                    if not rows:
                        notes.append(f"not debited {ref}: no such claim")
                        continue
                    self.store.add_event(db, rows[-1]["delivery_id"], "failed", at,
                                         f"Nets did not debit the claim due {fmt.date(c.due_date)}: "
                                         f"{c.reason or 'not debited'}", "not_debited")
            db.execute("INSERT INTO files (sha256, name, kind, status, detail, processed_at) VALUES (?, ?, ?, ?, ?, ?)",
                       (sha, name, "receipt", "processed", "; ".join([f"{r.kind} {r.status or ''}".strip()] + notes),
                        self._now().isoformat()))
        return "processed"

    def _write_unmatched_report(self) -> None:
        """`<state_dir>/unmatched-payments.json`: every unmatched payment, for people and the gateway."""
        items = [dataclasses.asdict(p) | {"amount": str(p.amount), "settlement_date": p.settlement_date.isoformat()}
                 for p in self.unmatched_payments()]
        path = Path(self.config.state_dir) / UNMATCHED_REPORT
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps({"generated_at": self._now().isoformat(), "unmatched_payments": items},
                                  ensure_ascii=False, indent=1))
        os.replace(tmp, path)

    def unmatched_payments(self) -> list[UnmatchedPaymentReport]:
        """Every settled payment that marked no invoice paid (never dropped), oldest first."""
        out = []
        for r in self.store.payments("unmatched"):
            data = json.loads(r["data"])
            out.append(UnmatchedPaymentReport(r["id"], r["kid"], r["amount_ore"],
                                              dt.date.fromisoformat(r["settlement_date"]), r["transaction_type"],
                                              r["reason"], r["detail"], r["source_file"], r["account"],
                                              data.get("payer_account")))
        return out

    # -- payments for invoices delivered on other channels -------------------------------------------
    #
    # The OCR file holds every KID payment to the agreement account, also for invoices the routing
    # engine delivered by eFaktura, Digipost, e-mail, SMS or print. A payment no claim explains is
    # offered once to the routing engine (`RoutingEngine.settle_once`), which looks for such a
    # document; the assignment is recorded here first (`assign_routed_payments`), the document is
    # marked paid, then the assignment is confirmed (`confirm_routed_payment`): a crash in between
    # re-applies an assignment, never a second payment.

    def routed_payments(self) -> list[RoutedPayment]:
        """Payments to offer to documents delivered on other channels, oldest first: unmatched to the
        agreement account with a KID (`unknown_kid`, `amount_mismatch`, `duplicate` of a paid claim, but
        not a transaction already read from an earlier file), not offered before; and assignments whose
        `paid` was not confirmed yet (`routed == "assigned"`)."""
        reasons = ",".join("?" * len(ROUTED_REASONS))
        with self.store.connect() as db:
            rows = db.execute(
                "SELECT p.* FROM payments p WHERE p.account = ? AND ((p.status = 'unmatched' AND p.routed IS NULL "
                f"AND p.reason IN ({reasons}) AND p.kid != '' AND p.amount_ore > 0 AND NOT EXISTS "
                "(SELECT 1 FROM payments q WHERE q.identity = p.identity AND q.id < p.id)) "
                "OR (p.status = 'matched' AND p.routed = 'assigned')) ORDER BY p.id",
                (self.config.account, *ROUTED_REASONS)).fetchall()
        return [RoutedPayment(r["id"], "".join(r["kid"].split()), r["amount_ore"],
                              dt.date.fromisoformat(r["settlement_date"]), r["transaction_type"], r["source_file"],
                              r["account"], r["reason"], r["detail"], r["delivery_id"], r["routed"]) for r in rows]

    def assign_routed_payments(self, offers: list[RoutedOffer]) -> dict[int, str]:
        """Record each offered payment as paying the first of its candidates (routed delivery ids, in
        order of preference) that no other payment pays; a payment left without one stays unmatched
        with the offer's reason and detail. Returns payment id → delivery id. A payment another
        worker decided meanwhile is left alone."""
        assigned: dict[int, str] = {}
        changed = False
        with self.store.transaction() as db:
            for offer in offers:
                row = db.execute("SELECT status, routed FROM payments WHERE id = ?", (offer.payment_id,)).fetchone()
                if row is None or row["status"] != "unmatched" or row["routed"] is not None:
                    continue
                for delivery_id, detail in offer.candidates:
                    if db.execute("SELECT 1 FROM payments WHERE delivery_id = ? AND status = 'matched' LIMIT 1",
                                  (delivery_id,)).fetchone():
                        continue  # paid by another payment (of this batch or an earlier one)
                    # the reason stays: why no claim matched, and what it is again if the document is gone
                    db.execute("UPDATE payments SET status = 'matched', detail = ?, delivery_id = ?, "
                               "routed = 'assigned' WHERE id = ?", (detail, delivery_id, offer.payment_id))
                    assigned[offer.payment_id] = delivery_id
                    break
                else:
                    db.execute("UPDATE payments SET routed = 'none', reason = COALESCE(?, reason), "
                               "detail = COALESCE(?, detail) WHERE id = ?",
                               (offer.reason, offer.detail, offer.payment_id))
                changed = True
        if changed:
            self._write_unmatched_report()
        return assigned

    def confirm_routed_payment(self, payment_id: int, paid: bool, detail: str | None = None) -> None:
        """The routing engine marked the assigned document paid (`paid`), or found it no longer open:
        then the payment goes back to the unmatched ones, with `detail`, and is not offered again."""
        with self.store.transaction() as db:
            if paid:
                db.execute("UPDATE payments SET routed = 'applied' WHERE id = ? AND routed = 'assigned'", (payment_id,))
                return
            db.execute("UPDATE payments SET status = 'unmatched', routed = 'none', "
                       "delivery_id = NULL, detail = COALESCE(?, detail) WHERE id = ? AND routed = 'assigned'",
                       (detail, payment_id))
        self._write_unmatched_report()

    def incoming_problems(self) -> list[dict[str, Any]]:
        """Incoming files we could not read (moved to `<archive>/rejected`), with the reasons."""
        return [{"name": r["name"], "kind": r["kind"], "detail": r["detail"], "processed_at": r["processed_at"],
                 "archived_as": r["archived_as"]} for r in self.store.files("rejected")]

    # -- track -------------------------------------------------------------------------------------

    async def track(self, channel_ref: str) -> list[TrackEvent]:
        await self.refresh()
        records = await asyncio.to_thread(self.store.deliveries_by_ref, channel_ref)
        if not records:
            raise ChannelError("unknown-reference", f"no AvtaleGiro claim {channel_ref}")
        latest = records[-1]
        rows = await asyncio.to_thread(self.store.events_for, [latest.delivery_id])
        events = [TrackEvent(r["state"], dt.datetime.fromisoformat(r["at"]), r["detail"],
                             _money(r["amount_ore"]) if r["amount_ore"] is not None else None) for r in rows]
        return sorted(events, key=lambda e: e.at)
