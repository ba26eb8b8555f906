"""Typed discovery failures. The outbound sender decides by class, the operator reads `code`.

* NotRegistered: permanent "no Peppol route" (not in the SML, SMP 404, document type or process not
  served, no active AS4 endpoint). The caller may fall back to another channel.
* DiscoveryUnavailable: transient (DNS timeout/SERVFAIL, SMP down, 5xx). Retry later, never fall back.
* DiscoveryError: the answer is unusable or untrusted (bad XML, bad signature, untrusted signer or
  endpoint certificate, identifier mismatch). Do not send; alert an operator.

All three derive from DiscoveryFailure but not from each other, so `except` order never matters.
"""

from __future__ import annotations


class DiscoveryFailure(Exception):
    """Base of all discovery failures; `code` is machine-readable, the message human-readable."""

    retryable = False

    def __init__(self, code: str, message: str = ""):
        super().__init__(message or code)
        self.code = code
        self.message = message or code

    @property
    def reason(self) -> str:
        return f"{self.code}: {self.message}"


class NotRegistered(DiscoveryFailure):
    """The participant cannot receive this document via Peppol (permanent)."""


class DiscoveryUnavailable(DiscoveryFailure):
    """A technical failure in DNS or at the SMP; the same lookup may succeed later."""

    retryable = True


class DiscoveryError(DiscoveryFailure):
    """The SML/SMP answer is malformed, unsigned, wrongly signed, untrusted or inconsistent."""
