"""Fixed-width 80-character record engine shared by the Nets file formats.

One table of fields per record type drives both rendering (claims writer,
simulator generators) and parsing (simulator validator, incoming parser), so
the positions live in exactly one place. Positions are 1-based and inclusive,
as in the Nets specifications (AvtaleGiro systemspesifikasjon v3.3, OCR giro
system manual); every layout must cover columns 1-80 without gaps.

General rules (spec §1 "Justering og blanking av felter"): alphanumeric fields
are left-aligned and blank-padded, numeric fields right-aligned and
zero-padded; the KID field is the documented exception (right-aligned,
blank-padded). Text is ISO-8859-1; we accept only its graphic characters
(0x20-0x7E, 0xA0-0xFF).
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Iterable, Sequence

RECORD_LENGTH = 80
NETS_ID = "00008080"
CRLF = "\r\n"
LF = "\n"
DEFAULT_LINE_ENDING = CRLF


class Scope(str, Enum):
    """What Nets rejects when a violation is found (spec: reject levels)."""

    TRANSMISSION = "transmission"
    ASSIGNMENT = "assignment"
    TRANSACTION = "transaction"


@dataclass(frozen=True)
class LayoutIssue:
    """One violation: machine code, 1-based record (line) and column."""

    code: str
    message: str
    record: int | None = None
    position: int | None = None
    scope: Scope = Scope.TRANSMISSION
    field: str | None = None

    def __str__(self) -> str:
        where = []
        if self.record is not None:
            where.append(f"record {self.record}")
        if self.position is not None:
            where.append(f"position {self.position}")
        loc = f" at {', '.join(where)}" if where else ""
        return f"{self.code}{loc}: {self.message}"


class NetsFileError(ValueError):
    """Base for typed errors of this package; ``code`` is machine readable."""

    def __init__(self, code: str, message: str, *, record: int | None = None,
                 position: int | None = None, issues: Sequence[LayoutIssue] = ()):
        self.code = code
        self.message = message
        self.record = record
        self.position = position
        self.issues = tuple(issues)
        loc = ""
        if record is not None:
            loc = f" (record {record}" + (f", position {position})" if position is not None else ")")
        super().__init__(f"{code}{loc}: {message}")


class LayoutRejected(NetsFileError):
    """A file failed layout validation; ``issues`` lists every violation."""

    @classmethod
    def from_issues(cls, issues: Sequence[LayoutIssue]) -> "LayoutRejected":
        first = issues[0]
        more = f" (+{len(issues) - 1} more)" if len(issues) > 1 else ""
        return cls(first.code, first.message + more, record=first.record,
                   position=first.position, issues=issues)


class RenderError(NetsFileError):
    """A value cannot be written into its field (too long, bad characters)."""


class Kind(str, Enum):
    CONST = "const"        # exact text
    NUM = "num"            # digits, right-aligned, zero-padded
    ZEROS = "zeros"        # filler '0'
    BLANKS = "blanks"      # filler ' '
    ALPHA = "alpha"        # text, left-aligned, blank-padded, no leading blank
    TEXT = "text"          # free text (leading blanks allowed: layout text)
    KID = "kid"            # digits, right-aligned, blank-padded (may be empty)
    DATE = "date"          # DDMMYY, a real date
    DATE0 = "date0"        # DDMMYY or 000000 (= no date)
    CHOICE = "choice"      # one of ``choices``


@dataclass(frozen=True)
class Field:
    name: str
    start: int
    end: int
    kind: Kind
    const: str = ""
    choices: tuple[str, ...] = ()

    @property
    def width(self) -> int:
        return self.end - self.start + 1


@dataclass(frozen=True)
class Layout:
    name: str
    fields: tuple[Field, ...]

    def __post_init__(self) -> None:
        pos = 1
        for f in self.fields:
            if f.start != pos or f.end < f.start:
                raise AssertionError(f"{self.name}: field {f.name} starts at {f.start}, expected {pos}")
            if f.kind is Kind.CONST and len(f.const) != f.width:
                raise AssertionError(f"{self.name}: const {f.name} width mismatch")
            pos = f.end + 1
        if pos != RECORD_LENGTH + 1:
            raise AssertionError(f"{self.name}: layout ends at {pos - 1}, not {RECORD_LENGTH}")

    @property
    def prefix(self) -> str:
        """Columns 1-8 when fully constant (format, service, type, record)."""
        return "".join(f.const for f in self.fields if f.end <= 8 and f.kind is Kind.CONST)


def header(service: str, type_: str, record: str) -> tuple[Field, ...]:
    """Columns 1-8: format code NY, service code, type, record type."""
    return (
        Field("format_code", 1, 2, Kind.CONST, "NY"),
        Field("service_code", 3, 4, Kind.CONST, service),
        Field("type", 5, 6, Kind.CONST, type_),
        Field("record_type", 7, 8, Kind.CONST, record),
    )


# -- characters and dates ----------------------------------------------------

def is_latin1_graphic(ch: str) -> bool:
    o = ord(ch)
    return 0x20 <= o <= 0x7E or 0xA0 <= o <= 0xFF


def fold_to_latin1(text: str) -> str:
    """Best-effort transliteration of text into printable ISO-8859-1.

    Characters outside Latin-1 are decomposed (``ő`` -> ``o``); what still
    does not fit becomes ``?``. Control characters become blanks.
    """
    out = []
    for ch in text:
        if is_latin1_graphic(ch):
            out.append(ch)
            continue
        if unicodedata.category(ch).startswith("C") or ch.isspace():
            out.append(" ")
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        out.append(base if base and all(is_latin1_graphic(c) for c in base) else "?")
    return "".join(out)


def format_date(d: dt.date) -> str:
    return d.strftime("%d%m%y")


def parse_date(text: str) -> dt.date:
    """DDMMYY; the century follows POSIX ``%y`` (00-68 -> 20xx, 69-99 -> 19xx)."""
    if len(text) != 6 or not text.isdigit():
        raise ValueError(text)
    return dt.datetime.strptime(text, "%d%m%y").date()


# -- rendering -----------------------------------------------------------------

def render(layout: Layout, values: dict[str, Any]) -> str:
    """Render one record; raises :class:`RenderError` naming the field."""
    parts: list[str] = []
    for f in layout.fields:
        v = values.get(f.name)
        if f.kind is Kind.CONST:
            text = f.const
        elif f.kind is Kind.ZEROS:
            text = "0" * f.width
        elif f.kind is Kind.BLANKS:
            text = " " * f.width
        elif f.kind is Kind.NUM:
            s = str(v if v is not None else 0)
            if not (s.isascii() and s.isdigit()) or len(s) > f.width:
                raise RenderError("field.numeric", f"{layout.name}.{f.name}: {v!r} is not a "
                                  f"non-negative number of at most {f.width} digits")
            text = s.zfill(f.width)
        elif f.kind in (Kind.ALPHA, Kind.TEXT):
            s = "" if v is None else str(v)
            if f.kind is Kind.ALPHA:
                s = s.strip()
            bad = next((c for c in s if not is_latin1_graphic(c)), None)
            if bad is not None:
                raise RenderError("field.charset", f"{layout.name}.{f.name}: {bad!r} is not "
                                  "a printable ISO-8859-1 character")
            if len(s) > f.width:
                raise RenderError("field.too_long", f"{layout.name}.{f.name}: {len(s)} > {f.width} chars")
            text = s.ljust(f.width)
        elif f.kind is Kind.KID:
            s = "" if v is None else str(v)
            if s and not (s.isascii() and s.isdigit()):
                raise RenderError("field.kid", f"{layout.name}.{f.name}: KID must be digits only: {s!r}")
            if len(s) > f.width:
                raise RenderError("field.too_long", f"{layout.name}.{f.name}: {len(s)} > {f.width} digits")
            text = s.rjust(f.width)
        elif f.kind is Kind.DATE:
            if not isinstance(v, dt.date):
                raise RenderError("field.date", f"{layout.name}.{f.name}: a date is required")
            text = format_date(v)
        elif f.kind is Kind.DATE0:
            text = format_date(v) if isinstance(v, dt.date) else "000000"
        elif f.kind is Kind.CHOICE:
            s = str(v)
            if s not in f.choices:
                raise RenderError("field.choice", f"{layout.name}.{f.name}: {v!r} not in {f.choices}")
            text = s
        else:  # pragma: no cover - enum is closed
            raise AssertionError(f.kind)
        assert len(text) == f.width, (f.name, text)
        parts.append(text)
    line = "".join(parts)
    assert len(line) == RECORD_LENGTH
    return line


def join_records(lines: Iterable[str], line_ending: str = DEFAULT_LINE_ENDING) -> bytes:
    """Records + terminator after each one, ISO-8859-1; never blank lines."""
    if line_ending not in (CRLF, LF):
        raise RenderError("file.line_ending", f"line ending must be CRLF or LF, not {line_ending!r}")
    out = []
    for line in lines:
        if len(line) != RECORD_LENGTH or not line.strip():
            raise RenderError("file.record_length", f"internal: bad record {line!r}")
        out.append(line + line_ending)
    return "".join(out).encode("iso-8859-1")


# -- parsing -------------------------------------------------------------------

@dataclass
class RawRecord:
    """One physical line of a file, decoded, with its 1-based number."""

    number: int
    text: str
    ok: bool = True  # length and charset fine: fields can be read


@dataclass
class SplitResult:
    records: list[RawRecord] = field(default_factory=list)
    issues: list[LayoutIssue] = field(default_factory=list)
    line_ending: str | None = None


def split_records(data: bytes | str, *, reject_utf8: bool = True,
                  require_line_ending: str | None = None) -> SplitResult:
    """Decode and split a file into 80-character records.

    File-level violations (empty file, blank lines, mixed or unexpected line
    endings, bytes outside printable ISO-8859-1, wrong record length, UTF-8
    text) are reported with record number and column; bad records are kept
    but flagged ``ok=False`` so structure checks can still run.
    """
    res = SplitResult()
    if isinstance(data, str):
        try:
            raw = data.encode("iso-8859-1")
        except UnicodeEncodeError as exc:
            line_no = data.count("\n", 0, exc.start) + 1
            col = exc.start - (data.rfind("\n", 0, exc.start) + 1) + 1
            res.issues.append(LayoutIssue("encoding.not_latin1", "character outside ISO-8859-1",
                                          line_no, col))
            raw = data.encode("iso-8859-1", "replace")
    else:
        raw = bytes(data)
    if not raw:
        res.issues.append(LayoutIssue("file.empty", "file contains no records", 1, 1))
        return res
    chunks = raw.split(b"\n")
    if chunks[-1] == b"":
        chunks.pop()  # terminator after the last record
    endings: set[str] = set()
    for i, chunk in enumerate(chunks, start=1):
        has_terminator = i < len(chunks) or raw.endswith(b"\n")
        ending_here: str | None = None
        if chunk.endswith(b"\r") and has_terminator:
            chunk = chunk[:-1]
            ending_here = CRLF
        elif has_terminator:
            ending_here = LF
        if ending_here:
            endings.add(ending_here)
            if require_line_ending and ending_here != require_line_ending:
                res.issues.append(LayoutIssue("file.line_ending", f"record terminated by "
                                              f"{ending_here!r}, expected {require_line_ending!r}",
                                              i, len(chunk) + 1))
        text = chunk.decode("iso-8859-1")
        rec = RawRecord(i, text)
        res.records.append(rec)
        if not text.strip():
            res.issues.append(LayoutIssue("file.blank_line", "blank line (records must never be blank)",
                                          i, 1))
            rec.ok = False
            continue
        bad = next((j for j, c in enumerate(text) if not is_latin1_graphic(c)), None)
        if bad is not None:
            res.issues.append(LayoutIssue("encoding.control_char",
                                          f"byte 0x{ord(text[bad]):02X} is not a printable ISO-8859-1 character",
                                          i, bad + 1))
            rec.ok = False
        elif reject_utf8 and any(b >= 0x80 for b in chunk):
            try:
                chunk.decode("utf-8")
            except UnicodeDecodeError:
                pass
            else:
                first = next(j for j, b in enumerate(chunk) if b >= 0x80)
                res.issues.append(LayoutIssue("encoding.utf8", "text is UTF-8 encoded, expected ISO-8859-1",
                                              i, first + 1))
                rec.ok = False
        if len(text) != RECORD_LENGTH:
            pos = RECORD_LENGTH + 1 if len(text) > RECORD_LENGTH else len(text) + 1
            res.issues.append(LayoutIssue("record.length", f"record has {len(text)} characters, "
                                          f"expected {RECORD_LENGTH}", i, pos))
            rec.ok = False
    if len(endings) > 1:
        res.issues.append(LayoutIssue("file.mixed_line_endings", "file mixes CRLF and LF", None, None))
    res.line_ending = next(iter(endings)) if len(endings) == 1 else None
    return res


def check_fields(layout: Layout, rec: RawRecord, scope: Scope) -> tuple[dict[str, Any], list[LayoutIssue]]:
    """Check every field of ``rec`` against ``layout``; return values + issues.

    Values: NUM -> int, DATE -> date, DATE0 -> date | None, ALPHA/TEXT -> text
    with trailing blanks removed, KID -> digits or "" (blank field).
    """
    values: dict[str, Any] = {}
    issues: list[LayoutIssue] = []
    text = rec.text

    def bad(f: Field, offset: int, code: str, msg: str) -> None:
        issues.append(LayoutIssue(code, f"{layout.name}.{f.name}: {msg}", rec.number,
                                  f.start + offset, scope, f.name))

    for f in layout.fields:
        s = text[f.start - 1:f.end]
        off: int | None
        if f.kind is Kind.CONST:
            if s != f.const:
                first = next(j for j, (a, b) in enumerate(zip(s, f.const)) if a != b)
                bad(f, first, "field.constant", f"expected {f.const!r}, got {s!r}")
            values[f.name] = s
        elif f.kind is Kind.ZEROS:
            off = next((j for j, c in enumerate(s) if c != "0"), None)
            if off is not None:
                bad(f, off, "field.filler_zeros", f"filler must be zeros, got {s!r}")
        elif f.kind is Kind.BLANKS:
            off = next((j for j, c in enumerate(s) if c != " "), None)
            if off is not None:
                bad(f, off, "field.filler_blanks", f"filler must be blanks, got {s!r}")
        elif f.kind is Kind.NUM:
            off = next((j for j, c in enumerate(s) if not ("0" <= c <= "9")), None)
            if off is not None:
                code = "field.padding" if s[off] == " " else "field.numeric"
                bad(f, off, code, f"must be digits, zero-padded on the left, got {s!r}")
            else:
                values[f.name] = int(s)
        elif f.kind in (Kind.ALPHA, Kind.TEXT):
            if f.kind is Kind.ALPHA and s[:1] == " " and s.strip():
                bad(f, 0, "field.alignment", f"text must be left-aligned, got {s!r}")
            values[f.name] = s.rstrip(" ")
        elif f.kind is Kind.KID:
            stripped = s.lstrip(" ")
            lead = len(s) - len(stripped)
            off = next((j for j, c in enumerate(stripped) if not ("0" <= c <= "9")), None)
            if off is not None:
                code = "field.alignment" if stripped[off] == " " else "field.kid_format"
                bad(f, lead + off, code, f"KID must be digits, right-aligned, blank-padded, got {s!r}")
            else:
                values[f.name] = stripped
        elif f.kind in (Kind.DATE, Kind.DATE0):
            if f.kind is Kind.DATE0 and s == "000000":
                values[f.name] = None
                continue
            off = next((j for j, c in enumerate(s) if not ("0" <= c <= "9")), None)
            if off is not None:
                bad(f, off, "field.date", f"date must be DDMMYY digits, got {s!r}")
                continue
            try:
                values[f.name] = parse_date(s)
            except ValueError:
                dd, mm = int(s[0:2]), int(s[2:4])
                off = 2 if 1 <= dd <= 31 and not 1 <= mm <= 12 else 0
                bad(f, off, "field.date", f"{s!r} is not a valid DDMMYY date")
        elif f.kind is Kind.CHOICE:
            if s not in f.choices:
                bad(f, 0, "field.choice", f"expected one of {f.choices}, got {s!r}")
            else:
                values[f.name] = s
    return values, issues
