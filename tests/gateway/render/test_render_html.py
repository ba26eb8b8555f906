"""render_html and the Norwegian formats: escaping, labels, layout decisions."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree, html as lxml_html

from gateway.invoice import extract_invoice_facts
from gateway.render import format as fmt
from gateway.render.html import render_html
from tests.gateway.render.ubl_examples import NS

EHF_FAKTURA = "ehf-billing-3/examples/ehf-3-faktura-1.xml"
REMINDER = "ehf-postaward-g3/2026-08-13/reminder-3.0/example/Reminder-Example.xml"


def _src(shared_dir: Path, rel: str) -> bytes:
    return (shared_dir / "conformance" / rel).read_bytes()


def _mutate(xml: bytes, fn) -> bytes:
    root = etree.fromstring(xml)
    fn(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


@pytest.mark.parametrize("value,expected", [
    ("0", "0,00"), ("5", "5,00"), ("802.00", "802,00"), ("1234.5", "1 234,50"),
    ("-1000", "-1 000,00"), ("1234567.891", "1 234 567,89"), ("0.005", "0,01"), ("-0.004", "0,00"),
])
def test_amount_format(value, expected):
    assert fmt.amount(Decimal(value)) == expected


def test_money_date_account_percent_formats():
    assert fmt.money(Decimal("1234.5"), "NOK") == "kr 1 234,50"
    assert fmt.money(Decimal("10"), "eur") == "EUR 10,00"
    assert fmt.date(dt.date(2026, 12, 20)) == "20.12.2026"
    assert fmt.account("86011117947") == "8601.11.17947"
    assert fmt.account("86011117948") == "86011117948"  # invalid check digit: shown as given
    assert fmt.account("NO9386011117947", "iban") == "NO93 8601 1117 947"
    assert (fmt.percent(Decimal("25.00")), fmt.percent(Decimal("11.11")), fmt.percent(Decimal("0"))) == (
        "25 %", "11,11 %", "0 %")
    assert (fmt.price(Decimal("100")), fmt.price(Decimal("0.1234"))) == ("100,00", "0,1234")
    assert (fmt.number(Decimal("3.000")), fmt.number(Decimal("1.25")), fmt.number(Decimal("-1"))) == (
        "3", "1,25", "-1")
    assert (fmt.unit("HUR"), fmt.unit("EA"), fmt.unit("XYZ")) == ("timer", "stk", "XYZ")
    assert fmt.orgnr("123456785") == "123 456 785"


def test_seller_name_with_script_is_escaped(shared_dir):
    def mutate(root):
        root.find("cac:AccountingSupplierParty/cac:Party/cac:PartyName/cbc:Name", NS).text = \
            '<script>alert("x")</script>'
        root.find("cbc:Note", NS).text = '"><img src=x onerror=alert(1)>'
    page = render_html(_mutate(_src(shared_dir, EHF_FAKTURA), mutate))
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    tree = lxml_html.fromstring(page)
    assert not tree.xpath("//script") and not tree.xpath("//img")
    assert tree.xpath("string(//div[@class='seller-name'])") == '<script>alert("x")</script>'


def test_layout_blocks_in_html(shared_dir):
    tree = lxml_html.fromstring(render_html(_src(shared_dir, EHF_FAKTURA)))
    assert tree.get("lang") == "nb"
    assert tree.xpath("string(//h1)") == "Faktura"
    recipient = [" ".join(t.split()) for t in tree.xpath("//div[@class='recipient']/div/text()")]
    assert recipient == ["The Buyercompany", "Att.: John Doe", "Anystreet 8", "Back door", "101 Anytown"]
    assert len(tree.xpath("//table[@class='lines']/tbody/tr[not(@class)]")) == 5
    paybox = [" ".join(td.text_content().split()) for td in tree.xpath("//table[@class='paybox']//td")]
    assert paybox == ["8601.11.17947", "0003434323213231", "kr 802,00", "20.07.2013"]
    assert tree.xpath("//style") and "@font-face" in tree.xpath("string(//style)")


def test_pdf_html_has_no_inline_style(shared_dir):
    page = render_html(_src(shared_dir, EHF_FAKTURA), standalone=False)
    assert "<style>" not in page


def test_reminder_is_titled_purring(shared_dir):
    tree = lxml_html.fromstring(render_html(_src(shared_dir, REMINDER)))
    assert tree.xpath("string(//h1)") == "Purring"


def test_direct_debit_says_do_not_pay(shared_dir):
    xml = _mutate(_src(shared_dir, EHF_FAKTURA),
                  lambda r: setattr(r.find("cac:PaymentMeans/cbc:PaymentMeansCode", NS), "text", "59"))
    assert "Ikke betal manuelt" in render_html(xml)


def test_non_numeric_payment_id_is_not_called_kid(shared_dir):
    xml = _mutate(_src(shared_dir, EHF_FAKTURA),
                  lambda r: setattr(r.find("cac:PaymentMeans/cbc:PaymentID", NS), "text", "INV-77"))
    tree = lxml_html.fromstring(render_html(xml))
    assert tree.xpath("//table[@class='paybox']//th/text()")[1] == "Betalingsreferanse"


def test_render_html_accepts_facts(shared_dir):
    facts = extract_invoice_facts(_src(shared_dir, EHF_FAKTURA))
    assert render_html(facts) == render_html(_src(shared_dir, EHF_FAKTURA))
