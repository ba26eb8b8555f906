"""render_pdf: every official Norwegian example as PDF/A-3b that shows the payment facts and
carries the source UBL; credit notes, mutated invoices and the print variant."""

from __future__ import annotations

import datetime as dt
import io
import re
from decimal import Decimal
from pathlib import Path

import pikepdf
import pytest
from lxml import etree
from weasyprint import HTML

from gateway.invoice import InvoiceError
from gateway.render.pdf import AssetFetcher, render_pdf
from tests.gateway.render.pdf_checks import page_count, pdf_text, pdfa3_problems, rendered
from tests.gateway.render.ubl_examples import NS, example_id, norwegian_examples

EXAMPLES = norwegian_examples()
IDS = [example_id(p) for p in EXAMPLES]
EHF_FAKTURA = "ehf-billing-3/examples/ehf-3-faktura-1.xml"
SB_CREDIT = "ehf-postaward-g3/2026-08-13/self-billing-3.0/example/SB-base-creditnote-correction.xml"


# Independent Norwegian formatting (not the renderer's code): 1234.5 → "1 234,50", 2013-07-20 → "20.07.2013"
def nok(value: str) -> str:
    return f"{Decimal(value):,.2f}".replace(",", " ").replace(".", ",")


def ddmmyyyy(iso: str) -> str:
    return dt.date.fromisoformat(iso).strftime("%d.%m.%Y")


def _x(root, path):
    return (root.xpath(f"string({path})", namespaces=NS) or "").strip() or None


