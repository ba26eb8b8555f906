"""SMS text: the invoice notice in Norwegian, and how it is encoded and split into segments.

GSM 03.38 (3GPP TS 23.038): the 7-bit default alphabet holds Norwegian æøåÆØÅ, so a Norwegian text
normally fits GSM-7: 160 septets in one SMS, 153 per part when concatenated (the UDH takes 7).
Extension-table characters (``^{}\\[~]|€`` and form feed) cost two septets (ESC + char) and are
never split across parts. Any other character forces UCS-2: 70 UTF-16 units in one SMS, 67 per part.
LINK's Common platform accepts up to 254 segments and no 4-byte (non-BMP) characters.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Literal

from gateway.channels.notice import PaymentNotice

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
MAX_SEGMENTS = 254  # LINK Common: "up to the maximum defined by the GSM standard (254 segments)"

Encoding = Literal["GSM-7", "UCS-2"]


@dataclass(frozen=True)
class SegmentInfo:
    encoding: Encoding
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int

    @property
    def dcs(self) -> str:
        """LINK `dcs` value: TEXT lets the platform pick GSM/UCS-2 itself (default)."""
        return "TEXT"


def is_gsm7(text: str) -> bool:
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def has_non_bmp(text: str) -> bool:
    return any(ord(c) > 0xFFFF for c in text)


def segment_info(text: str) -> SegmentInfo:
    """Encoding, length in units and number of SMS segments for `text`."""
    if is_gsm7(text):
        costs = [2 if c in GSM7_EXTENSION else 1 for c in text]
        single, multi, enc = 160, 153, "GSM-7"
    else:
        costs = [2 if ord(c) > 0xFFFF else 1 for c in text]  # surrogate pairs
        single, multi, enc = 70, 67, "UCS-2"
    units = sum(costs)
    if units <= single:
        return SegmentInfo(enc, units, 1 if units else 0)  # type: ignore[arg-type]
    segments, used = 1, 0
    for cost in costs:  # a 2-unit character (ESC pair / surrogate pair) is never split
        if used + cost > multi:
            segments, used = segments + 1, 0
        used += cost
    return SegmentInfo(enc, units, segments)  # type: ignore[arg-type]


_TRANSLITERATE = str.maketrans({
    "–": "-", "—": "-", "‘": "'", "’": "'", "“": '"', "”": '"', "«": '"', "»": '"', "…": "...",
    "\u00a0": " ", "\u202f": " ", "\u2009": " ", "\t": " ",
})


def to_gsm_friendly(text: str) -> str:
    """Replace typographic characters that would force UCS-2 (dashes, curly quotes, NBSP), drop
    characters LINK cannot carry (non-BMP, e.g. emoji), keep everything else (æøå stay)."""
    text = unicodedata.normalize("NFC", text).translate(_TRANSLITERATE)
    return "".join(c for c in text if ord(c) <= 0xFFFF and (c in "\n" or unicodedata.category(c)[0] != "C"))


def render_notice_text(notice: PaymentNotice, link: str | None) -> str:
    """`Faktura 123 fra Leverandør AS: kr 1 234,50, forfall 20.12.2026. Konto 1234.56.78903, KID 123. <link>`.

    Kept within one GSM-7 SMS (160) for typical invoices: seller, amount, due date, account, KID, link.
    """
    parts = [f"{notice.kind_label} {notice.number} fra {notice.seller}:"]
    if notice.requests_payment:
        pay = f"{notice.amount}"
        if notice.due_date:
            pay += f", forfall {notice.due_date}"
        parts.append(pay + ".")
        details = []
        if notice.account:
            details.append(f"Konto {notice.account}")
        if notice.kid:
            details.append(f"KID {notice.kid}")
        if details:
            parts.append(", ".join(details) + ".")
    else:
        parts.append(f"{notice.amount} til gode.")
    if link:
        parts.append(link)
    return to_gsm_friendly(" ".join(parts))


def segments_for(text: str) -> int:
    return segment_info(text).segments


def max_units(segments: int, encoding: Encoding) -> int:
    single, multi = (160, 153) if encoding == "GSM-7" else (70, 67)
    return single if segments <= 1 else multi * segments


__all__ = ["SegmentInfo", "segment_info", "render_notice_text", "to_gsm_friendly", "is_gsm7", "has_non_bmp",
           "MAX_SEGMENTS"]
