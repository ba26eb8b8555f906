"""Peppol dynamic discovery: SML (U-NAPTR) -> SMP (signed busdox ServiceMetadata) -> AS4 endpoint.

Entry point for other code: `gateway.discovery.lookup.Discovery` (see docs/discovery.md).
"""

from gateway.discovery.errors import (
    DiscoveryError,
    DiscoveryFailure,
    DiscoveryUnavailable,
    NotRegistered,
)

__all__ = ["DiscoveryError", "DiscoveryFailure", "DiscoveryUnavailable", "NotRegistered"]
