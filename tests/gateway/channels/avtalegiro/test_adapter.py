"""AvtaleGiroAdapter end to end against the Nets file-channel simulator.

Covers: mandate → reachable → claim file → accepted by the simulator → settlement → paid; not
reachable (no KID, bad KID, no mandate, deleted mandate, full list without the KID); invalid data
(credit note, zero amount, foreign currency, past due date, bad KID); a layout violation rejected
by the simulator with record and position arriving as `failed`; idempotent resubmit (also after a
restart and after a crash between recording and dropping); unmatched payments reported, never
dropped; counters unique across restarts and never reused within 12 months + 1 day.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.channels.avtalegiro.adapter import (
    AvtaleGiroAdapter,
    AvtaleGiroConfig,
    specification_lines,
)
from gateway.channels.avtalegiro.incoming import parse_incoming_file
from gateway.channels.avtalegiro.simulator import NetsSimulator
from gateway.channels.avtalegiro.state import StateStore, reuse_cutoff
from gateway.channels.avtalegiro.validator import ValidatorOptions, parse_claim_file
from gateway.channels.base import ChannelError, DeliveryRequest, Reachability, Recipient
from gateway.invoice import InvoiceFacts, extract_invoice_facts
from gateway.kid import make_kid

SENDER = "55555555"
ACCOUNT = "15038000001"
TODAY = dt.date(2026, 11, 30)  # a Monday
DUE = dt.date(2026, 12, 18)  # a Friday, a banking day
EXAMPLE = "ehf-billing-3/examples/ehf-3-faktura-1.xml"


def kid(n: int) -> str:
    return make_kid(f"{n:08d}", "mod10")


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    return {"outgoing_dir": tmp_path / "to-nets", "incoming_dir": tmp_path / "from-nets",
            "state_dir": tmp_path / "state"}


@pytest.fixture
def settings(dirs: dict[str, Path]) -> dict:
    return {"data_sender": SENDER, "account": ACCOUNT, **{k: str(v) for k, v in dirs.items()},
            "scan_interval": 0, "reachability_ttl": 0, "incoming_grace_seconds": 0}


def make_adapter(settings: dict, **overrides) -> AvtaleGiroAdapter:
    return AvtaleGiroAdapter(AvtaleGiroConfig.from_dict({**settings, **overrides}), today=lambda: TODAY)


@pytest.fixture
def adapter(settings: dict) -> AvtaleGiroAdapter:
    return make_adapter(settings)


@pytest.fixture
def sim(dirs: dict[str, Path]) -> NetsSimulator:
    return NetsSimulator(dirs["outgoing_dir"], dirs["incoming_dir"], data_sender=SENDER, account=ACCOUNT, today=TODAY)


@pytest.fixture(scope="module")
def facts(shared_dir: Path) -> InvoiceFacts:
    return extract_invoice_facts((shared_dir / "conformance" / EXAMPLE).read_bytes())


def invoice(facts: InvoiceFacts, *, kid_: str, due: dt.date | None = DUE, **changes) -> InvoiceFacts:
    means = tuple(dataclasses.replace(m, kid=kid_) for m in facts.payment_means)
    return dataclasses.replace(facts, payment_means=means, due_date=due, **changes)


def request(facts: InvoiceFacts, delivery_id: str = "dlv-1", **kw) -> DeliveryRequest:
    inv = invoice(facts, **kw)
    return DeliveryRequest(delivery_id, inv.seller.orgnr, inv, b"<Invoice/>", b"%PDF-1.7 test",
                           Recipient(name="Kari Nordmann", kid=inv.kid), Reachability.ok(reference=inv.kid))


async def wait_for(predicate, timeout: float = 3.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


# -- config --------------------------------------------------------------------------------------------


def test_config_from_dict(settings: dict):
    cfg = AvtaleGiroConfig.from_dict({**settings, "kid_lengths": [9, 15], "line_ending": "\n", "cost": 1})
    assert cfg.data_sender == SENDER and cfg.account == ACCOUNT
    assert cfg.kid_lengths == (9, 15) and cfg.line_ending == "LF" and cfg.notify_payer is True
    assert cfg.archive_path == str(Path(settings["state_dir"]) / "archive")
    alias = AvtaleGiroConfig.from_dict({**{k: v for k, v in settings.items() if k != "account"},
                                        "agreement_account": "1503.80.00001"})
    assert alias.account == ACCOUNT
    bare = AvtaleGiroConfig.from_dict({k: v for k, v in settings.items() if k != "state_dir"} |
                                      {"kid_algorithm": "MOD11", "mandate_api": {"base_url": "https://x.example"}})
    assert bare.state_dir == str(Path(settings["incoming_dir"]) / ".sendgw-state")
    assert bare.kid_algorithm == "mod11" and bare.mandate_api == {"base_url": "https://x.example"}


@pytest.mark.parametrize("change, message", [
    ({"data_sender": "1234"}, "8 digits"),
    ({"account": "15038000002"}, "account"),
    ({"incoming_dir": ""}, "incoming_dir"),
    ({"line_ending": "CR"}, "line_ending"),
    ({"kid_algorithm": "luhn"}, "kid_algorithm"),
    ({"kid_lengths": [3]}, "kid_lengths"),
    ({"number_start": 0}, "number_start"),
    ({"file_name_pattern": "claims.txt"}, "transmission_number"),
    ({"file_name_pattern": "../{transmission_number}"}, "plain"),
    ({"mandate_api": {"base_url": "http://mandates.example"}}, "https"),
    ({"mandate_api": {"base_url": "https://mandates.example", "client_cert_file": "c.pem"}}, "together"),
    ({"surprise": 1}, "unknown"),
])
def test_config_rejects(settings: dict, change: dict, message: str):
    with pytest.raises(ValueError, match=message):
        AvtaleGiroConfig.from_dict({**settings, **change})


# -- the whole way ------------------------------------------------------------------------------------


async def test_mandate_claim_settlement_paid(adapter: AvtaleGiroAdapter, sim: NetsSimulator, facts: InvoiceFacts,
                                             dirs: dict[str, Path]):
    k = kid(1001)
    assert (await adapter.reachability(Recipient(kid=k))).reason == "no-mandate"
    sim.add_mandate(k, notify=True)
    reach = await adapter.reachability(Recipient(name="Kari Nordmann", kid=k))
    assert reach.reachable and reach.reference == k and "written notice J" in reach.detail

    rendered = adapter.render(request(facts, kid_=k))
    assert rendered.channel == "avtalegiro"
    assert rendered.summary["amount_ore"] == 80200 and rendered.summary["due_date"] == "2026-12-18"
    assert rendered.summary["transaction_type"] == "21" and rendered.summary["specification_lines"] > 3
    result = await adapter.submit(rendered)
    assert result.state == "accepted" and result.channel_ref == f"{k}:80200:2026-12-18"

    [name] = [p.name for p in dirs["outgoing_dir"].iterdir()]
    data = (dirs["outgoing_dir"] / name).read_bytes()
    assert name == f"AG{SENDER}.0000001.txt"
    report = parse_claim_file(data, ValidatorOptions(expected_data_sender=SENDER, accounts=frozenset({ACCOUNT}),
                                                     today=TODAY, line_ending="\r\n", check_account_mod11=True))
    [claim] = report.accepted_claims()
    assert (claim.kid, claim.amount_ore, claim.due_date, claim.transaction_type) == (k, 80200, DUE, "21")
    assert claim.payer_name == "Kari Nordm" and claim.external_ref == "TOSL108"
    assert claim.specification[0] == "Faktura TOSL108 fra Salescompany ltd."
    lines = data.decode("iso-8859-1").split("\r\n")
    assert lines[-1] == "" and all(len(line) == 80 for line in lines[:-1])
    assert lines[0] == f"NY000010{SENDER}000000100008080" + "0" * 49

    assert await adapter.track(result.channel_ref) == []  # nothing from Nets yet
    await sim.start(interval=0.02)
    try:
        events = await wait_for(lambda: adapter.track(result.channel_ref))
    finally:
        await sim.stop()
    assert [e.state for e in events] == ["delivered"]
    assert not list(dirs["outgoing_dir"].iterdir())  # Nets fetched it

    payments = sim.settle(up_to=DUE)
    assert [(p.kid, p.amount_ore, p.settlement_date, p.transaction_type) for p in payments] == [(k, 80200, DUE, 15)]
    events = await adapter.track(result.channel_ref)
    assert [e.state for e in events] == ["delivered", "paid"]
    paid = events[-1]
    assert paid.amount == Decimal("802.00") and paid.at.date() == DUE and "type 15" in paid.detail
    assert adapter.unmatched_payments() == []
    # processed incoming files are archived, none left behind
    assert not list(dirs["incoming_dir"].iterdir())
    archived = sorted(p.name for p in (dirs["state_dir"] / "archive").iterdir())
    assert archived == ["0000001-mandates.txt", f"0000002-{name}.receipt.json", "0000003-ocr.txt"]
    # also by delivery id
    assert [e.state for e in await adapter.track("dlv-1")] == ["delivered", "paid"]


async def test_weekend_due_date_moves_to_next_banking_day(adapter: AvtaleGiroAdapter, facts: InvoiceFacts):
    rendered = adapter.render(request(facts, kid_=kid(7), due=dt.date(2026, 12, 24)))  # Christmas Eve: closed
    assert rendered.summary["due_date"] == "2026-12-28" and rendered.summary["invoice_due_date"] == "2026-12-24"
    strict = make_adapter({**adapter_settings(adapter)}, non_banking_due_date="reject")
    with pytest.raises(ChannelError, match="banking day"):
        strict.render(request(facts, kid_=kid(7), due=dt.date(2026, 12, 24)))


def adapter_settings(adapter: AvtaleGiroAdapter) -> dict:
    cfg = adapter.config
    return {"data_sender": cfg.data_sender, "account": cfg.account, "outgoing_dir": cfg.outgoing_dir,
            "incoming_dir": cfg.incoming_dir, "state_dir": cfg.state_dir, "scan_interval": 0,
            "reachability_ttl": 0, "incoming_grace_seconds": 0}


async def test_payee_notifies_type_02_without_specification(settings: dict, facts: InvoiceFacts):
    ad = make_adapter(settings, notify_payer=False)
    rendered = ad.render(request(facts, kid_=kid(8)))
    assert rendered.summary["transaction_type"] == "02" and rendered.payload.claim.specification == ()


def test_specification_lines_fit_the_layout(facts: InvoiceFacts):
    many = dataclasses.replace(facts, lines=facts.lines * 20)
    lines = specification_lines(many, DUE)
    assert len(lines) == 42 and all(len(line) <= 80 for line in lines)
    assert lines[-1].startswith("... og ")


# -- not reachable --------------------------------------------------------------------------------------


async def test_not_reachable(adapter: AvtaleGiroAdapter, sim: NetsSimulator):
    assert (await adapter.reachability(Recipient(name="Kari"))).reason == "no-kid"
    assert (await adapter.reachability(Recipient(kid="123456789"))).reason == "invalid-kid"
    assert (await adapter.reachability(Recipient(kid=kid(2)))).reason == "no-mandate"
    sim.add_mandate(kid(2))
    sim.add_mandate(kid(3), notify=False)
    assert (await adapter.reachability(Recipient(kid=kid(2)))).reachable
    sim.delete_mandate(kid(2))
    answer = await adapter.reachability(Recipient(kid=kid(2)))
    assert not answer.reachable and answer.reason == "mandate-deleted"
    assert "written notice N" in (await adapter.reachability(Recipient(kid=kid(3)))).detail
    # a full list (registration type 0) replaces the register: KID 3 is no longer listed
    sim.register.pop(kid(3))
    sim.add_mandate(kid(4))
    sim.send_mandate_list()
    assert not (await adapter.reachability(Recipient(kid=kid(3)))).reachable
    assert (await adapter.reachability(Recipient(kid=kid(4)))).reachable
    register = adapter.mandate_register()
    assert register[kid(4)]["active"] and not register[kid(3)]["active"] and not register[kid(2)]["active"]


async def test_register_survives_restart_and_ignores_other_accounts(settings: dict, sim: NetsSimulator,
                                                                    dirs: dict[str, Path]):
    sim.add_mandate(kid(5))
    assert (await make_adapter(settings).reachability(Recipient(kid=kid(5)))).reachable
    assert not list(dirs["incoming_dir"].iterdir())  # consumed and archived
    assert (await make_adapter(settings).reachability(Recipient(kid=kid(5)))).reachable  # from the state file
    other = NetsSimulator(dirs["outgoing_dir"], dirs["incoming_dir"], data_sender=SENDER, account="86011117947",
                          today=TODAY)
    other._serial = 100
    other.add_mandate(kid(6))
    assert (await make_adapter(settings).reachability(Recipient(kid=kid(6)))).reason == "no-mandate"


async def test_default_state_dir_inside_incoming_is_not_read_as_a_nets_file(settings: dict, sim: NetsSimulator,
                                                                            dirs: dict[str, Path]):
    ad = make_adapter({k: v for k, v in settings.items() if k != "state_dir"})
    sim.add_mandate(kid(14))
    assert (await ad.reachability(Recipient(kid=kid(14)))).reachable
    assert [p.name for p in dirs["incoming_dir"].iterdir()] == [".sendgw-state"]
    assert ad.incoming_problems() == []


async def test_reachability_is_cached_until_the_register_changes(settings: dict, sim: NetsSimulator):
    ad = make_adapter(settings, reachability_ttl=300, scan_interval=300)
    sim.add_mandate(kid(9))
    first = await ad.reachability(Recipient(kid=kid(9)))
    second = await ad.reachability(Recipient(kid=kid(9)))
    assert first.reachable and not first.cached and second.cached
    sim.delete_mandate(kid(9))
    assert (await ad.reachability(Recipient(kid=kid(9)))).cached  # within TTL and scan interval
    await ad.refresh(force=True)  # a scan that changes the register drops cached answers
    assert not (await ad.reachability(Recipient(kid=kid(9)))).reachable
    # default scan interval (every call): a negative answer never hides a newly arrived mandate
    ad = make_adapter({k: v for k, v in settings.items() if k != "scan_interval"}, reachability_ttl=300)
    assert ad.config.scan_interval == 0
    assert (await ad.reachability(Recipient(kid=kid(15)))).reason == "no-mandate"
    assert (await ad.reachability(Recipient(kid=kid(15)))).cached
    sim.add_mandate(kid(15))
    answer = await ad.reachability(Recipient(kid=kid(15)))
    assert answer.reachable and not answer.cached


async def test_submit_refuses_when_the_mandate_is_gone(adapter: AvtaleGiroAdapter, sim: NetsSimulator,
                                                       facts: InvoiceFacts, dirs: dict[str, Path]):
    sim.add_mandate(kid(10))
    rendered = adapter.render(request(facts, kid_=kid(10)))
    sim.delete_mandate(kid(10))
    with pytest.raises(ChannelError) as err:
        await adapter.submit(rendered)
    assert err.value.code == "not-reachable" and not err.value.transient
    assert not dirs["outgoing_dir"].exists() or not list(dirs["outgoing_dir"].iterdir())


# -- invalid data ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("change, fragment", [
    ({"kind": "credit_note"}, "credit note"),
    ({"payable_amount": Decimal(0)}, "positive amounts"),
    ({"payable_amount": Decimal(-10)}, "positive amounts"),
    ({"currency": "EUR"}, "currency EUR"),
    ({"payable_amount": Decimal("10.005")}, "fractions of an øre"),
    ({"due": dt.date(2026, 11, 20)}, "has passed"),
    ({"due": TODAY}, "too close"),
    ({"due": dt.date(2028, 1, 3)}, "12 months"),
    ({"due": None}, "due date missing"),
    ({"kid_": "0003434323213231"}, "check digit"),
    ({"kid_": "12"}, "KID"),
    ({"kid_": None}, "KID missing"),
    ({"number": "INV-2026-000000000000000001"}, "longer than 25"),
])
def test_invalid_data(adapter: AvtaleGiroAdapter, facts: InvoiceFacts, change: dict, fragment: str):
    kw = {"kid_": kid(11), **change}
    with pytest.raises(ChannelError) as err:
        adapter.render(request(facts, **kw))
    assert err.value.code == "invalid-data" and not err.value.transient
    assert fragment in err.value.message


def test_kid_structure_and_recipient_mismatch(settings: dict, facts: InvoiceFacts):
    ad = make_adapter(settings, kid_lengths=[15], kid_algorithm="mod11")
    with pytest.raises(ChannelError, match="KID"):
        ad.render(request(facts, kid_=kid(12)))  # 9 digits, MOD10
    ad = make_adapter(settings)
    req = request(facts, kid_=kid(12))
    req = dataclasses.replace(req, recipient=Recipient(kid=kid(13)))
    with pytest.raises(ChannelError, match="differs"):
        ad.render(req)


# -- Nets rejects the file -------------------------------------------------------------------------------


async def test_layout_violation_rejected_with_record_and_position(adapter: AvtaleGiroAdapter, sim: NetsSimulator,
                                                                  facts: InvoiceFacts, dirs: dict[str, Path]):
    sim.add_mandate(kid(20))
    result = await adapter.submit(adapter.render(request(facts, kid_=kid(20))))
    [path] = list(dirs["outgoing_dir"].iterdir())
    lines = path.read_bytes().decode("iso-8859-1").split("\r\n")
    lines[2] = lines[2][:32] + "00000000000000O20" + lines[2][49:]  # a letter O in the amount (record 3)
    path.write_bytes("\r\n".join(lines).encode("iso-8859-1"))
    [processed] = sim.process()
    assert processed.status == "rejected"
    receipt = json.loads(processed.receipt_path.read_text())
    first = receipt["errors"][0]
    assert (first["record"], first["position"], first["code"]) == (3, 47, "field.numeric")
    events = await adapter.track(result.channel_ref)
    assert [e.state for e in events] == ["failed"]
    assert "record 3, position 47" in events[0].detail
    assert sim.pending == []
    # a failed claim may be sent again under a new delivery id
    sim.process()
    again = await adapter.submit(adapter.render(request(facts, "dlv-2", kid_=kid(20))))
    assert again.channel_ref == result.channel_ref
    [processed] = sim.process()
    assert processed.status == "accepted"
    assert [e.state for e in await adapter.track(result.channel_ref)] == ["delivered"]


async def test_unknown_data_sender_is_refused_like_failed_auth(settings: dict, sim: NetsSimulator,
                                                                facts: InvoiceFacts):
    """The file channel has no login of its own; Nets refuses a transmission from a kundeenhet-ID
    that is not ours on this agreement (the file-channel analogue of refused authentication)."""
    sim.add_mandate(kid(22))
    ad = make_adapter(settings, data_sender="55555556", require_mandate_on_submit=False)
    assert (await ad.reachability(Recipient(kid=kid(22)))).reason == "no-mandate"  # the file is not for us
    assert "transmission.data_recipient" in ad.incoming_problems()[0]["detail"]
    result = await ad.submit(ad.render(request(facts, kid_=kid(22))))
    [processed] = sim.process()
    assert processed.status == "rejected"
    [event] = await ad.track(result.channel_ref)
    assert event.state == "failed" and "transmission.data_sender at record 1, position 9" in event.detail


async def test_not_debited_is_failed(adapter: AvtaleGiroAdapter, sim: NetsSimulator, facts: InvoiceFacts):
    sim.add_mandate(kid(21))
    result = await adapter.submit(adapter.render(request(facts, kid_=kid(21))))
    sim.process()
    sim.stop_payment(kid(21))
    assert sim.settle() == []
    events = await adapter.track(result.channel_ref)
    assert [e.state for e in events] == ["delivered", "failed"]
    assert "stopped_by_payer" in events[-1].detail


# -- idempotency ---------------------------------------------------------------------------------------------


async def test_resubmit_is_idempotent_also_after_restart(settings: dict, sim: NetsSimulator, facts: InvoiceFacts,
                                                         dirs: dict[str, Path]):
    sim.add_mandate(kid(30))
    ad = make_adapter(settings)
    rendered = ad.render(request(facts, kid_=kid(30)))
    first = await ad.submit(rendered)
    second = await ad.submit(rendered)
    assert second.channel_ref == first.channel_ref and "not written again" in second.detail
    restarted = make_adapter(settings)
    third = await restarted.submit(restarted.render(request(facts, kid_=kid(30))))
    assert third.channel_ref == first.channel_ref and "not written again" in third.detail
    assert len(list(dirs["outgoing_dir"].iterdir())) == 1
    # the same claim under another delivery id would be debited twice: refused
    with pytest.raises(ChannelError) as err:
        await restarted.submit(restarted.render(request(facts, "dlv-other", kid_=kid(30))))
    assert err.value.code == "duplicate-claim"
    sim.process()
    assert len(sim.pending) == 1


async def test_crash_between_record_and_drop_redrops_identical_bytes(adapter: AvtaleGiroAdapter, sim: NetsSimulator,
                                                                     facts: InvoiceFacts, dirs: dict[str, Path]):
    sim.add_mandate(kid(31))
    rendered = adapter.render(request(facts, kid_=kid(31)))
    await adapter.submit(rendered)
    [path] = list(dirs["outgoing_dir"].iterdir())
    original = path.read_bytes()
    sim.process()  # Nets fetched the file ...
    with adapter.store.transaction() as db:  # ... but we crashed before recording that it was written
        db.execute("UPDATE deliveries SET status = 'pending', written_at = NULL")
    retry = await adapter.submit(rendered)
    assert "written" in retry.detail
    assert (dirs["outgoing_dir"] / path.name).read_bytes() == original  # same bytes, same numbers
    [dup] = sim.process()
    assert dup.status == "rejected"
    assert {e.code for e in dup.report.errors} == {"transmission.duplicate_number", "assignment.duplicate_number"}
    assert len(sim.pending) == 1  # never debited twice
    assert [e.state for e in await adapter.track(retry.channel_ref)] == ["delivered"]


async def test_drop_failure_is_transient(settings: dict, facts: InvoiceFacts, sim: NetsSimulator, tmp_path: Path):
    sim.add_mandate(kid(32))
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("x")
    ad = make_adapter({**settings, "outgoing_dir": str(blocked)})
    with pytest.raises(ChannelError) as err:
        await ad.submit(ad.render(request(facts, kid_=kid(32))))
    assert err.value.code == "drop-failed" and err.value.transient


# -- reconciliation --------------------------------------------------------------------------------------


async def test_unmatched_payments_are_reported(adapter: AvtaleGiroAdapter, sim: NetsSimulator, facts: InvoiceFacts,
                                               dirs: dict[str, Path]):
    sim.add_mandate(kid(40))
    result = await adapter.submit(adapter.render(request(facts, kid_=kid(40))))
    sim.process()
    sim.add_payment(kid(40), 40000)  # partial payment by giro: invoice stays open
    sim.add_payment(kid(41), 12345)  # nobody's invoice
    await adapter.refresh(force=True)
    reasons = {(u.kid, u.reason) for u in adapter.unmatched_payments()}
    assert reasons == {(kid(40), "amount_mismatch"), (kid(41), "unknown_kid")}
    assert [e.state for e in await adapter.track(result.channel_ref)] == ["delivered"]
    report = json.loads((dirs["state_dir"] / "unmatched-payments.json").read_text())
    assert {p["reason"] for p in report["unmatched_payments"]} == {"amount_mismatch", "unknown_kid"}
    assert {p["amount"] for p in report["unmatched_payments"]} == {"400.00", "123.45"}

    sim.settle()
    events = await adapter.track(result.channel_ref)
    assert [e.state for e in events] == ["delivered", "paid"]
    # the same settlement file delivered again: archived as a duplicate, nothing paid twice
    ocr = sorted((dirs["state_dir"] / "archive").glob("*-ocr.txt"))[-1]
    (dirs["incoming_dir"] / "again.txt").write_bytes(ocr.read_bytes())
    await adapter.refresh(force=True)
    assert (dirs["state_dir"] / "archive" / "duplicates" / "again.txt").exists()
    # a second payment for the paid invoice (a new transaction) is a duplicate payment, reported
    sim.add_payment(kid(40), 80200)
    await adapter.refresh(force=True)
    assert [u.reason for u in adapter.unmatched_payments()][-1] == "duplicate"
    assert [e.state for e in await adapter.track(result.channel_ref)] == ["delivered", "paid"]


async def test_monthly_claims_with_the_same_kid_and_amount_are_told_apart_by_due_date(
        adapter: AvtaleGiroAdapter, sim: NetsSimulator, facts: InvoiceFacts):
    k = kid(44)  # one customer KID for every monthly claim
    sim.add_mandate(k)
    december = await adapter.submit(adapter.render(request(facts, "dec", kid_=k, due=dt.date(2026, 12, 15))))
    january = await adapter.submit(adapter.render(request(facts, "jan", kid_=k, due=dt.date(2027, 1, 15))))
    sim.process()
    sim.settle(up_to=dt.date(2027, 1, 31))  # both debits arrive in one settlement file
    assert [e.state for e in await adapter.track(december.channel_ref)] == ["delivered", "paid"]
    jan_events = await adapter.track(january.channel_ref)
    assert [e.state for e in jan_events] == ["delivered", "paid"] and jan_events[-1].at.date() == dt.date(2027, 1, 15)
    assert adapter.unmatched_payments() == []


async def test_settlement_for_another_account_is_reported(adapter: AvtaleGiroAdapter, dirs: dict[str, Path]):
    other = NetsSimulator(dirs["outgoing_dir"], dirs["incoming_dir"], data_sender=SENDER, account="86011117947",
                          today=TODAY)
    other.add_payment(kid(42), 100)
    await adapter.refresh(force=True)
    [u] = adapter.unmatched_payments()
    assert u.reason == "other_account" and u.account == "86011117947"


async def test_unreadable_incoming_file_is_set_aside(settings: dict, dirs: dict[str, Path], sim: NetsSimulator):
    ad = make_adapter(settings, incoming_grace_seconds=3600)
    dirs["incoming_dir"].mkdir(parents=True, exist_ok=True)
    bad = dirs["incoming_dir"] / "broken.txt"
    bad.write_bytes(b"NY000010" + b"0" * 72 + b"\r\n")
    await ad.refresh(force=True)
    assert bad.exists() and ad.incoming_problems() == []  # young: maybe still arriving
    ad = make_adapter(settings)  # grace 0
    await ad.refresh(force=True)
    assert not bad.exists()
    [problem] = ad.incoming_problems()
    assert problem["name"] == "broken.txt" and "record" in problem["detail"]
    assert (dirs["state_dir"] / "archive" / "rejected" / "broken.txt").exists()
    # a file addressed to another kundeenhet-ID is not ours
    stranger = NetsSimulator(dirs["outgoing_dir"], dirs["incoming_dir"], data_sender="12345678", account=ACCOUNT,
                             today=TODAY)
    stranger.add_mandate(kid(43))
    await ad.refresh(force=True)
    assert (await ad.reachability(Recipient(kid=kid(43)))).reason == "no-mandate"
    assert "transmission.data_recipient" in ad.incoming_problems()[-1]["detail"]


# -- numbers ----------------------------------------------------------------------------------------------


async def test_numbers_unique_across_restarts_and_workers(settings: dict, sim: NetsSimulator, facts: InvoiceFacts,
                                                          dirs: dict[str, Path]):
    for n in range(50, 56):
        sim.add_mandate(kid(n))
    ad = make_adapter(settings)
    for n in (50, 51):
        await ad.submit(ad.render(request(facts, f"d{n}", kid_=kid(n))))
    restarted = make_adapter(settings)
    other_worker = make_adapter(settings)
    await asyncio.gather(*(a.submit(a.render(request(facts, f"d{n}", kid_=kid(n))))
                           for a, n in ((restarted, 52), (other_worker, 53), (restarted, 54), (other_worker, 55))))
    records = [restarted.delivery(f"d{n}") for n in range(50, 56)]
    transmissions = [r.transmission_number for r in records]
    assignments = [r.assignment_number for r in records]
    assert sorted(transmissions) == [f"{n:07d}" for n in range(1, 7)]
    assert len(set(assignments)) == 6
    processed = sim.process()
    assert [p.status for p in processed] == ["accepted"] * 6  # Nets checks both numbers for reuse
    assert len(sim.pending) == 6


def test_numbers_wrap_and_are_not_reused_within_12_months_and_a_day(tmp_path: Path):
    store = StateStore(tmp_path)
    day = dt.date(2026, 3, 1)
    with store.transaction() as db:
        assert store.allocate_number(db, "assignment", day, "a", start=9_999_998) == "9999998"
        assert store.allocate_number(db, "assignment", day, "b") == "9999999"
        assert store.allocate_number(db, "assignment", day, "c") == "0000001"  # wraps, 0000000 is never used
        db.execute("UPDATE counters SET next = 9999998 WHERE series = 'assignment'")
        # 9999998 and 9999999 and 0000001 are taken within the window: skipped
        assert store.allocate_number(db, "assignment", day, "d") == "0000002"
    later = dt.date(2027, 3, 2)  # 12 months + 1 day after: 9999998 still blocked on this day
    assert reuse_cutoff(later) == dt.date(2026, 3, 1)
    with store.transaction() as db:
        db.execute("UPDATE counters SET next = 9999998 WHERE series = 'assignment'")
        assert store.allocate_number(db, "assignment", later, "e") == "0000003"
    free = dt.date(2027, 3, 3)
    with store.transaction() as db:
        db.execute("UPDATE counters SET next = 9999998 WHERE series = 'assignment'")
        assert store.allocate_number(db, "assignment", free, "f") == "9999998"


def test_number_start_for_migration(settings: dict, tmp_path: Path):
    ad = make_adapter(settings, number_start=4000000)
    with ad.store.transaction() as db:
        assert ad.store.allocate_number(db, "transmission", TODAY, "x", ad.config.number_start) == "4000000"


# -- cancellation --------------------------------------------------------------------------------------------


async def test_cancel_sends_a_deletion_request(adapter: AvtaleGiroAdapter, sim: NetsSimulator, facts: InvoiceFacts,
                                               dirs: dict[str, Path]):
    sim.add_mandate(kid(60))
    result = await adapter.submit(adapter.render(request(facts, kid_=kid(60))))
    sim.process()
    name = await adapter.cancel(result.channel_ref)
    data = (dirs["outgoing_dir"] / name).read_bytes()
    assert b"NY219330" in data and b"NY213620" in data
    [processed] = sim.process()
    assert processed.status == "accepted" and len(sim.cancelled) == 1 and sim.pending == []
    assert sim.settle() == []
    states = [e.state for e in await adapter.track(result.channel_ref)]
    assert states[-1] == "failed"
    assert await adapter.cancel(result.channel_ref) == name  # idempotent


async def test_mandate_file_written_by_simulator_parses(sim: NetsSimulator):
    path = sim.add_mandate(kid(70), notify=False)
    parsed = parse_incoming_file(path.read_bytes(), expected_recipient=SENDER)
    [m] = parsed.mandates
    assert (m.kid, m.active, m.notify, m.registration_type) == (kid(70), True, False, 1)


def test_registry_builds_the_adapter(settings: dict):
    from gateway.channels.registry import build_adapter, parse_config

    ad = build_adapter("avtalegiro", {**settings, "cost": 0.5})
    assert isinstance(ad, AvtaleGiroAdapter) and ad.name == "avtalegiro"
    with pytest.raises(ChannelError) as err:
        parse_config("avtalegiro", {**settings, "account": "123"})
    assert err.value.code == "invalid-config"


async def test_independent_files_netsgiro(adapter: AvtaleGiroAdapter, facts: InvoiceFacts, dirs: dict[str, Path]):
    """Files written by another implementation (netsgiro) drive the adapter, and netsgiro reads ours."""
    netsgiro = pytest.importorskip("netsgiro")
    from netsgiro import records as nr

    k = kid(80)
    incoming = dirs["incoming_dir"]
    incoming.mkdir(parents=True, exist_ok=True)
    mandate = [
        nr.TransmissionStart(service_code=0, transmission_number="0000501", data_transmitter="00008080",
                             data_recipient=SENDER),
        nr.AssignmentStart(service_code=21, assignment_type=24, assignment_number="0000601",
                           assignment_account=ACCOUNT),
        nr.AvtaleGiroAgreement(service_code=21, transaction_type=94, transaction_number=1, registration_type=1,
                               kid=k, notify=True),
        nr.AssignmentEnd(service_code=21, assignment_type=24, num_transactions=1, num_records=3),
        nr.TransmissionEnd(service_code=0, num_transactions=1, num_records=5, total_amount=0, nets_date=TODAY),
    ]
    (incoming / "mandates.ocr").write_text("\n".join(r.to_ocr() for r in mandate), encoding="iso-8859-1")
    assert (await adapter.reachability(Recipient(kid=k))).reachable

    result = await adapter.submit(adapter.render(request(facts, kid_=k)))
    [path] = list(dirs["outgoing_dir"].iterdir())
    transmission = netsgiro.parse(path.read_bytes().decode("iso-8859-1"))
    [assignment] = transmission.assignments
    [claim] = assignment.transactions
    assert (claim.kid, claim.amount_in_cents, claim.date, claim.reference) == (k, 80200, DUE, "TOSL108")

    ocr = [
        nr.TransmissionStart(service_code=0, transmission_number="0000502", data_transmitter="00008080",
                             data_recipient=SENDER),
        nr.AssignmentStart(service_code=9, assignment_type=0, agreement_id="000123456",
                           assignment_number="0000602", assignment_account=ACCOUNT),
        nr.TransactionAmountItem1(service_code=9, transaction_type=15, transaction_number=1, nets_date=DUE,
                                  amount=80200, kid=k, centre_id="20", day_code=18,
                                  partial_settlement_number=1, partial_settlement_serial_number="00001", sign="0"),
        nr.TransactionAmountItem2(service_code=9, transaction_type=15, transaction_number=1,
                                  reference="123456789", form_number="0000000000", bank_date=DUE,
                                  debit_account="86011117947"),
        nr.AssignmentEnd(service_code=9, assignment_type=0, num_transactions=1, num_records=4,
                         total_amount=80200, nets_date_1=DUE, nets_date_2=DUE, nets_date_3=DUE),
        nr.TransmissionEnd(service_code=0, num_transactions=1, num_records=6, total_amount=80200, nets_date=DUE),
    ]
    (incoming / "settlement.ocr").write_text("\n".join(r.to_ocr() for r in ocr) + "\n", encoding="iso-8859-1")
    events = await adapter.track(result.channel_ref)
    assert [(e.state, e.amount) for e in events] == [("paid", Decimal("802.00"))]
