"""Settlement file -> payments -> invoices marked paid; unmatched payments reported."""

from __future__ import annotations

import datetime as dt

from gateway.channels.avtalegiro.incoming import Payment, parse_incoming_file
from gateway.channels.avtalegiro.matching import OpenInvoice, UnmatchedReason, match_payments
from gateway.channels.avtalegiro.validator import generate_settlement_file

from .conftest import ACCOUNT, SENDER

D = dt.date(2026, 12, 17)


def pay(n, kid, amount, **kw):
    return Payment(kid=kid, amount_ore=amount, settlement_date=D, transaction_number=n, serial_number=n, **kw)


INVOICES = [
    OpenInvoice("INV-1", "008000011688373", 12345),
    OpenInvoice("INV-2", "008000021688389", 100),
    OpenInvoice("INV-3", "12345674", 5000),
]


def test_settlement_file_marks_the_right_invoice_paid_and_reports_the_rest():
    payments = [
        pay(1, "008000011688373", 12345),  # exact: INV-1 paid
        pay(2, "99999999999999", 777),     # unknown KID
        pay(3, "12345674", 4000),          # partial payment of INV-3
        pay(4, "008000011688373", 12345),  # same invoice paid twice
    ]
    data = generate_settlement_file(payments, data_recipient=SENDER, transmission_number="0000001",
                                    agreement_id="000000001", assignment_number="0000001", account=ACCOUNT,
                                    nets_date=D)
    parsed = parse_incoming_file(data, expected_recipient=SENDER).payments
    result = match_payments(parsed, INVOICES)
    assert result.paid_invoice_ids == ["INV-1"]
    assert result.matched[0].payment.amount_ore == 12345
    reasons = [(u.payment.transaction_number, u.reason) for u in result.unmatched]
    assert reasons == [(2, UnmatchedReason.UNKNOWN_KID), (3, UnmatchedReason.AMOUNT_MISMATCH),
                       (4, UnmatchedReason.DUPLICATE)]
    mismatch = result.unmatched[1]
    assert mismatch.invoice == INVOICES[2] and "4000" in mismatch.detail and "5000" in mismatch.detail
    assert len(result.matched) + len(result.unmatched) == len(parsed)  # nothing dropped


def test_leading_zeros_are_significant_and_blanks_ignored():
    result = match_payments([pay(1, "8000011688373", 12345)], INVOICES)
    assert result.unmatched[0].reason is UnmatchedReason.UNKNOWN_KID
    result = match_payments([pay(1, "12345674", 5000)], [OpenInvoice("X", " 1234 5674 ", 5000)])
    assert result.paid_invoice_ids == ["X"]


def test_already_paid_and_redelivered_files():
    p = pay(1, "12345674", 5000)
    result = match_payments([p], [], already_paid_kids={"12345674"})
    assert result.unmatched[0].reason is UnmatchedReason.DUPLICATE
    result = match_payments([p], INVOICES, seen_payment_ids={p.identity})
    assert result.matched == [] and result.unmatched[0].reason is UnmatchedReason.DUPLICATE


def test_reversals_missing_kid_and_ambiguous():
    payments = [pay(1, "12345674", -5000, transaction_type=18), pay(2, "", 100, transaction_type=21, text="x"),
                pay(3, "55555550", 10)]
    twins = [OpenInvoice("A", "55555550", 10), OpenInvoice("B", "55555550", 10)]
    result = match_payments(payments, INVOICES + twins)
    assert [u.reason for u in result.unmatched] == [
        UnmatchedReason.REVERSAL, UnmatchedReason.MISSING_KID, UnmatchedReason.AMBIGUOUS]
    assert result.matched == []


def test_two_invoices_same_kid_distinguished_by_amount():
    invoices = [OpenInvoice("A", "55555550", 10), OpenInvoice("B", "55555550", 20)]
    result = match_payments([pay(1, "55555550", 20), pay(2, "55555550", 10)], invoices)
    assert result.paid_invoice_ids == ["B", "A"]


def test_result_unpacks_into_matched_and_unmatched():
    matched, unmatched = match_payments([pay(1, "12345674", 5000), pay(2, "1", 1)], INVOICES)
    assert [m.invoice.invoice_id for m in matched] == ["INV-3"]
    assert [u.reason for u in unmatched] == [UnmatchedReason.UNKNOWN_KID]
