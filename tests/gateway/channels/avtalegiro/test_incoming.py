"""Files from Nets: mandate and OCR settlement layouts, parsing, generators."""

from __future__ import annotations

import datetime as dt

import pytest

from gateway.channels.avtalegiro.generators import next_banking_day, settle_claims
from gateway.channels.avtalegiro.incoming import (
    Mandate,
    Payment,
    apply_mandate_updates,
    has_active_mandate,
    parse_incoming_file,
    parse_mandate_file,
    parse_settlement_file,
)
from gateway.channels.avtalegiro.layout import LayoutRejected
from gateway.channels.avtalegiro.validator import generate_mandate_file, generate_settlement_file

from .conftest import ACCOUNT, SENDER, patch, records, replace_record

D = dt.date(2026, 12, 17)

PAYMENTS = [
    Payment(kid="008000011688373", amount_ore=12345, settlement_date=D, transaction_type=15,
            transaction_number=1, centre_id="13", day_code=17, partial_settlement_number=1,
            serial_number=1464, form_number="0000000000", archive_reference="099038562",
            bank_date=D, payer_account="99990512341"),
    Payment(kid="", amount_ore=2000, settlement_date=dt.date(2026, 12, 18), transaction_type=21,
            transaction_number=2, centre_id="02", day_code=18, partial_settlement_number=2,
            serial_number=7, form_number="9636827194", archive_reference="000000001",
            filler_35_41="1883206", bank_date=None, payer_account="00000000000", text="Kjøp av bøker"),
]


def settlement() -> bytes:
    return generate_settlement_file(PAYMENTS, data_recipient=SENDER, transmission_number="0170031",
                                    agreement_id="001008566", assignment_number="0000002", account=ACCOUNT,
                                    nets_date=dt.date(2026, 12, 18))


def mandates() -> bytes:
    return generate_mandate_file(
        [Mandate("008000011688373", True, True, 0, 1), Mandate("12345674", True, False, 0, 2)],
        data_recipient=SENDER, transmission_number="1091949", assignment_number="0000001", account=ACCOUNT,
        nets_date=dt.date(2026, 11, 30))


def test_settlement_file_byte_exact():
    assert records(settlement()) == [
        # transmission start from Nets: sender 00008080, Nets serial, recipient = our kundeenhet-ID
        "NY000010" + "00008080" + "0170031" + "55555555" + "0" * 49,
        # OCR assignment start: agreement id 9-17, assignment 18-24, account 25-35
        "NY090020" + "001008566" + "0000002" + "15038000001" + "0" * 45,
        # item 1: tx, Nets date, centre, day code, partial settlement, serial, sign, amount, KID, zeros
        "NY091530" + "0000001" + "171226" + "13" + "17" + "1" + "01464" + "0" + "00000000000012345"
        + "008000011688373".rjust(25) + "000000",
        # item 2: tx, form no, archive reference, filler 35-41, bank date, debit account, zeros 59-80
        "NY091531" + "0000001" + "0000000000" + "099038562" + "0000000" + "171226" + "99990512341" + "0" * 22,
        "NY092130" + "0000002" + "181226" + "02" + "18" + "2" + "00007" + "0" + "00000000000002000"
        + " " * 25 + "000000",
        "NY092131" + "0000002" + "9636827194" + "000000001" + "1883206" + "000000" + "00000000000" + "0" * 22,
        # item 3 (types 20/21 only): free text 16-55
        "NY092132" + "0000002" + "Kjøp av bøker".ljust(40) + "0" * 25,
        # assignment end: 2 tx, 7 records, sum, Nets date, earliest, latest
        "NY090088" + "00000002" + "00000007" + "00000000000014345" + "181226" + "171226" + "181226" + "0" * 21,
        "NY000089" + "00000002" + "00000009" + "00000000000014345" + "181226" + "0" * 33,
    ]


def test_mandate_file_byte_exact():
    assert records(mandates()) == [
        "NY000010" + "00008080" + "1091949" + "55555555" + "0" * 49,
        "NY212420" + "0" * 9 + "0000001" + "15038000001" + "0" * 45,
        # mandate: serial 9-15, registration type 16, KID 17-41 right-aligned, J/N 42, zeros 43-80
        "NY219470" + "0000001" + "0" + "008000011688373".rjust(25) + "J" + "0" * 38,
        "NY219470" + "0000002" + "0" + "12345674".rjust(25) + "N" + "0" * 38,
        "NY212488" + "00000002" + "00000004" + "0" * 56,
        "NY000089" + "00000002" + "00000006" + "0" * 17 + "301126" + "0" * 33,
    ]


