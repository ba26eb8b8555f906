"""Norwegian display formats for amounts, dates, accounts and quantities.

Kept apart from the template so every channel (PDF, e-mail, SMS) prints the same figures the same
way: `1 234,56`, `20.12.2026`, `1234.56.78903`. Thousands are separated by an ordinary space so the
text extracted from a PDF (and copied by a payer) is plain ASCII apart from the letters.
"""

from __future__ import annotations

import datetime as _dt
from decimal import ROUND_HALF_UP, Decimal

from stdnum import iban as _iban
from stdnum.no import kontonr as _kontonr

THOUSANDS = " "

#: UN/ECE Recommendation 20 unit codes seen on Norwegian invoices, in Norwegian.
UNIT_NAMES = {
    "EA": "stk", "C62": "stk", "H87": "stk", "NAR": "stk", "PCE": "stk", "XPP": "stk",
    "HUR": "timer", "DAY": "dager", "WEE": "uker", "MON": "mnd", "ANN": "år", "MIN": "min",
    "KGM": "kg", "GRM": "g", "TNE": "tonn", "MTR": "m", "KMT": "km", "MTK": "m²", "MTQ": "m³",
    "LTR": "l", "KWH": "kWh", "MWH": "MWh", "KWT": "kW", "SET": "sett", "PR": "par",
    "ZZ": "", "LS": "rund sum", "E48": "tjeneste", "XBX": "eske", "XPK": "pakke",
}


def _group(digits: str) -> str:
    out = []
    while len(digits) > 3:
        out.insert(0, digits[-3:])
        digits = digits[:-3]
    out.insert(0, digits)
    return THOUSANDS.join(out)


def amount(value: Decimal | None, places: int = 2) -> str:
    """`Decimal('-1234.5')` → `-1 234,50` (rounded half up to `places` decimals)."""
    if value is None:
        return ""
    quant = Decimal(1).scaleb(-places)
    value = Decimal(value).quantize(quant, rounding=ROUND_HALF_UP)
    sign = "-" if value < 0 else ""
    whole, _, frac = f"{abs(value):.{places}f}".partition(".")
    return f"{sign}{_group(whole)}" + (f",{frac}" if places else "")


def money(value: Decimal | None, currency: str) -> str:
    """`kr 1 234,50` for NOK, `EUR 1 234,50` otherwise."""
    if value is None:
        return ""
    prefix = "kr" if currency.upper() == "NOK" else currency.upper()
    return f"{prefix} {amount(value)}"


def number(value: Decimal | None, max_places: int = 4) -> str:
    """Quantities: the decimals the invoice gives (trailing zeros dropped, at most `max_places`)."""
    if value is None:
        return ""
    value = Decimal(value).normalize()
    exponent = value.as_tuple().exponent
    return amount(value, min(-exponent, max_places) if exponent < 0 else 0)


def price(value: Decimal | None) -> str:
    """Unit price: at least two decimals, up to four when the price has them."""
    if value is None:
        return ""
    exponent = Decimal(value).as_tuple().exponent
    places = min(max(-exponent if exponent < 0 else 0, 2), 4)
    return amount(value, places)


def percent(value: Decimal | None) -> str:
    """`Decimal('25.00')` → `25 %`, `Decimal('11.11')` → `11,11 %`."""
    if value is None:
        return ""
    value = Decimal(value)
    if value == value.to_integral_value():
        return f"{int(value)} %"
    return f"{amount(value.normalize(), -value.normalize().as_tuple().exponent)} %"


def date(value: _dt.date | None) -> str:
    """`20.12.2026` (dd.mm.åååå, as Norwegian payers and banks write it)."""
    return value.strftime("%d.%m.%Y") if value else ""


def account(value: str | None, kind: str | None = None) -> str:
    """Kontonummer as `1234.56.78903`, IBAN in groups of four, anything else as given."""
    if not value:
        return ""
    if kind in (None, "bban") and value.isdigit() and _kontonr.is_valid(value):
        return _kontonr.format(value)
    if kind in (None, "iban") and _iban.is_valid(value):
        return _iban.format(value)
    return value


def unit(code: str | None) -> str:
    if not code:
        return ""
    return UNIT_NAMES.get(code.upper(), code)


def orgnr(value: str | None) -> str:
    """`123456785` → `123 456 785` (how Brønnøysundregistrene prints it)."""
    if value and len(value) == 9 and value.isdigit():
        return f"{value[:3]} {value[3:6]} {value[6:]}"
    return value or ""
