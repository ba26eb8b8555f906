"""OCR settlement files mark invoices delivered on ANY channel paid (issue 8, "Paid"): a KID payment
that matches no AvtaleGiro claim is offered to the tenant's documents delivered by e-mail, eFaktura,
Digipost, SMS or print, by exact KID and amount (and the invoice's account, when it names one)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from gateway.channels.avtalegiro.generators import generate_settlement_file
from gateway.channels.avtalegiro.incoming import Payment
from gateway.config import Settings
from gateway.kid import make_kid
from gateway.routing import RoutingConfig, RoutingEngine, delivery_id_for, save_routing
from gateway.store.payloads import PayloadStore
from gateway.store.schema import channel_deliveries, events, messages
from gateway.store.tenants import create_tenant

SENDER = "55555555"
ACCOUNT = "86011117947"  # the account the example invoice asks to be paid to
OTHER_ACCOUNT = "15038000001"
KID = make_kid("000343432321323", "mod10")
SETTLED = dt.date(2026, 11, 27)


@pytest.fixture
def invoice(shared_dir: Path) -> bytes:
    xml = (shared_dir / "conformance/ehf-billing-3/examples/ehf-3-faktura-1.xml").read_bytes()
    assert xml.count(b"0003434323213231") == 1 and b"86011117947" in xml
    return xml.replace(b"0003434323213231", KID.encode())  # payable 802.00 NOK


class Setup:
    def __init__(self, engine, tmp_path: Path, tenant_id: str | None = None):
        self.engine, self.tmp = engine, tmp_path
        self.tenant_id = tenant_id or create_tenant(engine, "Issuer AS")[0].id
        self.incoming = tmp_path / "from-nets"
        self.incoming.mkdir()
        self.settings = {"data_sender": SENDER, "account": ACCOUNT, "outgoing_dir": str(tmp_path / "to-nets"),
                         "incoming_dir": str(self.incoming), "state_dir": str(tmp_path / "ag-state"),
                         "scan_interval": 0, "incoming_grace_seconds": 0}
        save_routing(engine, self.tenant_id, RoutingConfig.parse({
            "b2c": ["email"],  # AvtaleGiro configured, not listed: it only brings the OCR files
            "channels": {
                "avtalegiro": {"cost_nok": "0.50", "settings": self.settings},
                "email": {"cost_nok": "0.05", "settings": {"host": "smtp.example.no",
                                                           "from_address": "faktura@example.no"}},
            }}))
        self.payloads = PayloadStore("database")
        self.router = RoutingEngine(engine, self.payloads, Settings())
        self.files = 0

    def document(self, ubl: bytes, channel: str = "email", *, state: str = "delivered", age_days: int = 1) -> str:
        now = dt.datetime.now(dt.timezone.utc)
        at = now - dt.timedelta(days=age_days)
        mid = str(uuid.uuid4())
        with self.engine.begin() as conn:
            sha = self.payloads.put(conn, ubl)
            conn.execute(insert(messages).values(id=mid, tenant_id=self.tenant_id, direction="out",
                                                 state="delivered", document_sha256=sha, options={"segment": "b2c"},
                                                 created_at=at, updated_at=at, attempts=0))
            conn.execute(insert(channel_deliveries).values(
                id=delivery_id_for(mid, channel), message_id=mid, tenant_id=self.tenant_id, position=0,
                channel=channel, state=state, reason="ok", channel_ref=f"{channel}-{mid}", cost_nok="0.0500",
                attempts=1, created_at=at, updated_at=at))
        return mid

    def settlement(self, *amounts: int, kid: str = KID, account: str = ACCOUNT, serial: int = 1,
                   name: str | None = None) -> bytes:
        self.files += 1
        payments = [Payment(kid=kid, amount_ore=a, settlement_date=SETTLED, transaction_type=10,
                            transaction_number=i, serial_number=serial + i, bank_date=SETTLED,
                            payer_account="12345678903")
                    for i, a in enumerate(amounts, start=1)]
        data = generate_settlement_file(payments, data_recipient=SENDER, transmission_number=f"{self.files:07d}",
                                        agreement_id="000000001", assignment_number=f"{self.files:07d}",
                                        account=account, nets_date=SETTLED)
        (self.incoming / (name or f"OCR.{self.files:03d}.txt")).write_bytes(data)
        return data

    def adapter(self):
        config = RoutingConfig.parse({"channels": {"avtalegiro": {"settings": self.settings}}})
        return self.router.adapter(config, "avtalegiro")

    def state(self, mid: str) -> tuple[str, dict[str, str]]:
        with self.engine.connect() as conn:
            doc = conn.execute(select(messages.c.state).where(messages.c.id == mid)).scalar()
            decisions = {r.channel: r.state for r in conn.execute(
                select(channel_deliveries).where(channel_deliveries.c.message_id == mid))}
        return doc, decisions

    def paid_events(self, mid: str) -> list[dict]:
        with self.engine.connect() as conn:
            return [r.detail for r in conn.execute(select(events).where(events.c.message_id == mid,
                                                                         events.c.kind == "channel-paid"))]


async def test_email_delivered_invoice_is_paid_by_a_settlement_payment(engine, tmp_path, invoice):
    s = Setup(engine, tmp_path)
    mid = s.document(invoice, "email")
    s.settlement(80200)
    assert await s.router.settle_once() == 1
    assert s.state(mid) == ("paid", {"email": "paid"})
    [paid] = s.paid_events(mid)
    assert paid["channel"] == "email" and paid["amount"] == "802.00"
    assert f"KID {KID}" in paid["detail"] and "OCR.001.txt" in paid["detail"]
    assert "transaction type 10" in paid["detail"]
    with engine.connect() as conn:
        detail = conn.execute(select(channel_deliveries.c.detail)).scalar()
    assert "OCR.001.txt" in detail  # the payment reference is on the decision too
    ag = s.adapter()
    assert ag.unmatched_payments() == []
    [row] = ag.store.payments("matched")
    assert (row["delivery_id"], row["routed"]) == (delivery_id_for(mid, "email"), "applied")
    assert mid in row["detail"] and "delivered by email" in row["detail"]
    report = json.loads((tmp_path / "ag-state" / "unmatched-payments.json").read_text())
    assert report["unmatched_payments"] == []


async def test_efaktura_accepted_invoice_is_paid(engine, tmp_path, invoice):
    s = Setup(engine, tmp_path)
    mid = s.document(invoice, "efaktura", state="accepted")
    s.settlement(80200)
    assert await s.router.settle_once() == 1
    assert s.state(mid) == ("paid", {"efaktura": "paid"})


async def test_amount_mismatch_and_other_account_stay_unmatched(engine, tmp_path, invoice):
    s = Setup(engine, tmp_path)
    mid = s.document(invoice, "email")
    s.settlement(80000)  # a partial payment
    s.settlement(80200, account=OTHER_ACCOUNT, serial=10)  # settled to an account that is not the agreement's
    assert await s.router.settle_once() == 0
    assert s.state(mid) == ("delivered", {"email": "delivered"})
    assert s.paid_events(mid) == []
    unmatched = {u.reason: u for u in s.adapter().unmatched_payments()}
    assert set(unmatched) == {"amount_mismatch", "other_account"}
    short = unmatched["amount_mismatch"]
    assert short.amount_ore == 80000 and mid in short.detail and "80200" in short.detail
    report = json.loads((tmp_path / "ag-state" / "unmatched-payments.json").read_text())
    assert sorted(p["reason"] for p in report["unmatched_payments"]) == ["amount_mismatch", "other_account"]
    # offered once: a later round changes nothing
    assert await s.router.settle_once() == 0
    assert {u.reason for u in s.adapter().unmatched_payments()} == {"amount_mismatch", "other_account"}


async def test_invoice_naming_another_account_is_not_paid(engine, tmp_path, invoice):
    s = Setup(engine, tmp_path)
    mid = s.document(invoice.replace(b"86011117947", OTHER_ACCOUNT.encode()), "email")
    s.settlement(80200)
    assert await s.router.settle_once() == 0
    assert s.state(mid)[0] == "delivered"
    [u] = s.adapter().unmatched_payments()
    assert u.reason == "unknown_kid" and OTHER_ACCOUNT in u.detail


async def test_reprocessing_the_same_payment_never_applies_twice(engine, tmp_path, invoice):
    s = Setup(engine, tmp_path)
    mid = s.document(invoice, "email")
    data = s.settlement(80200)
    assert await s.router.settle_once() == 1
    # after a restart: the same file delivered again, and the same transaction in a re-sent file
    (s.incoming / "OCR.001.again.txt").write_bytes(data)
    s.files = 1
    s.settlement(80200, name="OCR.resent.txt")
    s.router = RoutingEngine(engine, s.payloads, Settings())
    assert await s.router.settle_once() == 0
    assert len(s.paid_events(mid)) == 1
    ag = s.adapter()
    assert len(ag.store.payments("matched")) == 1
    assert [u.reason for u in ag.unmatched_payments()] == ["duplicate"]  # the re-sent transaction, reported


async def test_crash_between_paid_and_confirmation_is_finished_once(engine, tmp_path, invoice, monkeypatch):
    s = Setup(engine, tmp_path)
    mid = s.document(invoice, "email")
    s.settlement(80200)
    ag = s.adapter()
    real = type(ag).confirm_routed_payment

    def crash(self, *a, **kw):
        raise OSError("worker died")

    monkeypatch.setattr(type(ag), "confirm_routed_payment", crash)
    assert await s.router.settle_once() == 1  # the document was marked paid, the confirmation was lost
    assert ag.store.payments("matched")[0]["routed"] == "assigned"
    monkeypatch.setattr(type(ag), "confirm_routed_payment", real)
    assert await s.router.settle_once() == 0
    assert ag.store.payments("matched")[0]["routed"] == "applied"
    assert len(s.paid_events(mid)) == 1 and s.state(mid)[0] == "paid"


async def test_same_kid_and_amount_pays_the_oldest_unpaid_document_first(engine, tmp_path, invoice):
    s = Setup(engine, tmp_path)
    newer = s.document(invoice, "efaktura", age_days=1)
    older = s.document(invoice, "email", age_days=5)
    failed = s.document(invoice, "print", state="failed", age_days=9)
    s.settlement(80200)
    assert await s.router.settle_once() == 1
    assert s.state(older)[0] == "paid" and s.state(newer)[0] == "delivered"
    s.settlement(80200, 80200, serial=20)  # the next payment pays the other; a third one pays nothing
    assert await s.router.settle_once() == 1
    assert s.state(newer)[0] == "paid" and s.state(failed) == ("delivered", {"print": "failed"})
    ag = s.adapter()
    assert sorted(r["delivery_id"] for r in ag.store.payments("matched")) == sorted(
        [delivery_id_for(older, "email"), delivery_id_for(newer, "efaktura")])
    [left] = ag.unmatched_payments()
    assert left.reason == "unknown_kid"


async def test_avtalegiro_claims_keep_their_own_matching(engine, tmp_path, invoice):
    """A payment AvtaleGiro matched to its claim is never offered to the other documents."""
    s = Setup(engine, tmp_path)
    mid = s.document(invoice, "email")
    ag = s.adapter()
    with ag.store.transaction() as db:
        db.execute("INSERT INTO deliveries (delivery_id, file_name, transmission_number, assignment_number, kid, "
                   "amount_ore, due_date, channel_ref, data, status, created_at) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   ("ag-1", "AG.txt", "0000001", "0000001", KID, 80200, SETTLED.isoformat(),
                    f"{KID}:80200:{SETTLED}", b"", "written", "2026-11-01T00:00:00+00:00"))
    s.settlement(80200)
    assert await s.router.settle_once() == 0
    assert s.state(mid)[0] == "delivered"
    [row] = ag.store.payments("matched")
    assert row["delivery_id"] == "ag-1" and row["routed"] is None


async def test_document_json_shows_paid(make_client, engine, tenant, tmp_path, invoice):
    t, auth = tenant
    client = await make_client()
    s = Setup(engine, tmp_path, t.id)
    mid = s.document(invoice, "email")
    s.settlement(80200)
    assert await s.router.settle_once() == 1
    resp = await client.get(f"/api/v1/documents/{mid}", headers=auth)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["state"] == "paid"
    [decision] = body["decisions"]
    assert (decision["channel"], decision["state"]) == ("email", "paid") and KID in decision["detail"]
    paid = [e for e in body["events"] if e["kind"] == "channel-paid"]
    assert len(paid) == 1


def test_state_file_from_before_gets_the_routed_column(tmp_path):
    import sqlite3

    from gateway.channels.avtalegiro import state

    old = state._SCHEMA.replace(", routed TEXT);", ");")
    assert old != state._SCHEMA
    db = sqlite3.connect(tmp_path / state.STATE_FILE)
    db.executescript(old)
    db.close()
    store = state.StateStore(tmp_path)
    with store.connect() as conn:
        assert "routed" in {r["name"] for r in conn.execute("PRAGMA table_info(payments)")}
    state.StateStore(tmp_path)  # a second start (or worker) leaves it alone
