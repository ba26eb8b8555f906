"""Synthetic test documents derived from the official Peppol `base-example.xml`.

Used by bench/validate.py and the tests: a many-line invoice (all totals recomputed, so it is
valid), an invoice with a large embedded attachment (valid), and small mutations of the example.
"""

from __future__ import annotations

import base64
import hashlib
import re
from decimal import Decimal

_LINE = re.compile(rb"<cac:InvoiceLine>.*?</cac:InvoiceLine>", re.S)


def _totals(doc: bytes, line_total: Decimal, charge: Decimal = Decimal(25), rate: Decimal = Decimal("0.25")) -> bytes:
    taxable = line_total + charge
    tax = (taxable * rate).quantize(Decimal("0.01"))
    incl = taxable + tax

    def put(tag: bytes, value: Decimal, data: bytes, count: int = 0) -> bytes:
        return re.sub(rb"(<cbc:" + tag + rb" currencyID=\"EUR\">)[^<]*(</cbc:" + tag + rb">)",
                      lambda m: m.group(1) + str(value).encode() + m.group(2), data, count=count)

    doc = put(b"TaxAmount", tax, doc)
    doc = put(b"TaxableAmount", taxable, doc)
    doc = put(b"LineExtensionAmount", line_total, doc, count=1)  # the one in LegalMonetaryTotal comes first
    doc = put(b"TaxExclusiveAmount", taxable, doc)
    doc = put(b"TaxInclusiveAmount", incl, doc)
    doc = put(b"PayableAmount", incl, doc)
    return doc


def many_lines(base_example: bytes, lines: int = 1000) -> bytes:
    """The base example with `lines` copies of its first invoice line (7 days at 400 EUR each)."""
    first = _LINE.search(base_example)
    assert first is not None, "not the Peppol base example"
    template = first.group(0)
    body = []
    for n in range(1, lines + 1):
        body.append(re.sub(rb"<cbc:ID>1</cbc:ID>", f"<cbc:ID>{n}</cbc:ID>".encode(), template, count=1))
    start = first.start()
    end = [m for m in _LINE.finditer(base_example)][-1].end()
    doc = base_example[:start] + b"\n".join(body) + base_example[end:]
    # the LegalMonetaryTotal's LineExtensionAmount precedes the lines; the lines keep theirs (2800)
    head, sep, tail = doc.partition(b"<cac:InvoiceLine>")
    head = _totals(head, Decimal(2800) * lines)
    return head + sep + tail


def with_attachment(base_example: bytes, size: int = 3 * 1024 * 1024) -> bytes:
    """The base example carrying an embedded PDF-like attachment so that the file is ~`size` bytes."""
    raw_len = max(0, (size - len(base_example) - 400) * 3 // 4)
    chunk = hashlib.sha256(b"sendgw").digest() * 64
    payload = (b"%PDF-1.4\n" + (chunk * (raw_len // len(chunk) + 1)))[:raw_len]
    b64 = base64.b64encode(payload)
    ref = (b"<cac:AdditionalDocumentReference>\n        <cbc:ID>Attachment-1</cbc:ID>\n"
           b"        <cbc:DocumentDescription>Timesheet</cbc:DocumentDescription>\n"
           b"        <cac:Attachment>\n            <cbc:EmbeddedDocumentBinaryObject mimeCode=\"application/pdf\" "
           b"filename=\"timesheet.pdf\">" + b64 + b"</cbc:EmbeddedDocumentBinaryObject>\n"
           b"        </cac:Attachment>\n    </cac:AdditionalDocumentReference>\n    ")
    marker = b"<cac:AccountingSupplierParty>"
    i = base_example.index(marker)
    return base_example[:i] + ref + base_example[i:]
