"""Human-readable invoices: UBL → HTML (Jinja2) → PDF/A-3b (WeasyPrint) with the UBL embedded.

Public API: `render_html(facts_or_xml)`, `render_pdf(xml, print_ready=False)` and its
thread-offloading twin `render_pdf_async`. Unusable input raises
`gateway.invoice.InvoiceError`.
"""

from gateway.render.html import render_html
from gateway.render.pdf import render_pdf, render_pdf_async

__all__ = ["render_html", "render_pdf", "render_pdf_async"]
