"""Peppol AS4 protocol core (sans-IO). Public API; see docs/as4.md.

Outbound:  build_user_message(...) -> OutboundMessage (store .body, POST it, re-send same bytes on retry)
           verify_receipt(body, receiver_cert, message_id, signed_references) -> Signal | EbmsError
Inbound:   receive_user_message(body, content_type, our_key=, our_cert=, trust=, now=) -> ReceivedMessage
           build_receipt(...) / build_error_signal(...) -> signed SOAP bytes to answer with
"""

from .blob import Blob
from .errors import EBMS_ERRORS, NOT_SERVICED, EbmsError, duplicate, not_serviced
from .header import PartInfo, Property, UserMessageHeader
from .keys import CredentialError, Credentials, load_credentials
from .limits import DEFAULT_LIMITS, Limits
from .signals import (
    SIGNAL_CONTENT_TYPE, Receipt, Signal, SignalError, build_error_signal, build_receipt, certificate_checker,
    parse_signal, verify_receipt,
)
from .usermessage import OutboundMessage, ReceivedMessage, build_user_message, receive_user_message, same_message
from .wssec import SignedReference

__all__ = [
    "Blob", "CredentialError", "Credentials", "DEFAULT_LIMITS", "EBMS_ERRORS", "EbmsError", "Limits", "NOT_SERVICED", "OutboundMessage", "PartInfo",
    "Property", "Receipt", "ReceivedMessage", "SIGNAL_CONTENT_TYPE", "Signal", "SignalError", "SignedReference",
    "UserMessageHeader", "build_error_signal", "build_receipt", "build_user_message", "certificate_checker", "duplicate",
    "load_credentials", "not_serviced", "parse_signal", "receive_user_message", "same_message", "verify_receipt",
]
