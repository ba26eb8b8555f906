"""Simulator parser: round trip, and every layout violation with record + column."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from gateway.channels.avtalegiro.claims import ClaimFileOptions, build_claim_file
from gateway.channels.avtalegiro.layout import LayoutRejected, Scope
from gateway.channels.avtalegiro.validator import ValidatorOptions, parse_claim_file, validate_claim_file

from .conftest import ACCOUNT, SENDER, TODAY, patch, records, replace_record

# Record numbers in the fixture file:
# 1 TS | 2 AS claims | 3 I1 tx1 (21) | 4 I2 | 5-7 spec | 8 I1 tx2 (02) | 9 I2 | 10 AE
# 11 AS cancellations | 12 I1 (93) | 13 I2 | 14 AE | 15 TE


@pytest.fixture
def data(batch) -> bytes:
    return build_claim_file(batch)


def issues(report):
    return [(e.code, e.record, e.position) for e in report.errors]


def test_round_trip(batch, data):
    opts = ValidatorOptions(expected_data_sender=SENDER, accounts=frozenset({ACCOUNT}), today=TODAY,
                            kid_algorithm="mod10", kid_lengths=frozenset({14, 15}), line_ending="\r\n",
                            consecutive_transaction_numbers=True)
    report = parse_claim_file(data, opts)
    assert report.ok and report.warnings == []
    assert report.data_sender == SENDER and report.transmission_number == "1000081"
    assert report.line_ending == "\r\n"
    claims = report.accepted_claims()
    assert [(c.kid, c.amount_ore, c.due_date, c.notify_payer) for c in claims] == [
        (x.kid, x.amount_ore, x.due_date, x.notify_payer) for x in batch.claims]
    assert claims[0].payer_name == "Bjørnstjer" and claims[0].external_ref == "Faktura 168837"
    assert claims[0].specification == tuple(s.rstrip() for s in batch.claims[0].specification)
    assert claims[1].payer_name == "Åse Ærø" and claims[1].specification == ()
    (cancel,) = report.accepted_cancellations()
    assert (cancel.kid, cancel.amount_ore, cancel.is_cancellation) == ("00800003168831", 500, True)
    assert [a.number for a in report.assignments] == ["4000086", "4000087"]


def test_lf_file_is_accepted_but_can_be_required_crlf(batch):
    lf = build_claim_file(batch, ClaimFileOptions(line_ending="\n"))
    assert validate_claim_file(lf).ok
    report = validate_claim_file(lf, ValidatorOptions(line_ending="\r\n"))
    assert ("file.line_ending", 1, 81) in issues(report)
    no_final = lf.rstrip(b"\n")
    assert validate_claim_file(no_final).ok


MUTATIONS = [
    # (description, mutate(data) -> bytes, expected (code, record, position))
    ("record too long", lambda d: replace_record(d, 3, records(d)[2] + "0"), ("record.length", 3, 81)),
    ("record too short", lambda d: replace_record(d, 3, records(d)[2][:79]), ("record.length", 3, 80)),
    ("control character", lambda d: patch(d, 4, 20, "\x01"), ("encoding.control_char", 4, 20)),
    ("C1 byte (cp1252 euro)", lambda d: patch(d, 4, 20, "\x80"), ("encoding.control_char", 4, 20)),
    ("blank line", lambda d: d.replace(b"\r\n", b"\r\n\r\n", 5), ("file.blank_line", 6, 1)),
    ("blank record of spaces", lambda d: replace_record(d, 6, " " * 80), ("file.blank_line", 6, 1)),
    ("format code", lambda d: patch(d, 3, 1, "MY"), ("record.format_code", 3, 1)),
    ("record type", lambda d: patch(d, 3, 7, "33"), ("record.record_type", 3, 7)),
    ("mandate record in claim file", lambda d: patch(d, 3, 5, "9470"), ("record.record_type", 3, 7)),
    ("service code", lambda d: patch(d, 3, 3, "09"), ("record.service_code", 3, 3)),
    ("transmission service code", lambda d: patch(d, 1, 3, "21"), ("record.service_code", 1, 3)),
    ("transaction type", lambda d: patch(d, 8, 5, "03"), ("record.transaction_type", 8, 5)),
    ("assignment type", lambda d: patch(d, 2, 5, "24"), ("record.assignment_type", 2, 5)),
    ("spec with type 02 code", lambda d: patch(d, 5, 5, "02"), ("spec.transaction_type", 5, 5)),
    ("non-numeric amount", lambda d: patch(d, 3, 40, "A"), ("field.numeric", 3, 40)),
    ("amount blank padded", lambda d: patch(d, 3, 33, " "), ("field.padding", 3, 33)),
    ("KID left aligned", lambda d: patch(d, 3, 50, "008000011688373".ljust(25)), ("field.alignment", 3, 65)),
    ("KID with letter", lambda d: patch(d, 3, 70, "X"), ("field.kid_format", 3, 70)),
    ("KID missing", lambda d: patch(d, 3, 50, " " * 25), ("kid.missing", 3, 74)),
    ("KID check digit", lambda d: patch(d, 3, 74, "4"), ("kid.check_digit", 3, 60)),
    ("KID too short", lambda d: patch(d, 3, 50, " " * 22 + "125"), ("kid.length", 3, 72)),
    ("name not left aligned", lambda d: patch(d, 4, 16, " Bjørnstj"), ("field.alignment", 4, 16)),
    ("zero filler", lambda d: patch(d, 1, 80, "1"), ("field.filler_zeros", 1, 80)),
    ("blank filler", lambda d: patch(d, 3, 22, "0"), ("field.filler_blanks", 3, 22)),
    ("item 2 blank filler", lambda d: patch(d, 4, 40, "x"), ("field.filler_blanks", 4, 40)),
    ("spec zero filler", lambda d: patch(d, 5, 61, " "), ("field.filler_zeros", 5, 61)),
    ("day 32", lambda d: patch(d, 3, 16, "32"), ("field.date", 3, 16)),
    ("month 13", lambda d: patch(d, 3, 18, "13"), ("field.date", 3, 18)),
    ("30 February", lambda d: patch(d, 3, 16, "300227"), ("field.date", 3, 16)),
    ("transaction number not ascending",
     lambda d: patch(patch(d, 8, 9, "0000001"), 9, 9, "0000001"), ("transaction.sequence", 8, 9)),
    ("transaction number zero",
     lambda d: patch(patch(patch(patch(patch(d, 3, 9, "0000000"), 4, 9, "0000000"), 5, 9, "0000000"),
                           6, 9, "0000000"), 7, 9, "0000000"), ("transaction.number", 3, 9)),
    ("item 2 transaction number", lambda d: patch(d, 4, 9, "0000003"), ("transaction.number_mismatch", 4, 9)),
    ("spec transaction number", lambda d: patch(d, 6, 9, "0000002"), ("transaction.number_mismatch", 6, 9)),
    ("item 2 transaction type", lambda d: patch(d, 4, 5, "02"), ("transaction.type_mismatch", 4, 5)),
    ("cancellation type in claims", lambda d: patch(patch(d, 8, 5, "93"), 9, 5, "93"), ("transaction.type", 8, 5)),
    ("claim type in cancellations", lambda d: patch(patch(d, 12, 5, "02"), 13, 5, "02"), ("transaction.type", 12, 5)),
    ("item 2 missing", lambda d: replace_record(d, 9, None), ("structure.missing_item2", 9, 7)),
    ("item 2 twice", lambda d: replace_record(d, 10, records(d)[8]), ("structure.item2_without_item1", 10, 7)),
    ("spec before item 2", lambda d: replace_record(replace_record(d, 4, records(d)[4]), 5, records(d)[3]),
     ("structure.spec_position", 4, 7)),
    ("spec on type 02 claim", lambda d: replace_record(d, 9, records(d)[8] + "\r\n" + records(d)[4].replace(
        "NY2121490000001", "NY2121490000002")), ("spec.without_notification", 10, 5)),
    ("spec line 043", lambda d: patch(d, 5, 17, "043"), ("spec.line_number", 5, 17)),
    ("spec line 000", lambda d: patch(d, 5, 17, "000"), ("spec.line_number", 5, 17)),
    ("spec column 3", lambda d: patch(d, 5, 20, "3"), ("spec.column", 5, 20)),
    ("spec duplicate", lambda d: patch(d, 6, 20, "1"), ("spec.duplicate", 6, 17)),
    ("spec message type", lambda d: patch(d, 5, 16, "5"), ("field.constant", 5, 16)),
    ("data recipient not Nets", lambda d: patch(d, 1, 31, "1"), ("field.constant", 1, 31)),
    ("assignment start filler", lambda d: patch(d, 2, 9, "1"), ("field.filler_zeros", 2, 9)),
    ("duplicate assignment number", lambda d: patch(d, 11, 18, "4000086"), ("assignment.duplicate_number", 11, 18)),
    ("assignment end: transactions", lambda d: patch(d, 10, 9, "00000003"), ("assignment.number_of_transactions", 10, 9)),
    ("assignment end: records", lambda d: patch(d, 10, 17, "00000010"), ("assignment.number_of_records", 10, 17)),
    ("assignment end: sum", lambda d: patch(d, 10, 41, "6"), ("assignment.sum_amount", 10, 25)),
    ("assignment end: earliest", lambda d: patch(d, 10, 42, "181226"), ("assignment.earliest_due_date", 10, 42)),
    ("assignment end: latest", lambda d: patch(d, 10, 48, "191226"), ("assignment.latest_due_date", 10, 48)),
    ("assignment end type", lambda d: patch(d, 10, 5, "36"), ("assignment.type_mismatch", 10, 5)),
    ("transmission end: transactions", lambda d: patch(d, 15, 16, "4"), ("transmission.number_of_transactions", 15, 9)),
    ("transmission end: records", lambda d: patch(d, 15, 24, "6"), ("transmission.number_of_records", 15, 17)),
    ("transmission end: sum", lambda d: patch(d, 15, 25, "1"), ("transmission.sum_amount", 15, 25)),
    ("transmission end: date", lambda d: patch(d, 15, 42, "181226"), ("transmission.earliest_due_date", 15, 42)),
    ("transmission end: date zeros", lambda d: patch(d, 15, 42, "000000"), ("transmission.earliest_due_date", 15, 42)),
    ("missing transmission start", lambda d: replace_record(d, 1, None), ("structure.missing_transmission_start", 1, 1)),
    ("missing transmission end", lambda d: replace_record(d, 15, None), ("structure.missing_transmission_end", 15, 1)),
    ("missing assignment end", lambda d: replace_record(d, 10, None), ("structure.missing_assignment_end", 10, 1)),
    ("missing last assignment end", lambda d: replace_record(d, 14, None), ("structure.missing_assignment_end", 14, 1)),
    ("missing assignment start", lambda d: replace_record(d, 11, None), ("structure.outside_assignment", 11, 7)),
    ("record after transmission end", lambda d: d + records(d)[0].encode() + b"\r\n",
     ("structure.after_transmission_end", 16, 1)),
    ("second transmission start", lambda d: replace_record(d, 11, records(d)[0] + "\r\n" + records(d)[10]),
     ("structure.duplicate_transmission_start", 11, 1)),
]


@pytest.mark.parametrize("mutate, expected", [m[1:] for m in MUTATIONS], ids=[m[0] for m in MUTATIONS])
def test_every_violation_is_rejected_with_record_and_position(data, mutate, expected):
    bad = mutate(data)
    assert bad != data
    report = validate_claim_file(bad)
    assert not report.ok
    assert expected in issues(report), issues(report)
    with pytest.raises(LayoutRejected) as exc:
        parse_claim_file(bad)
    assert exc.value.issues and exc.value.record is not None and exc.value.position is not None


def test_first_issue_is_the_mutation_for_field_errors(data):
    report = validate_claim_file(patch(data, 3, 74, "4"))
    assert issues(report) == [("kid.check_digit", 3, 60)]
    with pytest.raises(LayoutRejected) as exc:
        parse_claim_file(patch(data, 3, 74, "4"))
    assert (exc.value.code, exc.value.record, exc.value.position) == ("kid.check_digit", 3, 60)


def test_utf8_text_detected(data):
    lines = data.split(b"\r\n")
    name = "Bjørn".encode("utf-8").ljust(10)
    lines[3] = lines[3][:15] + name + lines[3][25:]
    report = validate_claim_file(b"\r\n".join(lines))
    assert ("encoding.utf8", 4, 18) in issues(report)
    assert validate_claim_file(b"\r\n".join(lines), ValidatorOptions(reject_utf8=False)).ok
    # UTF-8 that also breaks the length
    report = validate_claim_file(data.replace("Åse Ærø".encode("latin-1"), "Åse Ærø".encode("utf-8")))
    assert ("record.length", 9, 81) in issues(report)


def test_mixed_line_endings_and_empty_file(data):
    mixed = data.replace(b"\r\n", b"\n", 1)
    assert "file.mixed_line_endings" in [e.code for e in validate_claim_file(mixed).errors]
    assert issues(validate_claim_file(b"")) == [("file.empty", 1, 1)]
    with pytest.raises(LayoutRejected):
        parse_claim_file("NY000010")


def test_agreement_knowledge(data):
    cases = [
        (ValidatorOptions(expected_data_sender="12345678"), ("transmission.data_sender", 1, 9)),
        (ValidatorOptions(known_transmission_numbers=frozenset({"1000081"})), ("transmission.duplicate_number", 1, 17)),
        (ValidatorOptions(known_assignment_numbers=frozenset({"4000087"})), ("assignment.duplicate_number", 11, 18)),
        (ValidatorOptions(accounts=frozenset({"86011117947"})), ("assignment.account", 2, 25)),
        (ValidatorOptions(kid_algorithm="mod11"), ("kid.check_digit", 3, 60)),
        (ValidatorOptions(kid_lengths=frozenset({15})), ("kid.structure", 12, 61)),
        (ValidatorOptions(today=dt.date(2026, 12, 18)), ("transaction.due_date", 3, 16)),
        (ValidatorOptions(today=dt.date(2025, 12, 16)), ("transaction.due_date", 3, 16)),
    ]
    for opts, expected in cases:
        assert expected in issues(validate_claim_file(data, opts)), (opts, issues(validate_claim_file(data, opts)))


def test_consecutive_numbers_option(data):
    gap = patch(patch(data, 8, 9, "0000005"), 9, 9, "0000005")
    assert validate_claim_file(gap).ok  # spec: ascending, gaps allowed
    report = validate_claim_file(gap, ValidatorOptions(consecutive_transaction_numbers=True))
    assert ("transaction.sequence", 8, 9) in issues(report)


def test_empty_spec_record_is_a_warning(data):
    bad = patch(data, 7, 21, " " * 40)
    report = validate_claim_file(bad)
    assert report.ok
    assert [(w.code, w.record, w.position) for w in report.warnings] == [("spec.empty", 7, 21)]


def test_reject_levels(data):
    # transaction level: only that claim is dropped
    report = validate_claim_file(patch(data, 3, 74, "4"))
    assert not report.transmission_rejected
    assert report.errors[0].scope is Scope.TRANSACTION
    assert report.assignments[0].rejected_transactions == {1}
    assert [c.transaction_number for c in report.accepted_claims()] == [2]
    assert len(report.accepted_cancellations()) == 1
    # assignment level: the whole assignment is dropped, the other one stays
    report = validate_claim_file(patch(data, 10, 41, "6"))
    assert report.errors[0].scope is Scope.ASSIGNMENT
    assert report.accepted_claims() == [] and len(report.accepted_cancellations()) == 1
    # missing assignment start: that assignment is lost, the claims assignment stays
    report = validate_claim_file(patch(replace_record(data, 11, None), 14, 17, "00000014"))
    assert issues(report) == [("structure.outside_assignment", n, 7) for n in (11, 12, 13)]
    assert not report.transmission_rejected
    assert len(report.accepted_claims()) == 2 and report.accepted_cancellations() == []
    # transmission level: nothing is processed
    report = validate_claim_file(patch(data, 15, 25, "1"))
    assert report.transmission_rejected
    assert report.accepted_claims() == [] and report.accepted_cancellations() == []


def test_netsgiro_written_file_passes_with_empty_spec_warnings():
    netsgiro = pytest.importorskip("netsgiro")
    from decimal import Decimal

    t = netsgiro.Transmission(number="0000001", data_transmitter=SENDER, data_recipient="00008080")
    a = t.add_assignment(service_code=netsgiro.ServiceCode.AVTALEGIRO,
                         assignment_type=netsgiro.AssignmentType.TRANSACTIONS, number="0000002", account=ACCOUNT)
    a.add_payment_request(kid="008000011688373", due_date=dt.date(2026, 12, 17), amount=Decimal("10.00"),
                          reference="Ref", payer_name="Kari Nordmann", bank_notification="Kort tekst")
    data = (t.to_ocr() + "\n").encode("iso-8859-1")
    report = parse_claim_file(data)
    (claim,) = report.accepted_claims()
    assert (claim.kid, claim.amount_ore, claim.notify_payer, claim.specification) == (
        "008000011688373", 1000, True, ("Kort tekst",))
    # netsgiro sends the empty column-2 record the spec forbids: we warn about it
    assert [(w.code, w.record) for w in report.warnings] == [("spec.empty", 6)]


def test_writer_output_always_passes_validator(batch):
    for notify in (True, False):
        claims = [dataclasses.replace(c, notify_payer=notify, specification=c.specification if notify else ())
                  for c in batch.claims]
        for ending in ("\r\n", "\n"):
            data = build_claim_file(dataclasses.replace(batch, claims=claims), ClaimFileOptions(line_ending=ending))
            assert validate_claim_file(data, ValidatorOptions(line_ending=ending, today=TODAY)).ok


def test_account_check_digit_warns_or_rejects(data):
    fake = patch(data, 2, 25, "88888888888")  # netsgiro's example account fails MOD11
    fake = patch(fake, 11, 25, "88888888888")
    report = validate_claim_file(fake)
    assert report.ok
    assert [(w.code, w.record, w.position) for w in report.warnings] == [
        ("assignment.account_check_digit", 2, 25), ("assignment.account_check_digit", 11, 25)]
    strict = validate_claim_file(patch(data, 2, 35, "2"), ValidatorOptions(check_account_mod11=True))
    assert issues(strict) == [("assignment.account", 2, 25)]
    assert strict.accepted_claims() == [] and len(strict.accepted_cancellations()) == 1
