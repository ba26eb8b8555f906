"""Pure request building / response parsing, config and cache (no network)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from lxml import etree

from gateway.channels.efaktura import client as c
from gateway.channels.efaktura.adapter import (EfakturaConfig, TtlCache, consignment_id_for, split_name)
from gateway.channels.efaktura.schema import NAMESPACE, request_schema
from gateway.channels.efaktura.wssecurity import (PASSWORD_DIGEST, parse_username_token, password_digest,
                                                  username_token_header, verify_password)

from .conftest import ACCOUNT, ISSUER, KID, PDF

SOAP = c.SOAP11


def _claim(**kw):
    base = dict(invoice_number="F-1", issuer_orgnr=ISSUER, kid=KID, amount=Decimal("1234.5"),
                due_date=dt.date(2026, 12, 24), account=ACCOUNT, pdf=PDF, efaktura_identifier="EF-1",
                issuer_name="Kommunen", issue_date=dt.date(2026, 12, 1))
    base.update(kw)
    return c.ClaimInvoice(**base)


def test_built_requests_match_the_schema():
    schema = request_schema()
    bodies = [
        c.build_add_invoices("C-1", [_claim(), _claim(invoice_number="F-2", efaktura_identifier=None,
                                                       social_security_number="01017012345")]),
        c.build_add_invoices("C-2", [_claim()], service_provider="923609016"),
        c.build_get_identifiers(ISSUER, [c.IdentifierLookup(social_security_number="01017012345"),
                                         c.IdentifierLookup(first_name="Kari", last_name="Nordmann",
                                                            street_address="Storgata 1", postal_code="0155",
                                                            postal_place="Oslo", country_code="NO",
                                                            email="k@example.no", phone="+4791234567",
                                                            date_of_birth=dt.date(1985, 3, 14))]),
        c.build_get_blacklist(ISSUER),
        c.build_get_consignment_status("C-1"),
        c.build_get_invoice_status("C-1", "F-1"),
    ]
    for body in bodies:
        assert schema.validate(body), (etree.QName(body).localname, schema.error_log)


def test_add_invoices_fields_and_amount_format():
    body = c.build_add_invoices("C-1", [_claim()], message_id="msg-00001")
    ns = {"ef": NAMESPACE}
    assert body.findtext("ef:auditInformation/ef:messageIdentifier", namespaces=ns) == "msg-00001"
    inv = body.find("ef:invoices/ef:invoice", ns)
    assert [etree.QName(e).localname for e in inv] == [
        "invoiceNumber", "efakturaIdentifier", "issuerOrganizationNumber", "issuerName", "kid", "amount",
        "dueDate", "issueDate", "accountNumber", "presentation"]
    assert inv.findtext("ef:amount", namespaces=ns) == "1234.50"
    assert inv.findtext("ef:dueDate", namespaces=ns) == "2026-12-24"
    assert c.format_amount(Decimal("1E+3")) == "1000.00"
    c.set_message_identifier(body, "msg-00002")
    assert body.findtext("ef:auditInformation/ef:messageIdentifier", namespaces=ns) == "msg-00002"


def test_envelope_and_soap_action():
    sec = username_token_header("u", "p")
    env = etree.fromstring(c.build_envelope(c.build_get_blacklist(ISSUER), sec))
    assert env.tag == f"{{{SOAP}}}Envelope"
    assert env.find(f"{{{SOAP}}}Header") is not None
    assert c.soap_action(NAMESPACE, "addInvoices") == NAMESPACE + "addInvoices"
    assert c.soap_action("urn:x", "addInvoices") == "urn:x/addInvoices"


def _fault(faultcode: str, detail: str = "") -> bytes:
    return (f'<s:Envelope xmlns:s="{SOAP}" xmlns:wsse="urn:w"><s:Body><s:Fault><faultcode>{faultcode}</faultcode>'
            f'<faultstring>nope</faultstring>{detail}</s:Fault></s:Body></s:Envelope>').encode()


@pytest.mark.parametrize("data, code, transient", [
    (_fault("wsse:FailedAuthentication"), "auth-refused", False),
    (_fault("wsse:InvalidSecurity"), "auth-refused", False),
    (_fault("s:Client", "<detail><validationFault><errors><error><code>209</code><message>dup</message>"
                        "</error></errors></validationFault></detail>"), "duplicate-consignment", False),
    (_fault("s:Client", "<detail><v:validationFault xmlns:v='urn:v'><v:errorCode>5003</v:errorCode>"
                        "<v:errorMessage>who?</v:errorMessage></v:validationFault></detail>"), "invalid-data", False),
    (_fault("s:Server", "<detail><serverFault/></detail>"), "server-error", True),
    (_fault("s:Client"), "invalid-data", False),
    (b"<html>proxy error</html>", "bad-response", True),
    (b"not xml at all", "bad-response", True),
    (b'<!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>', "bad-response", False),
])
def test_fault_mapping(data, code, transient):
    with pytest.raises(c.EfakturaError) as err:
        c.parse_response(data, 500)
    assert err.value.code == code and err.value.transient is transient


SOAP12 = "http://www.w3.org/2003/05/soap-envelope"


@pytest.mark.parametrize("code, subcode, reason, expected", [
    ("env:Sender", "wsse:FailedAuthentication", "The security token could not be authenticated", "auth-refused"),
    ("env:Receiver", None, "database down", "server-error"),
    ("env:Sender", None, "amount is wrong", "invalid-data"),
    ("env:Sender", None, "Authentication failed for user x", "auth-refused"),
])
def test_soap12_faults(code, subcode, reason, expected):
    sub = f"<env:Subcode><env:Value>{subcode}</env:Value></env:Subcode>" if subcode else ""
    data = (f'<env:Envelope xmlns:env="{SOAP12}" xmlns:wsse="urn:w"><env:Body><env:Fault><env:Code>'
            f'<env:Value>{code}</env:Value>{sub}</env:Code><env:Reason><env:Text xml:lang="en">{reason}'
            '</env:Text></env:Reason></env:Fault></env:Body></env:Envelope>').encode()
    with pytest.raises(c.EfakturaError) as err:
        c.parse_response(data, 500)
    assert err.value.code == expected and reason in err.value.message


def test_fault_keeps_error_codes():
    with pytest.raises(c.EfakturaError) as err:
        c.parse_response(_fault("s:Client", "<detail><v:validationFault xmlns:v='urn:v'><v:errorCode>5003"
                                            "</v:errorCode><v:errorMessage>who?</v:errorMessage>"
                                            "</v:validationFault></detail>"))
    assert err.value.error_codes == ("5003",) and "who?" in err.value.message


def test_responses_parse_whatever_the_element_prefixes():
    data = (f'<e:Envelope xmlns:e="{SOAP}"><e:Body><r:getInvoiceStatusResponse xmlns:r="urn:any">'
            '<invoiceStatuses><invoiceStatus><invoiceNumber>F-1</invoiceNumber><status>processed</status>'
            '<statusTime>2026-12-01T10:00:00Z</statusTime></invoiceStatus><invoiceStatus>'
            '<invoiceNumber>F-2</invoiceNumber><status>REJECTED</status><errorCode>E1</errorCode>'
            '<errorMessage>x</errorMessage></invoiceStatus></invoiceStatuses></r:getInvoiceStatusResponse>'
            '</e:Body></e:Envelope>').encode()
    statuses = c.parse_invoice_statuses(c.parse_response(data))
    assert [(s.invoice_number, s.status, s.error_code) for s in statuses] == [
        ("F-1", "PROCESSED", None), ("F-2", "REJECTED", "E1")]
    assert statuses[0].status_time == dt.datetime(2026, 12, 1, 10, tzinfo=dt.timezone.utc)


def test_username_token_digest_roundtrip():
    now = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.timezone.utc)
    sec = username_token_header("user", "secret", digest=True, now=now, nonce=b"n" * 16)
    header = etree.Element(f"{{{SOAP}}}Header")
    header.append(sec)
    token = parse_username_token(header)
    assert token.password_type == PASSWORD_DIGEST and token.created == now
    assert token.password == password_digest(b"n" * 16, "2026-11-30T12:00:00.000Z", "secret")
    assert verify_password(token, "secret") and not verify_password(token, "other")


def test_consignment_ids_are_deterministic_and_fit_the_schema():
    assert consignment_id_for("dlv-1") == "dlv-1"
    long_id = "x" * 80
    assert consignment_id_for(long_id) == consignment_id_for(long_id)
    assert len(consignment_id_for(long_id)) == 40
    assert consignment_id_for("with space") != "with space"
    digits = consignment_id_for("dlv-1", "digits11")
    assert len(digits) == 11 and digits.isdigit() and digits == consignment_id_for("dlv-1", "digits11")


def test_config_from_dict():
    cfg = EfakturaConfig.from_dict({"issuer_orgnr": "NO974760673MVA", "timeout_seconds": "5"})
    assert cfg.issuer_orgnr == "974760673" and cfg.timeout_seconds == 5.0
    assert cfg.url == "https://efaktura-services.nets.no/invoicing-nets-submitter/v1/"
    for bad in ({}, {"issuer_orgnr": "974760674"}, {"issuer_orgnr": ISSUER, "nope": 1},
                {"issuer_orgnr": ISSUER, "consignment_id_format": "uuid"},
                {"issuer_orgnr": ISSUER, "kid_algorithm": "luhn"},
                {"issuer_orgnr": ISSUER, "vipps": "yes"}):
        with pytest.raises(ValueError):
            EfakturaConfig.from_dict(bad)


def test_ttl_cache_is_bounded_and_expires():
    now = [0.0]
    cache = TtlCache(2, clock=lambda: now[0])
    cache.put("a", 1, 10)
    cache.put("b", 2, 10)
    assert cache.get("a") == 1  # a is now most recent
    cache.put("c", 3, 10)
    assert cache.get("b") is None and cache.get("a") == 1 and len(cache) == 2
    now[0] = 10
    assert cache.get("a") is None


def test_split_name():
    assert split_name("Kari Anne Nordmann") == ("Kari Anne", "Nordmann")
    assert split_name("Kari") is None and split_name(None) is None
