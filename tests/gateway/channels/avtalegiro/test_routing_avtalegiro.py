"""AvtaleGiro through the API, the routing engine and the workers, against the Nets file simulator:
no mandate → falls through to print; with a mandate → claim file → Nets accepts → settlement → paid."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import aiohttp
import pytest

from gateway.channels.avtalegiro.generators import next_banking_day
from gateway.channels.avtalegiro.simulator import NetsSimulator
from gateway.channels.print.simulator import PrintHouseSimulator
from gateway.identifiers import ParticipantId
from gateway.kid import make_kid
from gateway.store.participants import add_participant
from tests.waiting import until

SELLER = "0192:123456785"
SENDER = "55555555"
ACCOUNT = "15038000001"
KID = make_kid("000343432321323", "mod10")
DUE = next_banking_day(dt.date.today() + dt.timedelta(days=20))


@pytest.fixture
def invoice(shared_dir: Path) -> bytes:
    xml = (shared_dir / "conformance/ehf-billing-3/examples/ehf-3-faktura-1.xml").read_bytes()
    assert xml.count(b"0003434323213231") == 1 and xml.count(b"<cbc:DueDate>2013-07-20</cbc:DueDate>") == 1
    return (xml.replace(b"0003434323213231", KID.encode())
               .replace(b"<cbc:DueDate>2013-07-20</cbc:DueDate>", f"<cbc:DueDate>{DUE}</cbc:DueDate>".encode()))




async def _run(make_client, engine, tenant, settings, tmp_path: Path, invoice: bytes, *, mandate: bool):
    t, auth = tenant
    add_participant(engine, ParticipantId.parse(SELLER), t.name)
    settings.routing.track_seconds = 0.2
    client = await make_client(run_workers=True)
    to_nets, from_nets = tmp_path / "to-nets", tmp_path / "from-nets"
    nets = NetsSimulator(to_nets, from_nets, data_sender=SENDER, account=ACCOUNT)
    out_dir, in_dir = tmp_path / "print-out", tmp_path / "print-in"
    house = PrintHouseSimulator(out_dir, in_dir)
    if mandate:
        nets.add_mandate(KID)
    routing = {
        "b2c": ["avtalegiro", "print"],
        "channels": {
            "avtalegiro": {"cost_nok": "0.50", "settings": {
                "data_sender": SENDER, "account": ACCOUNT, "outgoing_dir": str(to_nets),
                "incoming_dir": str(from_nets), "state_dir": str(tmp_path / "ag-state"),
                "scan_interval": 0, "reachability_ttl": 0}},
            "print": {"cost_nok": "11.00", "settings": {"outgoing_dir": str(out_dir), "incoming_dir": str(in_dir)}},
        },
        "print_cost_nok": "15.00",
    }
    resp = await client.put("/api/v1/routing", json=routing, headers=auth)
    assert resp.status == 200, await resp.text()
    form = aiohttp.FormData()
    form.add_field("file", invoice, filename="invoice.xml", content_type="application/xml")
    form.add_field("options", json.dumps({
        "channel": "b2c", "segment": "b2c",
        "recipient": {"address": {"lines": ["Storgata 1"], "postcode": "0155", "city": "Oslo"}}}),
        content_type="application/json")
    resp = await client.post("/api/v1/documents", data=form, headers=auth)
    assert resp.status == 202, await resp.text()
    doc_id = (await resp.json())["id"]

    async def details():
        return await (await client.get(f"/api/v1/documents/{doc_id}", headers=auth)).json()

    return client, auth, nets, house, details


async def test_no_mandate_falls_through_to_print(make_client, engine, tenant, settings, tmp_path, invoice):
    _, _, nets, house, details = await _run(make_client, engine, tenant, settings, tmp_path, invoice,
                                            mandate=False)

    async def printed():
        house.process()
        d = await details()
        return d if {x["channel"]: x["state"] for x in d["decisions"]}.get("print") == "delivered" else None

    final = await until(printed)
    decisions = [(d["channel"], d["state"], d["reason"]) for d in final["decisions"]]
    assert decisions[0] == ("avtalegiro", "skipped", "no-mandate"), decisions
    assert decisions[-1][:2] == ("print", "delivered")
    assert not list(nets.outgoing.iterdir())  # no claim was sent


async def test_mandate_claim_accepted_then_paid(make_client, engine, tenant, settings, tmp_path, invoice):
    client, auth, nets, house, details = await _run(make_client, engine, tenant, settings, tmp_path, invoice,
                                                    mandate=True)

    async def delivered():
        nets.process()
        d = await details()
        return d if {x["channel"]: x["state"] for x in d["decisions"]}.get("avtalegiro") == "delivered" else None

    await until(delivered)
    [claim] = nets.pending
    assert (claim.kid, claim.amount_ore, claim.due_date) == (KID, 80200, DUE)
    nets.settle()

    async def paid():
        d = await details()
        return d if d["state"] == "paid" else None

    final = await until(paid)
    assert [(d["channel"], d["state"]) for d in final["decisions"]] == [("avtalegiro", "paid")]
    assert not house.printed
    report = await (await client.get("/api/v1/reports/channels", headers=auth)).json()
    rows = {r["channel"]: r for r in report["channels"]}
    assert rows["avtalegiro"]["invoices"] == 1 and rows["avtalegiro"]["delivered"] == 1
