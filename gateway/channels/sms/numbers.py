"""Phone numbers and sender ids as LINK Mobility's Common platform accepts them.

Destination: an MSISDN in international format with a leading '+' (E.164: '+', country code, at
most 15 digits). Norwegian mobile numbers are +47 followed by 8 digits starting with 4 or 9
(Nkom numbering plan; 8-digit numbers starting 2-3, 5-7 are fixed-line/special and cannot take an
SMS). Sender (source): alphanumeric 2-11 characters a-z/A-Z/0-9 beginning with a letter
(sourceTON ALPHANUMERIC), an MSISDN (sourceTON MSISDN) or a short number (SHORTNUMBER).
"""

from __future__ import annotations

import re

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
NO_MOBILE = re.compile(r"^\+47[49][0-9]{7}$")
ALPHANUMERIC_SENDER = re.compile(r"^[A-Za-z][A-Za-z0-9]{1,10}$")
SHORTNUMBER = re.compile(r"^[0-9]{3,8}$")


def normalize_msisdn(raw: str | None, default_country: str = "47") -> str | None:
    """'+47 912 34 567', '0047 91234567', '91234567' → '+4791234567'; None if it cannot be an MSISDN."""
    if not raw:
        return None
    s = re.sub(r"[\s().-]", "", raw.strip())
    if s.startswith("00"):
        s = "+" + s[2:]
    elif not s.startswith("+"):
        if default_country == "47" and re.fullmatch(r"[0-9]{8}", s):
            s = "+47" + s
        else:
            return None
    return s if E164.match(s) else None


def is_norwegian_mobile(msisdn: str) -> bool:
    return bool(NO_MOBILE.match(msisdn))


def sender_ton(source: str) -> str:
    """The sourceTON for a configured sender, or ValueError when LINK would reject it."""
    if source.startswith("+"):
        if E164.match(source):
            return "MSISDN"
        raise ValueError(f"sender {source!r} is not an E.164 MSISDN")
    if SHORTNUMBER.match(source):
        return "SHORTNUMBER"
    if ALPHANUMERIC_SENDER.match(source):
        return "ALPHANUMERIC"
    raise ValueError(f"sender {source!r}: alphanumeric senders are 2-11 characters a-z, A-Z, 0-9 "
                     "and start with a letter")
