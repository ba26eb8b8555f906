"""Errors of the validation engine.

`ValidationInputError` and its subclasses mean "this input cannot be validated" (the caller's
fault): each carries a machine-readable `code`, the HTTP status the API answers with and the exit
code of `sendgw validate`. A document that *can* be validated never raises: it gets a report,
valid or not.

`ArtefactError` means the official artefacts are missing or tampered with (the operator's
problem: run `sendgw artefacts sync`). `ValidationEngineError` covers a worker process that died
or overran its time limit; the pool has already replaced the worker when it is raised.
"""

from __future__ import annotations


class _CodedError(Exception):
    """An error with the code, HTTP status and CLI exit code every edge answers it with."""

    code: str = "error"
    http_status: int = 500
    exit_code: int = 2

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict:
        """The API's error body: {"error": {"code": ..., "message": ...}}."""
        return {"error": {"code": self.code, "message": self.message}}


class ValidationInputError(_CodedError):
    """The input cannot be validated. Subclasses fix `code`, `http_status` and `exit_code`."""

    code = "invalid-input"
    http_status = 400


class NotXmlError(ValidationInputError):
    """Not well-formed XML (or not decodable in its declared encoding)."""

    code = "not-xml"
    http_status = 400


class UnknownDocumentTypeError(ValidationInputError):
    """No rule set matches the document's root element and CustomizationID / ProfileID."""

    code = "unknown-document-type"
    http_status = 422


class UnknownRuleSetError(ValidationInputError):
    """The caller named a rule set that does not exist (or none was in force on the given date)."""

    code = "unknown-rule-set"
    http_status = 422


class DocumentTooLargeError(ValidationInputError):
    """The document is larger than the configured limit."""

    code = "document-too-large"
    http_status = 413


class HostileXmlError(ValidationInputError):
    """DTDs, entity declarations and external entities are refused (XXE, billion laughs)."""

    code = "forbidden-xml"
    http_status = 400


class ArtefactError(_CodedError):
    """An official artefact is missing from the cache or does not match its pinned SHA-256."""

    code = "artefacts-unavailable"
    http_status = 503


class ValidationEngineError(_CodedError):
    """The validation could not complete for a reason on our side (worker crash, timeout)."""

    code = "validation-failed"
    http_status = 500


class WorkerCrashedError(ValidationEngineError):
    """The worker process validating this document died; the pool started a new one."""

    code = "validation-worker-crashed"
    http_status = 500


class ValidationTimeoutError(ValidationEngineError):
    """Validation took longer than the configured limit; the worker was stopped and replaced."""

    code = "validation-timeout"
    http_status = 503


__all__ = [
    "ValidationInputError",
    "NotXmlError",
    "UnknownDocumentTypeError",
    "UnknownRuleSetError",
    "DocumentTooLargeError",
    "HostileXmlError",
    "ArtefactError",
    "ValidationEngineError",
    "WorkerCrashedError",
    "ValidationTimeoutError",
]
