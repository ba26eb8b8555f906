"""extract_invoice_facts: exact facts from official examples, SBDH, credit notes, hostile input."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from gateway.invoice import InvoiceError, classify_account, extract_invoice_facts
from tests.gateway.render.ubl_examples import CONFORMANCE, NS, example_id, norwegian_examples

EXAMPLES = norwegian_examples()
EHF_FAKTURA = "ehf-billing-3/examples/ehf-3-faktura-1.xml"
SB_CREDIT = "ehf-postaward-g3/2026-08-13/self-billing-3.0/example/SB-base-creditnote-correction.xml"


def _src(shared_dir: Path, rel: str) -> bytes:
    return (shared_dir / "conformance" / rel).read_bytes()


def _mutate(xml: bytes, fn) -> bytes:
    root = etree.fromstring(xml)
    fn(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def test_ehf_example_facts_are_exact(shared_dir):
    f = extract_invoice_facts(_src(shared_dir, EHF_FAKTURA))
    assert (f.kind, f.type_code, f.number) == ("invoice", "380", "TOSL108")
    assert f.issue_date == dt.date(2013, 6, 30) and f.due_date == dt.date(2013, 7, 20)
    assert f.currency == "NOK"
    assert f.payable_amount == Decimal("802.00") and isinstance(f.payable_amount, Decimal)
    assert f.tax_exclusive_amount == Decimal("1436.5")
    assert f.tax_inclusive_amount == Decimal("1801.78")
    assert f.vat_total == Decimal("365.28")
    assert (f.prepaid_amount, f.rounding_amount) == (Decimal("1000"), Decimal("0.22"))
    assert (f.allowance_total, f.charge_total) == (Decimal("100"), Decimal("100"))
    assert [(v.category, v.rate, v.taxable_amount, v.tax_amount) for v in f.vat_breakdown] == [
        ("S", Decimal("25"), Decimal("1460.5"), Decimal("365.13")),
        ("S", Decimal("15"), Decimal("1"), Decimal("0.15")),
        ("E", Decimal("0"), Decimal("-25"), Decimal("0")),
    ]
    assert f.vat_breakdown[2].exemption_reason == "Exempt New Means of Transport"
    assert len(f.lines) == 5
    line = f.lines[0]
    assert (line.id, line.name, line.quantity, line.unit, line.price, line.line_amount, line.vat_rate) == (
        "1", "Laptop computer", Decimal("1"), "NAR", Decimal("1273"), Decimal("1273"), Decimal("25"))
    assert line.period_start == dt.date(2013, 6, 1) and line.sellers_item_id == "JB007"
    assert [(a.is_charge, a.amount, a.reason) for a in line.allowance_charges] == [
        (False, Decimal("12"), "Damage"), (True, Decimal("12"), "Testing")]
    assert f.lines[1].quantity == Decimal("-1")
    assert [(a.is_charge, a.amount, a.reason) for a in f.allowance_charges] == [
        (True, Decimal("100"), "Freight"), (False, Decimal("100"), "Promotion discount")]
    # seller
    s = f.seller
    assert (s.name, s.legal_name, s.orgnr, s.vat_id) == (
        "Salescompany ltd.", "The Sellercompany ASA", "123456785", "NO123456785MVA")
    assert s.tax_registration == "Foretaksregisteret"
    assert (s.address.street, s.address.postal_zone, s.address.city, s.address.country) == (
        "Main street 34", "54321", "Big city", "NO")
    assert (s.contact.name, s.contact.telephone, s.contact.email) == (
        "Antonio Salesmacher", "46211230", "antonio@salescompany.no")
    # buyer
    b = f.buyer
    assert (b.name, b.orgnr, b.email, b.phone, b.contact.name) == (
        "The Buyercompany", "987654325", "john@buyercompany.no", "5121230", "John Doe")
    assert b.address.lines() == ["Anystreet 8", "Back door", "101 Anytown"]
    assert (b.endpoint_scheme, b.endpoint_id) == ("0192", "987654325")
    # payment
    assert f.kid == "0003434323213231"
    assert (f.account, f.account_kind, f.kontonummer, f.bic) == ("86011117947", "bban", "86011117947", "DNBANOKK")
    assert f.payment_means_code == "31"
    assert f.payment_terms.startswith("2 % discount")
    assert f.payee is not None and f.payee.name == "Ebeneser Scrooge AS"
    # references
    assert (f.order_reference, f.buyer_reference, f.contract_reference) == ("123", "3150bdn", "Contract321")
    assert f.notes == ("Ordered in our booth at the convention.",)
    assert (f.period_start, f.period_end) == (dt.date(2013, 6, 1), dt.date(2013, 6, 30))
    assert f.delivery_date == dt.date(2013, 6, 15) and f.tax_point_date == dt.date(2013, 6, 30)
    assert f.requests_payment and not f.is_credit_note


def test_norwegian_iban_gives_kontonummer(shared_dir):
    f = extract_invoice_facts(_src(shared_dir, "ehf-billing-3/examples/Norwegian-example-1.xml"))
    assert (f.account, f.account_kind, f.kontonummer) == ("NO9386011117947", "iban", "86011117947")


@pytest.mark.parametrize("raw,expected", [
    ("8601.11.17947", ("86011117947", "bban")),
    ("8601 11 17947", ("86011117947", "bban")),
    ("86011117948", ("86011117948", "other")),  # check digit wrong
    ("NO93 8601 1117 947", ("NO9386011117947", "iban")),
    ("DE89370400440532013000", ("DE89370400440532013000", "iban")),
    ("IBAN32423940", ("IBAN32423940", "other")),
    ("", (None, None)),
])
def test_classify_account(raw, expected):
    assert classify_account(raw) == expected


def test_credit_note_due_date_from_payment_means(shared_dir):
    xml = _mutate(_src(shared_dir, SB_CREDIT), lambda r: r.find("cac:PaymentMeans", NS).insert(
        1, _el("cbc:PaymentDueDate", "2017-12-24")))
    f = extract_invoice_facts(xml)
    assert f.kind == "credit_note" and f.is_credit_note and not f.requests_payment
    assert f.due_date == dt.date(2017, 12, 24)
    assert f.lines and f.lines[0].quantity == Decimal("7")  # CreditedQuantity
    assert f.billing_references == ("Snippet1",)


def test_payment_terms_due_date_is_last_fallback(shared_dir):
    def mutate(root):
        root.remove(root.find("cbc:DueDate", NS))
        root.find("cac:PaymentTerms", NS).append(_el("cbc:PaymentDueDate", "2013-08-01"))
    f = extract_invoice_facts(_mutate(_src(shared_dir, EHF_FAKTURA), mutate))
    assert f.due_date == dt.date(2013, 8, 1)


def test_invoice_type_381_is_a_credit_note(shared_dir):
    xml = _mutate(_src(shared_dir, EHF_FAKTURA), lambda r: setattr(r.find("cbc:InvoiceTypeCode", NS), "text", "381"))
    assert extract_invoice_facts(xml).kind == "credit_note"


def test_sbdh_wrapped_gives_same_facts(shared_dir):
    src = _src(shared_dir, EHF_FAKTURA)
    body = src.split(b"?>", 1)[1]
    wrapped = (b'<?xml version="1.0" encoding="UTF-8"?>'
               b'<StandardBusinessDocument xmlns="http://www.unece.org/cefact/namespaces/StandardBusinessDocumentHeader">'
               b'<StandardBusinessDocumentHeader><HeaderVersion>1.0</HeaderVersion></StandardBusinessDocumentHeader>'
               + body + b'</StandardBusinessDocument>')
    assert extract_invoice_facts(wrapped) == extract_invoice_facts(src)


@pytest.mark.parametrize("path", EXAMPLES, ids=[example_id(p) for p in EXAMPLES])
def test_every_norwegian_example_matches_an_independent_reading(path):
    """Compare with a plain XPath reading of the same file, so the extractor cannot drift."""
    xml = path.read_bytes()
    root = etree.fromstring(xml)
    f = extract_invoice_facts(xml)
    x = lambda p: (root.xpath(f"string({p})", namespaces=NS) or "").strip() or None  # noqa: E731
    assert f.number == x("cbc:ID")
    assert f.issue_date.isoformat() == x("cbc:IssueDate")
    assert f.payable_amount == Decimal(x("cac:LegalMonetaryTotal/cbc:PayableAmount"))
    due = x("cbc:DueDate") or x("cac:PaymentMeans/cbc:PaymentDueDate") or x("cac:PaymentTerms/cbc:PaymentDueDate")
    assert (f.due_date.isoformat() if f.due_date else None) == due
    assert f.kid == x("cac:PaymentMeans/cbc:PaymentID")
    account = x("cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID")
    assert (f.account or None) == (account.replace(" ", "") if account else None)
    assert f.currency == x("cbc:DocumentCurrencyCode")
    line_tag = "cac:CreditNoteLine" if f.is_credit_note and root.tag.endswith("CreditNote") else "cac:InvoiceLine"
    assert len(f.lines) == int(root.xpath(f"count({line_tag})", namespaces=NS))
    assert [ln.line_amount for ln in f.lines] == [
        Decimal(v) for v in root.xpath(f"{line_tag}/cbc:LineExtensionAmount/text()", namespaces=NS)]
    assert f.seller.name and f.buyer.name


def _el(tag: str, text: str) -> etree._Element:
    prefix, local = tag.split(":")
    el = etree.Element(f"{{{NS[prefix]}}}{local}")
    el.text = text
    return el


# ---------------------------------------------------------------- hostile and unusable input

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE Invoice [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
 xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"><cbc:ID>&xxe;</cbc:ID></Invoice>"""

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2">&lol2;</Invoice>"""


