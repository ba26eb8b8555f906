"""Typed ebMS errors: every rejection carries the ebMS 3 error code so the server can answer with
the matching signed eb:Error signal, and the sender can classify what the peer told it.

HTTP status: phase4 (the reference implementation, and what every Peppol sender is tested against)
answers every signed error signal with HTTP 200; Oxalis uses 500 except for NOT_SERVICED. We follow
phase4, so `http_status` is 200 for all signals; senders must parse signals from 200 and 5xx alike.
"""

from __future__ import annotations

# code -> (short description, default severity, category); ebMS 3 Core §6.7 + Peppol usage.
EBMS_ERRORS: dict[str, tuple[str, str, str]] = {
    "EBMS:0001": ("ValueNotRecognized", "failure", "Content"),
    "EBMS:0002": ("FeatureNotSupported", "warning", "Content"),
    "EBMS:0003": ("ValueInconsistent", "failure", "Content"),
    "EBMS:0004": ("Other", "failure", "Content"),
    "EBMS:0005": ("ConnectionFailure", "failure", "Communication"),
    "EBMS:0006": ("EmptyMessagePartitionChannel", "warning", "Communication"),
    "EBMS:0007": ("MimeInconsistency", "failure", "Unpackaging"),
    "EBMS:0008": ("FeatureNotSupportedInconsistency", "failure", "Unpackaging"),
    "EBMS:0009": ("InvalidHeader", "failure", "Unpackaging"),
    "EBMS:0010": ("ProcessingModeMismatch", "failure", "Processing"),
    "EBMS:0011": ("ExternalPayloadError", "failure", "Content"),
    "EBMS:0101": ("FailedAuthentication", "failure", "Processing"),
    "EBMS:0102": ("FailedDecryption", "failure", "Processing"),
    "EBMS:0103": ("PolicyNoncompliance", "failure", "Processing"),
    "EBMS:0201": ("DysfunctionalReliability", "failure", "Processing"),
    "EBMS:0202": ("DeliveryFailure", "failure", "Communication"),
    "EBMS:0301": ("MissingReceipt", "failure", "Communication"),
    "EBMS:0302": ("InvalidReceipt", "failure", "Communication"),
    "EBMS:0303": ("DecompressionFailure", "failure", "Communication"),
}

NOT_SERVICED = "PEPPOL:NOT_SERVICED"


class EbmsError(Exception):
    """A rejection with its ebMS error code.

    `reason` is the human text (goes to eb:Description); `detail` goes to eb:ErrorDetail (for
    NOT_SERVICED it is exactly "PEPPOL:NOT_SERVICED"). `check` is a short machine-readable name of
    the failed check (e.g. "signature-coverage") for logs and tests. `ref_to_message_id` is the
    MessageId of the offending message when it could be read.
    """

    def __init__(
        self,
        code: str,
        reason: str,
        *,
        check: str = "",
        detail: str | None = None,
        severity: str | None = None,
        ref_to_message_id: str | None = None,
        http_status: int = 200,
        peer: bool = False,
        short_description: str | None = None,
        category_override: str | None = None,
    ):
        if code not in EBMS_ERRORS and not peer:
            raise ValueError(f"unknown ebMS error code {code!r}")
        short, default_severity, category = EBMS_ERRORS.get(code, (short_description or "Unknown", "failure", ""))
        if peer:
            short = short_description or short
            category = category_override or category
        reason = _capped(reason)
        detail = _capped(detail)
        super().__init__(f"{code} {short}: {reason}")
        self.code = code
        self.short_description = short
        self.severity = severity or default_severity
        self.category = category
        self.reason = reason
        self.check = check
        self.detail = detail if detail is not None else reason
        self.ref_to_message_id = ref_to_message_id
        self.http_status = http_status
        self.peer = peer  # True when the error was reported by the remote AP in an eb:Error signal
        self.authenticated = not peer  # for peer errors: was the error signal's signature verified?
        self.signal = None  # for peer errors: the parsed signals.Signal

    @property
    def is_not_serviced(self) -> bool:
        return self.code == "EBMS:0004" and NOT_SERVICED in (self.detail or "")

    def with_ref(self, message_id: str | None) -> "EbmsError":
        """Attach the offending MessageId (once known) without losing the original error."""
        if message_id and not self.ref_to_message_id:
            self.ref_to_message_id = message_id
        return self


MAX_REASON_CHARS = 2000


def _capped(text: str | None) -> str | None:
    """Reasons can quote header values (up to the SOAP size cap): keep signals and logs bounded."""
    if text is None or len(text) <= MAX_REASON_CHARS:
        return text
    return text[:MAX_REASON_CHARS] + f"… [{len(text) - MAX_REASON_CHARS} more characters]"


def not_serviced(reason: str, ref_to_message_id: str | None = None) -> EbmsError:
    """The Peppol 'receiver/doctype/process not served here' answer (peppol/04)."""
    return EbmsError("EBMS:0004", reason, check="not-serviced", detail=NOT_SERVICED,
                     ref_to_message_id=ref_to_message_id)


def duplicate(message_id: str, reason: str = "") -> EbmsError:
    """Refusal of a duplicate MessageId (only for a *conflicting* duplicate: same MessageId, other
    signed digests). For a plain retry of an acknowledged message re-send the stored receipt instead.
    phase4 answers duplicates with its non-standard EBMS:4001; we use the standard EBMS:0004."""
    return EbmsError("EBMS:0004", reason or f"MessageId {message_id} was already received with other content",
                     check="duplicate", detail="DUPLICATE_MESSAGE_ID", ref_to_message_id=message_id)


def value_inconsistent(reason: str, check: str) -> EbmsError:
    return EbmsError("EBMS:0003", reason, check=check)


def invalid_header(reason: str, check: str) -> EbmsError:
    return EbmsError("EBMS:0009", reason, check=check)


def pmode_mismatch(reason: str, check: str) -> EbmsError:
    return EbmsError("EBMS:0010", reason, check=check)


def failed_authentication(reason: str, check: str) -> EbmsError:
    return EbmsError("EBMS:0101", reason, check=check)


def failed_decryption(reason: str, check: str) -> EbmsError:
    return EbmsError("EBMS:0102", reason, check=check)


def policy_noncompliance(reason: str, check: str) -> EbmsError:
    return EbmsError("EBMS:0103", reason, check=check)


def mime_inconsistency(reason: str, check: str) -> EbmsError:
    return EbmsError("EBMS:0007", reason, check=check)
