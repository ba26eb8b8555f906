"""Simulator side of AvtaleGiro: a strict parser for claim files.

Plays Nets receiving our "betalingskrav" file: every layout violation is
reported with a machine-readable code, the 1-based record number and column,
and the level Nets rejects at (whole transmission, one assignment, or one
transaction), so the local simulator never accepts what Nets would refuse.
Also re-exports the mandate/settlement file generators used by the simulator.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.kid import KidError, validate_kid
from gateway.norwegian_ids import NorwegianIdError, validate_kontonr

from . import records as R
from .generators import generate_mandate_file, generate_settlement_file  # noqa: F401 (re-export)
from .layout import (
    NETS_ID,
    Layout,
    LayoutIssue,
    LayoutRejected,
    RawRecord,
    Scope,
    check_fields,
    split_records,
)

MAX_SPEC_LINE = 42


@dataclass(frozen=True)
class ValidatorOptions:
    """What the simulated Nets knows about the agreement, and strictness knobs."""

    expected_data_sender: str | None = None
    accounts: frozenset[str] | None = None          # payee accounts on the agreement
    check_account_mod11: bool = False               # True: bad account check digit is an error, not a warning
    kid_algorithm: Literal["mod10", "mod11"] | None = None
    kid_min_length: int = 4
    kid_max_length: int = 25
    kid_lengths: frozenset[int] | None = None       # registered KID structures (max 3)
    known_transmission_numbers: frozenset[str] = frozenset()
    known_assignment_numbers: frozenset[str] = frozenset()  # last 12 months + 1 day
    today: dt.date | None = None                    # enables due-date window checks
    max_months_ahead: int = 12
    line_ending: str | None = None                  # None: CRLF or LF, consistently
    reject_utf8: bool = True
    consecutive_transaction_numbers: bool = False   # spec: ascending only


@dataclass(frozen=True)
class ParsedClaim:
    """A claim or cancellation as the simulated Nets read it."""

    record: int
    transaction_number: int
    transaction_type: str
    kid: str
    amount_ore: int
    due_date: dt.date
    payer_name: str = ""
    external_ref: str = ""
    specification: tuple[str, ...] = ()

    @property
    def notify_payer(self) -> bool:
        return self.transaction_type == R.TT_BANK_NOTIFIES

    @property
    def is_cancellation(self) -> bool:
        return self.transaction_type == R.TT_CANCELLATION


@dataclass
class ParsedAssignment:
    record: int
    kind: Literal["claims", "cancellations"]
    number: str
    account: str
    claims: list[ParsedClaim] = field(default_factory=list)
    rejected: bool = False
    rejected_transactions: set[int] = field(default_factory=set)

    @property
    def accepted(self) -> list[ParsedClaim]:
        if self.rejected:
            return []
        return [c for c in self.claims if c.transaction_number not in self.rejected_transactions]


@dataclass
class ClaimFileReport:
    errors: list[LayoutIssue] = field(default_factory=list)
    warnings: list[LayoutIssue] = field(default_factory=list)
    data_sender: str | None = None
    transmission_number: str | None = None
    line_ending: str | None = None
    assignments: list[ParsedAssignment] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def transmission_rejected(self) -> bool:
        return any(e.scope is Scope.TRANSMISSION for e in self.errors)

    def accepted_claims(self) -> list[ParsedClaim]:
        """What Nets would process: nothing if the transmission is rejected."""
        if self.transmission_rejected:
            return []
        return [c for a in self.assignments if a.kind == "claims" for c in a.accepted]

    def accepted_cancellations(self) -> list[ParsedClaim]:
        if self.transmission_rejected:
            return []
        return [c for a in self.assignments if a.kind == "cancellations" for c in a.accepted]


# --- classification -----------------------------------------------------------

_RECORD_TYPES = ("10", "20", "30", "31", "49", "88", "89")


def _classify(rec: RawRecord) -> tuple[str, str] | LayoutIssue:
    """(kind, type code) from columns 1-8, or the issue at the first bad column."""
    t = rec.text
    n = rec.number
    if len(t) < 8:
        return LayoutIssue("record.unreadable", "record too short to identify", n, len(t) + 1)
    if t[0:2] != "NY":
        pos = 1 if t[0] != "N" else 2
        return LayoutIssue("record.format_code", f"format code must be 'NY', got {t[0:2]!r}", n, pos)
    svc, typ, rt = t[2:4], t[4:6], t[6:8]
    if rt not in _RECORD_TYPES:
        return LayoutIssue("record.record_type", f"record type {rt!r} is not used in claim files", n, 7)
    if rt in ("10", "89"):
        if svc != "00":
            return LayoutIssue("record.service_code", f"service code must be '00', got {svc!r}", n, 3)
        if typ != "00":
            return LayoutIssue("record.type_code", f"transmission type must be '00', got {typ!r}", n, 5)
        return ("TS" if rt == "10" else "TE", typ)
    if svc != R.SERVICE_AVTALEGIRO:
        return LayoutIssue("record.service_code", f"service code must be '21' (AvtaleGiro), got {svc!r}", n, 3)
    if rt in ("20", "88"):
        if typ not in (R.AT_CLAIMS, R.AT_CANCELLATIONS):
            return LayoutIssue("record.assignment_type",
                               f"assignment type must be '00' or '36', got {typ!r}", n, 5)
        return ("AS" if rt == "20" else "AE", typ)
    if rt in ("30", "31"):
        if typ not in (R.TT_PAYEE_NOTIFIES, R.TT_BANK_NOTIFIES, R.TT_CANCELLATION):
            return LayoutIssue("record.transaction_type",
                               f"transaction type must be '02', '21' or '93', got {typ!r}", n, 5)
        return ("I1" if rt == "30" else "I2", typ)
    if typ != R.TT_BANK_NOTIFIES:
        return LayoutIssue("spec.transaction_type",
                           f"specification records only with transaction type '21', got {typ!r}", n, 5)
    return ("SPEC", typ)


# --- the parser ---------------------------------------------------------------------

@dataclass
class _Tx:
    record: int
    number: int
    type: str
    values: dict[str, Any]
    item2: dict[str, Any] | None = None
    spec: dict[tuple[int, int], str] = field(default_factory=dict)


@dataclass
class _Asg:
    parsed: ParsedAssignment
    type: str
    records: int = 1
    amount: int = 0
    dates: list[dt.date] = field(default_factory=list)
    tx_numbers: list[int] = field(default_factory=list)
    current: _Tx | None = None


class _Parser:
    def __init__(self, opts: ValidatorOptions):
        self.o = opts
        self.report = ClaimFileReport()
        self.asg: _Asg | None = None
        self.assignment_numbers: set[str] = set()
        self.total_tx = 0
        self.total_amount = 0
        self.all_dates: list[dt.date] = []
        self.record_count = 0

    # issue helpers
    def err(self, code: str, msg: str, rec: int | None, pos: int | None, scope: Scope, name: str | None = None) -> None:
        self.report.errors.append(LayoutIssue(code, msg, rec, pos, scope, name))
        self._mark(scope)

    def _mark(self, scope: Scope) -> None:
        if self.asg is None:
            return
        if scope is Scope.ASSIGNMENT:
            self.asg.parsed.rejected = True
        elif scope is Scope.TRANSACTION and self.asg.current is not None:
            self.asg.parsed.rejected_transactions.add(self.asg.current.number)

    def fields(self, layout: Layout, rec: RawRecord, scope: Scope) -> dict[str, Any] | None:
        values, issues = check_fields(layout, rec, scope)
        for issue in issues:
            self.report.errors.append(issue)
            self._mark(scope)
        return values

    # records
    def transmission_start(self, rec: RawRecord) -> None:
        v = self.fields(R.CLAIM_TRANSMISSION_START, rec, Scope.TRANSMISSION)
        if v is None:
            return
        sender = rec.text[8:16]
        number = rec.text[16:23]
        self.report.data_sender, self.report.transmission_number = sender, number
        if self.o.expected_data_sender and sender != self.o.expected_data_sender:
            self.err("transmission.data_sender", f"data sender {sender} is not the agreed "
                     f"kundeenhet-ID {self.o.expected_data_sender}", rec.number, 9, Scope.TRANSMISSION)
        if "transmission_number" in v and number in self.o.known_transmission_numbers:
            self.err("transmission.duplicate_number", f"transmission number {number} was already used",
                     rec.number, 17, Scope.TRANSMISSION)

    def assignment_start(self, rec: RawRecord, typ: str) -> None:
        kind: Literal["claims", "cancellations"] = "claims" if typ == R.AT_CLAIMS else "cancellations"
        parsed = ParsedAssignment(rec.number, kind, rec.text[17:24], rec.text[24:35])
        self.report.assignments.append(parsed)
        self.asg = _Asg(parsed, typ)
        v = self.fields(R.claim_assignment_start(typ), rec, Scope.ASSIGNMENT)
        if v is None:
            return
        if "assignment_number" in v:
            number = parsed.number
            if number in self.assignment_numbers or number in self.o.known_assignment_numbers:
                self.err("assignment.duplicate_number", f"assignment number {number} is not unique "
                         "(12 months + 1 day)", rec.number, 18, Scope.ASSIGNMENT)
            self.assignment_numbers.add(number)
        if "assignment_account" in v:
            try:
                validate_kontonr(parsed.account)
            except NorwegianIdError:
                message = f"assignment account {parsed.account} fails the kontonummer MOD11 check"
                if self.o.check_account_mod11:
                    self.err("assignment.account", message, rec.number, 25, Scope.ASSIGNMENT)
                else:  # sample files use made-up accounts; the agreement check below is what Nets applies
                    self.report.warnings.append(LayoutIssue("assignment.account_check_digit", message,
                                                            rec.number, 25, Scope.ASSIGNMENT))
            if self.o.accounts is not None and parsed.account not in self.o.accounts:
                self.err("assignment.account", f"account {parsed.account} has no AvtaleGiro agreement",
                         rec.number, 25, Scope.ASSIGNMENT)

    def item1(self, rec: RawRecord, typ: str) -> None:
        a = self.asg
        assert a is not None
        self._close_transaction(rec)
        allowed = (R.TT_CANCELLATION,) if a.type == R.AT_CANCELLATIONS else (R.TT_PAYEE_NOTIFIES, R.TT_BANK_NOTIFIES)
        number_text = rec.text[8:15]
        number = int(number_text) if number_text.isdigit() else -1
        a.current = _Tx(rec.number, number, typ, {})
        a.records += 1
        a.tx_numbers.append(number)
        self.total_tx += 1
        if typ not in allowed:
            self.err("transaction.type", f"transaction type {typ} not allowed in a "
                     f"{a.parsed.kind} assignment", rec.number, 5, Scope.TRANSACTION)
        v = self.fields(R.claim_item1(typ), rec, Scope.TRANSACTION)
        assert v is not None
        a.current.values = v
        if number >= 0:
            previous = a.tx_numbers[:-1]
            if number == 0:
                self.err("transaction.number", "transaction number must be greater than 0",
                         rec.number, 9, Scope.TRANSACTION)
            elif previous and previous[-1] >= 0 and number <= previous[-1]:
                self.err("transaction.sequence", f"transaction number {number} does not ascend "
                         f"(previous {previous[-1]})", rec.number, 9, Scope.TRANSACTION)
            elif self.o.consecutive_transaction_numbers and number != (previous[-1] + 1 if previous else 1):
                self.err("transaction.sequence", f"transaction number {number} is not consecutive",
                         rec.number, 9, Scope.TRANSACTION)
        if "amount" in v:
            a.amount += v["amount"]
            if v["amount"] <= 0:
                self.err("transaction.amount", "amount must be greater than 0", rec.number, 33, Scope.TRANSACTION)
        if "due_date" in v:
            self._check_due_date(v["due_date"], rec)
            a.dates.append(v["due_date"])
        if "kid" in v:
            self._check_kid(v["kid"], rec)

    def _check_due_date(self, due: dt.date, rec: RawRecord) -> None:
        a = self.asg
        today = self.o.today
        if today is None or (a is not None and a.type == R.AT_CANCELLATIONS):
            return
        if due < today:
            self.err("transaction.due_date", f"due date {due} has passed", rec.number, 16, Scope.TRANSACTION)
        elif due > _add_months(today, self.o.max_months_ahead):
            self.err("transaction.due_date", f"due date {due} is more than {self.o.max_months_ahead} "
                     "months ahead", rec.number, 16, Scope.TRANSACTION)

    def _check_kid(self, kid: str, rec: RawRecord) -> None:
        if not kid:
            self.err("kid.missing", "KID is required", rec.number, 74, Scope.TRANSACTION, "kid")
            return
        pos = 50 + 25 - len(kid)
        try:
            validate_kid(kid, self.o.kid_algorithm, min_length=self.o.kid_min_length,
                         max_length=self.o.kid_max_length, allow_dash=False)
        except KidError as exc:
            self.err(exc.code, f"KID {kid}: {exc.message}", rec.number, pos, Scope.TRANSACTION, "kid")
            return
        if self.o.kid_lengths is not None and len(kid) not in self.o.kid_lengths:
            self.err("kid.structure", f"KID length {len(kid)} matches no registered KID structure",
                     rec.number, pos, Scope.TRANSACTION, "kid")

    def item2(self, rec: RawRecord, typ: str) -> None:
        a = self.asg
        assert a is not None
        a.records += 1
        tx = a.current
        if tx is None or tx.item2 is not None or tx.spec:
            self.err("structure.item2_without_item1", "amount item 2 must directly follow amount item 1",
                     rec.number, 7, Scope.ASSIGNMENT if tx is None else Scope.TRANSACTION)
            self.fields(R.claim_item2(typ), rec, Scope.TRANSACTION)
            return
        self._same_transaction(tx, rec, typ)
        tx.item2 = self.fields(R.claim_item2(typ), rec, Scope.TRANSACTION)

    def spec(self, rec: RawRecord) -> None:
        a = self.asg
        assert a is not None
        a.records += 1
        tx = a.current
        if tx is None or tx.item2 is None:
            self.err("structure.spec_position", "specification records must follow amount item 2 of "
                     "their claim", rec.number, 7, Scope.ASSIGNMENT if tx is None else Scope.TRANSACTION)
            self.fields(R.CLAIM_SPECIFICATION, rec, Scope.TRANSACTION)
            return
        if a.type != R.AT_CLAIMS or tx.type != R.TT_BANK_NOTIFIES:
            self.err("spec.without_notification", "specification records are only allowed with "
                     "transaction type 21", rec.number, 5, Scope.TRANSACTION)
        self._same_transaction(tx, rec, "21")
        v = self.fields(R.CLAIM_SPECIFICATION, rec, Scope.TRANSACTION)
        assert v is not None
        line, column = v.get("line_number"), v.get("column_number")
        if line is not None and not 1 <= line <= MAX_SPEC_LINE:
            self.err("spec.line_number", f"line number {line} outside 001-042", rec.number, 17, Scope.TRANSACTION)
            line = None
        if column is not None and column not in (1, 2):
            self.err("spec.column", f"column {column} must be 1 or 2", rec.number, 20, Scope.TRANSACTION)
            column = None
        if line is not None and column is not None:
            if (line, column) in tx.spec:
                self.err("spec.duplicate", f"line {line} column {column} sent twice", rec.number, 17,
                         Scope.TRANSACTION)
            tx.spec[(line, column)] = rec.text[20:60]
        if not rec.text[20:60].strip():
            self.report.warnings.append(LayoutIssue("spec.empty", "empty specification record "
                                                    "(Nets does not pass it on; must not be sent)",
                                                    rec.number, 21, Scope.TRANSACTION, "text"))

    def _same_transaction(self, tx: _Tx, rec: RawRecord, typ: str) -> None:
        number_text = rec.text[8:15]
        if number_text.isdigit() and int(number_text) != tx.number:
            self.err("transaction.number_mismatch", f"transaction number {number_text} differs from "
                     f"amount item 1 ({tx.number:07d})", rec.number, 9, Scope.TRANSACTION)
        if typ != tx.type:
            self.err("transaction.type_mismatch", f"transaction type {typ} differs from amount item 1 "
                     f"({tx.type})", rec.number, 5, Scope.TRANSACTION)

    def _close_transaction(self, rec: RawRecord) -> None:
        a = self.asg
        if a is None or a.current is None:
            return
        tx = a.current
        if tx.item2 is None and a.type == R.AT_CLAIMS:
            self.err("structure.missing_item2", f"transaction {tx.number:07d} has no amount item 2",
                     rec.number, 7, Scope.TRANSACTION)
        v = tx.values
        if all(k in v for k in ("amount", "due_date", "kid")):
            item2 = tx.item2 or {}
            lines = []
            if tx.spec:
                last = max(line for line, _ in tx.spec)
                for line in range(1, last + 1):
                    text = tx.spec.get((line, 1), " " * 40) + tx.spec.get((line, 2), "")
                    lines.append(text.rstrip())
            a.parsed.claims.append(ParsedClaim(
                tx.record, tx.number, tx.type, v["kid"], v["amount"], v["due_date"],
                item2.get("payer_name", ""), item2.get("external_reference", ""), tuple(lines)))
        else:
            a.parsed.rejected_transactions.add(tx.number)
        a.current = None

    def assignment_end(self, rec: RawRecord, typ: str) -> None:
        a = self.asg
        assert a is not None
        self._close_transaction(rec)
        a.records += 1
        if typ != a.type:
            self.err("assignment.type_mismatch", f"assignment end type {typ} differs from start ({a.type})",
                     rec.number, 5, Scope.ASSIGNMENT)
        v = self.fields(R.claim_assignment_end(typ), rec, Scope.ASSIGNMENT)
        assert v is not None
        n_tx = len(a.tx_numbers)
        if not a.tx_numbers:
            self.report.warnings.append(LayoutIssue("assignment.empty", "assignment has no transactions",
                                                    rec.number, 1, Scope.ASSIGNMENT))
        expected = {
            "number_of_transactions": (n_tx, 9), "number_of_records": (a.records, 17),
            "sum_amount": (a.amount, 25),
            "earliest_due_date": (min(a.dates, default=None), 42),
            "latest_due_date": (max(a.dates, default=None), 48),
        }
        for name, (want, pos) in expected.items():
            if name in v and v[name] != want:
                self.err(f"assignment.{name}", f"{name} is {v[name]}, computed {want}", rec.number, pos,
                         Scope.ASSIGNMENT, name)
        self.total_amount += a.amount
        self.all_dates.extend(a.dates)
        self.asg = None

    def transmission_end(self, rec: RawRecord, record_count: int) -> None:
        v = self.fields(R.CLAIM_TRANSMISSION_END, rec, Scope.TRANSMISSION)
        assert v is not None
        expected = {
            "number_of_transactions": (self.total_tx, 9), "number_of_records": (record_count, 17),
            "sum_amount": (self.total_amount, 25),
            "earliest_due_date": (min(self.all_dates, default=None), 42),
        }
        for name, (want, pos) in expected.items():
            if name in v and v[name] != want:
                self.err(f"transmission.{name}", f"{name} is {v[name]}, computed {want}", rec.number, pos,
                         Scope.TRANSMISSION, name)

    def _abandon_assignment(self, rec_no: int) -> None:
        a = self.asg
        if a is None:
            return
        self._close_transaction(RawRecord(rec_no, ""))
        self.err("structure.missing_assignment_end", f"assignment {a.parsed.number} has no end record",
                 rec_no, 1, Scope.ASSIGNMENT)
        self.total_amount += a.amount
        self.all_dates.extend(a.dates)
        self.asg = None

    def run(self, data: bytes | str) -> ClaimFileReport:
        split = split_records(data, reject_utf8=self.o.reject_utf8, require_line_ending=self.o.line_ending)
        self.report.errors.extend(split.issues)
        self.report.line_ending = split.line_ending
        recs = [r for r in split.records if r.text.strip()]  # blank lines already reported
        if not recs:
            if not split.issues:
                self.err("file.empty", "file contains no records", 1, 1, Scope.TRANSMISSION)
            return self.report
        seen_start = seen_end = False
        start_index = None
        for i, rec in enumerate(recs):
            kind = _classify(rec)
            if isinstance(kind, LayoutIssue):
                scope = Scope.TRANSACTION if self.asg and self.asg.current else (
                    Scope.ASSIGNMENT if self.asg else Scope.TRANSMISSION)
                self.err(kind.code, kind.message, kind.record, kind.position, scope)
                if self.asg is not None:
                    self.asg.records += 1
                continue
            k, typ = kind
            if seen_end:
                self.err("structure.after_transmission_end", "record after the transmission end record",
                         rec.number, 1, Scope.TRANSMISSION)
                continue
            if i == 0 and k != "TS":
                self.err("structure.missing_transmission_start", "file must start with a transmission "
                         "start record (NY000010)", rec.number, 1, Scope.TRANSMISSION)
                seen_start = True  # report once
                start_index = 0
            if k == "TS":
                if seen_start:
                    self.err("structure.duplicate_transmission_start", "second transmission start record",
                             rec.number, 1, Scope.TRANSMISSION)
                    continue
                seen_start = True
                start_index = i
                if rec.ok:
                    self.transmission_start(rec)
            elif k == "AS":
                if self.asg is not None:
                    self._abandon_assignment(rec.number)
                self.assignment_start(rec, typ) if rec.ok else self._start_unreadable(rec, typ)
            elif k == "TE":
                if self.asg is not None:
                    self._abandon_assignment(rec.number)
                seen_end = True
                if rec.ok:
                    self.transmission_end(rec, i - (start_index or 0) + 1)
            elif self.asg is None:
                # a missing assignment start loses that assignment (spec), not the transmission;
                # its records still count in the transmission totals
                self.err("structure.outside_assignment", "transaction or assignment end record outside an "
                         "assignment", rec.number, 7, Scope.ASSIGNMENT)
                if k == "I1" and rec.ok:
                    self.total_tx += 1
                    amount, due = rec.text[32:49], rec.text[15:21]
                    if amount.isdigit():
                        self.total_amount += int(amount)
                    try:
                        self.all_dates.append(dt.datetime.strptime(due, "%d%m%y").date())
                    except ValueError:
                        pass
            elif not rec.ok:
                self._unreadable_in_assignment(rec, k, typ)
            elif k == "I1":
                self.item1(rec, typ)
            elif k == "I2":
                self.item2(rec, typ)
            elif k == "SPEC":
                self.spec(rec)
            elif k == "AE":
                self.assignment_end(rec, typ)
        if self.asg is not None:
            self._abandon_assignment(recs[-1].number + 1)
        if not seen_end:
            self.err("structure.missing_transmission_end", "file must end with a transmission end record "
                     "(NY000089)", recs[-1].number + 1, 1, Scope.TRANSMISSION)
        return self.report

    def _start_unreadable(self, rec: RawRecord, typ: str) -> None:
        kind: Literal["claims", "cancellations"] = "claims" if typ == R.AT_CLAIMS else "cancellations"
        parsed = ParsedAssignment(rec.number, kind, "", "", rejected=True)
        self.report.assignments.append(parsed)
        self.asg = _Asg(parsed, typ)

    def _unreadable_in_assignment(self, rec: RawRecord, k: str, typ: str) -> None:
        """Keep counting records of a line whose fields cannot be read (already reported)."""
        a = self.asg
        assert a is not None
        if k == "I1":
            self._close_transaction(rec)
            text = rec.text[8:15]
            number = int(text) if text.isdigit() else -1
            a.current = _Tx(rec.number, number, typ, {})
            a.tx_numbers.append(number)
            self.total_tx += 1
        elif k == "I2" and a.current is not None and a.current.item2 is None:
            a.current.item2 = {}
        if k == "AE":
            self._close_transaction(rec)
            a.records += 1
            a.parsed.rejected = True
            self.total_amount += a.amount
            self.all_dates.extend(a.dates)
            self.asg = None
            return
        a.records += 1
        self._mark(Scope.TRANSACTION)


def _add_months(d: dt.date, months: int) -> dt.date:
    y, m = divmod(d.month - 1 + months, 12)
    for day in (d.day, 30, 29, 28):
        try:
            return dt.date(d.year + y, m + 1, day)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def validate_claim_file(data: bytes | str, options: ValidatorOptions | None = None) -> ClaimFileReport:
    """Check a claim file; never raises for file content (see ``report.errors``)."""
    return _Parser(options or ValidatorOptions()).run(data)


def parse_claim_file(data: bytes | str, options: ValidatorOptions | None = None) -> ClaimFileReport:
    """Strict parse: raise :class:`LayoutRejected` listing every violation."""
    report = validate_claim_file(data, options)
    if report.errors:
        raise LayoutRejected.from_issues(report.errors)
    return report


__all__ = [
    "NETS_ID", "ClaimFileReport", "ParsedAssignment", "ParsedClaim", "ValidatorOptions",
    "generate_mandate_file", "generate_settlement_file", "parse_claim_file", "validate_claim_file",
]
