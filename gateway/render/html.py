"""InvoiceFacts → HTML with a Norwegian invoice layout (Jinja2, autoescaped).

The template only places pre-formatted strings; every figure is formatted here with
`gateway.render.format`, so the PDF, the HTML preview and the tests agree on `1 234,56`.
All invoice text reaches the HTML through Jinja2 autoescaping: a seller named `<script>` prints as
text, never as markup.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import Decimal

import jinja2
from importlib.resources import files

from gateway.invoice import InvoiceFacts, Party, extract_invoice_facts
from gateway.render import format as fmt

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("gateway.render", "templates"),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

#: UNCL5305 VAT categories in Norwegian.
VAT_CATEGORY_NAMES = {
    "S": "Standard sats",
    "Z": "Nullsats",
    "E": "Fritatt",
    "AE": "Omvendt avgiftsplikt",
    "K": "EØS, fritatt",
    "G": "Eksport, fritatt",
    "O": "Utenfor mva-området",
    "L": "Kanariøyene",
    "M": "Ceuta og Melilla",
}

#: Payment means (UNCL4461) where the payee collects the money itself: the payer must not pay.
DIRECT_DEBIT_CODES = frozenset({"49", "59"})


@dataclass(frozen=True)
class PaymentBox:
    """What the payer needs to pay, formatted; `None` fields are shown as guidance text instead."""

    account_label: str
    account: str | None
    bic: str | None
    kid_label: str
    kid: str | None
    amount: str
    due_date: str | None
    direct_debit: bool


def _title(facts: InvoiceFacts) -> str:
    if facts.is_credit_note:
        return "Kreditnota"
    if facts.is_reminder:
        return "Purring"
    return "Faktura"


def _kid_label(kid: str | None) -> str:
    """Only digits (with an optional MOD11 `-`) make a KID; other payment ids are free references."""
    if kid and (kid.isdigit() or (kid[:-1].isdigit() and kid.endswith("-"))):
        return "KID"
    return "Betalingsreferanse"


def _payment_box(facts: InvoiceFacts) -> PaymentBox | None:
    if not facts.requests_payment:
        return None
    if facts.kontonummer:
        label, account = "Kontonummer", fmt.account(facts.kontonummer, "bban")
    elif facts.account_kind == "iban":
        label, account = "IBAN", fmt.account(facts.account, "iban")
    else:
        label, account = "Kontonummer", facts.account
    kid = facts.kid
    return PaymentBox(
        account_label=label,
        account=account,
        bic=facts.bic if facts.account_kind == "iban" and not facts.kontonummer else None,
        kid_label=_kid_label(kid),
        kid=kid,
        amount=fmt.money(facts.payable_amount, facts.currency),
        due_date=fmt.date(facts.due_date) or None,
        direct_debit=facts.payment_means_code in DIRECT_DEBIT_CODES,
    )


def _party_ids(party: Party) -> list[str]:
    out = []
    if party.orgnr:
        vat = " MVA" if party.vat_id and party.vat_id.upper().endswith("MVA") else ""
        out.append(f"Org.nr. {fmt.orgnr(party.orgnr)}{vat}")
    elif party.vat_id:
        out.append(f"MVA-nr. {party.vat_id}")
    elif party.company_id:
        out.append(f"Reg.nr. {party.company_id}")
    if party.tax_registration:
        out.append(party.tax_registration)
    return out


def _vat_label(category: str | None, rate: Decimal | None) -> str:
    name = VAT_CATEGORY_NAMES.get(category or "", category or "")
    if rate is not None and (rate != 0 or category == "S"):
        return f"{fmt.percent(rate)} ({name})" if name else fmt.percent(rate)
    return name or fmt.percent(rate)


def invoice_context(facts: InvoiceFacts, *, print_ready: bool = False) -> dict:
    """Template variables: the facts plus formatted strings the layout places."""
    cur = facts.currency
    lines = [{
        "id": line.id,
        "name": line.name or "",
        "description": line.description if line.description and line.description != line.name else "",
        "note": line.note or "",
        "period": (f"{fmt.date(line.period_start)}–{fmt.date(line.period_end)}"
                   if line.period_start or line.period_end else ""),
        "quantity": fmt.number(line.quantity),
        "unit": fmt.unit(line.unit),
        "price": fmt.price(line.price),
        "per": (f"per {fmt.number(line.base_quantity)}"
                if line.base_quantity not in (None, Decimal(1)) else ""),
        "vat": fmt.percent(line.vat_rate) if line.vat_rate is not None else (line.vat_category or ""),
        "amount": fmt.amount(line.line_amount),
        "adjustments": [("Gebyr" if ac.is_charge else "Rabatt") + (f" {ac.reason}" if ac.reason else "")
                        + f": {fmt.amount(ac.amount if ac.is_charge else -ac.amount)}"
                        for ac in line.allowance_charges],
    } for line in facts.lines]
    adjustments = [{
        "label": ("Gebyr" if ac.is_charge else "Rabatt") + (f": {ac.reason}" if ac.reason else ""),
        "vat": fmt.percent(ac.vat_rate) if ac.vat_rate is not None else "",
        "amount": fmt.amount(ac.amount if ac.is_charge else -ac.amount),
    } for ac in facts.allowance_charges]
    vat_rows = [{
        "label": _vat_label(v.category, v.rate),
        "base": fmt.amount(v.taxable_amount),
        "tax": fmt.amount(v.tax_amount),
        "reason": v.exemption_reason or "",
    } for v in facts.vat_breakdown]

    totals = []
    if facts.line_extension_amount is not None and (facts.allowance_charges or not facts.tax_exclusive_amount):
        totals.append(("Sum linjer", fmt.amount(facts.line_extension_amount)))
    if facts.allowance_total:
        totals.append(("Rabatter", fmt.amount(-facts.allowance_total)))
    if facts.charge_total:
        totals.append(("Gebyrer", fmt.amount(facts.charge_total)))
    if facts.tax_exclusive_amount is not None:
        totals.append(("Sum eks. mva", fmt.amount(facts.tax_exclusive_amount)))
    if facts.vat_total is not None:
        totals.append(("MVA", fmt.amount(facts.vat_total)))
    if facts.tax_inclusive_amount is not None:
        totals.append(("Sum inkl. mva", fmt.amount(facts.tax_inclusive_amount)))
    if facts.prepaid_amount:
        totals.append(("Forskuddsbetalt", fmt.amount(-facts.prepaid_amount)))
    if facts.rounding_amount:
        totals.append(("Øreavrunding", fmt.amount(facts.rounding_amount)))

    meta = [("Fakturanr." if not facts.is_credit_note else "Kreditnotanr.", facts.number),
            ("Fakturadato" if not facts.is_credit_note else "Dato", fmt.date(facts.issue_date))]
    if facts.due_date and not facts.is_credit_note:
        meta.append(("Forfallsdato", fmt.date(facts.due_date)))
    if facts.billing_references:
        meta.append(("Gjelder faktura", ", ".join(facts.billing_references)))
    if facts.buyer_reference:
        meta.append(("Deres ref.", facts.buyer_reference))
    if facts.order_reference:
        meta.append(("Bestillingsnr.", facts.order_reference))
    if facts.contract_reference:
        meta.append(("Kontrakt", facts.contract_reference))
    if facts.buyer.orgnr:
        meta.append(("Kundens org.nr.", fmt.orgnr(facts.buyer.orgnr)))
    if facts.delivery_date:
        meta.append(("Leveringsdato", fmt.date(facts.delivery_date)))
    if facts.period_start or facts.period_end:
        meta.append(("Periode", f"{fmt.date(facts.period_start)}–{fmt.date(facts.period_end)}"))
    if cur != "NOK":
        meta.append(("Valuta", cur))

    seller = facts.seller
    payee = facts.payee if facts.payee and facts.payee.name and facts.payee.name != seller.name else None
    buyer_name = facts.buyer.name or facts.buyer.legal_name or ""
    return {
        "facts": facts,
        "title": _title(facts),
        "print_ready": print_ready,
        "seller": {
            "name": seller.name or seller.legal_name or "",
            "legal_name": seller.legal_name if seller.legal_name != seller.name else "",
            "address": seller.address.lines(),
            "ids": _party_ids(seller),
            "contact": [x for x in (seller.contact.name, seller.contact.telephone and
                                    f"Tlf. {seller.contact.telephone}",
                                    seller.contact.email) if x],
        },
        "return_address": ", ".join([seller.name or seller.legal_name or "", *seller.address.lines()]).strip(", "),
        "buyer": {
            "name": buyer_name,
            "attention": facts.buyer.contact.name if facts.buyer.contact.name != buyer_name else None,
            "address": facts.buyer.address.lines(),
        },
        "meta": meta,
        "lines": lines,
        "adjustments": adjustments,
        "vat_rows": vat_rows,
        "vat_in_tax_currency": (f"{facts.tax_currency} {fmt.amount(facts.vat_total_tax_currency)}"
                                if facts.tax_currency and facts.tax_currency != cur
                                and facts.vat_total_tax_currency is not None else None),
        "totals": totals,
        "payable_label": "Til gode" if facts.is_credit_note else "Å betale",
        "payable": fmt.money(abs(facts.payable_amount) if facts.is_credit_note else facts.payable_amount, cur),
        "payment": _payment_box(facts),
        "payee": payee.name if payee else None,
        "payment_terms": facts.payment_terms,
        "notes": list(facts.notes),
        "footer": " · ".join(x for x in (seller.legal_name or seller.name, *_party_ids(seller)) if x),
    }


@functools.cache
def stylesheet_text() -> str:
    return (files("gateway.render") / "templates" / "invoice.css").read_text(encoding="utf-8")


def render_html(source: InvoiceFacts | bytes, *, print_ready: bool = False, standalone: bool = True) -> str:
    """Render an invoice or credit note (facts, or UBL bytes) as an HTML page.

    `standalone` inlines the stylesheet (for previews and e-mail bodies); the PDF renderer passes
    False and supplies its pre-parsed stylesheet instead.
    """
    facts = source if isinstance(source, InvoiceFacts) else extract_invoice_facts(source)
    context = invoice_context(facts, print_ready=print_ready)
    context["inline_css"] = stylesheet_text() if standalone else ""
    return _ENV.get_template("invoice.html").render(context)
