"""The invoice e-mail as MIME: Norwegian subject and body (text + HTML), PDF and UBL attached.

Pure functions, no I/O: the rendered message is the evidence of what was sent. The Message-ID is
derived from the delivery id so that a retried submission carries the *same* Message-ID. SMTP
itself cannot deduplicate (a server that accepted DATA but whose 250 reply was lost will get the
message twice), but receiving systems and mail clients that thread/deduplicate on Message-ID then
show one invoice, and our bounce handling maps DSNs back to the delivery via this id.
"""

from __future__ import annotations

import hashlib
import re
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formataddr

import jinja2

from gateway.channels.notice import PaymentNotice

DELIVERY_HEADER = "X-Sendgw-Delivery-Id"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

_TEXT = jinja2.Environment(autoescape=False, keep_trailing_newline=True, trim_blocks=True).from_string(
    """Hei{% if n.buyer %} {{ n.buyer }}{% endif %},

{% if n.requests_payment %}
Vedlagt finner du {{ n.kind_label|lower }} {{ n.number }} fra {{ n.seller }}.

Beløp å betale: {{ n.amount }}
{% if n.due_date %}Forfallsdato: {{ n.due_date }}
{% endif %}
{% if n.account %}Kontonummer: {{ n.account }}
{% endif %}
{% if n.kid %}KID: {{ n.kid }}
{% endif %}
{% if n.kid %}

Husk å oppgi KID når du betaler.
{% endif %}
{% else %}
Vedlagt finner du {{ n.kind_label|lower }} {{ n.number }} fra {{ n.seller }}.

Beløp: {{ n.amount }}
{% if n.kid %}KID: {{ n.kid }}
{% endif %}
{% endif %}

Fakturaen ligger ved som PDF. Spørsmål om fakturaen rettes til {{ n.seller }}.

Med vennlig hilsen
{{ n.seller }}
""")

_HTML = jinja2.Environment(autoescape=True).from_string(
    """<!DOCTYPE html>
<html lang="nb"><head><meta charset="utf-8"><title>{{ n.subject }}</title></head>
<body style="font-family: Arial, sans-serif; color: #222;">
<p>Hei{% if n.buyer %} {{ n.buyer }}{% endif %},</p>
<p>Vedlagt finner du {{ n.kind_label|lower }} <strong>{{ n.number }}</strong> fra {{ n.seller }}.</p>
<table style="border-collapse: collapse;" role="presentation">
<tr><td style="padding: 2px 12px 2px 0;">{% if n.requests_payment %}Beløp å betale{% else %}Beløp{% endif %}</td><td><strong>{{ n.amount }}</strong></td></tr>
{% if n.requests_payment and n.due_date %}<tr><td style="padding: 2px 12px 2px 0;">Forfallsdato</td><td><strong>{{ n.due_date }}</strong></td></tr>{% endif %}
{% if n.requests_payment and n.account %}<tr><td style="padding: 2px 12px 2px 0;">Kontonummer</td><td><strong>{{ n.account }}</strong></td></tr>{% endif %}
{% if n.kid %}<tr><td style="padding: 2px 12px 2px 0;">KID</td><td><strong>{{ n.kid }}</strong></td></tr>{% endif %}
</table>
{% if n.requests_payment and n.kid %}<p>Husk å oppgi KID når du betaler.</p>{% endif %}
<p>Fakturaen ligger ved som PDF. Spørsmål om fakturaen rettes til {{ n.seller }}.</p>
<p>Med vennlig hilsen<br>{{ n.seller }}</p>
</body></html>
""")


def message_id_for(delivery_id: str, domain: str) -> str:
    """`<sendgw.{id}@{domain}>`, stable for a delivery; ids with unsafe characters are hashed."""
    local = delivery_id if _SAFE_ID.match(delivery_id) else hashlib.sha256(delivery_id.encode()).hexdigest()[:40]
    return f"<sendgw.{local}@{domain}>"


def attachment_basename(notice: PaymentNotice) -> str:
    number = re.sub(r"[^A-Za-z0-9._-]+", "_", notice.number).strip("_") or "faktura"
    return f"{notice.kind_label}-{number}"


def build_invoice_message(
    notice: PaymentNotice,
    *,
    to: str,
    sender: str,
    sender_name: str | None,
    delivery_id: str,
    message_id_domain: str,
    pdf: bytes,
    ubl: bytes | None,
    reply_to: str | None = None,
    to_name: str | None = None,
) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = notice.subject
    msg["From"] = formataddr((sender_name or notice.seller, sender))
    msg["To"] = str(Address(display_name=to_name or "", addr_spec=to)) if to_name else to
    if reply_to:
        msg["Reply-To"] = reply_to
    msg["Message-ID"] = message_id_for(delivery_id, message_id_domain)
    msg[DELIVERY_HEADER] = delivery_id
    msg["Content-Language"] = "nb"
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies to invoices
    msg.set_content(_TEXT.render(n=notice), subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(_HTML.render(n=notice), subtype="html", charset="utf-8", cte="quoted-printable")
    base = attachment_basename(notice)
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename=f"{base}.pdf")
    if ubl is not None:
        msg.add_attachment(ubl, maintype="application", subtype="xml", filename=f"{base}.xml")
    return msg
