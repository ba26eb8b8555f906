"""Fixtures: a controllable clock, keys, a seeded Digipost simulator (plain and mutual-TLS), adapters."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from pathlib import Path

import pytest
from stdnum.no import fodselsnummer as _fnr

from gateway.channels.base import DeliveryRequest, PostalAddress, Reachability, Recipient
from gateway.channels.digipost.adapter import DigipostAdapter, DigipostConfig
from gateway.channels.digipost.simulator import DigipostSimulator, TestPKI, key_pem, new_rsa_key
from gateway.invoice import extract_invoice_facts
from gateway.kid import make_kid

BROKER = "704412"
CLIENT_ID = "sendgw-test-client"
START = dt.datetime(2026, 11, 30, 10, 0, tzinfo=dt.timezone.utc)  # a Monday
RETURN_ADDRESS = {"name": "Salescompany ltd.", "lines": ["Postboks 1"], "postcode": "0101", "city": "Oslo"}


def _valid_fnrs(count: int) -> list[str]:
    out, n = [], 0
    while len(out) < count:
        base = f"{(n % 28) + 1:02d}{(n % 12) + 1:02d}85{400 + n:03d}"
        n += 1
        try:
            d1 = _fnr.calc_check_digit1(base)
            d2 = _fnr.calc_check_digit2(base + d1)
        except Exception:
            continue
        cand = base + d1 + d2
        if len(cand) == 11 and _fnr.is_valid(cand):
            out.append(cand)
    return out


FNR_MAILBOX, FNR_IDENTIFIED, FNR_UNKNOWN, FNR_ADDR = _valid_fnrs(4)


class Clock:
    """A settable UTC clock shared by client and simulator."""

    def __init__(self, now: dt.datetime = START):
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **kw) -> None:
        self.now += dt.timedelta(**kw)


class Offset:
    """A clock that runs `delta` away from another one (a client with a skewed clock)."""

    def __init__(self, base: Clock, delta: dt.timedelta):
        self.base, self.delta = base, delta

    def __call__(self) -> dt.datetime:
        return self.base() + self.delta


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
def sender_key():
    return new_rsa_key()


@pytest.fixture(scope="session")
def other_key():
    return new_rsa_key()


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> TestPKI:
    return TestPKI(tmp_path_factory.mktemp("digipost-pki"))


@pytest.fixture(scope="session")
def client_cert(pki):
    return pki.issue_client(CLIENT_ID)


def seed(sim: DigipostSimulator) -> None:
    sim.add_person("Kari Nordmann", fnr=FNR_MAILBOX, address_line="Storgata 1", postcode="0155", city="Oslo",
                   digipost_address="kari.nordmann#1A2B")
    sim.add_person("Ola Uten Postkasse", fnr=FNR_IDENTIFIED, address_line="Fjellveien 7", postcode="5003",
                   city="Bergen", mailbox=False)
    sim.add_person("Per Hansen", address_line="Kirkegata 3", postcode="7010", city="Trondheim",
                   phone="+4791234567", digipost_address="per.hansen#77")
    sim.add_person("Anne Berg", address_line="Elvegata 2", postcode="9008", city="Tromsø")
    sim.add_person("Anne Berg", address_line="Elvegata 2", postcode="9008", city="Tromsø")
    sim.add_organisation("987654325", "The Buyercompany")


@pytest.fixture
async def sim(clock, sender_key):
    simulator = DigipostSimulator(clock=clock)
    simulator.register_sender(BROKER, sender_key.public_key())
    seed(simulator)
    await simulator.start()
    yield simulator
    await simulator.close()


@pytest.fixture
async def tls_sim(clock, pki):
    simulator = DigipostSimulator(clock=clock, tls=pki)
    simulator.register_sender(BROKER)  # no key: this sender authenticates with bearer tokens only
    simulator.register_oauth_client(CLIENT_ID, BROKER)
    seed(simulator)
    await simulator.start()
    yield simulator
    await simulator.close()


def signature_config(sim: DigipostSimulator, key, **over) -> DigipostConfig:
    base = dict(broker_id=BROKER, base_url=sim.base_url, auth_mode="signature",
                private_key_pem=key_pem(key).decode(), digipost_certificate_pem=sim.certificate_pem,
                timeout_seconds=5.0, events_cache_seconds=0, return_address=RETURN_ADDRESS)
    base.update(over)
    return DigipostConfig.from_dict(base)


def bearer_config(sim: DigipostSimulator, pki: TestPKI, client_cert, **over) -> DigipostConfig:
    cert, key = client_cert
    base = dict(broker_id=BROKER, base_url=sim.base_url, auth_mode="bearer",
                token_url=sim.base_url + "/oauth2/token", client_id=CLIENT_ID,
                client_cert_path=str(cert), client_key_path=str(key), ca_file=str(pki.ca_file),
                digipost_certificate_pem=sim.certificate_pem, timeout_seconds=5.0, events_cache_seconds=0,
                return_address=RETURN_ADDRESS)
    base.update(over)
    return DigipostConfig.from_dict(base)


@pytest.fixture(params=["signature", "bearer"])
async def env(request, clock, sender_key, pki, client_cert):
    """(simulator, adapter factory) for each auth mode."""
    if request.param == "signature":
        simulator = DigipostSimulator(clock=clock)
        simulator.register_sender(BROKER, sender_key.public_key())

        def make(**over):
            return DigipostAdapter(signature_config(simulator, sender_key, **over), clock=clock)
    else:
        simulator = DigipostSimulator(clock=clock, tls=pki)
        simulator.register_sender(BROKER)
        simulator.register_oauth_client(CLIENT_ID, BROKER)

        def make(**over):
            return DigipostAdapter(bearer_config(simulator, pki, client_cert, **over), clock=clock)
    seed(simulator)
    await simulator.start()
    adapters = []

    def factory(**over):
        adapter = make(**over)
        adapters.append(adapter)
        return adapter

    yield simulator, factory
    for adapter in adapters:
        await adapter.close()
    await simulator.close()


def a4_pdf(pages: int = 1, size=(595, 842)) -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(*size)
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


@pytest.fixture(scope="session")
def facts(shared_dir: Path):
    raw = (shared_dir / "conformance/ehf-billing-3/examples/Norwegian-example-1.xml").read_bytes()
    base = extract_invoice_facts(raw)
    means = tuple(dataclasses.replace(m, kid=make_kid("000343432321323", "mod10")) for m in base.payment_means)
    return dataclasses.replace(base, due_date=dt.date(2026, 12, 20), payment_means=means), raw


def recipient(kind: str) -> Recipient:
    addr = {
        "mailbox": PostalAddress(("Storgata 1",), "0155", "Oslo"),
        "identified": PostalAddress(("Fjellveien 7",), "5003", "Bergen"),
        "unknown": PostalAddress(("Ukjent vei 9",), "0001", "Oslo"),
        "name": PostalAddress(("Kirkegata 3",), "7010", "Trondheim"),
        "ambiguous": PostalAddress(("Elvegata 2",), "9008", "Tromsø"),
    }[kind]
    names = {"mailbox": "Kari Nordmann", "identified": "Ola Uten Postkasse", "unknown": "Nils Ukjent",
             "name": "Per Hansen", "ambiguous": "Anne Berg"}
    fnr = {"mailbox": FNR_MAILBOX, "identified": FNR_IDENTIFIED, "unknown": FNR_UNKNOWN}.get(kind)
    return Recipient(name=names[kind], fodselsnummer=fnr, address=addr,
                     phone="+4791234567" if kind == "name" else None)


def delivery(facts_raw, rcpt: Recipient, reach: Reachability, delivery_id: str = "dlv-0001", *,
             pdf: bytes | None = None, invoice=None) -> DeliveryRequest:
    inv, raw = facts_raw
    return DeliveryRequest(delivery_id=delivery_id, issuer_orgnr="986789012", invoice=invoice or inv, ubl=raw,
                           pdf=pdf if pdf is not None else a4_pdf(), recipient=rcpt, reachability=reach)
