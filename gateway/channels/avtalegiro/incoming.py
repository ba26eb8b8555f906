"""Files from Nets: AvtaleGiro mandates and OCR Giro settlement data.

One transmission may hold mandate assignments (service 21, type 24, records
70 "fast betalingsoppdrag") and OCR settlement assignments (service 09,
transaction types 10-21, amount items 30/31/32). Every field, sequence and
total is checked; any violation raises :class:`LayoutRejected` listing all
issues with record number and column, because half-read settlement data
would mark the wrong invoices paid.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from . import records as R
from .layout import NETS_ID, LayoutIssue, LayoutRejected, RawRecord, Scope, check_fields, split_records

REG_ACTIVE = 0        # full list: this mandate is active
REG_NEW_OR_CHANGED = 1
REG_DELETED = 2


@dataclass(frozen=True)
class Mandate:
    """An AvtaleGiro mandate ("fast betalingsoppdrag") for one KID.

    ``notify`` is the payer's J/N choice to get written notice from the bank;
    ``registration_type`` 0 = part of a full list, 1 = new/changed,
    2 = deleted (``active`` False).
    """

    kid: str
    active: bool = True
    notify: bool = True
    registration_type: int = REG_NEW_OR_CHANGED
    serial_number: int = 0


@dataclass(frozen=True)
class Payment:
    """One settled OCR transaction (amount items 1, 2 and optional 3).

    ``amount_ore`` is negative when the sign field is ``-`` (reversals).
    ``archive_reference`` is columns 26-34 of item 2 (agreement id or bank
    archive reference); ``payer_account`` the debited account (may be zeros).
    """

    kid: str
    amount_ore: int
    settlement_date: dt.date
    transaction_type: int = 15
    transaction_number: int = 0
    centre_id: str = "00"
    day_code: int = 0
    partial_settlement_number: int = 0
    serial_number: int = 0
    form_number: str = "0000000000"
    archive_reference: str = "000000000"
    filler_35_41: str = "0000000"
    bank_date: dt.date | None = None
    payer_account: str = "00000000000"
    card_issuer: str = "000000"
    text: str | None = None

    @property
    def identity(self) -> tuple[Any, ...]:
        """Settlement date, centre, day code, partial settlement and serial:
        what identifies a transaction across re-delivered files."""
        return (self.settlement_date, self.centre_id, self.day_code,
                self.partial_settlement_number, self.serial_number, self.transaction_number)

    @property
    def date(self) -> dt.date:
        """Alias of ``settlement_date`` (the Nets date of the transaction)."""
        return self.settlement_date

    @property
    def is_avtalegiro(self) -> bool:
        return self.transaction_type == 15


@dataclass
class MandateAssignment:
    record: int
    assignment_number: str
    account: str
    mandates: list[Mandate] = field(default_factory=list)

    @property
    def full_list(self) -> bool:
        """Registration type 0: the assignment lists every active mandate."""
        return any(m.registration_type == REG_ACTIVE for m in self.mandates)


@dataclass
class SettlementAssignment:
    record: int
    agreement_id: str
    assignment_number: str
    account: str
    settlement_date: dt.date | None = None
    payments: list[Payment] = field(default_factory=list)


@dataclass
class IncomingFile:
    data_sender: str
    transmission_number: str
    data_recipient: str
    settlement_date: dt.date | None
    line_ending: str | None
    mandate_assignments: list[MandateAssignment] = field(default_factory=list)
    settlement_assignments: list[SettlementAssignment] = field(default_factory=list)

    @property
    def mandates(self) -> list[Mandate]:
        return [m for a in self.mandate_assignments for m in a.mandates]

    @property
    def payments(self) -> list[Payment]:
        return [p for a in self.settlement_assignments for p in a.payments]


class _Reader:
    def __init__(self, expected_recipient: str | None):
        self.expected_recipient = expected_recipient
        self.issues: list[LayoutIssue] = []

    def err(self, code: str, msg: str, rec: int, pos: int) -> None:
        self.issues.append(LayoutIssue(code, msg, rec, pos, Scope.TRANSMISSION))

    def fields(self, layout: Any, rec: RawRecord) -> dict[str, Any]:
        values, issues = check_fields(layout, rec, Scope.TRANSMISSION)
        self.issues.extend(issues)
        return values

    def classify(self, rec: RawRecord) -> str | None:
        t, n = rec.text, rec.number
        if t[0:2] != "NY":
            self.err("record.format_code", f"format code must be 'NY', got {t[0:2]!r}", n, 1 if t[:1] != "N" else 2)
            return None
        svc, typ, rt = t[2:4], t[4:6], t[6:8]
        if rt in ("10", "89"):
            if svc != "00":
                self.err("record.service_code", f"service code must be '00', got {svc!r}", n, 3)
                return None
            if typ != "00":
                self.err("record.type_code", f"transmission type must be '00', got {typ!r}", n, 5)
                return None
            return "TS" if rt == "10" else "TE"
        if svc == R.SERVICE_AVTALEGIRO:
            if rt in ("20", "88"):
                if typ != R.AT_MANDATES:
                    self.err("record.assignment_type", f"only mandate assignments (24) come from Nets, got {typ!r}", n, 5)
                    return None
                return "MAS" if rt == "20" else "MAE"
            if rt == "70":
                if typ != R.TT_MANDATE:
                    self.err("record.transaction_type", f"mandate records have type '94', got {typ!r}", n, 5)
                    return None
                return "FBO"
            self.err("record.record_type", f"record type {rt!r} not valid for service 21 in files from Nets", n, 7)
            return None
        if svc == R.SERVICE_OCR:
            if rt in ("20", "88"):
                if typ != "00":
                    self.err("record.assignment_type", f"OCR assignment type must be '00', got {typ!r}", n, 5)
                    return None
                return "OAS" if rt == "20" else "OAE"
            if rt in ("30", "31", "32"):
                if typ not in R.OCR_TRANSACTION_TYPES:
                    self.err("record.transaction_type", f"OCR transaction type must be 10-21, got {typ!r}", n, 5)
                    return None
                if rt == "32" and typ not in R.OCR_TEXT_TYPES:
                    self.err("record.transaction_type", f"amount item 3 only for types 20/21, got {typ!r}", n, 5)
                    return None
                return {"30": "O1", "31": "O2", "32": "O3"}[rt]
            self.err("record.record_type", f"record type {rt!r} not valid for OCR giro", n, 7)
            return None
        self.err("record.service_code", f"service code must be 00, 09 or 21, got {svc!r}", n, 3)
        return None

    def totals(self, v: Mapping[str, Any], want: Mapping[str, tuple[Any, int]], rec: RawRecord, prefix: str) -> None:
        for name, (expected, pos) in want.items():
            if name in v and v[name] != expected:
                self.err(f"{prefix}.{name}", f"{name} is {v[name]}, computed {expected}", rec.number, pos)

    def run(self, data: bytes | str) -> IncomingFile | None:
        split = split_records(data)
        self.issues.extend(split.issues)
        recs = [r for r in split.records if r.ok]
        if self.issues:
            return None
        kinds = [self.classify(r) for r in recs]
        if self.issues:
            return None
        if kinds[0] != "TS":
            self.err("structure.missing_transmission_start", "file must start with NY000010", recs[0].number, 1)
            return None
        if kinds[-1] != "TE":
            self.err("structure.missing_transmission_end", "file must end with NY000089", recs[-1].number + 1, 1)
        ts = self.fields(R.INCOMING_TRANSMISSION_START, recs[0])
        if "data_sender" in ts and recs[0].text[8:16] != NETS_ID:
            self.err("transmission.data_sender", f"data sender must be Nets ({NETS_ID})", recs[0].number, 9)
        if self.expected_recipient and recs[0].text[23:31] != self.expected_recipient:
            self.err("transmission.data_recipient", f"file is for {recs[0].text[23:31]}, not us "
                     f"({self.expected_recipient})", recs[0].number, 24)
        out = IncomingFile(recs[0].text[8:16], recs[0].text[16:23], recs[0].text[23:31], None, split.line_ending)
        i, n = 1, len(recs) - (1 if kinds[-1] == "TE" else 0)
        total_tx = total_amount = 0
        dates: list[dt.date] = []
        while i < n:
            k = kinds[i]
            if k == "MAS":
                i, ntx = self.mandate_assignment(recs, kinds, i, n, out)
                total_tx += ntx
            elif k == "OAS":
                i, ntx, amount, ds = self.ocr_assignment(recs, kinds, i, n, out)
                total_tx += ntx
                total_amount += amount
                dates.extend(ds)
            else:
                what = "transmission start" if k == "TS" else "record"
                self.err("structure.outside_assignment", f"{what} where an assignment start was expected",
                         recs[i].number, 7)
                i += 1
        if kinds[-1] == "TE" and len(recs) > 1:
            te = recs[-1]
            v = self.fields(R.INCOMING_TRANSMISSION_END, te)
            self.totals(v, {"number_of_transactions": (total_tx, 9), "number_of_records": (len(recs), 17),
                            "sum_amount": (total_amount, 25)}, te, "transmission")
            out.settlement_date = v.get("settlement_date")
            if out.settlement_assignments and v.get("settlement_date") is None and "settlement_date" in v:
                self.err("transmission.settlement_date", "settlement date missing in a file with OCR data",
                         te.number, 42)
        return out

    def mandate_assignment(self, recs: list[RawRecord], kinds: list[str | None], i: int, n: int,
                           out: IncomingFile) -> tuple[int, int]:
        start = recs[i]
        v = self.fields(R.MANDATE_ASSIGNMENT_START, start)
        asg = MandateAssignment(start.number, start.text[17:24], start.text[24:35])
        out.mandate_assignments.append(asg)
        i += 1
        last = 0
        while i < n and kinds[i] == "FBO":
            rec = recs[i]
            m = self.fields(R.MANDATE_RECORD, rec)
            serial = m.get("serial_number")
            if serial is not None and serial <= last:
                self.err("transaction.sequence", f"mandate serial {serial} does not ascend", rec.number, 9)
            last = serial if serial is not None else last
            if m.get("kid") == "":
                self.err("kid.missing", "mandate without KID", rec.number, 41)
            if all(k in m for k in ("serial_number", "registration_type", "kid", "written_notice")):
                reg = int(m["registration_type"])
                asg.mandates.append(Mandate(m["kid"], reg != REG_DELETED, m["written_notice"] == "J", reg,
                                            m["serial_number"]))
            i += 1
        if i >= n or kinds[i] != "MAE":
            at = recs[i].number if i < len(recs) else recs[-1].number + 1
            self.err("structure.missing_assignment_end", "mandate assignment without end record (NY212488)", at, 1)
            return i, len(asg.mandates)
        end = recs[i]
        ve = self.fields(R.MANDATE_ASSIGNMENT_END, end)
        count = i - recs.index(start) - 1
        self.totals(ve, {"number_of_transactions": (count, 9), "number_of_records": (count + 2, 17)}, end,
                    "assignment")
        del v
        return i + 1, count

    def ocr_assignment(self, recs: list[RawRecord], kinds: list[str | None], i: int, n: int,
                       out: IncomingFile) -> tuple[int, int, int, list[dt.date]]:
        start = recs[i]
        self.fields(R.OCR_ASSIGNMENT_START, start)
        asg = SettlementAssignment(start.number, start.text[8:17], start.text[17:24], start.text[24:35])
        out.settlement_assignments.append(asg)
        first = i
        i += 1
        ntx = amount = 0
        last = 0
        dates: list[dt.date] = []
        while i < n and kinds[i] in ("O1", "O2", "O3"):
            rec = recs[i]
            if kinds[i] != "O1":
                self.err("structure.item_order", "transaction must start with amount item 1", rec.number, 7)
                i += 1
                continue
            typ = rec.text[4:6]
            v1 = self.fields(R.ocr_item1(typ), rec)
            ntx += 1
            number = v1.get("transaction_number")
            if number is not None and number <= last:
                self.err("transaction.sequence", f"transaction number {number} does not ascend", rec.number, 9)
            last = number if number is not None else last
            i += 1
            if i >= n or kinds[i] != "O2":
                at = recs[i].number if i < len(recs) else rec.number + 1
                self.err("structure.missing_item2", "amount item 1 without amount item 2", at, 7)
                continue
            rec2 = recs[i]
            v2 = self.fields(R.ocr_item2(typ), rec2)
            self._same(rec, rec2)
            i += 1
            v3: dict[str, Any] = {}
            if i < n and kinds[i] == "O3":
                v3 = self.fields(R.ocr_item3(recs[i].text[4:6]), recs[i])
                self._same(rec, recs[i])
                i += 1
            if "amount" in v1:
                amount += v1["amount"]
            if "settlement_date" in v1:
                dates.append(v1["settlement_date"])
            if all(k in v1 for k in ("transaction_number", "settlement_date", "amount", "kid", "centre_id",
                                     "day_code", "partial_settlement_number", "serial_number", "sign",
                                     "card_issuer")) and \
                    all(k in v2 for k in ("form_number", "archive_reference", "bank_date", "debit_account")):
                sign = -1 if v1["sign"] == "-" else 1
                asg.payments.append(Payment(
                    kid=v1["kid"], amount_ore=sign * v1["amount"], settlement_date=v1["settlement_date"],
                    transaction_type=int(typ), transaction_number=v1["transaction_number"],
                    centre_id=rec.text[21:23], day_code=v1["day_code"],
                    partial_settlement_number=v1["partial_settlement_number"],
                    serial_number=v1["serial_number"], form_number=rec2.text[15:25],
                    archive_reference=rec2.text[25:34], filler_35_41=rec2.text[34:41],
                    bank_date=v2["bank_date"], payer_account=rec2.text[47:58], card_issuer=rec.text[74:80],
                    text=v3.get("text") if v3 else None))
        if i >= n or kinds[i] != "OAE":
            at = recs[i].number if i < len(recs) else recs[-1].number + 1
            self.err("structure.missing_assignment_end", "OCR assignment without end record (NY090088)", at, 1)
            return i, ntx, amount, dates
        end = recs[i]
        ve = self.fields(R.OCR_ASSIGNMENT_END, end)
        self.totals(ve, {
            "number_of_transactions": (ntx, 9), "number_of_records": (i - first + 1, 17),
            "sum_amount": (amount, 25),
            "earliest_settlement_date": (min(dates, default=None), 48),
            "latest_settlement_date": (max(dates, default=None), 54)}, end, "assignment")
        asg.settlement_date = ve.get("settlement_date")
        return i + 1, ntx, amount, dates

    def _same(self, first: RawRecord, other: RawRecord) -> None:
        if other.text[8:15] != first.text[8:15]:
            self.err("transaction.number_mismatch", "transaction number differs from amount item 1",
                     other.number, 9)
        if other.text[4:6] != first.text[4:6]:
            self.err("transaction.type_mismatch", "transaction type differs from amount item 1", other.number, 5)


def parse_incoming_file(data: bytes | str, *, expected_recipient: str | None = None) -> IncomingFile:
    """Parse a mandate and/or OCR settlement file from Nets, strictly.

    ``expected_recipient`` is our kundeenhet-ID; a file addressed to someone
    else is rejected. Raises :class:`LayoutRejected` on any violation.
    """
    reader = _Reader(expected_recipient)
    result = reader.run(data)
    if reader.issues or result is None:
        raise LayoutRejected.from_issues(reader.issues)
    return result


def parse_mandate_file(data: bytes | str, *, expected_recipient: str | None = None) -> list[Mandate]:
    """Strictly parse a file from Nets and return its mandate records."""
    return parse_incoming_file(data, expected_recipient=expected_recipient).mandates


def parse_settlement_file(data: bytes | str, *, expected_recipient: str | None = None) -> list[Payment]:
    """Strictly parse a file from Nets and return its OCR payments."""
    return parse_incoming_file(data, expected_recipient=expected_recipient).payments


def apply_mandate_updates(current: Mapping[str, Mandate], assignments: Iterable[MandateAssignment]) -> dict[str, Mandate]:
    """New mandate register (KID -> active mandate) after a Nets file.

    An assignment with registration type 0 is a full list and replaces the
    register; types 1/2 add/change or delete single KIDs.
    """
    register = dict(current)
    for asg in assignments:
        if asg.full_list:
            register = {}
        for m in asg.mandates:
            if m.active:
                register[m.kid] = m
            else:
                register.pop(m.kid, None)
    return register


def has_active_mandate(register: Mapping[str, Mandate], kid: str) -> bool:
    """Reachability rule: AvtaleGiro needs an active mandate for the KID."""
    m = register.get(kid.strip())
    return m is not None and m.active


__all__: Sequence[str] = (
    "IncomingFile", "Mandate", "MandateAssignment", "Payment", "SettlementAssignment",
    "apply_mandate_updates", "has_active_mandate", "parse_incoming_file", "parse_mandate_file",
    "parse_settlement_file",
)
