"""The Nets file-channel simulator: pick-up, validation at the spec's reject levels, receipts,
mandate files and settlement (next banking day, mandates, stops, monthly limit)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest

from gateway.channels.avtalegiro.claims import Claim, ClaimBatch, build_claim_file
from gateway.channels.avtalegiro.incoming import (
    parse_incoming_file,
    parse_settlement_file,
)
from gateway.channels.avtalegiro.receipts import ReceiptError, parse_receipt
from gateway.channels.avtalegiro.simulator import NetsSimulator

from .conftest import ACCOUNT, SENDER, TODAY, patch


@pytest.fixture
def sim(tmp_path: Path) -> NetsSimulator:
    return NetsSimulator(tmp_path / "out", tmp_path / "in", data_sender=SENDER, account=ACCOUNT, today=TODAY)


def drop(sim: NetsSimulator, name: str, data: bytes) -> Path:
    path = sim.outgoing / name
    path.write_bytes(data)
    return path


def receipt_of(processed) -> dict:
    return json.loads(processed.receipt_path.read_text())


def test_accepts_a_valid_file_and_writes_a_receipt(sim: NetsSimulator, batch: ClaimBatch):
    drop(sim, "claims-1.txt", build_claim_file(batch))
    [done] = sim.process()
    assert done.status == "accepted" and not list(sim.outgoing.iterdir())
    assert (sim.consumed / "claims-1.txt").exists()
    assert [c.kid for c in sim.pending] == ["008000011688373", "008000021688389"]
    receipt = parse_receipt(done.receipt_path.read_bytes())
    assert receipt.kind == "claim_file" and receipt.status == "accepted" and receipt.transmission_number == "1000081"
    assert [(c.kid, c.status, c.transaction_type) for c in receipt.claims] == [
        ("008000011688373", "accepted", "21"), ("008000021688389", "accepted", "02"),
        ("00800003168831", "accepted", "93")]
    assert sim.transmission_numbers == {"1000081": TODAY}
    assert set(sim.assignment_numbers) == {"4000086", "4000087"}


def test_transaction_error_rejects_only_that_claim(sim: NetsSimulator, batch: ClaimBatch):
    data = build_claim_file(batch)
    # record 8 is item 1 of the second claim (after 3 specification records): break its KID check digit (last KID digit at column 74)
    broken = patch(data, 8, 74, "0")
    drop(sim, "claims.txt", broken)
    [done] = sim.process()
    receipt = receipt_of(done)
    assert receipt["status"] == "partially_accepted"
    kid_error = receipt["errors"][0]
    assert kid_error["record"] == 8 and kid_error["scope"] == "transaction" and kid_error["code"] == "kid.check_digit"
    assert [c.kid for c in sim.pending] == ["008000011688373"]


def test_assignment_error_rejects_the_assignment(sim: NetsSimulator, batch: ClaimBatch):
    sim.account = "86011117947"  # the claims' account is not on this agreement
    drop(sim, "claims.txt", build_claim_file(dataclasses.replace(batch, cancellations=())))
    [done] = sim.process()
    receipt = receipt_of(done)
    assert receipt["status"] == "rejected"
    [error] = [e for e in receipt["errors"] if e["code"] == "assignment.account"]
    assert (error["record"], error["position"], error["scope"]) == (2, 25, "assignment")
    assert sim.pending == []


def test_transmission_error_rejects_everything(sim: NetsSimulator, batch: ClaimBatch):
    data = build_claim_file(batch)
    lines = data.decode("iso-8859-1").split("\r\n")
    last = len(lines) - 1  # record number of the transmission end
    drop(sim, "claims.txt", patch(data, last, 25, "00000000000000001"))  # wrong total amount
    [done] = sim.process()
    receipt = receipt_of(done)
    assert receipt["status"] == "rejected"
    assert {(e["code"], e["record"], e["position"]) for e in receipt["errors"]} == {
        ("transmission.sum_amount", last, 25)}
    assert all(c["status"] == "rejected" for c in receipt["claims"]) and sim.pending == []


@pytest.mark.parametrize("record, position, text, code", [
    (1, 9, "55555556", "transmission.data_sender"),
    (3, 33, "0000000000000000A", "field.numeric"),
    (4, 16, " Bjorn", "field.alignment"),
])
def test_layout_violations_carry_record_and_position(sim: NetsSimulator, batch: ClaimBatch, record: int,
                                                     position: int, text: str, code: str):
    drop(sim, "claims.txt", patch(build_claim_file(batch), record, position, text))
    [done] = sim.process()
    errors = receipt_of(done)["errors"]
    assert any(e["record"] == record and e["code"].startswith(code.split(".")[0]) for e in errors), errors
    assert done.status in ("rejected", "partially_accepted")


def test_utf8_and_blank_lines_are_rejected(sim: NetsSimulator, batch: ClaimBatch):
    data = build_claim_file(batch)
    drop(sim, "utf8.txt", data.decode("iso-8859-1").encode("utf-8"))
    drop(sim, "blank.txt", data + b"\r\n")
    done = {d.name: receipt_of(d) for d in sim.process()}
    assert done["utf8.txt"]["status"] == "rejected" and any(e["code"].startswith("encoding") or
                                                            e["code"] == "record.length"
                                                            for e in done["utf8.txt"]["errors"])
    assert any(e["code"] == "file.blank_line" for e in done["blank.txt"]["errors"])


def test_numbers_are_checked_for_reuse(sim: NetsSimulator, batch: ClaimBatch):
    drop(sim, "a.txt", build_claim_file(batch))
    sim.process()
    again = dataclasses.replace(batch, transmission_number="1000082")  # same assignment numbers
    drop(sim, "b.txt", build_claim_file(again))
    [done] = sim.process()
    assert {e["code"] for e in receipt_of(done)["errors"]} == {"assignment.duplicate_number"}
    same_tn = dataclasses.replace(batch, assignment_number="4000090", cancellation_assignment_number="4000091")
    drop(sim, "c.txt", build_claim_file(same_tn))
    [done] = sim.process()
    assert {e["code"] for e in receipt_of(done)["errors"]} == {"transmission.duplicate_number"}
    # 12 months + 1 day later the assignment numbers are free again (transmission numbers stay unique)
    sim.today = dt.date(2027, 12, 2)
    later = ClaimBatch(SENDER, "1000099", "4000086", ACCOUNT, [Claim("008000011688373", 100, dt.date(2027, 12, 10))])
    drop(sim, "d.txt", build_claim_file(later))
    [done] = sim.process()
    assert done.status == "accepted"


def test_mandate_files(sim: NetsSimulator):
    first = sim.add_mandate("008000011688373")
    second = sim.delete_mandate("008000011688373")
    sim.add_mandate("008000021688389", notify=False)
    full = sim.send_mandate_list()
    m1 = parse_incoming_file(first.read_bytes(), expected_recipient=SENDER).mandates
    m2 = parse_incoming_file(second.read_bytes(), expected_recipient=SENDER).mandates
    m3 = parse_incoming_file(full.read_bytes(), expected_recipient=SENDER)
    assert [(m.registration_type, m.active) for m in m1 + m2] == [(1, True), (2, False)]
    assert [(m.kid, m.registration_type, m.notify) for m in m3.mandates] == [("008000021688389", 0, False)]
    assert m3.mandate_assignments[0].account == ACCOUNT
    assert sorted(p.name for p in sim.incoming.iterdir()) == [first.name, second.name, "0000003-mandates.txt",
                                                             full.name]


def test_settlement_follows_mandates_stops_and_limits(sim: NetsSimulator, batch: ClaimBatch):
    claims = [Claim("008000011688373", 60_000, dt.date(2026, 12, 19)),  # Saturday → Monday 21st
              Claim("008000021688389", 500_000, dt.date(2026, 12, 17)),
              Claim("008000021688389", 600_000, dt.date(2026, 12, 18)),  # same payer: over NOK 10 000 in December
              Claim("008000041688393", 100, dt.date(2026, 12, 17))]     # no mandate
    drop(sim, "claims.txt", build_claim_file(dataclasses.replace(batch, claims=claims, cancellations=())))
    assert sim.process()[0].status == "accepted"
    sim.add_mandate("008000011688373")
    sim.add_mandate("008000021688389")
    assert sim.settle(up_to=dt.date(2026, 12, 16)) == []  # nothing due yet
    payments = sim.settle(up_to=dt.date(2026, 12, 31))
    assert [(p.kid, p.amount_ore, p.settlement_date) for p in payments] == [
        ("008000011688373", 60_000, dt.date(2026, 12, 21)), ("008000021688389", 500_000, dt.date(2026, 12, 17))]
    ocr = sorted(sim.incoming.glob("*-ocr.txt"))[-1]
    parsed = parse_settlement_file(ocr.read_bytes(), expected_recipient=SENDER)
    assert [(p.kid, p.amount_ore, p.transaction_type) for p in parsed] == [
        ("008000011688373", 60_000, 15), ("008000021688389", 500_000, 15)]
    [receipt_path] = sim.incoming.glob("*-not-debited.receipt.json")
    receipt = parse_receipt(receipt_path.read_bytes())
    assert receipt.kind == "not_debited"
    assert {(c.kid, c.reason) for c in receipt.claims} == {("008000021688389", "limit_exceeded"),
                                                           ("008000041688393", "no_mandate")}
    assert sim.pending == []


def test_settlement_serials_are_unique_across_files(sim: NetsSimulator):
    first = sim.add_payment("008000011688373", 100, settlement_date=dt.date(2026, 12, 1))
    second = sim.add_payment("008000011688373", 100, settlement_date=dt.date(2026, 12, 1))
    a = parse_settlement_file(first.read_bytes())
    b = parse_settlement_file(second.read_bytes())
    assert a[0].identity != b[0].identity


def test_receipt_parser_refuses_other_documents():
    with pytest.raises(ReceiptError):
        parse_receipt(b"NY000010")
    with pytest.raises(ReceiptError):
        parse_receipt(json.dumps({"format": "something-else"}).encode())
    with pytest.raises(ReceiptError):
        parse_receipt(json.dumps({"format": "sendgw-nets-receipt/1", "kind": "claim_file", "created_at": "x",
                                  "status": "accepted"}).encode())


async def test_background_pick_up(sim: NetsSimulator, batch: ClaimBatch):
    await sim.start(interval=0.02)
    try:
        drop(sim, "claims.txt", build_claim_file(batch))
        for _ in range(150):
            if sim.processed:
                break
            await asyncio.sleep(0.02)
    finally:
        await sim.stop()
    assert [p.status for p in sim.processed] == ["accepted"]
