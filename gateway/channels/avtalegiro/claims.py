"""AvtaleGiro claim files ("betalingskrav") to Nets, 80-character records.

Builds one transmission (start 10 / end 89) holding an assignment of claims
(21/00, amount items 30+31, specification records 49 for bank-notified
claims) and/or an assignment of cancellations (21/36, type 93). Pure: values
in, ISO-8859-1 bytes out; :func:`write_claim_file_atomic` is the only I/O.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from dataclasses import dataclass, field
from typing import Literal, Sequence

from gateway.kid import KidError, validate_kid
from gateway.norwegian_ids import NorwegianIdError, validate_kontonr

from . import records as R
from .layout import DEFAULT_LINE_ENDING, NETS_ID, NetsFileError, RenderError, fold_to_latin1, join_records, render

MAX_SPEC_LINES = 42
SPEC_LINE_WIDTH = 80
SPEC_COLUMN_WIDTH = 40
PAYER_NAME_WIDTH = 10
EXTERNAL_REF_WIDTH = 25
MAX_AMOUNT_ORE = 10**17 - 1


class ClaimError(NetsFileError):
    """Claim data that cannot be put in a valid claim file.

    ``code`` e.g. ``claim.amount``, ``claim.kid``, ``claim.due_date``,
    ``claim.spec_without_notification``, ``batch.empty``; ``index`` is the
    position of the offending claim/cancellation in its input list.
    """

    def __init__(self, code: str, message: str, index: int | None = None):
        super().__init__(code, message)
        self.index = index


@dataclass(frozen=True)
class Claim:
    """One AvtaleGiro payment claim.

    ``notify_payer`` True -> transaction type 21 (the payer's bank sends
    "AvtaleGiro info", ``specification`` lines shown there); False -> type 02
    (we notify the payer ourselves, e.g. by eFaktura, e-mail or letter).
    ``payer_name`` is the abbreviated name (first 10 characters are used),
    ``external_ref`` ("fremmedreferanse", max 25) is shown on the payer's
    statement instead of the fixed text.
    """

    kid: str
    amount_ore: int
    due_date: dt.date
    payer_name: str = ""
    external_ref: str = ""
    notify_payer: bool = False
    specification: tuple[str, ...] | str = ()


@dataclass(frozen=True)
class Cancellation:
    """Deletion request ("sletteanmodning", type 93) for a submitted claim.

    Nets identifies the claim by KID, amount and due date, so resend those
    exactly as in the original claim; amount item 2 is optional.
    """

    kid: str
    amount_ore: int
    due_date: dt.date
    payer_name: str = ""
    external_ref: str = ""


@dataclass(frozen=True)
class ClaimBatch:
    """Everything for one transmission to Nets.

    ``data_sender`` is our kundeenhet-ID (8 digits, from Nets onboarding);
    ``transmission_number`` (7 digits) must be unique per sender;
    ``assignment_number`` (7 digits) must be unique per agreement for
    12 months + 1 day, and ``cancellation_assignment_number`` likewise when
    there are cancellations. ``account`` is the payee account (11 digits).
    ``agreement_id`` is kept for configuration and KID structure checks; the
    v3.3 claim layout has no field for it (columns 9-17 of the assignment
    start are zeros).
    """

    data_sender: str
    transmission_number: str
    assignment_number: str
    account: str
    claims: Sequence[Claim] = ()
    cancellations: Sequence[Cancellation] = ()
    cancellation_assignment_number: str | None = None
    data_recipient: str = NETS_ID
    agreement_id: str | None = None


@dataclass(frozen=True)
class ClaimFileOptions:
    """Knobs the public documents leave open (see docs/avtalegiro.md)."""

    line_ending: str = DEFAULT_LINE_ENDING
    kid_algorithm: Literal["mod10", "mod11"] | None = None  # None: either
    kid_min_length: int = 4
    kid_max_length: int = 25
    kid_lengths: frozenset[int] | None = None  # registered KID structures
    text_policy: Literal["fold", "strict"] = "fold"
    cancellation_item2: bool = True
    today: dt.date | None = None  # enables due-date window checks
    max_months_ahead: int = 12


def _digits(value: str, width: int, what: str) -> str:
    if not (isinstance(value, str) and value.isascii() and value.isdigit() and len(value) == width):
        raise ClaimError(f"batch.{what}", f"{what} must be exactly {width} digits, got {value!r}")
    return value


def _add_months(d: dt.date, months: int) -> dt.date:
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    for day in (d.day, 30, 29, 28):
        try:
            return dt.date(year, month, day)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def _text(value: str, width: int, what: str, index: int, opts: ClaimFileOptions, *, truncate: bool) -> str:
    text = " ".join((value or "").split())  # no control characters, no runs of blanks
    if opts.text_policy == "fold":
        text = fold_to_latin1(text)
    if len(text) > width:
        if not truncate:
            raise ClaimError(f"claim.{what}", f"{what} is {len(text)} characters, max {width}", index)
        text = text[:width].rstrip()
    return text


def _check_common(item: Claim | Cancellation, index: int, opts: ClaimFileOptions) -> str:
    if not isinstance(item.amount_ore, int) or isinstance(item.amount_ore, bool):
        raise ClaimError("claim.amount", "amount_ore must be an int (øre)", index)
    if not 0 < item.amount_ore <= MAX_AMOUNT_ORE:
        raise ClaimError("claim.amount", f"amount must be 1..{MAX_AMOUNT_ORE} øre, got {item.amount_ore}", index)
    if not isinstance(item.due_date, dt.date):
        raise ClaimError("claim.due_date", "due_date must be a date", index)
    if opts.today is not None:
        if item.due_date < opts.today:
            raise ClaimError("claim.due_date", f"due date {item.due_date} is in the past", index)
        if item.due_date > _add_months(opts.today, opts.max_months_ahead):
            raise ClaimError("claim.due_date",
                             f"due date {item.due_date} is more than {opts.max_months_ahead} months ahead", index)
    try:
        kid = validate_kid(item.kid, opts.kid_algorithm, min_length=opts.kid_min_length,
                           max_length=opts.kid_max_length, allow_dash=False)
    except KidError as exc:
        raise ClaimError("claim.kid", f"{exc.code}: {exc.message}", index) from exc
    if opts.kid_lengths is not None and len(kid) not in opts.kid_lengths:
        raise ClaimError("claim.kid", f"KID length {len(kid)} matches no registered KID structure "
                         f"{sorted(opts.kid_lengths)}", index)
    return kid


def specification_records(transaction_number: int, lines: Sequence[str], index: int = 0,
                          opts: ClaimFileOptions | None = None) -> list[str]:
    """Record 49s for up to 42 lines of 80 characters; blank halves are dropped.

    Each line is split into column 1 (characters 1-40) and column 2 (41-80);
    the spec forbids sending empty specification records.
    """
    opts = opts or ClaimFileOptions()
    if isinstance(lines, str):  # one text block: one specification line per text line
        lines = lines.splitlines()
    if len(lines) > MAX_SPEC_LINES:
        raise ClaimError("claim.specification", f"{len(lines)} specification lines, max {MAX_SPEC_LINES}", index)
    out = []
    for line_no, line in enumerate(lines, start=1):
        if "\n" in line or "\r" in line:
            raise ClaimError("claim.specification", f"specification line {line_no} contains a line break", index)
        text = fold_to_latin1(line) if opts.text_policy == "fold" else line
        text = text.rstrip()
        if len(text) > SPEC_LINE_WIDTH:
            raise ClaimError("claim.specification",
                             f"specification line {line_no} is {len(text)} characters, max {SPEC_LINE_WIDTH}", index)
        for column, part in ((1, text[:SPEC_COLUMN_WIDTH]), (2, text[SPEC_COLUMN_WIDTH:])):
            if not part.strip():
                continue
            try:
                out.append(render(R.CLAIM_SPECIFICATION, {
                    "transaction_number": transaction_number, "line_number": line_no,
                    "column_number": column, "text": part}))
            except RenderError as exc:
                raise ClaimError("claim.specification", exc.message, index) from exc
    return out


@dataclass
class _Totals:
    transactions: int = 0
    records: int = 0
    amount: int = 0
    dates: list[dt.date] = field(default_factory=list)


def _assignment(assignment_type: str, number: str, account: str, items: Sequence[Claim | Cancellation],
                opts: ClaimFileOptions) -> tuple[list[str], _Totals]:
    lines = [render(R.claim_assignment_start(assignment_type),
                    {"assignment_number": number, "assignment_account": account})]
    totals = _Totals()
    for index, item in enumerate(items):
        tx = index + 1
        kid = _check_common(item, index, opts)
        name = _text(item.payer_name, PAYER_NAME_WIDTH, "payer_name", index, opts, truncate=True)
        ref = _text(item.external_ref, EXTERNAL_REF_WIDTH, "external_ref", index, opts, truncate=False)
        if isinstance(item, Claim):
            tt = R.TT_BANK_NOTIFIES if item.notify_payer else R.TT_PAYEE_NOTIFIES
            if item.specification and not item.notify_payer:
                raise ClaimError("claim.spec_without_notification",
                                 "specification lines are only sent with bank notification (type 21)", index)
        else:
            tt = R.TT_CANCELLATION
        try:
            lines.append(render(R.claim_item1(tt), {"transaction_number": tx, "due_date": item.due_date,
                                                    "amount": item.amount_ore, "kid": kid}))
            if isinstance(item, Claim) or opts.cancellation_item2:
                lines.append(render(R.claim_item2(tt), {"transaction_number": tx, "payer_name": name,
                                                        "external_reference": ref}))
        except RenderError as exc:
            raise ClaimError(exc.code.replace("field.", "claim."), exc.message, index) from exc
        if isinstance(item, Claim) and item.specification:
            lines.extend(specification_records(tx, item.specification, index, opts))
        totals.transactions += 1
        totals.amount += item.amount_ore
        totals.dates.append(item.due_date)
    totals.records = len(lines) + 1
    lines.append(render(R.claim_assignment_end(assignment_type), {
        "number_of_transactions": totals.transactions, "number_of_records": totals.records,
        "sum_amount": totals.amount,
        "earliest_due_date": min(totals.dates, default=None),
        "latest_due_date": max(totals.dates, default=None)}))
    return lines, totals


def build_claim_records(batch: ClaimBatch, options: ClaimFileOptions | None = None) -> list[str]:
    """The transmission as a list of 80-character records (no terminators)."""
    opts = options or ClaimFileOptions()
    _digits(batch.data_sender, 8, "data_sender")
    _digits(batch.transmission_number, 7, "transmission_number")
    _digits(batch.data_recipient, 8, "data_recipient")
    if batch.data_recipient != NETS_ID:
        raise ClaimError("batch.data_recipient", f"claims go to Nets ({NETS_ID}), not {batch.data_recipient}")
    try:
        account = validate_kontonr(batch.account)
    except NorwegianIdError as exc:
        raise ClaimError("batch.account", f"{exc.code}: {exc.message}") from exc
    if not batch.claims and not batch.cancellations:
        raise ClaimError("batch.empty", "a transmission needs at least one claim or cancellation")
    body: list[str] = []
    total = _Totals()
    parts: list[tuple[str, str, Sequence[Claim | Cancellation]]] = []
    if batch.claims:
        _digits(batch.assignment_number, 7, "assignment_number")
        parts.append((R.AT_CLAIMS, batch.assignment_number, batch.claims))
    if batch.cancellations:
        number = batch.cancellation_assignment_number
        if number is None:
            raise ClaimError("batch.cancellation_assignment_number",
                             "cancellations need their own assignment number")
        _digits(number, 7, "cancellation_assignment_number")
        if batch.claims and number == batch.assignment_number:
            raise ClaimError("batch.cancellation_assignment_number",
                             "assignment numbers must be unique within the transmission")
        parts.append((R.AT_CANCELLATIONS, number, batch.cancellations))
    for assignment_type, number, items in parts:
        lines, t = _assignment(assignment_type, number, account, items, opts)
        body.extend(lines)
        total.transactions += t.transactions
        total.amount += t.amount
        total.dates.extend(t.dates)
    start = render(R.CLAIM_TRANSMISSION_START, {"data_sender": batch.data_sender,
                                                "transmission_number": batch.transmission_number})
    end = render(R.CLAIM_TRANSMISSION_END, {
        "number_of_transactions": total.transactions, "number_of_records": len(body) + 2,
        "sum_amount": total.amount, "earliest_due_date": min(total.dates)})
    return [start, *body, end]


def build_claim_file(batch: ClaimBatch, options: ClaimFileOptions | None = None) -> bytes:
    """The claim file as ISO-8859-1 bytes, one terminator after each record."""
    opts = options or ClaimFileOptions()
    return join_records(build_claim_records(batch, opts), opts.line_ending)


def write_claim_file_atomic(path_dir: str | os.PathLike[str], filename: str, data: bytes,
                            *, overwrite: bool = False) -> str:
    """Write ``data`` to ``path_dir/filename`` atomically; return the path.

    Temp file in the same directory, fsync, then a hard link (no overwrite,
    so a file Nets has not fetched yet is never replaced) or ``os.replace``
    with ``overwrite=True``; the directory is fsynced so the name survives a
    crash. Pickup agents never see a partial file.
    """
    if not filename or os.sep in filename or (os.altsep and os.altsep in filename) or filename in (".", ".."):
        raise ValueError(f"invalid file name {filename!r}")
    directory = os.fspath(path_dir)
    final = os.path.join(directory, filename)
    tmp = os.path.join(directory, f".{filename}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, final)
        else:
            os.link(tmp, final)  # raises FileExistsError instead of clobbering
            os.unlink(tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return final
