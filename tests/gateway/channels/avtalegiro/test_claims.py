"""Byte-exact layout of the claim file written to Nets (spec v3.3 positions)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os

import pytest

from gateway.channels.avtalegiro.claims import (
    Claim,
    ClaimError,
    ClaimFileOptions,
    build_claim_file,
    build_claim_records,
    write_claim_file_atomic,
)

from .conftest import TODAY, records


def test_every_record_byte_exact(batch):
    lines = records(build_claim_file(batch))
    expected = [
        # transmission start: NY000010, sender 9-16, transmission no 17-23, Nets 24-31, zeros 32-80
        "NY000010" + "55555555" + "1000081" + "00008080" + "0" * 49,
        # assignment start claims: NY210020, zeros 9-17, assignment 18-24, account 25-35, zeros 36-80
        "NY210020" + "0" * 9 + "4000086" + "15038000001" + "0" * 45,
        # amount item 1, type 21: tx 9-15, due 16-21, blanks 22-32, amount 33-49, KID 50-74 right/blank, zeros
        "NY212130" + "0000001" + "171226" + " " * 11 + "00000000000012345" + " " * 10 + "008000011688373" + "0" * 6,
        # amount item 2: tx 9-15, name 16-25 (first 10 chars), blanks 26-50, ext ref 51-75, zeros 76-80
        "NY212131" + "0000001" + "Bjørnstjer" + " " * 25 + "Faktura 168837".ljust(25) + "0" * 5,
        # specification: tx, '4', line 001, column 1/2, 40 chars text, zeros 61-80
        "NY212149" + "0000001" + "4" + "001" + "1" + "Gjelder faktura 168837".ljust(40) + "0" * 20,
        "NY212149" + "0000001" + "4" + "001" + "2" + ("            Forfall 17.12.26").ljust(40) + "0" * 20,
        # line 002 is empty: no records; line 003 fits in column 1, column 2 would be empty: dropped
        "NY212149" + "0000001" + "4" + "003" + "1" + "Takk for at du betaler med AvtaleGiro".ljust(40) + "0" * 20,
        # second claim: type 02 (payee notifies), no spec records
        "NY210230" + "0000002" + "201226" + " " * 11 + "00000000000000100" + " " * 10 + "008000021688389" + "0" * 6,
        "NY210231" + "0000002" + "Åse Ærø   " + " " * 25 + " " * 25 + "0" * 5,
        # assignment end: 2 transactions, 9 records, sum 12445, first/last due date, zeros 54-80
        "NY210088" + "00000002" + "00000009" + "00000000000012445" + "171226" + "201226" + "0" * 27,
        # cancellation assignment (type 36) with a type 93 transaction
        "NY213620" + "0" * 9 + "4000087" + "15038000001" + "0" * 45,
        "NY219330" + "0000001" + "181226" + " " * 11 + "00000000000000500" + " " * 11 + "00800003168831" + "0" * 6,
        "NY219331" + "0000001" + "Ola".ljust(10) + " " * 25 + "Faktura 1".ljust(25) + "0" * 5,
        "NY213688" + "00000001" + "00000004" + "00000000000000500" + "181226" + "181226" + "0" * 27,
        # transmission end: 3 transactions, 15 records, total 12945, earliest due date, zeros 48-80
        "NY000089" + "00000003" + "00000015" + "00000000000012945" + "171226" + "0" * 33,
    ]
    assert lines == expected
    assert all(len(line) == 80 for line in lines)


def test_iso_8859_1_and_line_endings(batch):
    data = build_claim_file(batch)
    assert "Bjørnstjer".encode("iso-8859-1") in data
    assert "Åse Ærø".encode("iso-8859-1") in data
    assert "ø".encode("utf-8") not in data
    assert data.count(b"\r\n") == 15 and data.endswith(b"\r\n")
    assert b"\r\n\r\n" not in data  # never blank lines
    lf = build_claim_file(batch, ClaimFileOptions(line_ending="\n"))
    assert b"\r" not in lf and lf.count(b"\n") == 15
    assert lf.replace(b"\n", b"\r\n") == data
    with pytest.raises(Exception) as exc:
        build_claim_file(batch, ClaimFileOptions(line_ending="\r"))
    assert getattr(exc.value, "code", None) == "file.line_ending"


def test_names_outside_latin1_are_folded_or_rejected(batch):
    claim = Claim("008000011688373", 100, dt.date(2026, 12, 17), "Ődön Łukasz", "Ref €5")
    b = dataclasses.replace(batch, claims=[claim], cancellations=[])
    lines = build_claim_records(b)
    assert lines[3][15:25] == "Odön ?ukas"  # ö is Latin-1, Ő and Ł are not
    assert lines[3][50:75] == "Ref ?5".ljust(25)
    with pytest.raises(ClaimError) as exc:
        build_claim_records(b, ClaimFileOptions(text_policy="strict"))
    assert exc.value.code == "claim.charset" and exc.value.index == 0


def test_only_cancellations(batch):
    b = dataclasses.replace(batch, claims=[])
    lines = build_claim_records(b)
    assert [line[:8] for line in lines] == ["NY000010", "NY213620", "NY219330", "NY219331", "NY213688", "NY000089"]
    assert lines[-1][8:47] == "00000001" + "00000006" + "00000000000000500" + "181226"
    without_item2 = build_claim_records(b, ClaimFileOptions(cancellation_item2=False))
    assert [line[:8] for line in without_item2][2:4] == ["NY219330", "NY213688"]
    assert without_item2[3][16:24] == "00000003"  # records: start, item 1, end


def test_max_specification(batch):
    spec = tuple(f"{i:02d}" + "x" * 78 for i in range(1, 43))
    claim = dataclasses.replace(batch.claims[0], specification=spec)
    lines = build_claim_records(dataclasses.replace(batch, claims=[claim], cancellations=[]))
    specs = [line for line in lines if line.startswith("NY212149")]
    assert len(specs) == 84
    assert specs[-1][16:20] == "0422" and specs[-1][20:60] == "x" * 40
    too_many = dataclasses.replace(claim, specification=spec + ("x",))
    with pytest.raises(ClaimError) as exc:
        build_claim_records(dataclasses.replace(batch, claims=[too_many]))
    assert exc.value.code == "claim.specification"
    too_wide = dataclasses.replace(claim, specification=("y" * 81,))
    with pytest.raises(ClaimError):
        build_claim_records(dataclasses.replace(batch, claims=[too_wide]))


@pytest.mark.parametrize("change, code", [
    (dict(kid="008000011688374"), "claim.kid"),           # check digit
    (dict(kid="123"), "claim.kid"),                       # shorter than 4
    (dict(kid="1009-"), "claim.kid"),                     # '-' cannot be carried in the file
    (dict(amount_ore=0), "claim.amount"),
    (dict(amount_ore=-5), "claim.amount"),
    (dict(amount_ore=10**17), "claim.amount"),
    (dict(external_ref="x" * 26), "claim.external_ref"),
    (dict(notify_payer=False), "claim.spec_without_notification"),
    (dict(due_date=dt.date(2026, 11, 29)), "claim.due_date"),   # passed
    (dict(due_date=dt.date(2027, 12, 1)), "claim.due_date"),    # > 12 months ahead
])
def test_claim_rules(batch, change, code):
    bad = dataclasses.replace(batch.claims[0], **change)
    b = dataclasses.replace(batch, claims=[batch.claims[1], bad])
    with pytest.raises(ClaimError) as exc:
        build_claim_file(b, ClaimFileOptions(today=TODAY))
    assert exc.value.code == code
    assert exc.value.index == 1


def test_kid_structure_options(batch):
    opts = ClaimFileOptions(kid_algorithm="mod11")
    with pytest.raises(ClaimError):
        build_claim_file(batch, opts)  # the fixture KIDs are MOD10
    with pytest.raises(ClaimError) as exc:
        build_claim_file(batch, ClaimFileOptions(kid_lengths=frozenset({15})))
    assert exc.value.index == 0 and "structure" in exc.value.message  # 14-digit cancellation KID
    b = dataclasses.replace(batch, cancellations=[])
    assert build_claim_file(b, ClaimFileOptions(kid_lengths=frozenset({15})))


@pytest.mark.parametrize("change, code", [
    (dict(data_sender="5555555"), "batch.data_sender"),
    (dict(transmission_number="10000x1"), "batch.transmission_number"),
    (dict(assignment_number="400008"), "batch.assignment_number"),
    (dict(account="15038000002"), "batch.account"),
    (dict(claims=[], cancellations=[]), "batch.empty"),
    (dict(cancellation_assignment_number=None), "batch.cancellation_assignment_number"),
    (dict(cancellation_assignment_number="4000086"), "batch.cancellation_assignment_number"),
    (dict(data_recipient="12345678"), "batch.data_recipient"),
])
def test_batch_rules(batch, change, code):
    with pytest.raises(ClaimError) as exc:
        build_claim_file(dataclasses.replace(batch, **change))
    assert exc.value.code == code


def test_atomic_write(tmp_path, batch):
    data = build_claim_file(batch)
    path = write_claim_file_atomic(tmp_path, "ag-1000081.txt", data)
    assert path == os.path.join(tmp_path, "ag-1000081.txt")
    with open(path, "rb") as fh:
        assert fh.read() == data
    assert os.listdir(tmp_path) == ["ag-1000081.txt"]  # no temp file left behind
    with pytest.raises(FileExistsError):
        write_claim_file_atomic(tmp_path, "ag-1000081.txt", b"other")
    with open(path, "rb") as fh:
        assert fh.read() == data  # never clobbered
    write_claim_file_atomic(tmp_path, "ag-1000081.txt", b"other", overwrite=True)
    with open(path, "rb") as fh:
        assert fh.read() == b"other"
    assert sorted(os.listdir(tmp_path)) == ["ag-1000081.txt"]
    for name in ("../x", "a/b", "", ".."):
        with pytest.raises(ValueError):
            write_claim_file_atomic(tmp_path, name, data)


def test_netsgiro_reads_our_claim_file(batch):
    netsgiro = pytest.importorskip("netsgiro")
    data = build_claim_file(batch)
    transmission = netsgiro.parse(data.decode("iso-8859-1"))
    assert transmission.number == "1000081"
    assert transmission.data_transmitter == "55555555"
    assert transmission.data_recipient == "00008080"
    claims, cancellations = transmission.assignments
    assert claims.number == "4000086" and claims.account == "15038000001"
    first, second = claims.transactions
    assert (first.kid, first.amount_in_cents, first.date) == ("008000011688373", 12345, dt.date(2026, 12, 17))
    assert first.type == 21 and second.type == 2
    assert first.payer_name == "Bjørnstjer" and first.reference == "Faktura 168837"
    assert first.text.splitlines()[0].startswith("Gjelder faktura 168837")
    assert cancellations.type == 36 and cancellations.transactions[0].type == 93
    assert cancellations.transactions[0].amount_in_cents == 500


def test_netsgiro_written_claims_equal_ours():
    netsgiro = pytest.importorskip("netsgiro")
    from decimal import Decimal

    t = netsgiro.Transmission(number="1000081", data_transmitter="55555555", data_recipient="00008080")
    a = t.add_assignment(service_code=netsgiro.ServiceCode.AVTALEGIRO,
                         assignment_type=netsgiro.AssignmentType.TRANSACTIONS, number="4000086",
                         account="15038000001")
    a.add_payment_request(kid="008000011688373", due_date=dt.date(2026, 12, 17), amount=Decimal("123.45"),
                          reference="Faktura 168837", payer_name="Kari", bank_notification=False)
    a.add_payment_request(kid="008000021688389", due_date=dt.date(2026, 12, 20), amount=Decimal("1.00"),
                          reference=None, payer_name="Per", bank_notification=False)
    theirs = t.to_ocr().encode("iso-8859-1")
    from gateway.channels.avtalegiro.claims import ClaimBatch

    ours = build_claim_file(ClaimBatch(
        data_sender="55555555", transmission_number="1000081", assignment_number="4000086",
        account="15038000001",
        claims=[Claim("008000011688373", 12345, dt.date(2026, 12, 17), "Kari", "Faktura 168837"),
                Claim("008000021688389", 100, dt.date(2026, 12, 20), "Per")]),
        ClaimFileOptions(line_ending="\n"))
    assert ours == theirs + b"\n"


def test_specification_as_text_block(batch):
    claim = dataclasses.replace(batch.claims[0], specification="Linje 1\n\nLinje 3")
    lines = build_claim_records(dataclasses.replace(batch, claims=[claim], cancellations=[]))
    specs = [(line[16:20], line[20:60].rstrip()) for line in lines if line.startswith("NY212149")]
    assert specs == [("0011", "Linje 1"), ("0031", "Linje 3")]