@pytest.mark.parametrize("xml,code", [
    (XXE, "doctype-forbidden"),
    (LAUGHS, "doctype-forbidden"),
    (XXE.replace(b'<?xml version="1.0"?>\n', b"\n" * 5000), "doctype-forbidden"),
    (XXE.replace(b'<?xml version="1.0"?>', b'<?xml version="1.0" encoding="UTF-16"?>').decode().encode("utf-16"),
     "doctype-forbidden"),  # the byte pre-scan cannot see it; the parsed doctype is refused
    (b"not xml at all", "not-xml"),
    (b"<Invoice><unclosed></Invoice>", "not-xml"),
    (b"<Order xmlns='urn:oasis:names:specification:ubl:schema:xsd:Order-2'/>", "not-ubl"),
    (b"<Invoice/>", "not-ubl"),  # no UBL namespace
    ("<Invoice/>", "not-xml"),  # str, not bytes
])
def test_unusable_input_raises_typed_error(xml, code):
    with pytest.raises(InvoiceError) as info:
        extract_invoice_facts(xml)
    assert info.value.code == code
    assert info.value.message


def test_missing_mandatory_and_malformed_values(shared_dir):
    src = _src(shared_dir, EHF_FAKTURA)
    no_id = _mutate(src, lambda r: r.remove(r.find("cbc:ID", NS)))
    bad_amount = _mutate(src, lambda r: setattr(
        r.find("cac:LegalMonetaryTotal/cbc:PayableAmount", NS), "text", "80,2"))
    bad_date = _mutate(src, lambda r: setattr(r.find("cbc:DueDate", NS), "text", "20.07.2013"))
    for xml, code in ((no_id, "missing-field"), (bad_amount, "bad-amount"), (bad_date, "bad-date")):
        with pytest.raises(InvoiceError) as info:
            extract_invoice_facts(xml)
        assert info.value.code == code


