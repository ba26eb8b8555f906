"""Peppol identifiers: parsing, case rules, URL encoding, ICD checks, derivation from UBL."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.identifiers import (
    DocumentTypeId,
    IdentifierError,
    ParticipantId,
    ProcessId,
    decode_url_segment,
    identifiers_from_ubl,
)

INVOICE_VALUE = ("urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##"
                 "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1")


@pytest.mark.parametrize("text", ["0192:991825827", "iso6523-actorid-upis::0192:991825827",
                                  "ISO6523-ACTORID-UPIS::0192:991825827", " 0192:991825827 "])
def test_participant_forms(text):
    p = ParticipantId.parse(text)
    assert str(p) == "iso6523-actorid-upis::0192:991825827"
    assert (p.icd, p.local_id) == ("0192", "991825827")


def test_participant_case_insensitive():
    a, b = ParticipantId.parse("9915:TeSt"), ParticipantId.parse("9915:test")
    assert a == b and hash(a) == hash(b) and a.value == "9915:test"


@pytest.mark.parametrize("orgnr", ["123456785", "976098897", "991618112", "991825827", "923609016"])
def test_0192_valid(orgnr):
    assert ParticipantId.parse(f"0192:{orgnr}").local_id == orgnr


@pytest.mark.parametrize("text,code", [
    ("0192:123456784", "invalid-check-digit"),
    ("0192:323456780", "invalid-check-digit"),
    ("0192:12345678", "bad-syntax"),
    ("0192:9918258270", "bad-syntax"),
    ("0192:NO991825827", "bad-syntax"),
    ("9908:991825827", "deprecated-icd"),
    ("192:991825827", "invalid-icd"),
    ("abcd:991825827", "invalid-icd"),
    ("991825827", "invalid-icd"),
    ("", "empty"),
    ("0192:", "empty"),
    ("iso6523-actorid-upis::", "empty"),
    ("9915:has space", "bad-syntax"),
    ("9915:bl\u00e5b\u00e6r", "bad-syntax"),
    ("9915:" + "x" * 131, "too-long"),
    ("other-scheme::0192:991825827", "unsupported-scheme"),
])
def test_participant_errors(text, code):
    with pytest.raises(IdentifierError) as info:
        ParticipantId.parse(text)
    assert info.value.code == code


def test_participant_max_length_ok():
    assert ParticipantId.parse("9915:" + "x" * 130)


def test_9908_mapped_on_request():
    assert ParticipantId.parse("9908:991825827", map_legacy=True) == ParticipantId.parse("0192:991825827")
    with pytest.raises(IdentifierError) as info:
        ParticipantId.parse("9908:123456784", map_legacy=True)
    assert info.value.code == "invalid-check-digit"


def test_participant_url_segment():
    assert ParticipantId.parse("0192:991825827").url_segment == "iso6523-actorid-upis%3A%3A0192%3A991825827"


def test_doctype_parse_and_parts():
    d = DocumentTypeId.parse("busdox-docid-qns::" + INVOICE_VALUE)
    assert d == DocumentTypeId.parse(INVOICE_VALUE)  # scheme defaults to busdox-docid-qns
    assert d.root_namespace == "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
    assert d.local_name == "Invoice"
    assert d.customization_id == "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
    assert d.version == "2.1"
    assert not d.is_wildcard


def test_doctype_case_sensitive():
    assert DocumentTypeId.parse(INVOICE_VALUE) != DocumentTypeId.parse(INVOICE_VALUE.replace("::Invoice##", "::invoice##"))
    assert DocumentTypeId.parse("BUSDOX-DOCID-QNS::" + INVOICE_VALUE).scheme == "busdox-docid-qns"


def test_doctype_url_segment_matches_real_smp_href():
    # the exact form used in shared/interop/vefa-peppol/smp-servicegroup-0192-991825827.xml
    expected = ("busdox-docid-qns%3A%3Aurn%3Aoasis%3Anames%3Aspecification%3Aubl%3Aschema%3Axsd%3AInvoice-2%3A%3A"
                "Invoice%23%23urn%3Acen.eu%3Aen16931%3A2017%23compliant%23urn%3Afdc%3Apeppol.eu%3A2017%3Apoacc%3A"
                "billing%3A3.0%3A%3A2.1")
    d = DocumentTypeId.parse(INVOICE_VALUE)
    assert d.url_segment == expected
    assert decode_url_segment(expected) == (d.scheme, d.value)


@pytest.mark.parametrize("text,code", [
    ("", "empty"),
    ("busdox-docid-qns::", "empty"),
    ("busdox-docid-qns::urn:x:Invoice", "bad-syntax"),
    ("busdox-docid-qns::urn:x::Invoice##cust", "bad-syntax"),
    ("busdox-docid-qns::urn:x::Invoice##cust::", "bad-syntax"),
    ("busdox-docid-qns::urn:x::Invoice##cust with space::2.1", "bad-syntax"),
    ("busdox-docid-qns::" + "u" * 400 + "::Invoice##" + "c" * 100 + "::2.1", "too-long"),
    ("some-scheme::urn:x::Invoice##c::2.1", "unsupported-scheme"),
    ("busdox-docid-qns::urn:x::Invoice##urn:c*::2.1", "bad-wildcard"),
    ("peppol-doctype-wildcard::urn:x::Invoice##urn:c*x::2.1", "bad-wildcard"),
    ("peppol-doctype-wildcard::urn:x::Invoice##urn:c**::2.1", "bad-wildcard"),
])
def test_doctype_errors(text, code):
    with pytest.raises(IdentifierError) as info:
        DocumentTypeId.parse(text)
    assert info.value.code == code


def test_doctype_without_customization_allowed():
    d = DocumentTypeId.parse("busdox-docid-qns::urn:no:difi:einnsyn:xsd::innsynskrav")
    assert d.local_name == "innsynskrav" and d.customization_id is None


def test_wildcard_candidates_order():
    d = DocumentTypeId.parse("peppol-doctype-wildcard::urn:x::Invoice##urn:peppol:pint:billing-1@jp-1@sub-2::2.1")
    assert [c.customization_id for c in d.wildcard_candidates()] == [
        "urn:peppol:pint:billing-1@jp-1@sub-2",
        "urn:peppol:pint:billing-1@jp-1@sub-2*",
        "urn:peppol:pint:billing-1@jp-1*",
        "urn:peppol:pint:billing-1*",
    ]
    assert all(c.scheme == "peppol-doctype-wildcard" for c in d.wildcard_candidates())


def test_process():
    p = ProcessId.parse("urn:fdc:peppol.eu:2017:poacc:billing:01:1.0")
    assert str(p) == "cenbii-procid-ubl::urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
    assert p == ProcessId.parse("cenbii-procid-ubl::urn:fdc:peppol.eu:2017:poacc:billing:01:1.0")
    assert p != ProcessId.parse("urn:fdc:peppol.eu:2017:poacc:BILLING:01:1.0")
    assert ProcessId.parse("busdox-procid-transport::busdox:noprocess").scheme == "busdox-procid-transport"
    with pytest.raises(IdentifierError) as info:
        ProcessId.parse("x::y")
    assert info.value.code == "unsupported-scheme"
    with pytest.raises(IdentifierError) as info:
        ProcessId.parse("cenbii-procid-ubl::" + "p" * 201)
    assert info.value.code == "too-long"


UBL_INVOICE = """<?xml version="1.0" encoding="UTF-8"?>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
  xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
  xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
  <cbc:CustomizationID>urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0</cbc:CustomizationID>
  <cbc:ProfileID>urn:fdc:peppol.eu:2017:poacc:billing:01:1.0</cbc:ProfileID>
  <cbc:ID>1</cbc:ID>
  <cac:AccountingSupplierParty><cac:Party><cbc:EndpointID schemeID="0192">923609016</cbc:EndpointID></cac:Party></cac:AccountingSupplierParty>
  <cac:AccountingCustomerParty><cac:Party><cbc:EndpointID schemeID="0192">991825827</cbc:EndpointID></cac:Party></cac:AccountingCustomerParty>