def _mutate(xml: bytes, fn) -> bytes:
    root = etree.fromstring(xml)
    fn(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _src(shared_dir: Path, rel: str) -> bytes:
    return (shared_dir / "conformance" / rel).read_bytes()


@pytest.mark.parametrize("path", EXAMPLES, ids=IDS)
def test_pdf_shows_kid_account_amount_and_due_date(path):
    xml = path.read_bytes()
    root = etree.fromstring(xml)
    text = pdf_text(rendered(xml))
    is_credit = root.tag.endswith("CreditNote") or _x(root, "cbc:InvoiceTypeCode") == "381"
    payable = _x(root, "cac:LegalMonetaryTotal/cbc:PayableAmount")
    currency = _x(root, "cbc:DocumentCurrencyCode")
    prefix = "kr" if currency == "NOK" else currency
    # amount: "kr 1 234,56" (space thousands, comma decimals), never "1234.56"
    shown = nok(payable).lstrip("-") if is_credit else nok(payable)
    assert f"{prefix} {shown}" in text
    assert re.search(r"(kr|[A-Z]{3}) -?\d{1,3}( \d{3})*,\d{2}\b", text)
    if is_credit:
        assert "Kreditnota" in text
        assert "Betalingsinformasjon" not in text and "Forfallsdato" not in text
        return
    if Decimal(payable) <= 0:
        assert "Ingen betaling" in text and "Betalingsinformasjon" not in text
        return
    assert "Betalingsinformasjon" in text
    kid = _x(root, "cac:PaymentMeans/cbc:PaymentID")
    if kid:
        assert kid in text
    account = _x(root, "cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID")
    if account:
        compact = account.replace(" ", "")
        if re.fullmatch(r"NO\d{13}", compact):  # Norwegian IBAN: shown as the kontonummer
            bban = compact[4:]
            assert f"{bban[:4]}.{bban[4:6]}.{bban[6:]}" in text
        elif re.fullmatch(r"\d{11}", compact) and "Kontonummer" in text and f"{compact[:4]}.{compact[4:6]}." in text:
            pass  # valid BBAN, formatted 1234.56.78901
        else:
            assert compact in text or re.sub(r"(.{4})", r"\1 ", compact).strip() in text
    due = _x(root, "cbc:DueDate") or _x(root, "cac:PaymentMeans/cbc:PaymentDueDate")
    if due:
        assert f"Forfallsdato {ddmmyyyy(due)}" in text or ddmmyyyy(due) in text
        assert ddmmyyyy(due) in text.split("Betalingsinformasjon", 1)[1]


@pytest.mark.parametrize("path", EXAMPLES, ids=IDS)
def test_pdf_embeds_the_source_ubl_byte_identical(path):
    xml = path.read_bytes()
    pdf = pikepdf.open(io.BytesIO(rendered(xml)))
    assert len(pdf.attachments) == 1
    name, spec = next(iter(pdf.attachments.items()))
    assert name in ("invoice.xml", "creditnote.xml")
    assert spec.get_file().read_bytes() == xml
    assert spec.obj.AFRelationship == pikepdf.Name.Source
    assert spec.obj.EF.F.Subtype == pikepdf.Name("/application/xml")
    assert [ref.objgen for ref in pdf.Root.AF] == [spec.obj.objgen]


@pytest.mark.parametrize("path", EXAMPLES, ids=IDS)
def test_pdf_passes_pdfa3b_structural_checks(path):
    assert pdfa3_problems(rendered(path.read_bytes())) == []


def test_preflight_rejects_a_plain_pdf():
    """The checker itself must be able to fail: a WeasyPrint PDF without the PDF/A variant."""
    plain = HTML(string="<p>Hei</p>").write_pdf()
    problems = pdfa3_problems(plain)
    assert any("pdfaid:part" in p or "XMP" in p for p in problems)
    assert any("OutputIntents" in p for p in problems)


def test_fonts_are_the_bundled_dejavu_and_embedded(shared_dir):
    pdf = pikepdf.open(io.BytesIO(rendered(_src(shared_dir, EHF_FAKTURA))))
    names = set()
    for page in pdf.pages:
        for font in page.Resources.Font.values():
            for desc in font.get("/DescendantFonts", [font]):
                names.add(str(desc.BaseFont))
                assert "/FontFile2" in desc.FontDescriptor or "/FontFile3" in desc.FontDescriptor
    assert names and all("SendGW-Sans" in n for n in names), names  # our @font-face files, not system fonts


def test_credit_note_is_labelled_and_requests_no_payment(shared_dir):
    xml = _src(shared_dir, SB_CREDIT)
    pdf = rendered(xml)
    text = pdf_text(pdf)
    assert "Kreditnota – dette er ikke en betalingsanmodning" in text and "ikke betale" in text
    from tests.gateway.render.pdf_checks import text_positions
    assert [t for p, x, y, t in text_positions(pdf) if y < 45 and x > 100][0] == "Kreditnota"  # title
    assert "Til gode" in text and "Å betale" not in text
    assert "Betalingsinformasjon" not in text and "KID" not in text
    assert "Gjelder faktura Snippet1" in text
    assert next(iter(pikepdf.open(io.BytesIO(pdf)).attachments)) == "creditnote.xml"


def test_invoice_title_and_payment_box_wording(shared_dir):
    pdf = rendered(_src(shared_dir, EHF_FAKTURA))
    text = pdf_text(pdf)
    assert "Kreditnota" not in text and "Til gode" not in text
    from tests.gateway.render.pdf_checks import text_positions
    assert [t for p, x, y, t in text_positions(pdf) if y < 45 and x > 100][0] == "Faktura"  # title
    box = text.split("Betalingsinformasjon", 1)[1]
    assert "Kontonummer KID Beløp Forfallsdato 8601.11.17947 0003434323213231 kr 802,00 20.07.2013" in box
    for label in ("MVA-grunnlag", "Å betale kr 802,00", "Sum eks. mva 1 436,50", "Forfallsdato 20.07.2013",
                  "Org.nr. 123 456 785 MVA", "Foretaksregisteret", "The Buyercompany", "101 Anytown"):
        assert label in text, label


def test_missing_due_date_and_kid_render_guidance(shared_dir):
    def mutate(root):
        root.remove(root.find("cbc:DueDate", NS))
        means = root.find("cac:PaymentMeans", NS)
        means.remove(means.find("cbc:PaymentID", NS))
    text = pdf_text(render_pdf(_mutate(_src(shared_dir, EHF_FAKTURA), mutate)))
    box = text.split("Betalingsinformasjon", 1)[1]
    assert "Merk betalingen med fakturanr. TOSL108" in box
    assert "Se betalingsbetingelser" in box
    assert "20.07.2013" not in text and "0003434323213231" not in text
    assert "kr 802,00" in box


def test_foreign_currency_shows_currency_code_and_iban(shared_dir):
    def mutate(root):
        root.find("cbc:DocumentCurrencyCode", NS).text = "EUR"
        for el in root.iter():
            if el.get("currencyID") == "NOK":
                el.set("currencyID", "EUR")
        acct = root.find("cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID", NS)
        acct.text = "DE89370400440532013000"
    text = pdf_text(render_pdf(_mutate(_src(shared_dir, EHF_FAKTURA), mutate)))
    assert "EUR 802,00" in text and "kr 802,00" not in text
    assert "Valuta EUR" in text and "Beløp i EUR" in text
    assert "IBAN" in text and "DE89 3704 0044 0532 0130 00" in text and "BIC DNBANOKK" in text


def test_many_lines_flow_onto_numbered_pages(shared_dir):
    def mutate(root):
        line = root.find("cac:InvoiceLine", NS)
        index = list(root).index(line)
        for n in range(2, 121):
            copy = etree.fromstring(etree.tostring(line))
            copy.find("cbc:ID", NS).text = f"L{n}"
            root.insert(index + n - 1, copy)
    pdf = render_pdf(_mutate(_src(shared_dir, EHF_FAKTURA), mutate))
    pages = page_count(pdf)
    assert pages >= 3
    text = pdf_text(pdf)
    assert f"Side 1 av {pages}" in text and f"Side {pages} av {pages}" in text
    assert "L120" in text and text.count("Beskrivelse") >= pages - 1  # header repeated on every page with lines
    assert "0003434323213231" in text and pdfa3_problems(pdf) == []


def test_print_variant_has_return_address_and_no_attachment(shared_dir):
    xml = _src(shared_dir, EHF_FAKTURA)
    pdf = rendered(xml, True)
    text = pdf_text(pdf)
    assert "Returadresse: Salescompany ltd., Main street 34" in text
    assert "0003434323213231" in text and "8601.11.17947" in text
    doc = pikepdf.open(io.BytesIO(pdf))
    assert len(doc.attachments) == 0 and "/AF" not in doc.Root
    assert pdfa3_problems(pdf) == []
    assert render_pdf(xml, print_ready=True, embed_xml=True) != pdf


def test_hostile_xml_is_refused_before_rendering():
    xxe = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
           b'<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2">&e;</Invoice>')
    with pytest.raises(InvoiceError) as info:
        render_pdf(xxe)
    assert info.value.code == "doctype-forbidden"


