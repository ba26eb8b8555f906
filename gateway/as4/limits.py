"""Size caps applied while receiving (configurable; defaults sized for Peppol invoices up to 100 MB+)."""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1 << 20


@dataclass(frozen=True)
class Limits:
    max_message_bytes: int = 256 * MiB      # whole MIME body as received
    max_soap_bytes: int = 1 * MiB           # the SOAP envelope part
    max_parts: int = 16                     # MIME parts including the SOAP part
    max_part_header_bytes: int = 8 * 1024   # header block of one MIME part
    max_decompressed_bytes: int = 512 * MiB  # per payload after gunzip (decompression-bomb cap)
    max_sbdh_header_bytes: int = 1 * MiB    # SBDH header region parsed with lxml
    sbdh_full_parse_bytes: int = 8 * MiB    # SBDs up to this size are parsed whole (else head/tail check)
    spill_bytes: int = 1 * MiB              # parts above this go to temp files


DEFAULT_LIMITS = Limits()