</Invoice>"""


def test_identifiers_from_ubl_invoice():
    ids = identifiers_from_ubl(UBL_INVOICE.encode())
    assert ids.sender == ParticipantId.parse("0192:923609016")
    assert ids.receiver == ParticipantId.parse("0192:991825827")
    assert ids.document_type == DocumentTypeId.parse(INVOICE_VALUE)
    assert ids.process == ProcessId.parse("urn:fdc:peppol.eu:2017:poacc:billing:01:1.0")


def test_identifiers_from_ubl_credit_note_and_version():
    xml = (UBL_INVOICE.replace("<Invoice ", "<CreditNote ").replace("</Invoice>", "</CreditNote>")
           .replace("xsd:Invoice-2", "xsd:CreditNote-2")
           .replace("<cbc:ID>1</cbc:ID>", "<cbc:UBLVersionID>2.1</cbc:UBLVersionID><cbc:ID>1</cbc:ID>"))
    ids = identifiers_from_ubl(xml.encode())
    assert str(ids.document_type) == (
        "busdox-docid-qns::urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2::CreditNote##"
        "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1")


def test_identifiers_from_ubl_order():
    xml = """<Order xmlns="urn:oasis:names:specification:ubl:schema:xsd:Order-2"
      xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
      xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
      <cbc:CustomizationID>urn:fdc:peppol.eu:poacc:trns:order:3</cbc:CustomizationID>
      <cbc:ProfileID>urn:fdc:peppol.eu:poacc:bis:ordering:3</cbc:ProfileID>
      <cac:BuyerCustomerParty><cac:Party><cbc:EndpointID schemeID="0192">923609016</cbc:EndpointID></cac:Party></cac:BuyerCustomerParty>
      <cac:SellerSupplierParty><cac:Party><cbc:EndpointID schemeID="9915">Seller</cbc:EndpointID></cac:Party></cac:SellerSupplierParty>
    </Order>"""
    ids = identifiers_from_ubl(xml.encode())
    assert ids.sender.value == "0192:923609016" and ids.receiver.value == "9915:seller"
    assert ids.document_type.value.endswith("::Order##urn:fdc:peppol.eu:poacc:trns:order:3::2.1")


def test_identifiers_from_sbd(shared_dir: Path):
    ids = identifiers_from_ubl((shared_dir / "interop/phase4/sbd-bis3-invoice-base.xml").read_bytes())
    assert ids.sender.value == "9915:phase4-test-sender"
    assert ids.receiver.value == "9915:helger"
    assert ids.document_type == DocumentTypeId.parse(INVOICE_VALUE)


@pytest.mark.parametrize("mutate,code", [
    (lambda x: x.replace('schemeID="0192">991825827', 'schemeID="0192">991825828'), "invalid-check-digit"),
    (lambda x: x.replace('<cbc:EndpointID schemeID="0192">991825827</cbc:EndpointID>', ""), "missing-element"),
    (lambda x: x.replace('schemeID="0192">923609016', '>923609016'), "invalid-icd"),
    (lambda x: x.replace('schemeID="0192">991825827', 'schemeID="9908">991825827'), "deprecated-icd"),
    (lambda x: x.replace("<cbc:ProfileID>urn:fdc:peppol.eu:2017:poacc:billing:01:1.0</cbc:ProfileID>", ""), "missing-element"),
    (lambda x: x.replace("<cbc:CustomizationID>", "<cbc:X>").replace("</cbc:CustomizationID>", "</cbc:X>"), "missing-element"),
    (lambda x: x.replace("urn:oasis:names:specification:ubl:schema:xsd:Invoice-2", "urn:other"), "not-ubl"),
    (lambda x: x[:200], "not-xml"),
    (lambda x: x.replace('<?xml version="1.0" encoding="UTF-8"?>',
                         '<?xml version="1.0"?><!DOCTYPE Invoice [<!ENTITY x "y">]>'), "not-xml"),
])
def test_identifiers_from_ubl_errors(mutate, code):
    with pytest.raises(IdentifierError) as info:
        identifiers_from_ubl(mutate(UBL_INVOICE).encode())
    assert info.value.code == code
