"""eFaktura fixtures: a seeded simulator, an adapter pointed at it, and delivery requests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from gateway.channels.base import DeliveryRequest, PostalAddress, Reachability, Recipient
from gateway.channels.efaktura.adapter import EfakturaAdapter, EfakturaConfig
from gateway.channels.efaktura.simulator import EfakturaSimulator
from gateway.invoice import Address, InvoiceFacts, Party, PaymentMeans
from gateway.kid import make_kid

ISSUER = "974760673"
OTHER_ISSUER = "999999999"
SERVICE_PROVIDER = "923609016"
ACCOUNT = "15038000001"
USER, PASSWORD = "issuer-user", "correct horse"
KID = make_kid("10020030", "mod10")
PDF = b"%PDF-1.7\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
TODAY = dt.date.today()


def make_fnr(born: dt.date, individual: int = 100) -> str:
    """A fødselsnummer with valid K1/K2 (individual 000-499 means born 1900-1999)."""
    for ind in range(individual, individual + 40):
        base = f"{born:%d%m%y}{ind:03d}"
        k1 = 11 - sum(w * int(d) for w, d in zip((3, 7, 6, 1, 8, 9, 4, 5, 2), base, strict=True)) % 11
        k1 = 0 if k1 == 11 else k1
        if k1 == 10:
            continue
        base += str(k1)
        k2 = 11 - sum(w * int(d) for w, d in zip((5, 4, 3, 2, 7, 6, 5, 4, 3, 2), base, strict=True)) % 11
        k2 = 0 if k2 == 11 else k2
        if k2 == 10:
            continue
        return base + str(k2)
    raise AssertionError("no valid fnr found")


KARI_FNR = make_fnr(dt.date(1985, 3, 14))
OLA_FNR = make_fnr(dt.date(1970, 1, 2))
PER_FNR = make_fnr(dt.date(1990, 7, 7))
NILS_FNR = make_fnr(dt.date(1962, 12, 24))
UNKNOWN_FNR = make_fnr(dt.date(1999, 5, 5))


def seed(sim: EfakturaSimulator) -> EfakturaSimulator:
    sim.add_user(USER, PASSWORD, issuers={ISSUER})
    sim.add_issuer(ISSUER, name="Kommunen", kid_algorithm="mod10", accounts={ACCOUNT})
    sim.add_issuer(OTHER_ISSUER, name="Andre AS")
    sim.add_consumer("EF-KARI-0001", social_security_number=KARI_FNR, first_name="Kari Anne",
                     last_name="Nordmann", street_address="Storgata 1", postal_code="0155",
                     postal_place="Oslo", email="kari@example.no", phone="+4791234567",
                     date_of_birth=dt.date(1985, 3, 14), vipps=True)
    # Two Ola Nordmann at the same address: ambiguous without e-mail/phone/birth date.
    sim.add_consumer("EF-OLA-0001", social_security_number=OLA_FNR, first_name="Ola", last_name="Nordmann",
                     street_address="Fjordveien 2", postal_code="5003", postal_place="Bergen",
                     email="ola.senior@example.no", date_of_birth=dt.date(1970, 1, 2))
    sim.add_consumer("EF-OLA-0002", first_name="Ola", last_name="Nordmann", street_address="Fjordveien 2",
                     postal_code="5003", postal_place="Bergen", email="ola.junior@example.no",
                     date_of_birth=dt.date(2001, 6, 1))
    sim.add_consumer("EF-PER-0001", social_security_number=PER_FNR, first_name="Per", last_name="Blokk",
                     street_address="Sperreveien 9", postal_code="7010", postal_place="Trondheim")
    sim.block(ISSUER, "EF-PER-0001")
    sim.add_consumer("EF-NILS-0001", social_security_number=NILS_FNR, first_name="Nils", last_name="Nei",
                     street_address="Papirveien 3", postal_code="9008", postal_place="Tromsø", consent=False)
    return sim


@pytest.fixture
async def sim():
    simulator = seed(EfakturaSimulator(process_after_polls=2))
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
def config_dict(sim):
    return {"issuer_orgnr": ISSUER, "issuer_name": "Kommunen", "url": sim.url, "username": USER,
            "password": PASSWORD, "timeout_seconds": 2.0, "kid_algorithm": "mod10"}


@pytest.fixture
async def adapter(config_dict):
    a = EfakturaAdapter(EfakturaConfig.from_dict(config_dict))
    yield a
    await a.close()


def invoice(number: str = "F-2026-0001", *, kid: str | None = KID, account: str = ACCOUNT,
            amount: str = "1234.50", due: dt.date | None = None, currency: str = "NOK",
            kind: str = "invoice") -> InvoiceFacts:
    due = due or TODAY + dt.timedelta(days=14)
    return InvoiceFacts(
        kind=kind, type_code="380", number=number, issue_date=TODAY, due_date=due, currency=currency,
        payable_amount=Decimal(amount), tax_exclusive_amount=None, tax_inclusive_amount=None,
        line_extension_amount=None, vat_total=None,
        seller=Party(name="Kommunen", orgnr=ISSUER, address=Address(street="Rådhuset", postal_zone="0037",
                                                                     city="Oslo", country="NO")),
        buyer=Party(name="Kari Anne Nordmann"),
        payment_means=(PaymentMeans(code="30", kid=kid, account=account, account_kind="bban", due_date=due),))


KARI = Recipient(name="Kari Anne Nordmann", fodselsnummer=KARI_FNR,
                 address=PostalAddress(("Storgata 1",), "0155", "Oslo"))


def request(reachability: Reachability, *, delivery_id: str = "dlv-0001", recipient: Recipient = KARI,
            facts: InvoiceFacts | None = None, options: dict | None = None, pdf: bytes = PDF) -> DeliveryRequest:
    return DeliveryRequest(delivery_id=delivery_id, issuer_orgnr=ISSUER, invoice=facts or invoice(),
                           ubl=b"<Invoice/>", pdf=pdf, recipient=recipient, reachability=reachability,
                           options=options or {})
