"""Reconcile OCR settlement payments with open invoices by KID and amount.

Only an exact KID + amount match marks an invoice paid. Everything else is
returned with a reason so it is reported, never dropped: unknown KID, amount
mismatch (partial or over-payment), duplicate (same invoice paid twice, or
the same settlement transaction seen again), missing KID, reversal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Collection, Hashable, Iterable, Iterator, Sequence

from .incoming import Payment


class UnmatchedReason(str, Enum):
    UNKNOWN_KID = "unknown_kid"
    AMOUNT_MISMATCH = "amount_mismatch"
    DUPLICATE = "duplicate"
    MISSING_KID = "missing_kid"
    REVERSAL = "reversal"
    AMBIGUOUS = "ambiguous"


REVERSAL_TYPES = frozenset({18, 20})


@dataclass(frozen=True)
class OpenInvoice:
    """An invoice waiting for payment; ``invoice_id`` is ours, opaque here."""

    invoice_id: Hashable
    kid: str
    amount_ore: int


@dataclass(frozen=True)
class Match:
    invoice: OpenInvoice
    payment: Payment


@dataclass(frozen=True)
class UnmatchedPayment:
    payment: Payment
    reason: UnmatchedReason
    detail: str
    invoice: OpenInvoice | None = None


@dataclass
class MatchResult:
    matched: list[Match] = field(default_factory=list)
    unmatched: list[UnmatchedPayment] = field(default_factory=list)

    @property
    def paid_invoice_ids(self) -> list[Hashable]:
        return [m.invoice.invoice_id for m in self.matched]

    def __iter__(self) -> Iterator[list[Any]]:
        """``matched, unmatched = match_payments(...)``."""
        return iter((self.matched, self.unmatched))


def _norm(kid: str) -> str:
    return "".join(kid.split())


def match_payments(payments: Sequence[Payment], open_invoices: Iterable[OpenInvoice], *,
                   already_paid_kids: Collection[str] = (),
                   seen_payment_ids: Collection[Any] = ()) -> MatchResult:
    """Match each payment to at most one open invoice (KID exact, amount exact).

    ``already_paid_kids``: KIDs of invoices already marked paid (a new payment
    for them is a duplicate). ``seen_payment_ids``: ``Payment.identity`` of
    transactions processed from earlier files (re-delivered file).
    Leading zeros in a KID are significant; blanks are ignored.
    """
    by_kid: dict[str, list[OpenInvoice]] = {}
    for inv in open_invoices:
        by_kid.setdefault(_norm(inv.kid), []).append(inv)
    paid_kids = {_norm(k) for k in already_paid_kids}
    seen = set(seen_payment_ids)
    result = MatchResult()
    for p in payments:
        kid = _norm(p.kid or "")
        if p.identity in seen:
            result.unmatched.append(UnmatchedPayment(p, UnmatchedReason.DUPLICATE,
                                                     "settlement transaction already processed"))
            continue
        seen.add(p.identity)
        if p.amount_ore < 0 or p.transaction_type in REVERSAL_TYPES:
            result.unmatched.append(UnmatchedPayment(p, UnmatchedReason.REVERSAL,
                                                     f"reversal (type {p.transaction_type}, {p.amount_ore} øre)"))
            continue
        if not kid:
            result.unmatched.append(UnmatchedPayment(p, UnmatchedReason.MISSING_KID, "payment carries no KID"))
            continue
        candidates = by_kid.get(kid, [])
        if not candidates:
            if kid in paid_kids:
                result.unmatched.append(UnmatchedPayment(p, UnmatchedReason.DUPLICATE,
                                                         f"invoice with KID {kid} is already paid"))
            else:
                result.unmatched.append(UnmatchedPayment(p, UnmatchedReason.UNKNOWN_KID,
                                                         f"no open invoice with KID {kid}"))
            continue
        exact = [inv for inv in candidates if inv.amount_ore == p.amount_ore]
        if len(exact) == 1:
            inv = exact[0]
            result.matched.append(Match(inv, p))
            candidates.remove(inv)
            paid_kids.add(kid)
        elif len(exact) > 1:
            result.unmatched.append(UnmatchedPayment(p, UnmatchedReason.AMBIGUOUS,
                                                     f"{len(exact)} open invoices share KID {kid} and amount"))
        else:
            expected = ", ".join(str(inv.amount_ore) for inv in candidates)
            result.unmatched.append(UnmatchedPayment(
                p, UnmatchedReason.AMOUNT_MISMATCH,
                f"paid {p.amount_ore} øre, open invoice(s) with KID {kid} expect {expected}",
                candidates[0] if len(candidates) == 1 else None))
    return result