def test_latin1_encoded_document_is_decoded(shared_dir):
    src = _src(shared_dir, EHF_FAKTURA)
    root = etree.fromstring(src)
    root.find("cac:AccountingSupplierParty/cac:Party/cac:PartyName/cbc:Name", NS).text = "Ærlige Øl & Å AS"
    xml = etree.tostring(root, xml_declaration=True, encoding="ISO-8859-1")
    assert b"\xc6rlige" in xml
    assert extract_invoice_facts(xml).seller.name == "Ærlige Øl & Å AS"


def test_conformance_dir_is_where_the_examples_are(shared_dir):
    assert CONFORMANCE == (shared_dir / "conformance").resolve()
    assert len(EXAMPLES) >= 10  # ehf-billing-3, national NO, forward billing, reminders, payment requests ...


def test_to_json_is_plain_json(shared_dir):
    import json
    data = extract_invoice_facts(_src(shared_dir, EHF_FAKTURA)).to_json()
    again = json.loads(json.dumps(data))
    assert again["payable_amount"] == "802.00" and again["due_date"] == "2013-07-20"
    assert again["kid"] == "0003434323213231" and again["kontonummer"] == "86011117947"
    assert again["lines"][0]["vat_rate"] == "25" and again["seller"]["orgnr"] == "123456785"
