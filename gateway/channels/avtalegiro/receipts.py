"""Receipts from the (simulated) Nets file channel: our documented JSON format.

Nets acknowledges a claim file ("kvittering") and reports rejected transmissions, assignments or
transactions, and later claims it could not debit, but the public AvtaleGiro specification v3.3 does
not define a machine-readable file layout for that feedback (it is agreed at onboarding, often as
a list by e-mail or in the bank's file channel). Until MPS confirms theirs, the simulator writes,
and the adapter reads, this format; it is the one place to change when the real one is known.

A receipt file is UTF-8 JSON named ``*.receipt.json`` in the incoming directory::

    {"format": "sendgw-nets-receipt/1",
     "kind": "claim_file" | "not_debited",
     "created_at": "2026-11-30T10:00:00+00:00",
     "data_sender": "55555555", "transmission_number": "0000001", "file_name": "AG....dat",
     "status": "accepted" | "partially_accepted" | "rejected",      # claim_file only
     "errors":   [{"code", "message", "record", "position", "scope", "field"}],
     "warnings": [...same...],
     "claims": [{"assignment_number", "transaction_number", "record", "kid", "amount_ore",
                 "due_date": "YYYY-MM-DD", "transaction_type", "status": "accepted" | "rejected" | "not_debited",
                 "reason", "issues": [...]}]}

``record``/``position`` are 1-based (line and column of the claim file), as the validator reports.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .layout import LayoutIssue
from .validator import ClaimFileReport

RECEIPT_FORMAT = "sendgw-nets-receipt/1"
RECEIPT_SUFFIX = ".receipt.json"


class ReceiptError(ValueError):
    """A file named or shaped like a receipt that does not follow the format."""


def issue_dict(issue: LayoutIssue) -> dict[str, Any]:
    return {"code": issue.code, "message": issue.message, "record": issue.record, "position": issue.position,
            "scope": issue.scope.value, "field": issue.field}


@dataclass(frozen=True)
class ReceiptClaim:
    kid: str
    amount_ore: int
    due_date: dt.date
    status: str  # accepted | rejected | not_debited
    assignment_number: str | None = None
    transaction_number: int | None = None
    record: int | None = None
    transaction_type: str | None = None
    reason: str | None = None
    issues: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Receipt:
    kind: str  # claim_file | not_debited
    created_at: dt.datetime
    data_sender: str | None = None
    transmission_number: str | None = None
    file_name: str | None = None
    status: str | None = None
    errors: tuple[dict[str, Any], ...] = ()
    warnings: tuple[dict[str, Any], ...] = ()
    claims: tuple[ReceiptClaim, ...] = field(default_factory=tuple)

    def describe_errors(self, limit: int = 3) -> str:
        parts = [_describe(e) for e in self.errors[:limit]]
        more = f" (+{len(self.errors) - limit} more)" if len(self.errors) > limit else ""
        return "; ".join(parts) + more


def _describe(issue: dict[str, Any]) -> str:
    where = []
    if issue.get("record") is not None:
        where.append(f"record {issue['record']}")
    if issue.get("position") is not None:
        where.append(f"position {issue['position']}")
    loc = f" at {', '.join(where)}" if where else ""
    return f"{issue.get('code')}{loc}: {issue.get('message')}"


def claim_file_receipt(report: ClaimFileReport, *, file_name: str, created_at: dt.datetime) -> dict[str, Any]:
    """The receipt for one claim file, from the validator's report."""
    claims = []
    for asg in report.assignments:
        for c in asg.claims:
            rejected = report.transmission_rejected or asg.rejected or c.transaction_number in asg.rejected_transactions
            issues = [issue_dict(e) for e in report.errors
                      if e.scope.value == "transaction" and e.record is not None and _in_transaction(report, asg, c, e)]
            claims.append({"assignment_number": asg.number, "transaction_number": c.transaction_number,
                           "record": c.record, "kid": c.kid, "amount_ore": c.amount_ore,
                           "due_date": c.due_date.isoformat(), "transaction_type": c.transaction_type,
                           "status": "rejected" if rejected else "accepted",
                           "reason": None if not rejected else "layout", "issues": issues})
    accepted = [c for c in claims if c["status"] == "accepted"]
    if report.transmission_rejected or (report.errors and not accepted):
        status = "rejected"
    elif report.errors:
        status = "partially_accepted"
    else:
        status = "accepted"
    return {"format": RECEIPT_FORMAT, "kind": "claim_file", "created_at": created_at.isoformat(),
            "data_sender": report.data_sender, "transmission_number": report.transmission_number,
            "file_name": file_name, "status": status,
            "errors": [issue_dict(e) for e in report.errors], "warnings": [issue_dict(w) for w in report.warnings],
            "claims": claims}


def _in_transaction(report: ClaimFileReport, asg: Any, claim: Any, issue: LayoutIssue) -> bool:
    """Does ``issue`` lie in the records of ``claim`` (from its item 1 up to the next item 1/end)?"""
    records = sorted(c.record for a in report.assignments for c in a.claims)
    later = [r for r in records if r > claim.record]
    end = later[0] if later else float("inf")
    return claim.record <= issue.record < end  # type: ignore[operator]


def not_debited_receipt(items: Iterable[dict[str, Any]], *, data_sender: str, created_at: dt.datetime) -> dict[str, Any]:
    """Claims Nets did not debit on the due date (no mandate, stopped by payer, over the limit)."""
    return {"format": RECEIPT_FORMAT, "kind": "not_debited", "created_at": created_at.isoformat(),
            "data_sender": data_sender, "claims": [dict(i, status="not_debited") for i in items]}


def dump_receipt(receipt: dict[str, Any]) -> bytes:
    return json.dumps(receipt, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")


def parse_receipt(data: bytes) -> Receipt:
    """Parse a receipt file; :class:`ReceiptError` when it is not one."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ReceiptError(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != RECEIPT_FORMAT:
        raise ReceiptError(f"format must be {RECEIPT_FORMAT!r}")
    kind = doc.get("kind")
    if kind not in ("claim_file", "not_debited"):
        raise ReceiptError(f"unknown receipt kind {kind!r}")
    try:
        created = dt.datetime.fromisoformat(doc["created_at"])
        claims = tuple(ReceiptClaim(
            kid=str(c["kid"]), amount_ore=int(c["amount_ore"]), due_date=dt.date.fromisoformat(c["due_date"]),
            status=str(c["status"]), assignment_number=c.get("assignment_number"),
            transaction_number=c.get("transaction_number"), record=c.get("record"),
            transaction_type=c.get("transaction_type"), reason=c.get("reason"),
            issues=tuple(c.get("issues") or ())) for c in doc.get("claims") or ())
    except (KeyError, TypeError, ValueError) as exc:
        raise ReceiptError(f"malformed receipt: {exc!r}") from exc
    if created.tzinfo is None:
        created = created.replace(tzinfo=dt.UTC)
    if kind == "claim_file" and doc.get("status") not in ("accepted", "partially_accepted", "rejected"):
        raise ReceiptError(f"unknown claim file status {doc.get('status')!r}")
    return Receipt(kind, created, doc.get("data_sender"), doc.get("transmission_number"), doc.get("file_name"),
                   doc.get("status"), tuple(doc.get("errors") or ()), tuple(doc.get("warnings") or ()), claims)
