"""Generators for files Nets sends us: mandate lists and OCR settlement data.

Used by the local simulator and tests to produce byte-exact files in the
same layouts :mod:`.incoming` parses (one table of positions in
:mod:`.records`). Also turns accepted claims into settlement payments the way
Nets does: type 15 on the due date moved to the next banking day, only for
KIDs with an active mandate.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Collection, Generic, Iterable, Mapping, Protocol, Sequence, TypeVar

from . import records as R
from .incoming import Mandate, Payment
from .layout import DEFAULT_LINE_ENDING, NETS_ID, NetsFileError, join_records, render


def _start(recipient: str, transmission_number: str) -> str:
    return render(R.INCOMING_TRANSMISSION_START, {
        "data_sender": NETS_ID, "transmission_number": transmission_number, "data_recipient": recipient})


def generate_mandate_file(mandates: Sequence[Mandate], *, data_recipient: str, transmission_number: str,
                          assignment_number: str, account: str, nets_date: dt.date | None = None,
                          line_ending: str = DEFAULT_LINE_ENDING) -> bytes:
    """A Nets file with one mandate assignment (21/24, records 70).

    Serial numbers are 1..n in the given order unless the mandates carry
    ascending ``serial_number`` values > 0. ``nets_date`` goes in the
    transmission end (Nets' examples carry a date; zeros when None).
    """
    serials = [m.serial_number for m in mandates]
    use_own = all(s > 0 for s in serials) and all(a < b for a, b in zip(serials, serials[1:]))
    lines = [_start(data_recipient, transmission_number),
             render(R.MANDATE_ASSIGNMENT_START, {"assignment_number": assignment_number,
                                                 "assignment_account": account})]
    for i, m in enumerate(mandates, start=1):
        if not m.kid:
            raise NetsFileError("mandate.kid", "mandate without KID")
        lines.append(render(R.MANDATE_RECORD, {
            "serial_number": m.serial_number if use_own else i,
            "registration_type": str(m.registration_type), "kid": m.kid,
            "written_notice": "J" if m.notify else "N"}))
    n = len(mandates)
    lines.append(render(R.MANDATE_ASSIGNMENT_END, {"number_of_transactions": n, "number_of_records": n + 2}))
    lines.append(render(R.INCOMING_TRANSMISSION_END, {
        "number_of_transactions": n, "number_of_records": n + 4, "sum_amount": 0,
        "settlement_date": nets_date}))
    return join_records(lines, line_ending)


def settlement_records(payments: Sequence[Payment], *, agreement_id: str, assignment_number: str,
                       account: str, nets_date: dt.date) -> list[str]:
    """One OCR assignment (09/00) as records; transaction numbers 1..n."""
    lines = [render(R.OCR_ASSIGNMENT_START, {"agreement_id": agreement_id, "assignment_number": assignment_number,
                                             "assignment_account": account})]
    total = 0
    for i, p in enumerate(payments, start=1):
        typ = f"{p.transaction_type:02d}"
        if typ not in R.OCR_TRANSACTION_TYPES:
            raise NetsFileError("payment.transaction_type", f"OCR transaction type {typ} not in 10-21")
        if p.text is not None and typ not in R.OCR_TEXT_TYPES:
            raise NetsFileError("payment.text", "free text (amount item 3) only for types 20 and 21")
        lines.append(render(R.ocr_item1(typ), {
            "transaction_number": i, "settlement_date": p.settlement_date, "centre_id": p.centre_id,
            "day_code": p.day_code, "partial_settlement_number": p.partial_settlement_number,
            "serial_number": p.serial_number, "sign": "-" if p.amount_ore < 0 else "0",
            "amount": abs(p.amount_ore), "kid": p.kid, "card_issuer": p.card_issuer}))
        lines.append(render(R.ocr_item2(typ), {
            "transaction_number": i, "form_number": p.form_number, "archive_reference": p.archive_reference,
            "filler_35_41": p.filler_35_41, "bank_date": p.bank_date, "debit_account": p.payer_account}))
        if p.text is not None:
            lines.append(render(R.ocr_item3(typ), {"transaction_number": i, "text": p.text}))
        total += abs(p.amount_ore)
    dates = [p.settlement_date for p in payments]
    lines.append(render(R.OCR_ASSIGNMENT_END, {
        "number_of_transactions": len(payments), "number_of_records": len(lines) + 1, "sum_amount": total,
        "settlement_date": nets_date, "earliest_settlement_date": min(dates, default=None),
        "latest_settlement_date": max(dates, default=None)}))
    return lines


def generate_settlement_file(payments: Sequence[Payment], *, data_recipient: str, transmission_number: str,
                             agreement_id: str, assignment_number: str, account: str, nets_date: dt.date,
                             line_ending: str = DEFAULT_LINE_ENDING) -> bytes:
    """An OCR konteringsdata file with one assignment of ``payments``.

    Sums count the amount field (unsigned), as the parser checks them.
    """
    body = settlement_records(payments, agreement_id=agreement_id, assignment_number=assignment_number,
                              account=account, nets_date=nets_date)
    total = sum(abs(p.amount_ore) for p in payments)
    lines = [_start(data_recipient, transmission_number), *body, render(R.INCOMING_TRANSMISSION_END, {
        "number_of_transactions": len(payments), "number_of_records": len(body) + 2, "sum_amount": total,
        "settlement_date": nets_date})]
    return join_records(lines, line_ending)


# --- banking days and settling claims -----------------------------------------

def _easter(year: int) -> dt.date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l_) // 451
    month = (h + l_ - 7 * m + 114) // 31
    day = (h + l_ - 7 * m + 114) % 31 + 1
    return dt.date(year, month, day)


def norwegian_bank_holidays(year: int) -> frozenset[dt.date]:
    """Public holidays plus Christmas Eve and New Year's Eve (bank closed)."""
    e = _easter(year)
    days = {dt.date(year, 1, 1), dt.date(year, 5, 1), dt.date(year, 5, 17), dt.date(year, 12, 24),
            dt.date(year, 12, 25), dt.date(year, 12, 26), dt.date(year, 12, 31)}
    for offset in (-3, -2, 0, 1, 39, 49, 50):  # Maundy Thu, Good Fri, Easter, Easter Mon, Ascension, Whitsun
        days.add(e + dt.timedelta(days=offset))
    return frozenset(days)


def next_banking_day(d: dt.date) -> dt.date:
    """``d`` itself if a Norwegian banking day, else the next one."""
    while d.weekday() >= 5 or d in norwegian_bank_holidays(d.year):
        d += dt.timedelta(days=1)
    return d


class ClaimLike(Protocol):
    @property
    def kid(self) -> str: ...
    @property
    def amount_ore(self) -> int: ...
    @property
    def due_date(self) -> dt.date: ...


C = TypeVar("C", bound=ClaimLike)


@dataclass(frozen=True)
class NotDebited(Generic[C]):
    """A claim Nets did not debit, and why: ``no_mandate``,
    ``stopped_by_payer`` or ``limit_exceeded`` (payer's monthly amount limit)."""

    claim: C
    reason: str


def settle_claims(claims: Iterable[C], register: Mapping[str, Mandate], *,
                  paid_on: Mapping[str, dt.date] | None = None,
                  stopped_kids: Collection[str] = (),
                  monthly_limit_ore: int | Mapping[str, int] | None = None,
                  ) -> tuple[list[Payment], list[NotDebited[C]]]:
    """Simulate Nets debiting accepted claims: (payments, claims not debited).

    A claim (anything with ``kid``, ``amount_ore``, ``due_date``) is debited
    as type 15 on the next banking day from its due date when an active
    mandate exists for its KID, the payer has not stopped this debit and the
    payer's limit for that calendar month is not exceeded (mandates carry an
    amount limit, NOK 10 000/month by default at MPS; pass it per KID or as
    one number). ``paid_on`` overrides the settlement date per KID.
    """
    payments: list[Payment] = []
    rejected: list[NotDebited[C]] = []
    used: dict[tuple[str, int, int], int] = {}
    serial = 0
    for c in claims:
        kid = c.kid
        m = register.get(kid)
        if m is None or not m.active:
            rejected.append(NotDebited(c, "no_mandate"))
            continue
        if kid in stopped_kids:
            rejected.append(NotDebited(c, "stopped_by_payer"))
            continue
        date = (paid_on or {}).get(kid) or next_banking_day(c.due_date)
        limit = monthly_limit_ore.get(kid) if isinstance(monthly_limit_ore, Mapping) else monthly_limit_ore
        key = (kid, date.year, date.month)
        if limit is not None and used.get(key, 0) + c.amount_ore > limit:
            rejected.append(NotDebited(c, "limit_exceeded"))
            continue
        used[key] = used.get(key, 0) + c.amount_ore
        serial += 1
        payments.append(Payment(kid=kid, amount_ore=c.amount_ore, settlement_date=date,
                                transaction_type=15, transaction_number=serial, serial_number=serial,
                                bank_date=date))
    return payments, rejected
