"""UBL → PDF/A-3b invoice with the source UBL embedded as an associated file (WeasyPrint).

Why PDF/A-3b: it is the archival PDF that may carry the machine-readable original (as ZUGFeRD/
Factur-X do), so a consumer who receives the PDF by e-mail still holds the EHF/UBL. Fonts are the
DejaVu Sans Condensed files shipped in this package (embedded and subset), so output does not depend
on the fonts of the machine. WeasyPrint may only read those package assets: the URL fetcher refuses
every other URL, so nothing in an invoice can make the renderer touch the network or the file system.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import io
import mimetypes
import threading
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import pydyf
from weasyprint import CSS, HTML, Attachment
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher, URLFetcherResponse

from gateway.invoice import InvoiceFacts, extract_invoice_facts
from gateway.render.html import render_html

PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
FONTS_DIR = PACKAGE_DIR / "fonts"
PDF_VARIANT = "pdf/a-3b"
XML_MIME = "application/xml"


class AssetFetcher(URLFetcher):
    """Serve only this package's templates and fonts; refuse every other URL (http, data, other files)."""

    roots = (TEMPLATES_DIR, FONTS_DIR)

    def __init__(self) -> None:
        super().__init__(allowed_protocols={"file"}, allow_redirects=False, fail_on_errors=False)
        self.refused: list[str] = []

    def fetch(self, url: str, headers=None) -> URLFetcherResponse:
        parts = urlsplit(url)
        path = Path(url2pathname(parts.path)).resolve() if parts.scheme == "file" and not parts.netloc else None
        if path is None or not path.is_file() or not any(path.is_relative_to(r) for r in self.roots):
            self.refused = [*self.refused[-99:], url[:200]]  # last 100, for tests and diagnostics
            raise ValueError(f"resource refused by the invoice renderer: {url[:80]}")
        mime = mimetypes.guess_type(path.name)[0] or (
            "font/ttf" if path.suffix == ".ttf" else "application/octet-stream")
        return URLFetcherResponse(path.as_uri(), path.read_bytes(), {"Content-Type": mime})


class _Renderer:
    """Holds what is costly to build once: font configuration, the parsed stylesheet, the fetcher.

    WeasyPrint's font configuration is not documented as thread-safe, so renders are serialised by
    a lock; a render takes tens of milliseconds, callers on an event loop run it in an executor.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.fetcher = AssetFetcher()
        self.font_config = FontConfiguration()
        self.stylesheet = CSS(filename=str(TEMPLATES_DIR / "invoice.css"), font_config=self.font_config,
                              url_fetcher=self.fetcher)

    def render(self, facts: InvoiceFacts, xml: bytes | None, print_ready: bool) -> bytes:
        html = render_html(facts, print_ready=print_ready, standalone=False)
        attachments = []
        if xml is not None:
            stamp = _dt.datetime.combine(facts.issue_date, _dt.time())
            attachments.append(Attachment(
                file_obj=io.BytesIO(xml), name=attachment_name(facts),
                description=f"{'Kreditnota' if facts.is_credit_note else 'Faktura'} {facts.number} (UBL)",
                created=stamp, modified=stamp, relationship="Source", url_fetcher=self.fetcher))
        with self.lock:
            document = HTML(string=html, base_url=TEMPLATES_DIR.as_uri() + "/", url_fetcher=self.fetcher)
            return document.write_pdf(
                stylesheets=[self.stylesheet], font_config=self.font_config, pdf_variant=PDF_VARIANT,
                attachments=attachments, finisher=_fix_attachments, pdf_identifier=True)


def attachment_name(facts: InvoiceFacts) -> str:
    return "creditnote.xml" if facts.is_credit_note else "invoice.xml"


def _fix_attachments(document, pdf: pydyf.PDF) -> None:
    """PDF/A-3 details WeasyPrint leaves open: MIME type of the embedded UBL and a duplicate-free /AF."""
    for obj in pdf.objects:
        if isinstance(obj, pydyf.Stream) and obj.extra.get("Type") == "/EmbeddedFile":
            obj.extra["Subtype"] = "/" + XML_MIME.replace("/", "#2f")
    if "AF" in pdf.catalog:
        seen, unique = set(), pydyf.Array()
        for ref in pdf.catalog["AF"]:
            if ref not in seen:
                seen.add(ref)
                unique.append(ref)
        pdf.catalog["AF"] = unique


_RENDERER: _Renderer | None = None
_RENDERER_LOCK = threading.Lock()


def _renderer() -> _Renderer:
    global _RENDERER
    with _RENDERER_LOCK:
        if _RENDERER is None:
            _RENDERER = _Renderer()
        return _RENDERER


def render_pdf(xml: bytes, *, print_ready: bool = False, embed_xml: bool | None = None) -> bytes:
    """Render UBL invoice/credit-note bytes as an A4 PDF/A-3b.

    `print_ready` gives the print-provider variant (black on white, return address above the window
    address). The source bytes are embedded unchanged as `invoice.xml`/`creditnote.xml`
    (AFRelationship /Source) unless `embed_xml` is False; by default the print variant omits them,
    since a print house only prints pages. Raises `InvoiceError` for unusable input.
    """
    facts = extract_invoice_facts(xml)
    if embed_xml is None:
        embed_xml = not print_ready
    return _renderer().render(facts, bytes(xml) if embed_xml else None, print_ready)


async def render_pdf_async(xml: bytes, *, print_ready: bool = False, embed_xml: bool | None = None) -> bytes:
    """`render_pdf` in a worker thread, for aiohttp handlers and queue workers (keeps the loop free)."""
    return await asyncio.to_thread(render_pdf, xml, print_ready=print_ready, embed_xml=embed_xml)
