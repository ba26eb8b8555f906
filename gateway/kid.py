"""KID (kundeidentifikasjon) check digits: MOD10 (Luhn) and MOD11.

A KID is the payment reference printed on Norwegian giros and carried in
AvtaleGiro/OCR files, eFaktura, Vipps and Digipost invoices. Banks reject a
payment whose KID fails its check digit, so we must never emit a bad one and
must be able to tell which algorithm an agreement uses.

Rules (Nets/MPS KID page; AvtaleGiro systemspesifikasjon, "Utregning av
kontrollsiffer i modulus 10 og modulus 11"):

* MOD10 (Luhn): from the right, excluding the check digit, weights 2,1,2,1...;
  add the *digits* of each product; check = (10 - sum mod 10) mod 10.
  Example: ``1234567`` + ``4`` (``12345678`` -> check ``2``).
* MOD11: from the right, weights 2,3,4,5,6,7,2,3...; r = sum mod 11;
  check = 11 - r; r = 0 gives ``0``; r = 1 gives the value 10, which is
  written as ``-`` in a KID (Norwegian practice; for kontonummer/orgnr such a
  number is simply invalid). Example: ``12345678`` -> check ``5``.
* Length: 2-25 characters including the check digit (general rule);
  AvtaleGiro/OCR agreements use 4-25 (pass ``min_length=4``).

The ``-`` check digit cannot be carried in the AvtaleGiro/OCR KID field
(digits only); :func:`make_kid` therefore offers ``allow_dash=False`` for
callers that must produce digits-only references.
"""

from __future__ import annotations

from typing import Literal

Algorithm = Literal["mod10", "mod11"]

ALGORITHMS: tuple[Algorithm, ...] = ("mod10", "mod11")
MIN_LENGTH = 2
MAX_LENGTH = 25


class KidError(ValueError):
    """A KID is malformed or its check digit is wrong.

    ``code`` is machine readable: ``kid.empty``, ``kid.format``,
    ``kid.length``, ``kid.check_digit``, ``kid.algorithm``,
    ``kid.dash_not_allowed``.
    """

    def __init__(self, code: str, message: str, kid: str | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.kid = kid


def _require_digits(base: str, what: str) -> None:
    if not base:
        raise KidError("kid.empty", f"{what} is empty", base)
    if not (base.isascii() and base.isdigit()):
        raise KidError("kid.format", f"{what} must contain digits 0-9 only: {base!r}", base)


def mod10_check_digit(base: str) -> str:
    """Luhn check digit for ``base`` (digits only, check digit excluded)."""
    _require_digits(base, "KID base")
    total = 0
    for i, ch in enumerate(reversed(base)):
        product = int(ch) * (2 if i % 2 == 0 else 1)
        total += product // 10 + product % 10
    return str((10 - total % 10) % 10)


def mod11_check_digit(base: str) -> str:
    """MOD11 check digit for ``base``; ``-`` when the remainder is 1."""
    _require_digits(base, "KID base")
    total = 0
    for i, ch in enumerate(reversed(base)):
        total += int(ch) * (2 + i % 6)
    remainder = total % 11
    if remainder == 0:
        return "0"
    if remainder == 1:
        return "-"
    return str(11 - remainder)


def _algo(algorithm: str | None) -> Algorithm | None:
    """Accept ``MOD10``/``mod10`` spellings (Nets documents use upper case)."""
    if algorithm is None:
        return None
    name = str(algorithm).strip().lower().replace("-", "").replace("_", "")
    if name not in ALGORITHMS:
        raise KidError("kid.algorithm", f"unknown KID algorithm {algorithm!r}")
    return name  # type: ignore[return-value]


def check_digit(base: str, algorithm: Algorithm) -> str:
    """Check digit for ``base`` under ``algorithm`` (``mod10``/``mod11``)."""
    algorithm = _algo(algorithm) or algorithm
    if algorithm == "mod10":
        return mod10_check_digit(base)
    if algorithm == "mod11":
        return mod11_check_digit(base)
    raise KidError("kid.algorithm", f"unknown KID algorithm {algorithm!r}")


def normalize_kid(kid: str) -> str:
    """Strip surrounding whitespace and inner blanks (as printed on giros)."""
    return "".join(kid.split())


def validate_kid(
    kid: str,
    algorithm: Algorithm | None = None,
    *,
    min_length: int = MIN_LENGTH,
    max_length: int = MAX_LENGTH,
    allow_dash: bool = True,
) -> str:
    """Return the normalised KID or raise :class:`KidError`.

    ``algorithm=None`` accepts a KID valid under either MOD10 or MOD11.
    """
    algorithm = _algo(algorithm)
    if not isinstance(kid, str):
        raise KidError("kid.format", f"KID must be a string, got {type(kid).__name__}")
    value = normalize_kid(kid)
    if not value:
        raise KidError("kid.empty", "KID is empty", kid)
    body, last = value[:-1], value[-1]
    body_ok = body == "" or (body.isascii() and body.isdigit())
    last_ok = last == "-" or (last.isascii() and last.isdigit())
    if not (body_ok and last_ok):
        raise KidError("kid.format", f"KID must be digits with an optional trailing '-': {kid!r}", kid)
    if not (min_length <= len(value) <= max_length):
        raise KidError(
            "kid.length", f"KID length {len(value)} outside {min_length}-{max_length}", kid
        )
    if last == "-" and not allow_dash:
        raise KidError("kid.dash_not_allowed", "KID ends in '-' but only digits are allowed here", kid)
    if not body:
        raise KidError("kid.length", "KID needs at least one digit before the check digit", kid)
    candidates = (algorithm,) if algorithm else ALGORITHMS
    for algo in candidates:
        if check_digit(body, algo) == last:
            return value
    names = algorithm or "mod10 or mod11"
    raise KidError("kid.check_digit", f"check digit of {value!r} is wrong for {names}", kid)


def kid_valid(kid: str, algorithm: Algorithm | None = None, **limits: int | bool) -> bool:
    """True if ``kid`` passes :func:`validate_kid` (``None`` = either algorithm)."""
    try:
        validate_kid(kid, algorithm, **limits)  # type: ignore[arg-type]
    except KidError as exc:
        if exc.code == "kid.algorithm":
            raise  # a programming error, not an invalid KID
        return False
    return True


def kid_algorithms(kid: str) -> tuple[Algorithm, ...]:
    """Algorithms under which ``kid`` is valid (may be both, or none)."""
    return tuple(a for a in ALGORITHMS if kid_valid(kid, a))


def make_kid(
    base: str | int,
    algorithm: Algorithm = "mod10",
    *,
    min_length: int = MIN_LENGTH,
    max_length: int = MAX_LENGTH,
    allow_dash: bool = True,
) -> str:
    """Append the check digit to ``base`` and check the length rules.

    With ``allow_dash=False`` a MOD11 base whose check would be ``-`` raises
    ``kid.dash_not_allowed`` (callers then pick another invoice number).
    """
    algorithm = _algo(algorithm) or "mod10"
    text = str(base)
    _require_digits(text, "KID base")
    kid = text + check_digit(text, algorithm)
    if not (min_length <= len(kid) <= max_length):
        raise KidError("kid.length", f"KID length {len(kid)} outside {min_length}-{max_length}", kid)
    if kid.endswith("-") and not allow_dash:
        raise KidError("kid.dash_not_allowed", f"MOD11 check digit of {text} is '-'", kid)
    return kid
