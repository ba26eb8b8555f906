"""The payment facts a notice channel (e-mail, SMS, print manifest) shows, formatted the Norwegian way.

E-mail bodies and SMS texts must carry exactly what the PDF's payment box shows (amount, due date,
kontonummer, KID); formatting them once here keeps the channels consistent with each other and with
`gateway.render.format`. Only plain ASCII spaces are used so an SMS stays in the GSM-7 alphabet.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.invoice import InvoiceFacts
from gateway.render import format as fmt


@dataclass(frozen=True)
class PaymentNotice:
    kind_label: str  # "Faktura" / "Kreditnota"
    number: str
    seller: str
    buyer: str | None
    amount: str  # "kr 1 234,50"
    due_date: str | None  # "20.12.2026"
    account: str | None  # "1234.56.78903" or a formatted IBAN
    kid: str | None
    requests_payment: bool

    @classmethod
    def from_facts(cls, facts: InvoiceFacts) -> "PaymentNotice":
        seller = facts.seller.name or facts.seller.legal_name or "leverandøren"
        return cls(
            kind_label="Kreditnota" if facts.is_credit_note else "Faktura",
            number=facts.number,
            seller=seller,
            buyer=facts.buyer.name or facts.buyer.legal_name,
            amount=fmt.money(abs(facts.payable_amount) if facts.is_credit_note else facts.payable_amount,
                             facts.currency),
            due_date=fmt.date(facts.due_date) or None,
            account=fmt.account(facts.account, facts.account_kind) or None,
            kid=facts.kid,
            requests_payment=facts.requests_payment,
        )

    @property
    def subject(self) -> str:
        """`Faktura 123 fra Leverandør AS`."""
        return f"{self.kind_label} {self.number} fra {self.seller}"
