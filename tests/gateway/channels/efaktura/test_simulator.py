"""The simulator rejects what MPS would reject, with the SOAP fault shape the client maps."""

from __future__ import annotations

import base64
import datetime as dt
from decimal import Decimal

import aiohttp
import pytest
from lxml import etree

from gateway.channels.efaktura import client as c
from gateway.channels.efaktura.schema import NAMESPACE
from gateway.channels.efaktura.wssecurity import username_token_header

from .conftest import ACCOUNT, ISSUER, KARI_FNR, KID, PASSWORD, PDF, SERVICE_PROVIDER, USER


def claim(**kw) -> c.ClaimInvoice:
    base = dict(invoice_number="F-1", issuer_orgnr=ISSUER, kid=KID, amount=Decimal("100.00"),
                due_date=dt.date.today() + dt.timedelta(days=7), account=ACCOUNT, pdf=PDF,
                efaktura_identifier="EF-KARI-0001")
    base.update(kw)
    return c.ClaimInvoice(**base)


async def post(sim, body: etree._Element | bytes, *, operation: str | None = None, security=True,
               content_type: str = c.CONTENT_TYPE, action: str | None = None, user=USER, password=PASSWORD,
               **token_kw) -> tuple[int, etree._Element]:
    if isinstance(body, bytes):
        data = body
    else:
        sec = username_token_header(user, password, **token_kw) if security else None
        data = c.build_envelope(body, sec)
        operation = operation or etree.QName(body).localname
    headers = {"Content-Type": content_type, "SOAPAction": action or f'"{NAMESPACE}{operation}"'}
    async with aiohttp.ClientSession() as http:
        async with http.post(sim.url, data=data, headers=headers) as resp:
            raw = await resp.read()
            if resp.status == 415:
                return 415, etree.Element("none")
            return resp.status, etree.fromstring(raw)


def fault_of(env: etree._Element) -> tuple[str, list[str]]:
    fault = env.find(f"{{{c.SOAP11}}}Body/{{{c.SOAP11}}}Fault")
    assert fault is not None, etree.tostring(env)
    codes = [e.text for e in fault.iter(f"{{{NAMESPACE}}}code")]
    return fault.findtext("faultcode"), codes


async def test_valid_add_invoices_is_received(sim):
    status, env = await post(sim, c.build_add_invoices("C-1", [claim()]))
    assert status == 200
    resp = c.parse_response(etree.tostring(env))
    assert c.parse_add_invoices_response(resp, "C-1") == c.AddInvoicesResult("C-1", "RECEIVED")


@pytest.mark.parametrize("mutate, code", [
    (dict(kid="10020031"), "INVALID_KID"),
    (dict(kid="1"), "SCHEMA"),  # KID needs at least two characters
    (dict(account="15038000002"), "INVALID_ACCOUNT_NUMBER"),
    (dict(account="1503800000"), "SCHEMA"),
    (dict(issuer_orgnr="974760674"), "INVALID_ORGANIZATION_NUMBER"),
    (dict(issuer_orgnr="123456785"), "NO_ISSUER_AGREEMENT"),
    (dict(issuer_orgnr="999999999"), "ISSUER_NOT_ALLOWED"),
    (dict(amount=Decimal("0.00")), "SCHEMA"),
    (dict(amount=Decimal("-5.00")), "SCHEMA"),
    (dict(efaktura_identifier=None), "5003"),
    (dict(efaktura_identifier=None, social_security_number="01010112345"), "INVALID_SOCIAL_SECURITY_NUMBER"),
    (dict(efaktura_identifier=None, efaktura_reference="REF1"), "EFAKTURA_REFERENCE_DISCONTINUED"),
    (dict(pdf=b"<html>not a pdf</html>"), "INVALID_PRESENTATION"),
    (dict(invoice_number="x" * 101), "SCHEMA"),
    (dict(issue_date=dt.date.today() + dt.timedelta(days=30)), "INVALID_ISSUE_DATE"),
])
async def test_invoice_rules(sim, mutate, code):
    status, env = await post(sim, c.build_add_invoices("C-bad", [claim(**mutate)]))
    assert status == 500
    faultcode, codes = fault_of(env)
    assert faultcode == "soapenv:Client" and code in codes
    assert sim.consignments == {}


async def test_schema_rejects_three_decimals_and_bad_date_and_wrong_order(sim):
    body = c.build_add_invoices("C-x", [claim()])
    amount = body.find(f".//{{{NAMESPACE}}}amount")
    amount.text = "100.005"
    _, env = await post(sim, body)
    assert set(fault_of(env)[1]) == {"SCHEMA"}
    body = c.build_add_invoices("C-x", [claim()])
    body.find(f".//{{{NAMESPACE}}}dueDate").text = "31.12.2026"
    _, env = await post(sim, body)
    assert set(fault_of(env)[1]) == {"SCHEMA"}
    body = c.build_add_invoices("C-x", [claim()])
    inv = body.find(f".//{{{NAMESPACE}}}invoice")
    kid = inv.find(f"{{{NAMESPACE}}}kid")
    inv.remove(kid)
    inv.append(kid)  # KID after the presentation: out of sequence
    _, env = await post(sim, body)
    assert set(fault_of(env)[1]) == {"SCHEMA"}
    short = c.build_add_invoices("C-x", [claim()], message_id="abcd")  # messageIdentifier 5-50
    _, env = await post(sim, short)
    assert set(fault_of(env)[1]) == {"SCHEMA"}