def test_settlement_round_trip():
    f = parse_incoming_file(settlement(), expected_recipient=SENDER)
    assert f.payments == PAYMENTS
    assert (f.data_sender, f.transmission_number, f.data_recipient) == ("00008080", "0170031", SENDER)
    (a,) = f.settlement_assignments
    assert (a.agreement_id, a.assignment_number, a.account, a.settlement_date) == (
        "001008566", "0000002", ACCOUNT, dt.date(2026, 12, 18))
    assert f.settlement_date == dt.date(2026, 12, 18) and f.mandates == []
    assert PAYMENTS[0].is_avtalegiro and not PAYMENTS[1].is_avtalegiro


def test_reversal_sign():
    rev = Payment(kid="12345674", amount_ore=-500, settlement_date=D, transaction_type=18, transaction_number=1)
    data = generate_settlement_file([rev], data_recipient=SENDER, transmission_number="0000001",
                                    agreement_id="000000001", assignment_number="0000001", account=ACCOUNT,
                                    nets_date=D)
    assert records(data)[2][31:49] == "-00000000000000500"
    assert parse_incoming_file(data).payments == [rev]


def test_mandates_and_register():
    f = parse_incoming_file(mandates(), expected_recipient=SENDER)
    assert [(m.kid, m.active, m.notify) for m in f.mandates] == [
        ("008000011688373", True, True), ("12345674", True, False)]
    assert f.mandate_assignments[0].full_list
    register = apply_mandate_updates({"999": Mandate("999")}, f.mandate_assignments)
    assert set(register) == {"008000011688373", "12345674"}  # full list replaced the old register
    changes = generate_mandate_file([Mandate("12345674", active=False, notify=False, registration_type=2),
                                     Mandate("55555550", registration_type=1)],
                                    data_recipient=SENDER, transmission_number="1091950",
                                    assignment_number="0000002", account=ACCOUNT)
    g = parse_incoming_file(changes)
    assert g.settlement_date is None  # mandate-only file: zeros date
    register = apply_mandate_updates(register, g.mandate_assignments)
    assert set(register) == {"008000011688373", "55555550"}
    assert has_active_mandate(register, "008000011688373") and not has_active_mandate(register, "12345674")


def test_mixed_transmission_with_mandates_and_settlement():
    m = records(mandates())
    s = records(settlement())
    lines = [s[0], *m[1:-1], *s[1:-1],
             "NY000089" + "00000004" + "00000013" + "00000000000014345" + "181226" + "0" * 33]
    f = parse_incoming_file(("\r\n".join(lines) + "\r\n").encode("latin-1"))
    assert len(f.mandates) == 2 and len(f.payments) == 2


BAD = [
    ("sender not Nets", lambda d: patch(d, 1, 9, "00008081"), ("transmission.data_sender", 1, 9)),
    ("service code", lambda d: patch(d, 3, 3, "07"), ("record.service_code", 3, 3)),
    ("transaction type 22", lambda d: patch(patch(d, 3, 5, "22"), 4, 5, "22"), ("record.transaction_type", 3, 5)),
    ("item 3 on type 15", lambda d: replace_record(d, 4, records(d)[3] + "\r\n" + records(d)[6].replace(
        "NY092132", "NY091532")), ("record.transaction_type", 5, 5)),
    ("sign", lambda d: patch(d, 3, 32, "+"), ("field.choice", 3, 32)),
    ("amount", lambda d: patch(d, 3, 40, " "), ("field.padding", 3, 40)),
    ("KID alignment", lambda d: patch(d, 3, 50, "008000011688373".ljust(25)), ("field.alignment", 3, 65)),
    ("settlement date", lambda d: patch(d, 3, 18, "13"), ("field.date", 3, 18)),
    ("debit account", lambda d: patch(d, 4, 50, "x"), ("field.numeric", 4, 50)),
    ("item 2 filler", lambda d: patch(d, 4, 80, "1"), ("field.filler_zeros", 4, 80)),
    ("item 2 missing", lambda d: replace_record(d, 4, None), ("structure.missing_item2", 4, 7)),
    ("item 2 number", lambda d: patch(d, 4, 15, "9"), ("transaction.number_mismatch", 4, 9)),
    ("sequence", lambda d: patch(patch(patch(patch(d, 5, 9, "0000001"), 6, 9, "0000001"), 7, 9, "0000001"),
                                 5, 9, "0000001"), ("transaction.sequence", 5, 9)),
    ("assignment sum", lambda d: patch(d, 8, 41, "6"), ("assignment.sum_amount", 8, 25)),
    ("assignment records", lambda d: patch(d, 8, 24, "8"), ("assignment.number_of_records", 8, 17)),
    ("assignment earliest", lambda d: patch(d, 8, 48, "181226"), ("assignment.earliest_settlement_date", 8, 48)),
    ("transmission count", lambda d: patch(d, 9, 16, "3"), ("transmission.number_of_transactions", 9, 9)),
    ("transmission records", lambda d: patch(d, 9, 24, "8"), ("transmission.number_of_records", 9, 17)),
    ("missing transmission end", lambda d: replace_record(d, 9, None), ("structure.missing_transmission_end", 9, 1)),
    ("missing assignment end", lambda d: replace_record(d, 8, None), ("structure.missing_assignment_end", 8, 1)),
    ("missing transmission start", lambda d: replace_record(d, 1, None), ("structure.missing_transmission_start", 1, 1)),
    ("record length", lambda d: replace_record(d, 5, records(d)[4][:70]), ("record.length", 5, 71)),
    ("blank line", lambda d: d.replace(b"\r\n", b"\r\n\r\n", 1), ("file.blank_line", 2, 1)),
]


