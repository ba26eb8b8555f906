"""A faithful local Digipost API (v8) for tests: a real aiohttp server on 127.0.0.1.

What it enforces, as the real service does (b2c-channels.md §5, §12; api_v8.xsd; digipost-data-types):

* auth on every API call: `X-Digipost-UserId` of a registered sender, `Date` within ±5 min of the
  simulator's clock, `X-Content-SHA256` equal to the body's hash, and either `X-Digipost-Signature`
  (verified over the canonical string with the sender's registered public key) or
  `Authorization: Bearer` with a token the simulator issued (token endpoint behind mutual TLS, scope
  `dpost-api:<broker id>`);
* `POST /identification`: DIGIPOST / IDENTIFIED / UNIDENTIFIED (NOT_FOUND, MULTIPLE_MATCHES) / INVALID
  from its registry of persons (mailbox, identified-only) and organisations, with check-digit checks;
* `POST /messages`: the `multipart/vnd.digipost-v8+xml` layout (message part first, one part per
  document named by its UUID), the message XML structure (element order, one primary document,
  ≤ 201 attachments, UUID pattern, subject 1..255, enums, print-details limits), the `invoice` data type
  (due-date date-time, sum > 0 with ≤ 2 decimals, creditor-account 11 digits MOD11, KID ≤ 25 with a valid
  MOD10/MOD11 check digit), PDF content, print preflight (A4, not encrypted, PDF ≤ 1.7, Norwegian 4-digit
  postcodes), idempotency on message-id and document UUID (409), 404 for non-users without print-details;
* responses carry `Date`, `X-Content-SHA256` and `X-Digipost-Signature` signed with the simulator's own
  key; `GET /` serves the entrypoint with that certificate and the links;
* `GET /documents/events?from&to&offset&maxResults`: OPENED, POSTMARKED (next working day for print),
  PRINT_FAILED, print-if-unread timers — driven by the injectable clock and the test controls
  (`open_document`, `fail_print`, `emit_event`, `advance`).

Errors use Digipost's `error{error-code,error-message,error-type}` body.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import io
import re
import secrets
import ssl
import tempfile
import uuid as uuidlib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from lxml import etree

from gateway import kid as kidmod
from gateway import norwegian_ids
from gateway.channels.digipost import schema, signing
from gateway.channels.digipost.schema import (
    DT_NS,
    ApiError,
    DocumentEvent,
    EntryPoint,
    IdentificationResult,
    MessageDelivery,
    SchemaError,
    q,
)

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
A4_PT = (595.0, 842.0)
A4_TOLERANCE = 3.0


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class SimError(Exception):
    def __init__(self, status: int, code: str, message: str, error_type: str = "CLIENT_DATA"):
        super().__init__(message)
        self.status, self.error = status, ApiError(code, message, error_type)


# --------------------------------------------------------------------------- keys and TLS for tests


def new_rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def self_signed_cert(key: rsa.RSAPrivateKey, cn: str, days: int = 365) -> x509.Certificate:
    now = _utcnow()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=days)).sign(key, hashes.SHA256()))


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


class TestPKI:
    """A throw-away CA with a server certificate for 127.0.0.1 and client certificates (CN = client id)."""

    __test__ = False  # not a pytest class

    def __init__(self, directory: Path | None = None):
        self.dir = Path(directory or tempfile.mkdtemp(prefix="digipost-pki-"))
        self.ca_key = new_rsa_key()
        now = _utcnow()
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Digipost simulator test CA")])
        self.ca_cert = (
            x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
            .public_key(self.ca_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(self.ca_key, hashes.SHA256()))
        self.ca_file = self.dir / "ca.pem"
        self.ca_file.write_bytes(cert_pem(self.ca_cert))
        self.server_cert_file, self.server_key_file = self._issue("127.0.0.1", server=True)

    def _issue(self, cn: str, *, server: bool) -> tuple[Path, Path]:
        key = new_rsa_key()
        now = _utcnow()
        builder = (
            x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(self.ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        )
        if server:
            import ipaddress

            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
        cert = builder.sign(self.ca_key, hashes.SHA256())
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", cn)
        cert_file, key_file = self.dir / f"{stem}.crt", self.dir / f"{stem}.key"
        cert_file.write_bytes(cert_pem(cert))
        key_file.write_bytes(key_pem(key))
        return cert_file, key_file

    def issue_client(self, client_id: str) -> tuple[Path, Path]:
        """(certificate file, key file) for a client whose CN is `client_id`."""
        return self._issue(client_id, server=False)

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.server_cert_file, self.server_key_file)
        ctx.load_verify_locations(cafile=str(self.ca_file))
        ctx.verify_mode = ssl.CERT_OPTIONAL  # the token endpoint insists on a certificate
        return ctx


# --------------------------------------------------------------------------- registry and state


@dataclass
class SimPerson:
    name: str
    fnr: str | None = None
    address_line: str | None = None
    postcode: str | None = None
    city: str | None = None
    phone: str | None = None
    email: str | None = None
    birth_date: dt.date | None = None
    mailbox: bool = True  # False → IDENTIFIED (known person, no Digipost account)
    digipost_address: str | None = None
    person_alias: str = field(default_factory=lambda: secrets.token_hex(8))


@dataclass
class SimOrganisation:
    orgnr: str
    name: str
    mailbox: bool = True
    digipost_address: str | None = None


@dataclass
class SimSender:
    sender_id: str
    public_key: rsa.RSAPublicKey | None = None
    print_approved: bool = True


@dataclass
class SimToken:
    token: str
    client_id: str
    broker_id: str
    expires: dt.datetime


@dataclass
class SimDocument:
    uuid: str
    message_id: str
    sender_id: str
    subject: str
    file_type: str
    content: bytes
    created: dt.datetime
    channel: str  # DIGIPOST | PRINT
    is_primary: bool
    invoice: schema.InvoiceData | None = None
    opened: bool = False
    postmark_due: dt.datetime | None = None
    print_if_unread_at: dt.datetime | None = None
    print_failed: bool = False


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int | None = None


def next_working_day(when: dt.datetime) -> dt.datetime:
    """Print runs once per working day: the next Monday–Friday after `when`, at 09:00 UTC."""
    day = when.date() + dt.timedelta(days=1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(9, 0), tzinfo=dt.timezone.utc)


# --------------------------------------------------------------------------- multipart (strict)


@dataclass
class Part:
    headers: dict[str, str]
    body: bytes

    @property
    def filename(self) -> str | None:
        disp = self.headers.get("content-disposition", "")
        m = re.search(r'filename\s*=\s*"([^"]*)"|filename\s*=\s*([^;\s]+)', disp)
        return (m.group(1) if m.group(1) is not None else m.group(2)) if m else None


def parse_multipart(content_type: str, body: bytes) -> list[Part]:
    m = re.search(r'boundary\s*=\s*"([^"]+)"|boundary\s*=\s*([^;\s]+)', content_type)
    if not m:
        raise SimError(400, "PROBLEM_WITH_REQUEST", "multipart Content-Type without boundary", "CLIENT_TECHNICAL")
    boundary = (m.group(1) or m.group(2)).encode("ascii")
    delim = b"--" + boundary
    if not body.startswith(delim):
        raise SimError(400, "PROBLEM_WITH_REQUEST", "multipart body does not start with the boundary",
                       "CLIENT_TECHNICAL")
    chunks = body.split(b"\r\n" + delim)
    first = chunks[0][len(delim):]
    chunks = [first] + chunks[1:]
    if not chunks[-1].startswith(b"--"):
        raise SimError(400, "PROBLEM_WITH_REQUEST", "multipart body lacks the closing boundary", "CLIENT_TECHNICAL")
    parts = []
    for chunk in chunks[:-1]:
        if not chunk.startswith(b"\r\n"):
            raise SimError(400, "PROBLEM_WITH_REQUEST", "malformed multipart delimiter line", "CLIENT_TECHNICAL")
        head, sep, content = chunk[2:].partition(b"\r\n\r\n")
        if not sep:
            raise SimError(400, "PROBLEM_WITH_REQUEST", "multipart part without header/body separator",
                           "CLIENT_TECHNICAL")
        headers = {}
        for line in head.split(b"\r\n"):
            if not line:
                continue
            name, colon, value = line.decode("latin-1").partition(":")
            if not colon:
                raise SimError(400, "PROBLEM_WITH_REQUEST", f"bad part header {line!r}", "CLIENT_TECHNICAL")
            headers[name.strip().lower()] = value.strip()
        parts.append(Part(headers, content))
    return parts


# --------------------------------------------------------------------------- XML validation


def _children(el: etree._Element) -> list[etree._Element]:
    return [c for c in el if isinstance(c.tag, str)]


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname


def check_sequence(el: etree._Element, spec: list[tuple[tuple[str, ...], int, int]], where: str) -> None:
    """Children of `el` must follow `spec`: groups of names (a choice) with min/max occurrences, in order."""
    kids = _children(el)
    for kid in kids:
        if etree.QName(kid).namespace != schema.NS:
            raise SimError(400, "SCHEMA_VALIDATION_ERROR", f"{where}: element {kid.tag} is not in the v8 namespace")
    i = 0
    for names, lo, hi in spec:
        count = 0
        while i < len(kids) and _local(kids[i]) in names:
            count += 1
            i += 1
        if count < lo:
            raise SimError(400, "SCHEMA_VALIDATION_ERROR", f"{where}: expected {'|'.join(names)}")
        if count > hi:
            raise SimError(400, "SCHEMA_VALIDATION_ERROR", f"{where}: too many {'|'.join(names)}")
    if i < len(kids):
        raise SimError(400, "SCHEMA_VALIDATION_ERROR", f"{where}: unexpected element {_local(kids[i])!r}")


def _max_len(el: etree._Element | None, limit: int, where: str, code: str = "SCHEMA_VALIDATION_ERROR") -> None:
    if el is not None and len(el.text or "") > limit:
        raise SimError(400, code, f"{where} longer than {limit} characters")


RECIPIENT_CHOICE = ("personal-identification-number", "organisation-number", "digipost-address",
                    "email-details", "peppol-addresses", "name-and-address", "bank-account-number")
DOCUMENT_SPEC = [
    (("uuid",), 0, 1), (("subject",), 0, 1), (("file-type",), 1, 1), (("opening-receipt", "opened"), 0, 1),
    (("sms-notification",), 0, 1), (("email-notification",), 0, 1), (("authentication-level",), 0, 1),
    (("sensitivity-level",), 0, 1), (("encrypted",), 0, 1), (("content-hash",), 0, 1), (("link",), 0, 10**6),
    (("data-type",), 0, 1),
]
MESSAGE_SPEC = [
    (("message-id",), 0, 1), (("sender-id", "sender-organization"), 0, 1), (("recipient",), 1, 1),
    (("delivery-time",), 0, 1), (("invoice-reference",), 0, 1), (("primary-document",), 1, 1),
    (("attachment",), 0, 201), (("print-if-unread",), 0, 1), (("batch",), 0, 1),
]
NAME_AND_ADDRESS_SPEC = [
    (("fullname",), 1, 1), (("addressline1",), 1, 1), (("addressline2",), 0, 1), (("postalcode",), 1, 1),
    (("city",), 1, 1), (("birth-date",), 0, 1), (("phone-number",), 0, 1), (("email-address",), 0, 1),
]
PRINT_DETAILS_SPEC = [
    (("recipient",), 1, 1), (("return-address",), 1, 1), (("color",), 0, 1),
    (("nondeliverable-handling",), 0, 1), (("print-instructions",), 0, 1),
]


def validate_print_recipient(el: etree._Element, where: str, code: str) -> None:
    check_sequence(el, [(("name",), 1, 1), (("norwegian-address", "foreign-address"), 1, 1)], where)
    _max_len(el.find(q("name")), 130, f"{where}/name", code)
    if not (el.findtext(q("name")) or "").strip():
        raise SimError(400, code, f"{where}: name is blank")
    no = el.find(q("norwegian-address"))
    if no is not None:
        check_sequence(no, [(("addressline1",), 0, 1), (("addressline2",), 0, 1), (("addressline3",), 0, 1),
                            (("zip-code",), 1, 1), (("city",), 1, 1)], f"{where}/norwegian-address")
        for i in (1, 2, 3):
            _max_len(no.find(q(f"addressline{i}")), 100, f"{where}/addressline{i}", code)
        zip_code = (no.findtext(q("zip-code")) or "").strip()
        if not re.fullmatch(r"\d{4}", zip_code):
            raise SimError(400, code, f"{where}: Norwegian postcode must be 4 digits, got {zip_code!r}")
        city = (no.findtext(q("city")) or "").strip()
        if not city or len(city) > 80:
            raise SimError(400, code, f"{where}: city must be 1..80 characters")
    else:
        fo = el.find(q("foreign-address"))
        check_sequence(fo, [(("addressline1",), 1, 1), (("addressline2",), 0, 1), (("addressline3",), 0, 1),
                            (("addressline4",), 0, 1), (("country", "country-code"), 1, 1)],
                       f"{where}/foreign-address")
        for i in (1, 2, 3, 4):
            _max_len(fo.find(q(f"addressline{i}")), 100, f"{where}/addressline{i}", code)


def validate_print_details(el: etree._Element, where: str) -> None:
    check_sequence(el, PRINT_DETAILS_SPEC, where)
    validate_print_recipient(el.find(q("recipient")), f"{where}/recipient", "INVALID_RECIPIENT_PRINT_ADDRESS")
    validate_print_recipient(el.find(q("return-address")), f"{where}/return-address", "INVALID_RETURN_ADDRESS")
    color = el.findtext(q("color"))
    if color is not None and color not in schema.PRINT_COLORS:
        raise SimError(400, "SCHEMA_VALIDATION_ERROR", f"{where}: color {color!r}")
    handling = el.findtext(q("nondeliverable-handling"))
    if handling is not None and handling not in schema.NONDELIVERABLE_HANDLING:
        raise SimError(400, "SCHEMA_VALIDATION_ERROR", f"{where}: nondeliverable-handling {handling!r}")


def validate_invoice(inv: etree._Element, now: dt.datetime, max_due_age: dt.timedelta) -> None:
    """The `invoice` data type with the field rules Norwegian payments need."""
    names = [(_local(c), etree.QName(c).namespace) for c in _children(inv)]
    order = ["link", "due-date", "sum", "creditor-account", "kid"]
    required = {"due-date", "sum", "creditor-account"}
    seen = []
    for name, ns in names:
        if ns != DT_NS or name not in order:
            raise SimError(400, "SCHEMA_VALIDATION_ERROR", f"invoice: unexpected element {name!r}")
        if seen and order.index(name) <= order.index(seen[-1]):
            raise SimError(400, "SCHEMA_VALIDATION_ERROR", f"invoice: element {name!r} out of order or repeated")
        seen.append(name)
    if not required <= set(seen):
        raise SimError(400, "SCHEMA_VALIDATION_ERROR", f"invoice: missing {sorted(required - set(seen))}")
    text = {name: (inv.findtext(q(name, DT_NS)) or "").strip() for name in seen}
    try:
        due = schema.parse_xml_datetime(text["due-date"])
    except ValueError:
        raise SimError(400, "VALIDATION_FAILED", f"invoice due-date {text['due-date']!r} is not a date-time")
    if due < now - max_due_age:
        raise SimError(400, "VALIDATION_FAILED", f"invoice due-date {text['due-date']} is too far in the past")
    try:
        amount = Decimal(text["sum"])
    except InvalidOperation:
        raise SimError(400, "INVALID_MONETARY_AMOUNT", f"invoice sum {text['sum']!r} is not a decimal")
    if not amount.is_finite() or amount <= 0 or amount.as_tuple().exponent < -2:
        raise SimError(400, "INVALID_MONETARY_AMOUNT", f"invoice sum {text['sum']} must be > 0 with ≤ 2 decimals")
    account = text["creditor-account"]
    if not re.fullmatch(r"\d{11}", account):
        raise SimError(400, "VALIDATION_FAILED", "invoice creditor-account must be exactly 11 digits")
    try:
        norwegian_ids.validate_kontonr(account)
    except norwegian_ids.NorwegianIdError:
        raise SimError(400, "VALIDATION_FAILED", f"invoice creditor-account {account} fails the MOD11 check")
    if "kid" in text:
        kid = text["kid"]
        if len(kid) > 25:
            raise SimError(400, "VALIDATION_FAILED", "invoice kid longer than 25 characters")
        try:
            kidmod.validate_kid(kid)
        except kidmod.KidError as exc:
            raise SimError(400, "VALIDATION_FAILED", f"invoice kid {kid!r}: {exc.message}")


def validate_document(el: etree._Element, where: str, now: dt.datetime, max_due_age: dt.timedelta) -> None:
    check_sequence(el, DOCUMENT_SPEC, where)
    uuid = (el.findtext(q("uuid")) or "").strip()
    if not UUID_RE.fullmatch(uuid):
        raise SimError(400, "SCHEMA_VALIDATION_ERROR", f"{where}: uuid {uuid!r} is not a lower-case UUID")
    subject = el.findtext(q("subject"))
    if subject is None or not subject.strip():
        raise SimError(400, "MISSING_SUBJECT", f"{where}: subject is blank")
    _max_len(el.find(q("subject")), 255, f"{where}/subject")
    if not (el.findtext(q("file-type")) or "").strip():
        raise SimError(400, "SCHEMA_VALIDATION_ERROR", f"{where}: file-type is blank")
    level = el.findtext(q("authentication-level"))
    if level is not None and level not in schema.AUTHENTICATION_LEVELS:
        raise SimError(400, "SCHEMA_VALIDATION_ERROR", f"{where}: authentication-level {level!r}")
    if level in ("IDPORTEN_3", "IDPORTEN_4"):
        raise SimError(403, "NOT_APPROVED_FOR_IDPORTEN", f"{where}: sender may not use {level}", "CONFIGURATION")
    sens = el.findtext(q("sensitivity-level"))
    if sens is not None and sens not in schema.SENSITIVITY_LEVELS:
        raise SimError(400, "SCHEMA_VALIDATION_ERROR", f"{where}: sensitivity-level {sens!r}")
    data_type = el.find(q("data-type"))
    if data_type is not None:
        kids = _children(data_type)
        if len(kids) != 1 or etree.QName(kids[0]).namespace != DT_NS:
            raise SimError(400, "SCHEMA_VALIDATION_ERROR", f"{where}: data-type needs one element in {DT_NS}")
        if _local(kids[0]) == "invoice":
            validate_invoice(kids[0], now, max_due_age)


def validate_message_xml(data: bytes, now: dt.datetime, max_due_age: dt.timedelta) -> schema.MessageSpec:
    try:
        root = schema.parse_xml(data)
    except SchemaError as exc:
        raise SimError(400, "SCHEMA_VALIDATION_ERROR", str(exc))
    if root.tag != q("message"):
        raise SimError(400, "SCHEMA_VALIDATION_ERROR", f"root element must be v8 message, got {root.tag}")
    check_sequence(root, MESSAGE_SPEC, "message")
    mid = root.find(q("message-id"))
    if mid is None or not (mid.text or "").strip():
        raise SimError(400, "SCHEMA_VALIDATION_ERROR", "message-id is required for idempotent sending")
    recipient = root.find(q("recipient"))
    check_sequence(recipient, [(RECIPIENT_CHOICE, 0, 1), (("print-details",), 0, 1)], "recipient")
    pin = recipient.find(q("personal-identification-number"))
    if pin is not None and len((pin.text or "").strip()) != 11:
        raise SimError(400, "SCHEMA_VALIDATION_ERROR", "personal-identification-number must be 11 characters")
    org = recipient.find(q("organisation-number"))
    if org is not None and len((org.text or "").strip()) != 9:
        raise SimError(400, "SCHEMA_VALIDATION_ERROR", "organisation-number must be 9 characters")
    na = recipient.find(q("name-and-address"))
    if na is not None:
        check_sequence(na, NAME_AND_ADDRESS_SPEC, "recipient/name-and-address")
    pd = recipient.find(q("print-details"))
    if pd is not None:
        validate_print_details(pd, "recipient/print-details")
    _max_len(root.find(q("invoice-reference")), 100, "invoice-reference")
    validate_document(root.find(q("primary-document")), "primary-document", now, max_due_age)
    for i, att in enumerate(root.findall(q("attachment")), start=1):
        validate_document(att, f"attachment[{i}]", now, max_due_age)
    piu = root.find(q("print-if-unread"))
    if piu is not None:
        check_sequence(piu, [(("print-if-unread-after",), 1, 1), (("print-details",), 1, 1)], "print-if-unread")
        try:
            after = schema.parse_xml_datetime(piu.findtext(q("print-if-unread-after")) or "")
        except ValueError:
            raise SimError(400, "SCHEMA_VALIDATION_ERROR", "print-if-unread-after is not a date-time")
        if after <= now:
            raise SimError(400, "VALIDATION_FAILED", "print-if-unread-after must be in the future")
        validate_print_details(piu.find(q("print-details")), "print-if-unread/print-details")
    try:
        return schema.parse_message(data)
    except (SchemaError, ValueError) as exc:
        raise SimError(400, "SCHEMA_VALIDATION_ERROR", str(exc))


def print_preflight(content: bytes, where: str) -> None:
    """Digipost print rules: PDF ≤ 1.7, no encryption, A4 portrait (or rotated) pages."""
    from pypdf import PdfReader

    if not content.startswith(b"%PDF-"):
        raise SimError(400, "CONTENT_OF_PRINT_MESSAGE_MUST_BE_PDF", f"{where}: print content must be PDF")
    header = content[5:8].decode("ascii", "replace")
    try:
        if tuple(int(x) for x in header.split(".")) > (1, 7):
            raise SimError(400, "INVALID_PDF_CONTENT", f"{where}: PDF {header} > 1.7 cannot be printed")
    except ValueError:
        raise SimError(400, "INVALID_PDF_CONTENT", f"{where}: bad PDF header")
    try:
        reader = PdfReader(io.BytesIO(content))
        if reader.is_encrypted:
            raise SimError(400, "INVALID_PDF_CONTENT", f"{where}: encrypted PDF cannot be printed")
        for n, page in enumerate(reader.pages, start=1):
            box = page.mediabox
            w, h = float(box.width), float(box.height)
            dims = sorted((w, h))
            if abs(dims[0] - A4_PT[0]) > A4_TOLERANCE or abs(dims[1] - A4_PT[1]) > A4_TOLERANCE:
                raise SimError(400, "INVALID_PDF_CONTENT", f"{where}: page {n} is {w:.0f}x{h:.0f} pt, not A4")
    except SimError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parse failure is bad content
        raise SimError(400, "INVALID_PDF_CONTENT", f"{where}: unreadable PDF ({exc})")


# --------------------------------------------------------------------------- the simulator


def _norm(text: str | None) -> str:
    return " ".join((text or "").casefold().split())


class DigipostSimulator:
    """Start with `await sim.start()` (or `async with`); `sim.base_url` is the API root."""

    def __init__(self, *, clock: Callable[[], dt.datetime] = _utcnow, tls: TestPKI | None = None,
                 token_path: str = "/oauth2/token", token_ttl: int = 3600,
                 max_due_date_age: dt.timedelta = dt.timedelta(days=365), prefix: str = "",
                 events: list[DocumentEvent] | None = None):
        self.clock = clock
        self.prefix = prefix.rstrip("/")  # mount the API under a path, e.g. "/api"
        self.pki = tls
        self.token_path, self.token_ttl = token_path, token_ttl
        self.max_due_date_age = max_due_date_age
        self.key = new_rsa_key()
        self.certificate = self_signed_cert(self.key, "Digipost simulator")
        self.persons: list[SimPerson] = []
        self.organisations: dict[str, SimOrganisation] = {}
        self.senders: dict[str, SimSender] = {}
        self.oauth_clients: dict[str, str] = {}  # client id → broker id
        self.tokens: dict[str, SimToken] = {}
        self.messages: dict[str, schema.MessageSpec] = {}
        self.documents: dict[str, SimDocument] = {}
        self.events: list[DocumentEvent] = list(events or [])  # seed: events served from the start
        self.requests: list[RecordedRequest] = []
        # fault injection
        self.delay = 0.0
        self.tamper: str | None = None  # "signature" | "body" | "unsigned" | "date"
        self.fail_next: list[tuple[int, ApiError]] = []
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> "DigipostSimulator":
        app = web.Application(middlewares=[self._middleware], client_max_size=50 * 1024 * 1024)
        p = self.prefix
        app.router.add_get(p + "/", self._entrypoint)
        app.router.add_post(p + "/identification", self._identification)
        app.router.add_post(p + "/messages", self._messages)
        app.router.add_get(p + "/documents/events", self._events)
        app.router.add_get(p + "/documents/{sender}/{uuid}/status", self._status)
        app.router.add_post(self.token_path, self._token)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.pki.server_context() if self.pki else None)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"{'https' if self.pki else 'http'}://127.0.0.1:{port}"
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "DigipostSimulator":
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # -- registry -----------------------------------------------------------------------

    @property
    def certificate_pem(self) -> str:
        return cert_pem(self.certificate).decode("ascii")

    def register_sender(self, sender_id: str, public_key: rsa.RSAPublicKey | None = None, *,
                        print_approved: bool = True) -> SimSender:
        sender = SimSender(str(sender_id), public_key, print_approved)
        self.senders[sender.sender_id] = sender
        return sender

    def register_oauth_client(self, client_id: str, broker_id: str) -> None:
        self.oauth_clients[client_id] = str(broker_id)

    def add_person(self, name: str, *, fnr: str | None = None, address_line: str | None = None,
                   postcode: str | None = None, city: str | None = None, phone: str | None = None,
                   email: str | None = None, birth_date: dt.date | None = None, mailbox: bool = True,
                   digipost_address: str | None = None) -> SimPerson:
        if mailbox and digipost_address is None:
            digipost_address = f"{'.'.join(name.lower().split())}#{secrets.token_hex(2).upper()}"
        person = SimPerson(name, fnr, address_line, postcode, city, phone, email, birth_date, mailbox,
                           digipost_address if mailbox else None)
        self.persons.append(person)
        return person

    def add_organisation(self, orgnr: str, name: str, *, mailbox: bool = True) -> SimOrganisation:
        org = SimOrganisation(orgnr, name, mailbox, f"{name.lower().replace(' ', '.')}#{orgnr}" if mailbox else None)
        self.organisations[orgnr] = org
        return org

    # -- test controls: events ----------------------------------------------------------

    def emit_event(self, uuid: str, type_: str, *, at: dt.datetime | None = None,
                   metadata_type: str | None = None, metadata: dict[str, str] | None = None) -> DocumentEvent:
        if type_ not in schema.EVENT_TYPES:
            raise ValueError(f"unknown event type {type_}")
        doc = self.documents.get(uuid)
        created = at or self.clock()
        ev = DocumentEvent(uuid, type_, created, doc.created if doc else created, metadata_type, metadata or {})
        self.events.append(ev)
        return ev

    def open_document(self, uuid: str, *, at: dt.datetime | None = None) -> DocumentEvent:
        """The recipient opens a delivered document in the mailbox (OPENED)."""
        doc = self.documents[uuid]
        if doc.channel != "DIGIPOST":
            raise ValueError("only mailbox deliveries can be opened")
        doc.opened = True
        doc.print_if_unread_at = None
        return self.emit_event(uuid, "OPENED", at=at)

    def fail_print(self, uuid: str, error_code: str = "PRINT_REJECTED", *, at: dt.datetime | None = None) -> DocumentEvent:
        doc = self.documents[uuid]
        if doc.channel != "PRINT":
            raise ValueError("document is not in print")
        doc.print_failed, doc.postmark_due = True, None
        return self.emit_event(uuid, "PRINT_FAILED", at=at, metadata_type="failed-print-metadata",
                               metadata={"error-code": error_code})

    def advance(self) -> None:
        """Run the timers due at the simulator's clock: print-if-unread → print, print → POSTMARKED."""
        now = self.clock()
        for doc in list(self.documents.values()):
            if doc.print_if_unread_at and not doc.opened and doc.print_if_unread_at <= now:
                doc.channel, doc.print_if_unread_at = "PRINT", None
                doc.postmark_due = next_working_day(now)
            if doc.channel == "PRINT" and doc.postmark_due and not doc.print_failed and doc.postmark_due <= now:
                when = doc.postmark_due
                doc.postmark_due = None
                self.emit_event(doc.uuid, "POSTMARKED", at=when, metadata_type="postmarked-metadata",
                                metadata={"postmarked-date": schema.xml_datetime(when)})

    # -- HTTP plumbing ------------------------------------------------------------------

    def _sign(self, response: web.Response, path: str) -> web.Response:
        body = response.body if isinstance(response.body, bytes) else b""
        response.headers["Date"] = signing.http_date(self.clock() - (dt.timedelta(minutes=10) if self.tamper == "date"
                                                                     else dt.timedelta()))
        if body:
            response.headers[signing.H_CONTENT_SHA256] = signing.content_sha256(body)
        canonical = signing.canonical_response(response.status, path, dict(response.headers))
        signature = signing.sign(self.key, canonical)
        if self.tamper == "signature":
            raw = bytearray(base64.b64decode(signature))
            raw[10] ^= 0xFF
            signature = base64.b64encode(bytes(raw)).decode("ascii")
        if self.tamper != "unsigned":
            response.headers[signing.H_SIGNATURE] = signature
        if self.tamper == "body" and body:
            response.body = body.replace(b"DELIVERED", b"DELIVERED_TO_PRINT", 1) if b"DELIVERED" in body else body + b" "
        return response

    def _xml(self, status: int, body: bytes) -> web.Response:
        return web.Response(status=status, body=body, content_type=schema.MEDIA_TYPE)

    def _error(self, exc: SimError) -> web.Response:
        resp = self._xml(exc.status, schema.build_error(exc.error))
        if exc.status == 401:
            resp.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return resp

    @web.middleware
    async def _middleware(self, request: web.Request, handler):
        body = await request.read()
        path = request.path
        record = RecordedRequest(request.method, path, dict(request.headers), body)
        self.requests.append(record)
        if self.delay:
            await asyncio.sleep(self.delay)
        if path == self.prefix + "/" or path == self.token_path:
            resp = await handler(request)
            record.status = resp.status
            return resp
        try:
            self._authenticate(request, body)
            if self.fail_next:
                status, err = self.fail_next.pop(0)
                raise SimError(status, err.code, err.message, err.type)
            resp = await handler(request)
        except SimError as exc:
            resp = self._error(exc)
        except web.HTTPException as exc:
            resp = self._error(SimError(exc.status, "GENERAL_ERROR", exc.reason, "CLIENT_TECHNICAL"))
        record.status = resp.status
        return self._sign(resp, path)

    def _authenticate(self, request: web.Request, body: bytes) -> None:
        headers = request.headers
        user_id = headers.get(signing.H_USER_ID)
        if not user_id:
            raise SimError(400, "INVALID_USER_ID_HEADER", "X-Digipost-UserId header is missing", "CLIENT_TECHNICAL")
        sender = self.senders.get(user_id)
        if sender is None:
            raise SimError(403, "UNKNOWN_USER_ID", f"no sender with id {user_id}", "CLIENT_TECHNICAL")
        date = headers.get("Date")
        if not date:
            raise SimError(400, "MISSING_DATE_HEADER", "Date header is missing", "CLIENT_TECHNICAL")
        try:
            when = signing.parse_http_date(date)
        except ValueError:
            raise SimError(400, "INVALID_DATE_HEADER", f"Date {date!r} is not RFC 1123", "CLIENT_TECHNICAL")
        if abs(when - self.clock()) > signing.DATE_WINDOW:
            raise SimError(400, "DATE_HEADER_OUTSIDE_ACCEPTED_INTERVAL",
                           f"Date {date} is more than 5 minutes from server time", "CLIENT_TECHNICAL")
        if body:
            declared = headers.get(signing.H_CONTENT_SHA256)
            if not declared:
                raise SimError(400, "MISSING_SHA256", "X-Content-SHA256 header is missing", "CLIENT_TECHNICAL")
            if declared != signing.content_sha256(body):
                raise SimError(400, "INVALID_SHA256", "X-Content-SHA256 does not match the body", "CLIENT_TECHNICAL")
        auth = headers.get("Authorization", "")
        if auth:
            scheme, _, token = auth.partition(" ")
            tok = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
            if tok is None or tok.expires <= self.clock():
                raise SimError(401, "ILLEGAL_ACCESS", "bearer token is invalid or expired", "CLIENT_TECHNICAL")
            if tok.broker_id != user_id:
                raise SimError(403, "BROKER_NOT_AUTHORIZED", "token was not issued for this X-Digipost-UserId",
                               "CONFIGURATION")
            return
        signature = headers.get(signing.H_SIGNATURE)
        if not signature:
            raise SimError(403, "MISSING_SIGNATURE", "X-Digipost-Signature header is missing", "CLIENT_TECHNICAL")
        if sender.public_key is None:
            raise SimError(403, "MISSING_CERTIFICATE", f"no certificate registered for sender {user_id}",
                           "CONFIGURATION")
        raw_path, _, raw_query = request.raw_path.partition("?")
        canonical = signing.canonical_request(request.method, raw_path, dict(headers), raw_query)
        if not signing.verify(sender.public_key, canonical, signature):
            raise SimError(403, "INVALID_SIGNATURE",
                           f"The signature could not be verified. ===START===\n{canonical}===SLUTT===",
                           "CLIENT_TECHNICAL")

    # -- endpoints ----------------------------------------------------------------------

    async def _entrypoint(self, request: web.Request) -> web.Response:
        root = self.base_url + self.prefix
        links = {"create_message": f"{root}/messages", "identify_recipient": f"{root}/identification",
                 "document_events": f"{root}/documents/events"}
        return self._xml(200, schema.build_entrypoint(EntryPoint(self.certificate_pem, links), self.base_url))

    async def _token(self, request: web.Request) -> web.Response:
        def fail(status: int, error: str, description: str) -> web.Response:
            return web.json_response({"error": error, "error_description": description}, status=status)

        peer = request.transport.get_extra_info("peercert") if request.transport else None
        if not peer:
            return fail(401, "invalid_client", "a client certificate (mutual TLS) is required")
        cn = next((v for rdn in peer.get("subject", ()) for k, v in rdn if k == "commonName"), None)
        form = await request.post()
        if form.get("grant_type") != "client_credentials":
            return fail(400, "unsupported_grant_type", "only client_credentials is supported")
        client_id = form.get("client_id")
        if client_id not in self.oauth_clients or client_id != cn:
            return fail(401, "invalid_client", "unknown client or certificate does not match client_id")
        broker = self.oauth_clients[client_id]
        if form.get("scope") != f"dpost-api:{broker}":
            return fail(400, "invalid_scope", f"scope must be dpost-api:{broker}")
        if not form.get("resource"):
            return fail(400, "invalid_target", "resource is required")
        token = secrets.token_urlsafe(32)
        self.tokens[token] = SimToken(token, client_id, broker, self.clock() + dt.timedelta(seconds=self.token_ttl))
        return web.json_response({"access_token": token, "token_type": "Bearer", "expires_in": self.token_ttl})

    def revoke_tokens(self) -> None:
        self.tokens.clear()

    def _require_media_type(self, request: web.Request) -> None:
        if request.headers.get("Content-Type", "").split(";")[0].strip() != schema.MEDIA_TYPE:
            raise SimError(415, "ILLEGAL_CONTENT_TYPE", f"Content-Type must be {schema.MEDIA_TYPE}")

    def identify(self, rid: schema.RecipientId) -> IdentificationResult:
        """Registry lookup with Digipost's result codes."""
        if rid.kind == "personal-identification-number":
            try:
                norwegian_ids.validate_fodselsnummer(str(rid.value))
            except norwegian_ids.NorwegianIdError:
                return IdentificationResult("INVALID", reason="INVALID_PERSONAL_IDENTIFICATION_NUMBER")
            matches = [p for p in self.persons if p.fnr == rid.value]
        elif rid.kind == "organisation-number":
            try:
                norwegian_ids.validate_orgnr(str(rid.value))
            except norwegian_ids.NorwegianIdError:
                return IdentificationResult("INVALID", reason="INVALID_ORGANISATION_NUMBER")
            org = self.organisations.get(str(rid.value))
            if org is None:
                return IdentificationResult("UNIDENTIFIED", reason="NOT_FOUND")
            if org.mailbox:
                return IdentificationResult("DIGIPOST", digipost_address=org.digipost_address)
            return IdentificationResult("IDENTIFIED", person_alias=f"org-{org.orgnr}")
        elif rid.kind == "digipost-address":
            matches = [p for p in self.persons if p.digipost_address == rid.value]
        elif rid.kind == "name-and-address":
            na = rid.value
            assert isinstance(na, schema.NameAndAddress)
            matches = [p for p in self.persons if _norm(p.name) == _norm(na.fullname)
                       and (p.postcode or "") == na.postalcode.strip()
                       and _norm(p.address_line) == _norm(na.addressline1)]
            for attr, wanted in (("phone", na.phone_number), ("email", na.email_address),
                                 ("birth_date", na.birth_date)):
                if wanted and len(matches) > 1:
                    narrowed = [p for p in matches if getattr(p, attr) == wanted]
                    matches = narrowed or matches
        else:
            return IdentificationResult("INVALID", reason="UNKNOWN")
        if not matches:
            return IdentificationResult("UNIDENTIFIED", reason="NOT_FOUND")
        if len(matches) > 1:
            return IdentificationResult("UNIDENTIFIED", reason="MULTIPLE_MATCHES")
        person = matches[0]
        if person.mailbox:
            return IdentificationResult("DIGIPOST", digipost_address=person.digipost_address)
        return IdentificationResult("IDENTIFIED", person_alias=person.person_alias)

    async def _identification(self, request: web.Request) -> web.Response:
        self._require_media_type(request)
        try:
            rid = schema.parse_identification(await request.read())
        except (SchemaError, ValueError) as exc:
            raise SimError(400, "SCHEMA_VALIDATION_ERROR", str(exc))
        return self._xml(200, schema.build_identification_result(self.identify(rid)))

    async def _messages(self, request: web.Request) -> web.Response:
        content_type = request.headers.get("Content-Type", "")
        if content_type.split(";")[0].strip().lower() != schema.MULTIPART_MEDIA_TYPE:
            raise SimError(415, "ILLEGAL_CONTENT_TYPE", f"Content-Type must be {schema.MULTIPART_MEDIA_TYPE}")
        parts = parse_multipart(content_type, await request.read())
        if not parts:
            raise SimError(400, "MISSING_CONTENT", "multipart body has no parts")
        head, files = parts[0], parts[1:]
        if head.headers.get("content-type", "").split(";")[0].strip() != schema.MEDIA_TYPE:
            raise SimError(415, "ILLEGAL_CONTENT_TYPE", f"first part must be {schema.MEDIA_TYPE}")
        if "attachment" not in head.headers.get("content-disposition", "") or head.filename != "message":
            raise SimError(400, "MISSING_BODYPART_CONTENT_DISPOSITION",
                           'first part needs Content-Disposition: attachment; filename="message"', "CLIENT_TECHNICAL")
        now = self.clock()
        msg = validate_message_xml(head.body, now, self.max_due_date_age)
        sender_id = request.headers[signing.H_USER_ID]
        content: dict[str, Part] = {}
        for part in files:
            if not part.headers.get("content-disposition"):
                raise SimError(400, "MISSING_BODYPART_CONTENT_DISPOSITION", "document part lacks Content-Disposition",
                               "CLIENT_TECHNICAL")
            if not part.filename:
                raise SimError(400, "MISSING_BODYPART_FILENAME", "document part lacks a filename", "CLIENT_TECHNICAL")
            if part.filename in content:
                raise SimError(400, "DOCUMENTS_AND_FILES_MISMATCH", f"two parts named {part.filename}",
                               "CLIENT_TECHNICAL")
            content[part.filename] = part
        uuids = [d.uuid for d in msg.documents]
        if len(set(uuids)) != len(uuids) or set(uuids) != set(content):
            raise SimError(400, "DOCUMENTS_AND_FILES_MISMATCH",
                           f"documents {sorted(uuids)} do not match parts {sorted(content)}", "CLIENT_TECHNICAL")
        for doc in msg.documents:
            if doc.file_type.lower() == "pdf" and not content[doc.uuid].body.startswith(b"%PDF-"):
                raise SimError(400, "INVALID_PDF_CONTENT", f"document {doc.uuid} is not a PDF")
            if not content[doc.uuid].body:
                raise SimError(400, "MISSING_CONTENT", f"document {doc.uuid} is empty")
        if msg.message_id in self.messages:
            raise SimError(409, "DUPLICATE_MESSAGE", f"message-id {msg.message_id} was already used")
        for u in uuids:
            if u in self.documents:
                raise SimError(409, "DUPLICATE_DOCUMENT_ID", f"document uuid {u} was already used")

        channel = self._route(msg, sender_id)
        if channel == "PRINT":
            for doc in msg.documents:
                print_preflight(content[doc.uuid].body, f"document {doc.uuid}")
        if msg.print_if_unread_details is not None:
            if not self.senders[sender_id].print_approved:
                raise SimError(403, "NOT_APPROVED_FOR_PRINT", "sender is not approved for print", "CONFIGURATION")
            for doc in msg.documents:
                print_preflight(content[doc.uuid].body, f"document {doc.uuid} (print-if-unread)")

        self.messages[msg.message_id] = msg
        for i, doc in enumerate(msg.documents):
            self.documents[doc.uuid] = SimDocument(
                uuid=doc.uuid, message_id=msg.message_id, sender_id=sender_id, subject=doc.subject,
                file_type=doc.file_type, content=content[doc.uuid].body, created=now, channel=channel,
                is_primary=i == 0, invoice=doc.invoice,
                postmark_due=next_working_day(now) if channel == "PRINT" else None,
                print_if_unread_at=msg.print_if_unread_after if channel == "DIGIPOST" else None,
            )
        primary_hash = base64.b64encode(hashlib.sha256(content[msg.primary.uuid].body).digest()).decode()
        delivery = MessageDelivery(
            delivery_method=channel, status="DELIVERED" if channel == "DIGIPOST" else "DELIVERED_TO_PRINT",
            sender_id=msg.sender_id or sender_id, message_id=msg.message_id, delivery_time=now,
            primary_uuid=msg.primary.uuid, content_hash=primary_hash,
        )
        return self._xml(201, schema.build_message_delivery(delivery, msg.primary))

    def _route(self, msg: schema.MessageSpec, sender_id: str) -> str:
        """DIGIPOST when the recipient has a mailbox; PRINT via print-details; else 404."""
        if msg.recipient is not None:
            res = self.identify(msg.recipient)
            if res.result == "DIGIPOST":
                return "DIGIPOST"
            if res.result == "INVALID" and msg.print_details is None:
                raise SimError(400, "UNKNOWN_RECIPIENT", f"invalid recipient {msg.recipient.describe()}")
        if msg.print_details is None:
            if msg.recipient is None:
                raise SimError(400, "MISSING_RECIPIENT", "recipient has neither identification nor print-details")
            raise SimError(404, "UNKNOWN_RECIPIENT", f"{msg.recipient.describe()} is not a Digipost user")
        if not self.senders[sender_id].print_approved:
            raise SimError(403, "NOT_APPROVED_FOR_PRINT", "sender is not approved for print", "CONFIGURATION")
        return "PRINT"

    async def _events(self, request: web.Request) -> web.Response:
        raw_query = request.raw_path.partition("?")[2]
        params = {k: v[-1] for k, v in parse_qs(raw_query, keep_blank_values=True).items()}
        try:
            start = schema.parse_xml_datetime(params["from"])
            end = schema.parse_xml_datetime(params["to"])
            offset = int(params.get("offset", "0"))
            max_results = int(params.get("maxResults", "100"))
        except (KeyError, ValueError) as exc:
            raise SimError(400, "INVALID_QUERY_PARAMETER", f"from/to/offset/maxResults: {exc}", "CLIENT_TECHNICAL")
        if end <= start:
            raise SimError(400, "INVALID_DATE_RANGE", "to must be after from", "CLIENT_TECHNICAL")
        if not 1 <= max_results <= 1000 or offset < 0:
            raise SimError(400, "INVALID_QUERY_PARAMETER", "maxResults 1..1000, offset ≥ 0", "CLIENT_TECHNICAL")
        self.advance()
        sender_id = request.headers[signing.H_USER_ID]
        mine = [e for e in self.events if start <= e.created < end
                and (e.uuid not in self.documents or self.documents[e.uuid].sender_id == sender_id)]
        mine.sort(key=lambda e: e.created)
        return self._xml(200, schema.build_document_events(mine[offset:offset + max_results]))

    async def _status(self, request: web.Request) -> web.Response:
        doc = self.documents.get(request.match_info["uuid"])
        if doc is None or doc.sender_id != request.match_info["sender"]:
            raise SimError(404, "DOCUMENT_NOT_FOUND", "no such document", "CLIENT_TECHNICAL")
        root = etree.Element(q("document-status"), nsmap={None: schema.NS})
        root.set("uuid", doc.uuid)
        root.set("status", "DELIVERED")
        root.set("created", schema.xml_datetime(doc.created))
        root.set("channel", doc.channel)
        root.set("is-primary-document", "true" if doc.is_primary else "false")
        return self._xml(200, etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def new_uuid() -> str:
    return str(uuidlib.uuid4())
