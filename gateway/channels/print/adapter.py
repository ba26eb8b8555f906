"""Print channel adapter: a print-ready PDF (A4, embedded fonts, address in the window) plus a
manifest dropped into the print provider's directory; status files from the provider are the
tracking feed."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

from gateway.channels.base import (
    ChannelAdapter,
    ChannelError,
    DeliveryRequest,
    PostalAddress,
    Reachability,
    Recipient,
    Rendered,
    SubmitResult,
    TrackEvent,
)
from gateway.channels.notice import PaymentNotice
from gateway.channels.print.dropdir import (
    address_problems,
    atomic_write,
    build_manifest,
    file_stem,
    manifest_bytes,
    read_statuses,
)
from gateway.channels.print.preflight import ExpectedAddress, PreflightRules, Window, preflight_pdf
from gateway.channels.reachcache import ReachabilityCache
from gateway.invoice import Address, InvoiceFacts

_IGNORED_KEYS = {"cost", "cost_nok", "enabled", "channel", "name"}


@dataclass(frozen=True)
class PrintConfig:
    outgoing_dir: str  # the provider's drop directory (we write)
    incoming_dir: str  # where the provider leaves status/receipt files (we read)
    ledger_dir: str | None = None  # our record of hand-overs; default <outgoing_dir>/.sendgw-ledger
    provider: str = "print-house"  # label for the decision log
    colour: bool = False
    duplex: bool = True
    postage: str = "B"  # "A" (prioritert) or "B" (økonomi)
    envelope: str = "C5"
    sender_name: str | None = None  # default: the seller's name
    return_address: tuple[str, ...] = ()  # lines of the return address, if the provider prints one
    pdf_source: str = "render"  # "render": print variant with the postal address; "request": use as given
    max_pages: int = 12
    barcode_margin_mm: float = 15.0
    window_left_mm: float = 20.0
    window_top_mm: float = 45.0
    window_width_mm: float = 85.0
    window_height_mm: float = 45.0
    fsync: bool = True
    reachability_ttl: float = 3600.0
    reachability_cache_size: int = 10_000

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PrintConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known - _IGNORED_KEYS
        if unknown:
            raise ValueError(f"unknown print channel settings: {', '.join(sorted(unknown))}")
        values = {k: v for k, v in d.items() if k in known}
        for key in ("outgoing_dir", "incoming_dir"):
            if not values.get(key):
                raise ValueError(f"print channel setting {key!r} is required")
        if "return_address" in values:
            raw = values["return_address"]
            values["return_address"] = (raw,) if isinstance(raw, str) else tuple(raw)
        cfg = cls(**values)
        if cfg.postage not in ("A", "B"):
            raise ValueError("postage must be 'A' or 'B'")
        if cfg.pdf_source not in ("render", "request"):
            raise ValueError("pdf_source must be 'render' or 'request'")
        return dataclasses.replace(cfg, outgoing_dir=str(cfg.outgoing_dir), incoming_dir=str(cfg.incoming_dir))

    @property
    def rules(self) -> PreflightRules:
        return PreflightRules(max_pages=self.max_pages, barcode_margin_mm=self.barcode_margin_mm,
                              window=Window(self.window_left_mm, self.window_top_mm, self.window_width_mm,
                                            self.window_height_mm))


@dataclass(frozen=True)
class PrintJob:
    stem: str
    pdf: bytes
    manifest: dict[str, Any]


def with_postal_address(facts: InvoiceFacts, name: str, address: PostalAddress) -> InvoiceFacts:
    """The invoice facts with the buyer's name/address replaced by the address we post to."""
    lines = [line for line in address.lines if line and line.strip()]
    postal = Address(
        street=lines[0] if lines else None,
        additional_street=lines[1] if len(lines) > 1 else None,
        address_line=", ".join(lines[2:]) or None,
        postal_zone=address.postcode, city=address.city, country=address.country.upper(),
    )
    buyer = dataclasses.replace(facts.buyer, name=name, address=postal)
    return dataclasses.replace(facts, buyer=buyer)


def render_print_pdf(facts: InvoiceFacts) -> bytes:
    """Print variant of our invoice PDF for these facts (no embedded UBL: a print house prints pages)."""
    from gateway.render.pdf import _renderer  # the renderer takes facts; render_pdf() only takes XML

    return _renderer().render(facts, None, True)