async def test_transport_rules(sim):
    body = c.build_get_blacklist(ISSUER)
    status, _ = await post(sim, body, content_type="application/soap+xml")
    assert status == 415
    _, env = await post(sim, body, action='"https://example.org/other"')
    assert fault_of(env)[0] == "soapenv:Client"
    doctype = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "x">]><x>&e;</x>'
    _, env = await post(sim, doctype, operation="getBlackList")
    assert fault_of(env)[0] == "soapenv:Client"
    foreign = etree.Element("{urn:other}getBlackList")
    _, env = await post(sim, foreign, operation="getBlackList")
    assert fault_of(env)[0] == "soapenv:Client"


async def test_duplicate_consignment_and_unknown_consignment(sim):
    assert (await post(sim, c.build_add_invoices("C-dup", [claim()])))[0] == 200
    _, env = await post(sim, c.build_add_invoices("C-dup", [claim(invoice_number="F-2")]))
    assert fault_of(env)[1] == ["209"]
    _, env = await post(sim, c.build_add_invoices("C-dup2", [claim()]))  # same invoice number again
    assert fault_of(env)[1] == ["DUPLICATE_INVOICE_NUMBER"]
    _, env = await post(sim, c.build_get_consignment_status("C-none"))
    assert fault_of(env)[1] == ["201"]


async def test_ws_security_rules(sim):
    body = c.build_get_blacklist(ISSUER)
    _, env = await post(sim, body, security=False)
    assert fault_of(env)[0] == "wsse:InvalidSecurity"
    _, env = await post(sim, c.build_get_blacklist(ISSUER), password="nope")
    assert fault_of(env)[0] == "wsse:FailedAuthentication"
    _, env = await post(sim, c.build_get_blacklist(ISSUER), user="nobody")
    assert fault_of(env)[0] == "wsse:FailedAuthentication"
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=6)
    _, env = await post(sim, c.build_get_blacklist(ISSUER), digest=True, now=old)
    assert fault_of(env)[0] == "wsse:FailedAuthentication"
    nonce = b"0123456789abcdef"
    status, _ = await post(sim, c.build_get_blacklist(ISSUER), digest=True, nonce=nonce)
    assert status == 200
    _, env = await post(sim, c.build_get_blacklist(ISSUER), digest=True, nonce=nonce)
    assert fault_of(env)[0] == "wsse:FailedAuthentication"  # replay


async def test_service_provider_rules(sim):
    _, env = await post(sim, c.build_get_blacklist(ISSUER, service_provider=SERVICE_PROVIDER))
    assert fault_of(env)[1] == ["5010"]
    sim.add_user("distributor", "pw", service_provider=SERVICE_PROVIDER)
    _, env = await post(sim, c.build_get_blacklist(ISSUER), user="distributor", password="pw")
    assert fault_of(env)[1] == ["5009"]
    status, env = await post(sim, c.build_get_blacklist(ISSUER, service_provider=SERVICE_PROVIDER),
                             user="distributor", password="pw")
    assert status == 200
    blocked = c.parse_blacklist_response(c.parse_response(etree.tostring(env)))
    assert [b.efaktura_identifier for b in blocked] == ["EF-PER-0001"]


async def test_identifier_lookup_rejects_bad_fnr(sim):
    bad = c.build_get_identifiers(ISSUER, [c.IdentifierLookup(social_security_number="12345678901")])
    _, env = await post(sim, bad)
    assert fault_of(env)[1] == ["INVALID_SOCIAL_SECURITY_NUMBER"]
    good = c.build_get_identifiers(ISSUER, [c.IdentifierLookup(social_security_number=KARI_FNR),
                                            c.IdentifierLookup(first_name="Ola", last_name="Nordmann",
                                                               street_address="Fjordveien 2", postal_code="5003")])
    status, env = await post(sim, good)
    results = c.parse_identifiers_response(c.parse_response(etree.tostring(env)))
    assert results == [c.IdentifierResult("FOUND", "EF-KARI-0001"), c.IdentifierResult("AMBIGUOUS")]


async def test_pdf_size_limit(sim):
    sim.max_pdf_bytes = 100
    _, env = await post(sim, c.build_add_invoices("C-big", [claim(pdf=PDF + b"0" * 200)]))
    assert fault_of(env)[1] == ["PRESENTATION_TOO_LARGE"]
    assert base64.b64encode(PDF)  # sanity


async def test_dates_with_a_zone_are_valid_xs_dates(sim):
    body = c.build_add_invoices("C-zone", [claim()])
    due = body.find(f".//{{{NAMESPACE}}}dueDate")
    due.text += "Z"
    status, _ = await post(sim, body)
    assert status == 200 and sim.consignment("C-zone").invoices[0].due_date.isoformat() == due.text[:10]
