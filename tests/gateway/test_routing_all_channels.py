"""The full priority list eFaktura → AvtaleGiro → Digipost → e-mail → SMS → print, through the API
and the workers, against every channel's simulator. Four consumers, each reachable on a different
channel; the decisions recorded for each, later status changes (processed, paid, opened,
postmarked), and the savings report reflecting the deliveries."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import aiohttp
import pytest
from stdnum.no import fodselsnummer as fnr_mod

from gateway.channels.avtalegiro.generators import next_banking_day
from gateway.channels.avtalegiro.simulator import NetsSimulator
from gateway.channels.digipost.simulator import DigipostSimulator, key_pem, new_rsa_key
from gateway.channels.efaktura.simulator import EfakturaSimulator
from gateway.channels.email.simulator import SmtpSimulator
from gateway.channels.print.simulator import PrintHouseSimulator
from gateway.channels.sms.simulator import LinkSimulator
from gateway.identifiers import ParticipantId
from gateway.kid import make_kid
from gateway.store.participants import add_participant
from tests.waiting import until
from tests.gateway.channels.b2c_helpers import make_tls_files, server_tls_context

SELLER = "0192:123456785"
ISSUER = "123456785"
ACCOUNT = "86011117947"
NETS_SENDER = "55555555"
BROKER = "704412"
SECRET = "dlr-secret"
DUE = next_banking_day(dt.date.today() + dt.timedelta(days=20))


def fnrs(count: int) -> list[str]:
    out, n = [], 0
    while len(out) < count:
        base = f"{(n % 28) + 1:02d}{(n % 12) + 1:02d}81{300 + n:03d}"
        n += 1
        try:
            cand = base + fnr_mod.calc_check_digit1(base)
            cand += fnr_mod.calc_check_digit2(cand)
        except Exception:
            continue
        if fnr_mod.is_valid(cand):
            out.append(cand)
    return out


KARI, OLA, ANNE, PER = fnrs(4)
PEOPLE = {  # who: (fnr, KID base, reachable on)
    "kari": (KARI, "1000001", "efaktura"),
    "ola": (OLA, "2000002", "avtalegiro"),
    "anne": (ANNE, "3000003", "digipost"),
    "per": (PER, "4000004", "print"),
}


def invoice_for(base: bytes, who: str) -> bytes:
    kid = make_kid(PEOPLE[who][1], "mod10")
    return (base.replace(b"0003434323213231", kid.encode())
                .replace(b"<cbc:DueDate>2013-07-20</cbc:DueDate>", f"<cbc:DueDate>{DUE}</cbc:DueDate>".encode())
                .replace(b"<cbc:ID>TOSL108</cbc:ID>", f"<cbc:ID>TOSL108-{who}</cbc:ID>".encode(), 1))




@pytest.mark.slow
async def test_full_priority_list(make_client, engine, tenant, settings, tmp_path: Path, shared_dir: Path):
    base = (shared_dir / "conformance/ehf-billing-3/examples/ehf-3-faktura-1.xml").read_bytes()
    t, auth = tenant
    add_participant(engine, ParticipantId.parse(SELLER), t.name)
    settings.callbacks.sms_dlr_token = SECRET
    settings.routing.track_seconds = 0.2
    client = await make_client(run_workers=True)
    dlr_url = f"{client.make_url('/callbacks/sms/linkmobility')}?token={SECRET}"

    cert, key = make_tls_files(tmp_path)
    digipost_key = new_rsa_key()
    efaktura = EfakturaSimulator(process_after_polls=1)
    efaktura.add_user("issuer", "pw", issuers={ISSUER})
    efaktura.add_issuer(ISSUER, name="Salescompany ltd.", kid_algorithm="mod10", accounts={ACCOUNT})
    efaktura.add_consumer("EF-KARI-0001", social_security_number=KARI, first_name="Kari", last_name="Nordmann",
                          street_address="Storgata 1", postal_code="0155", postal_place="Oslo")
    nets = NetsSimulator(tmp_path / "to-nets", tmp_path / "from-nets", data_sender=NETS_SENDER, account=ACCOUNT)
    nets.add_mandate(make_kid(PEOPLE["ola"][1], "mod10"))
    digipost = DigipostSimulator()
    digipost.register_sender(BROKER, digipost_key.public_key())
    digipost.add_person("Anne Berg", fnr=ANNE, address_line="Elvegata 2", postcode="9008", city="Tromsø",
                        digipost_address="anne.berg#1")
    house = PrintHouseSimulator(tmp_path / "print-out", tmp_path / "print-in")
    await efaktura.start()
    await digipost.start()
    try:
        async with SmtpSimulator(tls_context=server_tls_context(cert, key), refused={"per@example.no"}) as smtp, \
                LinkSimulator(gates={"gate-1": dlr_url}, outcomes={"+4791111111": [1006]}) as link:
            routing = {
                "b2c": ["efaktura", "avtalegiro", "digipost", "email", "sms", "print"],
                "channels": {
                    "efaktura": {"cost_nok": "1.00", "settings": {
                        "issuer_orgnr": ISSUER, "issuer_name": "Salescompany ltd.", "url": efaktura.url,
                        "username": "issuer", "password": "pw", "timeout_seconds": 2.0, "kid_algorithm": "mod10"}},
                    "avtalegiro": {"cost_nok": "0.50", "settings": {
                        "data_sender": NETS_SENDER, "account": ACCOUNT, "outgoing_dir": str(tmp_path / "to-nets"),
                        "incoming_dir": str(tmp_path / "from-nets"), "state_dir": str(tmp_path / "ag-state"),
                        "scan_interval": 0, "reachability_ttl": 0}},
                    "digipost": {"cost_nok": "2.00", "settings": {
                        "broker_id": BROKER, "base_url": digipost.base_url, "auth_mode": "signature",
                        "private_key_pem": key_pem(digipost_key).decode(),
                        "digipost_certificate_pem": digipost.certificate_pem, "timeout_seconds": 5.0,
                        "events_cache_seconds": 0}},
                    "email": {"cost_nok": "0.05", "settings": {
                        "host": "127.0.0.1", "port": smtp.port, "username": "sendgw", "password": "secret",
                        "from_address": "faktura@leverandor.no", "tls_ca_file": str(cert), "timeout": 2.0}},
                    "sms": {"cost_nok": "0.60", "settings": {
                        "base_url": link.base_url, "platform_id": "COMMON_API", "platform_partner_id": "12345",
                        "sender": "Leverandor", "username": "sendgw", "password": "secret",
                        "delivery_report_gates": ["gate-1"], "dlr_secret": SECRET, "timeout": 2.0,
                        "link_template": "https://faktura.example.no/f/{delivery_id}"}},
                    "print": {"cost_nok": "11.00", "settings": {
                        "outgoing_dir": str(tmp_path / "print-out"), "incoming_dir": str(tmp_path / "print-in")}},
                },
                "print_cost_nok": "15.00",
            }
            resp = await client.put("/api/v1/routing", json=routing, headers=auth)
            assert resp.status == 200, await resp.text()

            docs = {}
            for who, (fnr, _, _) in PEOPLE.items():
                form = aiohttp.FormData()
                form.add_field("file", invoice_for(base, who), filename="invoice.xml")
                hints = {"fodselsnummer": fnr, "name": f"{who.title()} Testesen",
                         "address": {"lines": ["Testveien 1"], "postcode": "0155", "city": "Oslo"}}
                if who == "per":
                    hints.update(email="per@example.no", phone="+4791111111")
                form.add_field("options", json.dumps({"channel": "b2c", "segment": "b2c", "recipient": hints}))
                resp = await client.post("/api/v1/documents", data=form, headers=auth)
                assert resp.status == 202, await resp.text()
                docs[who] = (await resp.json())["id"]

            async def details(who):
                return await (await client.get(f"/api/v1/documents/{docs[who]}", headers=auth)).json()

            async def settled():
                nets.process()
                house.process()
                states = {who: (await details(who)) for who in docs}
                wanted = {"kari": "delivered", "ola": "delivered", "anne": "delivered", "per": "delivered"}
                done = all(d["state"] == wanted[w] and any(x["channel"] == PEOPLE[w][2] and
                                                             x["state"] in ("delivered", "opened", "paid")
                                                             for x in d["decisions"])
                           for w, d in states.items())
                return states if done else None

            final = await until(settled, timeout=45)

            def decisions(who):
                return [(d["channel"], d["state"], d["reason"]) for d in final[who]["decisions"]]

            assert decisions("kari")[0][:2] == ("efaktura", "delivered"), decisions("kari")
            assert decisions("ola")[0] == ("efaktura", "skipped", "not-registered")
            assert decisions("ola")[1][:2] == ("avtalegiro", "delivered")
            assert [d[:2] for d in decisions("anne")[:2]] == [("efaktura", "skipped"), ("avtalegiro", "skipped")]
            assert decisions("anne")[1][2] == "no-mandate"
            assert decisions("anne")[2][:2] == ("digipost", "delivered")
            per = decisions("per")
            assert [d[0] for d in per] == ["efaktura", "avtalegiro", "digipost", "email", "sms", "print"]
            assert [d[1] for d in per[:3]] == ["skipped", "skipped", "skipped"]
            assert per[3] == ("email", "failed", "recipient-refused")
            assert per[4][:2] == ("sms", "failed")
            assert per[5][:2] == ("print", "delivered")

            # later news: Ola pays by direct debit, Anne opens her Digipost letter
            nets.settle(up_to=DUE + dt.timedelta(days=5))
            [letter] = digipost.documents
            digipost.open_document(letter)

            async def news():
                ola, anne = await details("ola"), await details("anne")
                return (ola, anne) if ola["state"] == "paid" and anne["state"] == "opened" else None

            ola, anne = await until(news)
            assert [(d["channel"], d["state"]) for d in ola["decisions"]][-1] == ("avtalegiro", "paid")
            assert [(d["channel"], d["state"]) for d in anne["decisions"]][-1] == ("digipost", "opened")
            assert any(e["kind"] == "channel-paid" for e in ola["events"])

            report = await (await client.get("/api/v1/reports/channels", headers=auth)).json()
            rows = {r["channel"]: r for r in report["channels"]}
            assert rows["efaktura"]["invoices"] == 1 and rows["efaktura"]["delivered"] == 1
            assert rows["avtalegiro"]["delivered"] == 1 and rows["digipost"]["delivered"] == 1
            assert rows["email"] == {"channel": "email", "invoices": 1, "delivered": 0, "delivery_rate": 0.0,
                                     "cost_nok": "0.00", "saving_vs_print_nok": "0.00"}
            assert rows["sms"]["delivered"] == 0 and rows["print"]["delivered"] == 1
            # 4 delivered at 15.00 each by print would be 60.00; we paid 1.00 + 0.50 + 2.00 + 11.00
            assert report["total"] == {"delivered": 4, "cost_nok": "14.50", "saving_vs_print_nok": "45.50"}
    finally:
        await efaktura.stop()
        await digipost.close()