def test_markup_in_invoice_text_is_printed_not_interpreted(shared_dir):
    evil = '<script>alert(1)</script><img src="http://127.0.0.1:9/x.png"><link rel="stylesheet" href="file:///etc/passwd">'
    def mutate(root):
        root.find("cac:AccountingSupplierParty/cac:Party/cac:PartyName/cbc:Name", NS).text = "Evil <b>AS</b>"
        root.find("cbc:Note", NS).text = evil
    from gateway.render import pdf as pdf_module
    fetcher = pdf_module._renderer().fetcher
    before = list(fetcher.refused)
    text = pdf_text(render_pdf(_mutate(_src(shared_dir, EHF_FAKTURA), mutate)))
    assert "Evil <b>AS</b>" in text and "<script>alert(1)</script>" in text
    assert fetcher.refused == before  # the markup never became a resource request


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:9/x.css", "https://example.invalid/font.ttf", "file:///etc/passwd",
    "data:text/css,body{}", "ftp://example.invalid/x",
])
def test_asset_fetcher_refuses_everything_but_package_assets(url):
    fetcher = AssetFetcher()
    with pytest.raises(ValueError):
        fetcher.fetch(url)
    assert fetcher.refused == [url]


def test_asset_fetcher_serves_bundled_font():
    from gateway.render.pdf import FONTS_DIR
    response = AssetFetcher().fetch((FONTS_DIR / "DejaVuSansCondensed.ttf").as_uri())
    assert response.read()[:4] == b"\x00\x01\x00\x00"  # TrueType


def test_output_is_reproducible(shared_dir, monkeypatch):
    """Same input → same bytes (fontTools stamps the subset font with SOURCE_DATE_EPOCH when set)."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    xml = _src(shared_dir, EHF_FAKTURA)
    assert render_pdf(xml) == render_pdf(xml)


@pytest.mark.parametrize("print_ready", [False, True], ids=["screen", "print"])
def test_address_sits_in_the_envelope_window_and_left_zone_is_clear(shared_dir, print_ready):
    """C5/DL window (DIN 5008 B): 20 mm from the left, 45–90 mm from the top; 0–18 mm kept free."""
    from tests.gateway.render.pdf_checks import text_positions
    pdf = rendered(_src(shared_dir, EHF_FAKTURA), print_ready)
    runs = text_positions(pdf)
    recipient = ["The Buyercompany", "Att.: John Doe", "Anystreet 8", "Back door", "101 Anytown"]
    for line in recipient:
        [(page, x, y)] = [(p, x, y) for p, x, y, t in runs if t == line]
        assert page == 0 and 19.5 <= x <= 21 and 47 <= y <= 88, (line, x, y)
    returns = [(x, y) for p, x, y, t in runs if t.startswith("Returadresse:")]
    if print_ready:
        [(x, y)] = returns
        assert 19.5 <= x <= 21 and 45 < y < 57.9  # inside the window, above the recipient
    else:
        assert returns == []
    assert min(x for _, x, _, _ in runs) >= 18  # inserter barcode zone


async def test_render_pdf_async_matches_sync(shared_dir, monkeypatch):
    from gateway.render import render_pdf_async
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    xml = _src(shared_dir, EHF_FAKTURA)
    assert await render_pdf_async(xml) == render_pdf(xml)
