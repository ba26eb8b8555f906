"""AvtaleGiro / OCR Giro file formats (Nets 80-character records), sans-IO.

``claims`` writes claim files, ``incoming`` reads mandate and settlement files
from Nets, ``validator`` is the simulator side (strict claim parser; the
generators live in ``generators``), ``matching`` reconciles settlement
payments with open invoices. See docs/avtalegiro.md.
"""

from .claims import Cancellation, Claim, ClaimBatch, ClaimError, ClaimFileOptions, build_claim_file, write_claim_file_atomic
from .generators import NotDebited, generate_mandate_file, generate_settlement_file, next_banking_day, settle_claims
from .incoming import (
    IncomingFile,
    Mandate,
    Payment,
    apply_mandate_updates,
    has_active_mandate,
    parse_incoming_file,
    parse_mandate_file,
    parse_settlement_file,
)
from .layout import LayoutIssue, LayoutRejected, NetsFileError, Scope
from .matching import MatchResult, OpenInvoice, UnmatchedReason, match_payments
from .validator import ClaimFileReport, ValidatorOptions, parse_claim_file, validate_claim_file

__all__ = [
    "Cancellation", "Claim", "ClaimBatch", "ClaimError", "ClaimFileOptions", "ClaimFileReport", "IncomingFile",
    "LayoutIssue", "LayoutRejected", "Mandate", "MatchResult", "NetsFileError", "NotDebited", "OpenInvoice", "Payment", "Scope",
    "UnmatchedReason", "ValidatorOptions", "apply_mandate_updates", "build_claim_file", "generate_mandate_file",
    "generate_settlement_file", "has_active_mandate", "match_payments", "next_banking_day", "parse_claim_file",
    "parse_incoming_file", "parse_mandate_file", "parse_settlement_file", "settle_claims", "validate_claim_file",
    "write_claim_file_atomic",
]