class PrintAdapter(ChannelAdapter):
    name: ClassVar[str] = "print"

    def __init__(self, config: PrintConfig, session: Any = None):
        self.config = config
        self.outgoing = Path(config.outgoing_dir)
        self.incoming = Path(config.incoming_dir)
        self.ledger = Path(config.ledger_dir) if config.ledger_dir else self.outgoing / ".sendgw-ledger"
        self._cache = ReachabilityCache(config.reachability_ttl, config.reachability_cache_size)

    async def reachability(self, recipient: Recipient) -> Reachability:
        key = (recipient.name, recipient.address)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        problems = address_problems(recipient.name, recipient.address)
        if problems:
            reason = "no-address" if recipient.address is None else "incomplete-address"
            return self._cache.put(key, Reachability.no(reason, "; ".join(problems)))
        a = recipient.address
        return self._cache.put(key, Reachability.ok(f"postal address {a.postcode} {a.city} {a.country}",
                                                    " / ".join([*a.lines, f"{a.postcode} {a.city}"])))

    def render(self, request: DeliveryRequest) -> Rendered:
        recipient = request.recipient
        problems = address_problems(recipient.name, recipient.address)
        if problems:
            raise ChannelError("incomplete-address", "; ".join(problems))
        assert recipient.address is not None and recipient.name
        if self.config.pdf_source == "render":
            pdf = render_print_pdf(with_postal_address(request.invoice, recipient.name, recipient.address))
        else:
            pdf = request.pdf
        expected = ExpectedAddress(recipient.name, recipient.address.postcode, recipient.address.city)
        check = preflight_pdf(pdf, self.config.rules, expected)
        if not check.ok:
            raise ChannelError("preflight-failed", "PDF not printable: " + "; ".join(check.problems))
        notice = PaymentNotice.from_facts(request.invoice)
        stem = file_stem(request.delivery_id)
        manifest = build_manifest(
            delivery_id=request.delivery_id, stem=stem, pdf=pdf, pages=check.pages,
            recipient_name=recipient.name, address=recipient.address,
            sender={"name": self.config.sender_name or notice.seller, "orgnr": request.issuer_orgnr,
                    "return_address": list(self.config.return_address)},
            options={"colour": self.config.colour, "duplex": self.config.duplex, "postage": self.config.postage,
                     "envelope": self.config.envelope},
            invoice={"kind": request.invoice.kind, "number": notice.number, "amount": str(request.invoice.payable_amount),
                     "currency": request.invoice.currency, "kid": notice.kid,
                     "due_date": request.invoice.due_date.isoformat() if request.invoice.due_date else None},
        )
        return Rendered(request.delivery_id, self.name, PrintJob(stem, pdf, manifest), {
            "provider": self.config.provider, "pages": check.pages, "pdf_version": check.version,
            "document": f"{stem}.pdf", "manifest": f"{stem}.json", "postage": self.config.postage,
            "address": manifest["recipient"],
        })

    def _hand_over(self, job: PrintJob) -> tuple[bool, str]:
        """Write PDF then manifest (atomically). Returns (written now?, detail)."""
        self.outgoing.mkdir(parents=True, exist_ok=True)
        self.ledger.mkdir(parents=True, exist_ok=True)
        record = self.ledger / f"{job.stem}.json"
        manifest_path = self.outgoing / f"{job.stem}.json"
        if record.exists():
            return False, "already handed over (ledger)"
        if manifest_path.exists():  # handed over, ledger write lost: record it now
            atomic_write(record, manifest_path.read_bytes(), fsync=self.config.fsync)
            return False, "already handed over (manifest present)"
        data = manifest_bytes(job.manifest)
        atomic_write(self.outgoing / f"{job.stem}.pdf", job.pdf, fsync=self.config.fsync)
        atomic_write(manifest_path, data, fsync=self.config.fsync)
        atomic_write(record, data, fsync=self.config.fsync)
        return True, f"dropped {job.stem}.pdf + {job.stem}.json for {self.config.provider}"

    async def submit(self, rendered: Rendered) -> SubmitResult:
        job: PrintJob = rendered.payload
        try:
            _, detail = await asyncio.to_thread(self._hand_over, job)
        except OSError as exc:  # full disk, unmounted share, permissions: retry later
            raise ChannelError("drop-failed", f"cannot write to the print drop: {exc}", transient=True) from exc
        return SubmitResult("accepted", rendered.delivery_id, detail)

    async def track(self, channel_ref: str) -> list[TrackEvent]:
        statuses = await asyncio.to_thread(read_statuses, self.incoming, file_stem(channel_ref), channel_ref)
        return [s.event for s in statuses]

    def handed_over(self, delivery_id: str) -> dict[str, Any] | None:
        """The manifest we handed over for a delivery, if any (evidence for the decision log)."""
        record = self.ledger / f"{file_stem(delivery_id)}.json"
        return json.loads(record.read_bytes()) if record.exists() else None
