"""Helpers shared by the render tests: one cached render per source, text extraction, PDF/A-3 preflight.

veraPDF is not installable here (Java, not in the reachable registries), so `pdfa3_problems` checks
the PDF/A-3b requirements a PDF of this renderer can break, structurally, with pikepdf.
"""

from __future__ import annotations

import functools
import io
import re

import pikepdf
import pypdf

from gateway.render.pdf import render_pdf

A4 = (595.28, 841.89)


@functools.lru_cache(maxsize=64)
def rendered(xml: bytes, print_ready: bool = False) -> bytes:
    return render_pdf(xml, print_ready=print_ready)


def pdf_text(pdf: bytes) -> str:
    """All page text, whitespace runs collapsed to one space (layout-independent assertions)."""
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return re.sub(r"\s+", " ", " ".join(page.extract_text() or "" for page in reader.pages))


def page_count(pdf: bytes) -> int:
    return len(pypdf.PdfReader(io.BytesIO(pdf)).pages)


def _fonts(pdf: pikepdf.Pdf):
    for page in pdf.pages:
        resources = page.obj.get("/Resources", {})
        for font in (resources.get("/Font") or {}).values():
            yield font
            for descendant in font.get("/DescendantFonts", []):
                yield descendant


def pdfa3_problems(data: bytes) -> list[str]:
    """Return every PDF/A-3b rule (of those checked) the file breaks; empty means conforming."""
    problems: list[str] = []
    if not data.startswith(b"%PDF-1.7"):
        problems.append(f"header is {data[:8]!r}, PDF/A-3 is based on PDF 1.7")
    second_line = data.split(b"\n", 2)[1]
    if not (second_line.startswith(b"%") and all(b >= 128 for b in second_line[1:5])):
        problems.append("no binary comment after the header (6.1.2)")
    pdf = pikepdf.open(io.BytesIO(data))
    if pdf.is_encrypted or "/Encrypt" in pdf.trailer:
        problems.append("encrypted")
    if "/ID" not in pdf.trailer:
        problems.append("trailer has no /ID (6.1.3)")
    root = pdf.Root
    # XMP identification
    if "/Metadata" not in root:
        problems.append("no XMP metadata stream")
    else:
        xmp = bytes(root.Metadata.read_bytes()).decode("utf-8")
        if not re.search(r'pdfaid:part="3"|<pdfaid:part>3</pdfaid:part>', xmp):
            problems.append("XMP lacks pdfaid:part=3")
        if not re.search(r'pdfaid:conformance="B"|<pdfaid:conformance>B</pdfaid:conformance>', xmp):
            problems.append("XMP lacks pdfaid:conformance=B")
        title = str(pdf.docinfo.get("/Title", ""))
        if title and title not in xmp.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"):
            problems.append("Info /Title and XMP dc:title differ (6.6.3)")
    # output intent with an ICC profile
    intents = root.get("/OutputIntents")
    if not intents:
        problems.append("no /OutputIntents (6.2.3)")
    else:
        intent = intents[0]
        if intent.get("/S") != "/GTS_PDFA1":
            problems.append(f"output intent subtype {intent.get('/S')}")
        profile = intent.get("/DestOutputProfile")
        if profile is None or int(profile.get("/N", 0)) != 3:
            problems.append("output intent has no RGB ICC profile")
    # fonts embedded
    for font in _fonts(pdf):
        subtype = font.get("/Subtype")
        if subtype in ("/Type0", "/Type3"):
            continue
        descriptor = font.get("/FontDescriptor")
        if descriptor is None or not any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3")):
            problems.append(f"font {font.get('/BaseFont')} is not embedded (6.2.11.4)")
    # forbidden actions
    if "/JavaScript" in root.get("/Names", {}) or "/OpenAction" in root or "/AA" in root:
        problems.append("JavaScript or automatic actions present (6.6)")
    for page in pdf.pages:
        for annot in page.obj.get("/Annots", []):
            if not int(annot.get("/F", 0)) & 4:
                problems.append("annotation without the print flag (6.3.2)")
    # associated files
    af = [f.objgen for f in root.get("/AF", [])]
    for name, spec in pdf.attachments.items():
        obj = spec.obj
        if obj.objgen not in af:
            problems.append(f"embedded file {name} not listed in the catalog /AF (6.8)")
        if "/AFRelationship" not in obj:
            problems.append(f"embedded file {name} has no /AFRelationship (6.8)")
        if "/UF" not in obj or "/F" not in obj:
            problems.append(f"embedded file {name} lacks /F and /UF (6.8)")
        stream = obj.EF.F
        if "/Subtype" not in stream:
            problems.append(f"embedded file {name} has no MIME /Subtype (6.8)")
        if "/Params" not in stream or "/ModDate" not in stream.Params:
            problems.append(f"embedded file {name} has no /Params /ModDate (6.8)")
    if len(af) != len(set(af)):
        problems.append("duplicate entries in /AF")
    # page geometry
    for page in pdf.pages:
        box = [float(v) for v in page.mediabox]
        if abs(box[2] - box[0] - A4[0]) > 1 or abs(box[3] - box[1] - A4[1]) > 1:
            problems.append(f"page is not A4: {box}")
    checker = getattr(pdf, "check_pdf_syntax", None) or pdf.check  # qpdf --check
    problems.extend(f"qpdf: {p}" for p in checker())
    return problems


def text_positions(pdf: bytes) -> list[tuple[int, float, float, str]]:
    """(page index, x mm from the left edge, baseline y mm from the top edge, text) for every text run."""
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    out: list[tuple[int, float, float, str]] = []
    for index, page in enumerate(reader.pages):
        height = float(page.mediabox.height)

        def visit(text, cm, tm, _font, _size, index=index, height=height):
            if text.strip():
                x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
                y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
                out.append((index, x / 72 * 25.4, (height - y) / 72 * 25.4, text.strip()))

        page.extract_text(visitor_text=visit)
    return out
