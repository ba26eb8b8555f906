"""A local Nets (Mastercard Payment Services) file channel for AvtaleGiro, for tests and demos.

It plays the other side of the two directories the adapter uses:

* picks up claim files from the *outgoing* directory (like the transfer agent + Nets: the file
  disappears from there and is kept in ``consumed_dir``), validates every byte with the strict
  parser in ``validator.py`` (every layout violation with record and position; the reject level the
  spec gives: transmission, assignment or transaction) against what it knows about the agreement
  (data sender, payee account, KID structures, transmission and assignment numbers already used in
  the last 12 months + 1 day, due-date window), and writes a receipt (``receipts.py``) into the
  *incoming* directory;
* keeps the mandate register and writes mandate files for ``add_mandate`` / ``delete_mandate`` /
  ``send_mandate_list`` (registration types 1, 2, 0);
* on ``settle(up_to)`` debits the accepted claims due by then, on the next banking day from the due
  date, for payers with an active mandate who did not stop the debit and stay within their monthly
  limit (MPS default NOK 10 000), writing an OCR settlement file (type 15) and a ``not_debited``
  receipt for the rest; ``add_payment`` writes any other OCR transaction (a manual giro, a partial
  payment, an unknown KID) so reconciliation can be exercised;
* cancellations (type 93) remove a still-unsettled claim with the same KID, amount and due date.

Every file it writes appears atomically (temporary dot-file, then a link), like a real transfer
agent should deliver. ``start()`` runs the pick-up in the background so statuses arrive later, as
they do for real.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .claims import write_claim_file_atomic
from .generators import (
    NotDebited,
    generate_mandate_file,
    generate_settlement_file,
    next_banking_day,
    settle_claims,
)
from .incoming import REG_ACTIVE, REG_DELETED, REG_NEW_OR_CHANGED, Mandate, Payment
from .layout import CRLF
from .receipts import (
    RECEIPT_SUFFIX,
    claim_file_receipt,
    dump_receipt,
    not_debited_receipt,
)
from .state import reuse_cutoff
from .validator import (
    ClaimFileReport,
    ParsedClaim,
    ValidatorOptions,
    validate_claim_file,
)

DEFAULT_MONTHLY_LIMIT_ORE = 1_000_000  # NOK 10 000 per calendar month (MPS' default mandate limit)


@dataclass(frozen=True)
class SimClaim:
    """A claim Nets accepted and has not settled yet."""

    claim: ParsedClaim
    file_name: str
    transmission_number: str
    assignment_number: str

    @property
    def kid(self) -> str:
        return self.claim.kid

    @property
    def amount_ore(self) -> int:
        return self.claim.amount_ore

    @property
    def due_date(self) -> dt.date:
        return self.claim.due_date


@dataclass
class ProcessedFile:
    name: str
    report: ClaimFileReport
    receipt_path: Path
    status: str


@dataclass
class NetsSimulator:
    outgoing_dir: str | os.PathLike[str]
    incoming_dir: str | os.PathLike[str]
    data_sender: str
    account: str
    agreement_id: str = "000000000"
    today: dt.date | Callable[[], dt.date] | None = None  # None: the real date
    kid_algorithm: Literal["mod10", "mod11"] | None = None
    kid_lengths: frozenset[int] | None = None
    line_ending: str | None = None  # None: accept CRLF or LF (consistently)
    output_line_ending: str = CRLF
    check_account_mod11: bool = True
    monthly_limit_ore: int | dict[str, int] | None = DEFAULT_MONTHLY_LIMIT_ORE
    consumed_dir: str | os.PathLike[str] | None = None  # default <outgoing>/../nets-consumed

    register: dict[str, Mandate] = field(default_factory=dict)
    stopped_kids: set[str] = field(default_factory=set)
    pending: list[SimClaim] = field(default_factory=list)
    settled: list[tuple[SimClaim, Payment]] = field(default_factory=list)
    not_debited: list[NotDebited[SimClaim]] = field(default_factory=list)
    cancelled: list[SimClaim] = field(default_factory=list)
    processed: list[ProcessedFile] = field(default_factory=list)
    transmission_numbers: dict[str, dt.date] = field(default_factory=dict)
    assignment_numbers: dict[str, dt.date] = field(default_factory=dict)
    written: list[Path] = field(default_factory=list)
    _serial: int = 0
    _ocr_serial: dict[dt.date, int] = field(default_factory=dict)
    _task: asyncio.Task | None = None

    def __post_init__(self) -> None:
        self.outgoing = Path(self.outgoing_dir)
        self.incoming = Path(self.incoming_dir)
        self.consumed = Path(self.consumed_dir) if self.consumed_dir else self.outgoing.parent / "nets-consumed"
        for d in (self.outgoing, self.incoming, self.consumed):
            d.mkdir(parents=True, exist_ok=True)

    # -- clock and numbering -------------------------------------------------------------------

    def current_date(self) -> dt.date:
        if self.today is None:
            return dt.date.today()
        return self.today() if callable(self.today) else self.today

    def _next_serial(self) -> str:
        self._serial += 1
        return f"{self._serial:07d}"

    def _write(self, name: str, data: bytes) -> Path:
        path = Path(write_claim_file_atomic(self.incoming, name, data))
        self.written.append(path)
        return path

    # -- mandates ----------------------------------------------------------------------------------

    def _mandate_file(self, mandates: list[Mandate]) -> Path:
        serial = self._next_serial()
        data = generate_mandate_file(mandates, data_recipient=self.data_sender, transmission_number=serial,
                                     assignment_number=serial, account=self.account, nets_date=self.current_date(),
                                     line_ending=self.output_line_ending)
        return self._write(f"{serial}-mandates.txt", data)

    def add_mandate(self, kid: str, *, notify: bool = True) -> Path:
        """The payer registered (or changed) AvtaleGiro for ``kid``: a registration-type-1 file."""
        m = Mandate(kid, True, notify, REG_NEW_OR_CHANGED)
        self.register[kid] = m
        return self._mandate_file([m])

    def delete_mandate(self, kid: str) -> Path:
        """The payer ended the mandate: a registration-type-2 file."""
        self.register.pop(kid, None)
        return self._mandate_file([Mandate(kid, False, False, REG_DELETED)])

    def send_mandate_list(self) -> Path:
        """The full list of active mandates (registration type 0): it replaces the payee's register."""
        return self._mandate_file([dataclasses.replace(m, registration_type=REG_ACTIVE)
                                   for _, m in sorted(self.register.items())])

    def stop_payment(self, kid: str) -> None:
        """The payer stopped the next debit for ``kid`` in the bank (the mandate stays)."""
        self.stopped_kids.add(kid)

    # -- claim files ---------------------------------------------------------------------------------

    def options(self) -> ValidatorOptions:
        cutoff = reuse_cutoff(self.current_date())
        return ValidatorOptions(
            expected_data_sender=self.data_sender, accounts=frozenset({self.account}),
            check_account_mod11=self.check_account_mod11, kid_algorithm=self.kid_algorithm,
            kid_lengths=self.kid_lengths, known_transmission_numbers=frozenset(self.transmission_numbers),
            known_assignment_numbers=frozenset(n for n, d in self.assignment_numbers.items() if d >= cutoff),
            today=self.current_date(), line_ending=self.line_ending)

    def process(self) -> list[ProcessedFile]:
        """Pick up every claim file waiting in the outgoing directory; one receipt per file."""
        out = []
        entries = sorted((p for p in self.outgoing.iterdir() if p.is_file() and not p.name.startswith(".")),
                         key=lambda p: (p.stat().st_mtime_ns, p.name))
        for path in entries:
            data = path.read_bytes()
            os.replace(path, self.consumed / path.name)  # fetched: gone from the outgoing directory
            out.append(self.receive(path.name, data))
        return out

    def receive(self, name: str, data: bytes) -> ProcessedFile:
        """Validate one claim file as Nets would and act on what it accepts."""
        today = self.current_date()
        report = validate_claim_file(data, self.options())
        if report.transmission_number and report.transmission_number.isdigit() \
                and report.transmission_number not in self.transmission_numbers:
            self.transmission_numbers[report.transmission_number] = today
        for asg in report.assignments:
            if asg.number.isdigit() and asg.number not in self.assignment_numbers:
                self.assignment_numbers[asg.number] = today
        for asg in report.assignments:
            if asg.kind != "claims":
                continue
            for c in asg.accepted if not report.transmission_rejected else []:
                self.pending.append(SimClaim(c, name, report.transmission_number or "", asg.number))
        for c in report.accepted_cancellations():
            match = next((p for p in self.pending if (p.kid, p.amount_ore, p.due_date) ==
                          (c.kid, c.amount_ore, c.due_date)), None)
            if match is not None:
                self.pending.remove(match)
                self.cancelled.append(match)
        receipt = claim_file_receipt(report, file_name=name,
                                     created_at=dt.datetime.now(dt.UTC).replace(microsecond=0))
        path = self._write(f"{self._next_serial()}-{name}{RECEIPT_SUFFIX}", dump_receipt(receipt))
        done = ProcessedFile(name, report, path, receipt["status"])
        self.processed.append(done)
        return done

    # -- settlement --------------------------------------------------------------------------------

    def settle(self, up_to: dt.date | None = None) -> list[Payment]:
        """Debit the pending claims due on or before ``up_to`` (default: all); write the OCR file.

        Claims that cannot be debited (no mandate, stopped, over the monthly limit) are reported in
        a ``not_debited`` receipt and leave the pending list.
        """
        due = [c for c in self.pending if up_to is None or c.due_date <= up_to]
        if not due:
            return []
        for c in due:
            self.pending.remove(c)
        payments, rejected = settle_claims(due, self.register, stopped_kids=self.stopped_kids,
                                           monthly_limit_ore=self.monthly_limit_ore)
        debited = [c for c in due if c not in {r.claim for r in rejected}]
        numbered = [self._number(p) for p in payments]
        self.settled.extend(zip(debited, numbered))
        if numbered:
            self._settlement_file(numbered)
        if rejected:
            self.not_debited.extend(rejected)
            receipt = not_debited_receipt(
                ({"kid": r.claim.kid, "amount_ore": r.claim.amount_ore, "due_date": r.claim.due_date.isoformat(),
                  "assignment_number": r.claim.assignment_number,
                  "transaction_number": r.claim.claim.transaction_number, "reason": r.reason} for r in rejected),
                data_sender=self.data_sender, created_at=dt.datetime.now(dt.UTC).replace(microsecond=0))
            self._write(f"{self._next_serial()}-not-debited{RECEIPT_SUFFIX}", dump_receipt(receipt))
        return numbered

    produce_settlement = settle

    def _number(self, p: Payment) -> Payment:
        """Serial numbers unique per settlement date across files (what identifies a transaction)."""
        n = self._ocr_serial.get(p.settlement_date, 0) + 1
        self._ocr_serial[p.settlement_date] = n
        return dataclasses.replace(p, serial_number=n % 100_000, archive_reference=self.agreement_id)

    def _settlement_file(self, payments: list[Payment]) -> Path:
        serial = self._next_serial()
        nets_date = max(p.settlement_date for p in payments)
        data = generate_settlement_file(payments, data_recipient=self.data_sender, transmission_number=serial,
                                        agreement_id=self.agreement_id, assignment_number=serial,
                                        account=self.account, nets_date=nets_date,
                                        line_ending=self.output_line_ending)
        return self._write(f"{serial}-ocr.txt", data)

    def add_payment(self, kid: str, amount_ore: int, *, settlement_date: dt.date | None = None,
                    transaction_type: int = 10, payer_account: str = "00000000000", text: str | None = None) -> Path:
        """Any other OCR transaction (manual giro with a KID, partial payment, unknown KID...) as its own file."""
        date = settlement_date or next_banking_day(self.current_date())
        p = self._number(Payment(kid=kid, amount_ore=amount_ore, settlement_date=date,
                                 transaction_type=transaction_type, bank_date=date, payer_account=payer_account,
                                 text=text))
        return self._settlement_file([p])

    # -- background pick-up ------------------------------------------------------------------------

    async def start(self, interval: float = 0.05) -> None:
        """Pick up claim files in the background every ``interval`` seconds (receipts arrive later)."""
        async def loop() -> None:
            while True:
                await asyncio.to_thread(self.process)
                await asyncio.sleep(interval)

        if self._task is None:
            self._task = asyncio.create_task(loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def __aenter__(self) -> NetsSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