@pytest.mark.parametrize("mutate, expected", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_settlement_violations(mutate, expected):
    with pytest.raises(LayoutRejected) as exc:
        parse_incoming_file(mutate(settlement()))
    assert expected in [(i.code, i.record, i.position) for i in exc.value.issues], exc.value.issues


MANDATE_BAD = [
    ("registration type", lambda d: patch(d, 3, 16, "3"), ("field.choice", 3, 16)),
    ("notice flag", lambda d: patch(d, 3, 42, "Y"), ("field.choice", 3, 42)),
    ("KID missing", lambda d: patch(d, 3, 17, " " * 25), ("kid.missing", 3, 41)),
    ("filler", lambda d: patch(d, 3, 43, "1"), ("field.filler_zeros", 3, 43)),
    ("assignment count", lambda d: patch(d, 5, 16, "3"), ("assignment.number_of_transactions", 5, 9)),
    ("assignment type", lambda d: patch(d, 2, 5, "00"), ("record.assignment_type", 2, 5)),
    ("serial order", lambda d: patch(d, 4, 15, "1"), ("transaction.sequence", 4, 9)),
]


@pytest.mark.parametrize("mutate, expected", [b[1:] for b in MANDATE_BAD], ids=[b[0] for b in MANDATE_BAD])
def test_mandate_violations(mutate, expected):
    with pytest.raises(LayoutRejected) as exc:
        parse_incoming_file(mutate(mandates()))
    assert expected in [(i.code, i.record, i.position) for i in exc.value.issues], exc.value.issues


def test_file_for_someone_else_is_rejected():
    with pytest.raises(LayoutRejected) as exc:
        parse_incoming_file(settlement(), expected_recipient="12345678")
    assert (exc.value.code, exc.value.record, exc.value.position) == ("transmission.data_recipient", 1, 24)


def test_netsgiro_reads_our_nets_files():
    netsgiro = pytest.importorskip("netsgiro")
    t = netsgiro.parse(settlement().decode("iso-8859-1"))
    (a,) = t.assignments
    assert (a.agreement_id, a.number, a.account) == ("001008566", "0000002", ACCOUNT)
    first, second = a.transactions
    assert (first.type, first.kid, first.amount_in_cents, first.date) == (15, "008000011688373", 12345, D)
    assert (first.centre_id, first.day_code, first.partial_settlement_number) == ("13", 17, 1)
    assert first.partial_settlement_serial_number == "01464"
    assert (first.reference, first.bank_date, first.debit_account) == ("099038562", D, "99990512341")
    assert second.text == "Kjøp av bøker" and second.kid is None
    m = netsgiro.parse(mandates().decode("iso-8859-1"))
    agreements = m.assignments[0].transactions
    assert [(x.kid, x.notify, int(x.registration_type)) for x in agreements] == [
        ("008000011688373", True, 0), ("12345674", False, 0)]


def test_we_read_netsgiro_written_files():
    pytest.importorskip("netsgiro")
    from netsgiro import records as nr

    lines = [
        nr.TransmissionStart(service_code=0, transmission_number="0000007", data_transmitter="00008080",
                             data_recipient=SENDER),
        nr.AssignmentStart(service_code=9, assignment_type=0, agreement_id="000123456",
                           assignment_number="0000009", assignment_account=ACCOUNT),
        nr.TransactionAmountItem1(service_code=9, transaction_type=15, transaction_number=1, nets_date=D,
                                  amount=4200, kid="12345674", centre_id="20", day_code=17,
                                  partial_settlement_number=3, partial_settlement_serial_number="00042", sign="0"),
        nr.TransactionAmountItem2(service_code=9, transaction_type=15, transaction_number=1,
                                  reference="123456789", form_number="0000000000", bank_date=D,
                                  debit_account="86011117947"),
        nr.AssignmentEnd(service_code=9, assignment_type=0, num_transactions=1, num_records=4,
                         total_amount=4200, nets_date_1=D, nets_date_2=D, nets_date_3=D),
        nr.TransmissionEnd(service_code=0, num_transactions=1, num_records=6, total_amount=4200, nets_date=D),
    ]
    data = "\n".join(r.to_ocr() for r in lines)
    f = parse_incoming_file(data.encode("iso-8859-1"), expected_recipient=SENDER)
    (p,) = f.payments
    assert (p.kid, p.amount_ore, p.settlement_date, p.transaction_type) == ("12345674", 4200, D, 15)
    assert (p.centre_id, p.day_code, p.partial_settlement_number, p.serial_number) == ("20", 17, 3, 42)
    assert (p.archive_reference, p.bank_date, p.payer_account) == ("123456789", D, "86011117947")
    agreement_lines = [
        nr.TransmissionStart(service_code=0, transmission_number="0000008", data_transmitter="00008080",
                             data_recipient=SENDER),
        nr.AssignmentStart(service_code=21, assignment_type=24, assignment_number="0000010",
                           assignment_account=ACCOUNT),
        nr.AvtaleGiroAgreement(service_code=21, transaction_type=94, transaction_number=1, registration_type=2,
                               kid="12345674", notify=False),
        nr.AssignmentEnd(service_code=21, assignment_type=24, num_transactions=1, num_records=3),
        nr.TransmissionEnd(service_code=0, num_transactions=1, num_records=5, total_amount=0, nets_date=D),
    ]
    g = parse_incoming_file("\n".join(r.to_ocr() for r in agreement_lines) + "\n")
    assert [(m.kid, m.active, m.notify, m.registration_type) for m in g.mandates] == [("12345674", False, False, 2)]


def test_banking_days_and_settling_claims():
    assert next_banking_day(dt.date(2026, 12, 19)) == dt.date(2026, 12, 21)  # Saturday -> Monday
    assert next_banking_day(dt.date(2026, 12, 24)) == dt.date(2026, 12, 28)  # Christmas
    assert next_banking_day(dt.date(2026, 4, 2)) == dt.date(2026, 4, 7)  # Maundy Thursday -> after Easter Monday
    assert next_banking_day(dt.date(2026, 5, 17)) == dt.date(2026, 5, 18)  # Constitution Day (Sunday)
    assert next_banking_day(dt.date(2026, 5, 14)) == dt.date(2026, 5, 15)  # Ascension Day
    assert next_banking_day(dt.date(2026, 12, 17)) == dt.date(2026, 12, 17)

    class C:
        def __init__(self, kid, amount_ore, due_date):
            self.kid, self.amount_ore, self.due_date = kid, amount_ore, due_date

    claims = [C("12345674", 100, dt.date(2026, 12, 19)), C("55555550", 200, dt.date(2026, 12, 19))]
    payments, not_debited = settle_claims(claims, {"12345674": Mandate("12345674")})
    assert [(p.kid, p.amount_ore, p.settlement_date, p.transaction_type) for p in payments] == [
        ("12345674", 100, dt.date(2026, 12, 21), 15)]
    assert [(n.claim, n.reason) for n in not_debited] == [(claims[1], "no_mandate")]

    register = {"12345674": Mandate("12345674"), "55555550": Mandate("55555550")}
    month = [C("12345674", 600_000, dt.date(2026, 12, 1)), C("12345674", 500_000, dt.date(2026, 12, 15)),
             C("12345674", 400_000, dt.date(2027, 1, 4)), C("55555550", 100, dt.date(2026, 12, 1))]
    payments, not_debited = settle_claims(month, register, monthly_limit_ore=1_000_000, stopped_kids={"55555550"})
    assert [p.amount_ore for p in payments] == [600_000, 400_000]  # a new month has a fresh limit
    assert [(n.claim.amount_ore, n.reason) for n in not_debited] == [
        (500_000, "limit_exceeded"), (100, "stopped_by_payer")]
    payments, _ = settle_claims(month[:2], register, monthly_limit_ore={"12345674": 2_000_000})
    assert len(payments) == 2


def test_convenience_parsers():
    assert parse_settlement_file(settlement(), expected_recipient=SENDER) == PAYMENTS
    assert PAYMENTS[0].date == D
    assert [m.kid for m in parse_mandate_file(mandates())] == ["008000011688373", "12345674"]
    with pytest.raises(LayoutRejected):
        parse_settlement_file(patch(settlement(), 3, 40, "x"))
