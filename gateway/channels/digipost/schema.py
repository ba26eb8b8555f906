"""Digipost API v8 XML: the values we exchange and their (de)serialisation.

Element names, order and namespaces follow `api_v8.xsd` (namespace `http://api.digipost.no/schema/v8`)
and, for the invoice data type, `digipost-data-types` (`http://api.digipost.no/schema/datatypes`,
element `invoice` with `link?`, `due-date`, `sum`, `creditor-account`, `kid?`). Builders are pure
and deterministic so a rendered message can be stored as evidence and resent byte-identically.
Parsing never resolves entities, loads DTDs or touches the network.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from lxml import etree

NS = "http://api.digipost.no/schema/v8"
DT_NS = "http://api.digipost.no/schema/datatypes"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
MEDIA_TYPE = "application/vnd.digipost-v8+xml"
MULTIPART_MEDIA_TYPE = "multipart/vnd.digipost-v8+xml"

RecipientKind = Literal[
    "personal-identification-number",
    "organisation-number",
    "digipost-address",
    "name-and-address",
    "bank-account-number",
]
RECIPIENT_KINDS: tuple[str, ...] = (
    "personal-identification-number",
    "organisation-number",
    "digipost-address",
    "name-and-address",
    "bank-account-number",
)
IDENTIFICATION_RESULTS = ("DIGIPOST", "IDENTIFIED", "UNIDENTIFIED", "INVALID")
UNIDENTIFIED_REASONS = ("MULTIPLE_MATCHES", "NOT_FOUND")
INVALID_REASONS = ("INVALID_PERSONAL_IDENTIFICATION_NUMBER", "INVALID_ORGANISATION_NUMBER", "UNKNOWN")
AUTHENTICATION_LEVELS = ("PASSWORD", "TWO_FACTOR", "IDPORTEN_3", "IDPORTEN_4")
SENSITIVITY_LEVELS = ("NORMAL", "SENSITIVE")
PRINT_COLORS = ("MONOCHROME", "COLORS")
NONDELIVERABLE_HANDLING = ("RETURN_TO_SENDER", "SHRED")
CHANNELS = ("PRINT", "DIGIPOST", "PEPPOL", "EPOST")
MESSAGE_STATUSES = ("NOT_COMPLETE", "COMPLETE", "DELIVERED", "DELIVERED_TO_PRINT")
EVENT_TYPES = (
    "EMAIL_NOTIFICATION_FAILED", "EMAIL_MESSAGE_SENT", "EMAIL_MESSAGE_FAILED", "SMS_NOTIFICATION_FAILED",
    "OPENED", "MOVE_FILES_FROM_PUBLIC_SECTOR", "POSTMARKED", "PRINT_FAILED", "SHREDDED",
    "PEPPOL_DELIVERED", "PEPPOL_FAILED",
)

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                          huge_tree=False, remove_blank_text=True)


class SchemaError(ValueError):
    """Malformed Digipost XML (the caller decides whose fault that is)."""


def q(name: str, ns: str = NS) -> str:
    return f"{{{ns}}}{name}"


def parse_xml(data: bytes) -> etree._Element:
    if b"<!DOCTYPE" in data[:2048].upper():
        raise SchemaError("DOCTYPE is not allowed")
    try:
        return etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise SchemaError(f"not well-formed XML: {exc}") from exc


def _serialize(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)


def _sub(parent: etree._Element, name: str, text: str | None = None, ns: str = NS) -> etree._Element:
    el = etree.SubElement(parent, q(name, ns))
    if text is not None:
        el.text = text
    return el


def _text(el: etree._Element | None, name: str, ns: str = NS) -> str | None:
    if el is None:
        return None
    child = el.find(q(name, ns))
    return child.text.strip() if child is not None and child.text is not None else None


def xml_datetime(value: dt.datetime) -> str:
    """xsd:dateTime with offset, millisecond precision dropped (as JAXB prints whole seconds)."""
    if value.tzinfo is None:
        raise ValueError("xsd:dateTime values must carry a UTC offset")
    return value.replace(microsecond=0).isoformat()


def parse_xml_datetime(value: str) -> dt.datetime:
    """ISO date-time; a missing offset means UTC (as `ZonedDateTimeXmlAdapter` reads it)."""
    text = value.strip()
    if "T" not in text:
        raise ValueError(f"not a date-time: {value!r}")
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class NameAndAddress:
    fullname: str
    addressline1: str
    postalcode: str
    city: str
    addressline2: str | None = None
    birth_date: dt.date | None = None
    phone_number: str | None = None
    email_address: str | None = None


@dataclass(frozen=True)
class RecipientId:
    """One of the identification choices of `identification` / `message-recipient`."""

    kind: RecipientKind
    value: str | NameAndAddress

    def describe(self) -> str:
        if isinstance(self.value, NameAndAddress):
            return f"name-and-address:{self.value.fullname}/{self.value.postalcode}"
        return f"{self.kind}:{self.value}"


@dataclass(frozen=True)
class PrintRecipient:
    """`print-recipient`: name + Norwegian address (lines ≤ 3) or foreign address (lines ≤ 4 + country)."""

    name: str
    lines: tuple[str, ...]
    zip_code: str | None = None
    city: str | None = None
    country_code: str | None = None  # None or "NO" → norwegian-address

    @property
    def is_norwegian(self) -> bool:
        return self.country_code in (None, "", "NO")


@dataclass(frozen=True)
class PrintDetails:
    recipient: PrintRecipient
    return_address: PrintRecipient
    color: str = "MONOCHROME"
    nondeliverable_handling: str = "RETURN_TO_SENDER"


@dataclass(frozen=True)
class InvoiceData:
    """The `invoice` data type: what the mailbox shows on the payment button."""

    due_date: dt.datetime
    sum: Decimal
    creditor_account: str
    kid: str | None = None


@dataclass(frozen=True)
class DocumentSpec:
    uuid: str
    subject: str
    file_type: str = "pdf"
    authentication_level: str = "PASSWORD"
    sensitivity_level: str = "NORMAL"
    opening_receipt: str | None = None
    invoice: InvoiceData | None = None


@dataclass(frozen=True)
class MessageSpec:
    message_id: str
    recipient: RecipientId | None  # None → print-only (needs print_details)
    primary: DocumentSpec
    attachments: tuple[DocumentSpec, ...] = ()
    print_details: PrintDetails | None = None
    sender_id: str | None = None
    invoice_reference: str | None = None
    print_if_unread_after: dt.datetime | None = None
    print_if_unread_details: PrintDetails | None = None

    @property
    def documents(self) -> tuple[DocumentSpec, ...]:
        return (self.primary, *self.attachments)


@dataclass(frozen=True)
class IdentificationResult:
    result: str  # DIGIPOST | IDENTIFIED | UNIDENTIFIED | INVALID
    digipost_address: str | None = None
    person_alias: str | None = None
    reason: str | None = None  # unidentified-reason or invalid-reason


@dataclass(frozen=True)
class MessageDelivery:
    delivery_method: str
    status: str
    sender_id: str | None = None
    message_id: str | None = None
    delivery_time: dt.datetime | None = None
    primary_uuid: str | None = None
    content_hash: str | None = None


@dataclass(frozen=True)
class DocumentEvent:
    uuid: str
    type: str
    created: dt.datetime
    document_created: dt.datetime
    metadata_type: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ApiError:
    code: str
    message: str
    type: str = "CLIENT_DATA"


@dataclass(frozen=True)
class EntryPoint:
    certificate: str | None
    links: dict[str, str]  # relation name (last rel path segment, lower-case) → uri


# --------------------------------------------------------------------------- identification


def _recipient_choice(parent: etree._Element, rid: RecipientId) -> None:
    if rid.kind == "name-and-address":
        na = rid.value
        assert isinstance(na, NameAndAddress)
        el = _sub(parent, "name-and-address")
        _sub(el, "fullname", na.fullname)
        _sub(el, "addressline1", na.addressline1)
        if na.addressline2:
            _sub(el, "addressline2", na.addressline2)
        _sub(el, "postalcode", na.postalcode)
        _sub(el, "city", na.city)
        if na.birth_date:
            _sub(el, "birth-date", na.birth_date.isoformat())
        if na.phone_number:
            _sub(el, "phone-number", na.phone_number)
        if na.email_address:
            _sub(el, "email-address", na.email_address)
    else:
        _sub(parent, rid.kind, str(rid.value))


def _parse_recipient_choice(el: etree._Element) -> RecipientId:
    name = etree.QName(el).localname
    if name == "name-and-address":
        birth = _text(el, "birth-date")
        return RecipientId("name-and-address", NameAndAddress(
            fullname=_text(el, "fullname") or "",
            addressline1=_text(el, "addressline1") or "",
            addressline2=_text(el, "addressline2"),
            postalcode=_text(el, "postalcode") or "",
            city=_text(el, "city") or "",
            birth_date=dt.date.fromisoformat(birth) if birth else None,
            phone_number=_text(el, "phone-number"),
            email_address=_text(el, "email-address"),
        ))
    if name not in RECIPIENT_KINDS:
        raise SchemaError(f"unknown recipient identification {name!r}")
    return RecipientId(name, (el.text or "").strip())  # type: ignore[arg-type]


def build_identification(rid: RecipientId) -> bytes:
    root = etree.Element(q("identification"), nsmap={None: NS})
    _recipient_choice(root, rid)
    return _serialize(root)


def parse_identification(data: bytes) -> RecipientId:
    root = parse_xml(data)
    if root.tag != q("identification"):
        raise SchemaError(f"expected identification, got {root.tag}")
    children = [c for c in root if isinstance(c.tag, str)]
    if len(children) != 1:
        raise SchemaError("identification needs exactly one identifier")
    return _parse_recipient_choice(children[0])


def build_identification_result(res: IdentificationResult) -> bytes:
    root = etree.Element(q("identification-result"), nsmap={None: NS})
    _sub(root, "result", res.result)
    if res.result == "DIGIPOST" and res.digipost_address:
        _sub(root, "digipost-address", res.digipost_address)
        if res.person_alias:
            _sub(root, "person-alias", res.person_alias)
    elif res.result == "IDENTIFIED" and res.person_alias:
        _sub(root, "person-alias", res.person_alias)
    elif res.result == "UNIDENTIFIED" and res.reason:
        _sub(root, "unidentified-reason", res.reason)
    elif res.result == "INVALID" and res.reason:
        _sub(root, "invalid-reason", res.reason)
    return _serialize(root)


def parse_identification_result(data: bytes) -> IdentificationResult:
    root = parse_xml(data)
    if root.tag != q("identification-result"):
        raise SchemaError(f"expected identification-result, got {root.tag}")
    result = _text(root, "result")
    if result not in IDENTIFICATION_RESULTS:
        raise SchemaError(f"unknown identification result {result!r}")
    return IdentificationResult(
        result=result,
        digipost_address=_text(root, "digipost-address"),
        person_alias=_text(root, "person-alias"),
        reason=_text(root, "unidentified-reason") or _text(root, "invalid-reason"),
    )


# --------------------------------------------------------------------------- message


def _print_recipient(parent: etree._Element, tag: str, pr: PrintRecipient) -> None:
    el = _sub(parent, tag)
    _sub(el, "name", pr.name)
    if pr.is_norwegian:
        addr = _sub(el, "norwegian-address")
        for i, line in enumerate(pr.lines[:3], start=1):
            _sub(addr, f"addressline{i}", line)
        _sub(addr, "zip-code", pr.zip_code or "")
        _sub(addr, "city", pr.city or "")
    else:
        addr = _sub(el, "foreign-address")
        lines = list(pr.lines)
        tail = " ".join(p for p in (pr.zip_code, pr.city) if p)
        if tail:
            lines.append(tail)
        for i, line in enumerate(lines[:4], start=1):
            _sub(addr, f"addressline{i}", line)
        _sub(addr, "country-code", pr.country_code or "")


def _print_details(parent: etree._Element, pd: PrintDetails) -> None:
    el = _sub(parent, "print-details")
    _print_recipient(el, "recipient", pd.recipient)
    _print_recipient(el, "return-address", pd.return_address)
    _sub(el, "color", pd.color)
    _sub(el, "nondeliverable-handling", pd.nondeliverable_handling)


def _document(parent: etree._Element, tag: str, doc: DocumentSpec) -> None:
    el = _sub(parent, tag)
    _sub(el, "uuid", doc.uuid)
    _sub(el, "subject", doc.subject)
    _sub(el, "file-type", doc.file_type)
    if doc.opening_receipt:
        _sub(el, "opening-receipt", doc.opening_receipt)
    _sub(el, "authentication-level", doc.authentication_level)
    _sub(el, "sensitivity-level", doc.sensitivity_level)
    if doc.invoice is not None:
        data_type = _sub(el, "data-type")
        inv = etree.SubElement(data_type, q("invoice", DT_NS), nsmap={None: DT_NS})
        _sub(inv, "due-date", xml_datetime(doc.invoice.due_date), DT_NS)
        _sub(inv, "sum", format(doc.invoice.sum, "f"), DT_NS)
        _sub(inv, "creditor-account", doc.invoice.creditor_account, DT_NS)
        if doc.invoice.kid:
            _sub(inv, "kid", doc.invoice.kid, DT_NS)


def build_message(msg: MessageSpec) -> bytes:
    """The `message` XML in schema order: message-id, sender-id, recipient, invoice-reference,
    primary-document, attachment*, print-if-unread."""
    root = etree.Element(q("message"), nsmap={None: NS})
    _sub(root, "message-id", msg.message_id)
    if msg.sender_id:
        _sub(root, "sender-id", str(msg.sender_id))
    recipient = _sub(root, "recipient")
    if msg.recipient is not None:
        _recipient_choice(recipient, msg.recipient)
    if msg.print_details is not None:
        _print_details(recipient, msg.print_details)
    if msg.invoice_reference:
        _sub(root, "invoice-reference", msg.invoice_reference[:100])
    _document(root, "primary-document", msg.primary)
    for att in msg.attachments:
        _document(root, "attachment", att)
    if msg.print_if_unread_after is not None and msg.print_if_unread_details is not None:
        piu = _sub(root, "print-if-unread")
        _sub(piu, "print-if-unread-after", xml_datetime(msg.print_if_unread_after))
        _print_details(piu, msg.print_if_unread_details)
    return _serialize(root)


def parse_print_recipient(el: etree._Element) -> PrintRecipient:
    name = _text(el, "name") or ""
    no = el.find(q("norwegian-address"))
    if no is not None:
        lines = tuple(t for t in (_text(no, f"addressline{i}") for i in (1, 2, 3)) if t)
        return PrintRecipient(name, lines, _text(no, "zip-code"), _text(no, "city"), None)
    fo = el.find(q("foreign-address"))
    if fo is None:
        raise SchemaError("print recipient needs norwegian-address or foreign-address")
    lines = tuple(t for t in (_text(fo, f"addressline{i}") for i in (1, 2, 3, 4)) if t)
    return PrintRecipient(name, lines, None, None, _text(fo, "country-code") or _text(fo, "country"))


def parse_print_details(el: etree._Element) -> PrintDetails:
    rec, ret = el.find(q("recipient")), el.find(q("return-address"))
    if rec is None or ret is None:
        raise SchemaError("print-details needs recipient and return-address")
    return PrintDetails(parse_print_recipient(rec), parse_print_recipient(ret),
                        _text(el, "color") or "MONOCHROME",
                        _text(el, "nondeliverable-handling") or "RETURN_TO_SENDER")


def parse_invoice(el: etree._Element) -> InvoiceData:
    due, total, account = _text(el, "due-date", DT_NS), _text(el, "sum", DT_NS), _text(el, "creditor-account", DT_NS)
    if due is None or total is None or account is None:
        raise SchemaError("invoice needs due-date, sum and creditor-account")
    return InvoiceData(parse_xml_datetime(due), Decimal(total), account, _text(el, "kid", DT_NS))


def parse_document(el: etree._Element) -> DocumentSpec:
    invoice = None
    data_type = el.find(q("data-type"))
    if data_type is not None:
        inv = data_type.find(q("invoice", DT_NS))
        if inv is not None:
            invoice = parse_invoice(inv)
    return DocumentSpec(
        uuid=_text(el, "uuid") or "",
        subject=_text(el, "subject") or "",
        file_type=_text(el, "file-type") or "",
        authentication_level=_text(el, "authentication-level") or "PASSWORD",
        sensitivity_level=_text(el, "sensitivity-level") or "NORMAL",
        opening_receipt=_text(el, "opening-receipt"),
        invoice=invoice,
    )


def parse_message(data: bytes) -> MessageSpec:
    root = parse_xml(data)
    if root.tag != q("message"):
        raise SchemaError(f"expected message, got {root.tag}")
    recipient_el = root.find(q("recipient"))
    if recipient_el is None:
        raise SchemaError("message needs a recipient")
    rid = None
    choice = [c for c in recipient_el if isinstance(c.tag, str) and c.tag != q("print-details")]
    if choice:
        rid = _parse_recipient_choice(choice[0])
    pd_el = recipient_el.find(q("print-details"))
    primary = root.find(q("primary-document"))
    if primary is None:
        raise SchemaError("message needs a primary-document")
    piu = root.find(q("print-if-unread"))
    piu_after = piu_details = None
    if piu is not None:
        after = _text(piu, "print-if-unread-after")
        pd = piu.find(q("print-details"))
        if after is None or pd is None:
            raise SchemaError("print-if-unread needs print-if-unread-after and print-details")
        piu_after, piu_details = parse_xml_datetime(after), parse_print_details(pd)
    return MessageSpec(
        message_id=_text(root, "message-id") or "",
        sender_id=_text(root, "sender-id"),
        recipient=rid,
        print_details=parse_print_details(pd_el) if pd_el is not None else None,
        invoice_reference=_text(root, "invoice-reference"),
        primary=parse_document(primary),
        attachments=tuple(parse_document(a) for a in root.findall(q("attachment"))),
        print_if_unread_after=piu_after,
        print_if_unread_details=piu_details,
    )


# --------------------------------------------------------------------------- responses


def build_message_delivery(md: MessageDelivery, primary: DocumentSpec) -> bytes:
    root = etree.Element(q("message-delivery"), nsmap={None: NS})
    if md.message_id:
        _sub(root, "message-id", md.message_id)
    _sub(root, "delivery-method", md.delivery_method)
    _sub(root, "sender-id", str(md.sender_id or "0"))
    _sub(root, "status", md.status)
    if md.delivery_time:
        _sub(root, "delivery-time", xml_datetime(md.delivery_time))
    doc = _sub(root, "primary-document")
    _sub(doc, "uuid", primary.uuid)
    _sub(doc, "subject", primary.subject)
    _sub(doc, "file-type", primary.file_type)
    _sub(doc, "authentication-level", primary.authentication_level)
    _sub(doc, "sensitivity-level", primary.sensitivity_level)
    if md.content_hash:
        _sub(doc, "content-hash", md.content_hash).set("hash-algorithm", "SHA256")
    return _serialize(root)


def parse_message_delivery(data: bytes) -> MessageDelivery:
    root = parse_xml(data)
    if root.tag != q("message-delivery"):
        raise SchemaError(f"expected message-delivery, got {root.tag}")
    method, status = _text(root, "delivery-method"), _text(root, "status")
    if method not in CHANNELS or status not in MESSAGE_STATUSES:
        raise SchemaError(f"bad message-delivery method/status {method!r}/{status!r}")
    primary = root.find(q("primary-document"))
    when = _text(root, "delivery-time")
    return MessageDelivery(
        delivery_method=method,
        status=status,
        sender_id=_text(root, "sender-id"),
        message_id=_text(root, "message-id"),
        delivery_time=parse_xml_datetime(when) if when else None,
        primary_uuid=_text(primary, "uuid"),
        content_hash=_text(primary, "content-hash"),
    )


def build_document_events(events: list[DocumentEvent]) -> bytes:
    root = etree.Element(q("document-events"), nsmap={None: NS, "xsi": XSI})
    for ev in events:
        el = _sub(root, "event")
        el.set("uuid", ev.uuid)
        el.set("type", ev.type)
        el.set("created", xml_datetime(ev.created))
        el.set("document-created", xml_datetime(ev.document_created))
        if ev.metadata_type:
            md = _sub(el, "metadata")
            md.set(f"{{{XSI}}}type", ev.metadata_type)
            for k, v in ev.metadata.items():
                md.set(k, v)
    return _serialize(root)


def parse_document_events(data: bytes) -> list[DocumentEvent]:
    root = parse_xml(data)
    if root.tag != q("document-events"):
        raise SchemaError(f"expected document-events, got {root.tag}")
    out = []
    for el in root.findall(q("event")):
        md = el.find(q("metadata"))
        md_type = None
        attrs: dict[str, str] = {}
        if md is not None:
            raw_type = md.get(f"{{{XSI}}}type")
            md_type = raw_type.split(":")[-1] if raw_type else None
            attrs = {k: v for k, v in md.attrib.items() if not k.startswith("{")}
        try:
            out.append(DocumentEvent(
                uuid=el.get("uuid") or "",
                type=el.get("type") or "",
                created=parse_xml_datetime(el.get("created") or ""),
                document_created=parse_xml_datetime(el.get("document-created") or el.get("created") or ""),
                metadata_type=md_type,
                metadata=attrs,
            ))
        except ValueError as exc:
            raise SchemaError(f"bad event: {exc}") from exc
    return out


def build_error(err: ApiError) -> bytes:
    root = etree.Element(q("error"), nsmap={None: NS})
    _sub(root, "error-code", err.code)
    _sub(root, "error-message", err.message)
    _sub(root, "error-type", err.type)
    return _serialize(root)


def parse_error(data: bytes) -> ApiError | None:
    """The `error` body, or None when the body is not one (e.g. a proxy's HTML page)."""
    try:
        root = parse_xml(data)
    except SchemaError:
        return None
    if root.tag != q("error"):
        return None
    return ApiError(_text(root, "error-code") or "", _text(root, "error-message") or "",
                    _text(root, "error-type") or "")


def build_entrypoint(ep: EntryPoint, base_uri: str) -> bytes:
    root = etree.Element(q("entrypoint"), nsmap={None: NS})
    if ep.certificate:
        _sub(root, "certificate", ep.certificate)
    for rel, uri in ep.links.items():
        link = _sub(root, "link")
        link.set("rel", f"{base_uri.rstrip('/')}/relations/{rel}")
        link.set("uri", uri)
        link.set("media-type", MEDIA_TYPE)
    return _serialize(root)


def parse_entrypoint(data: bytes) -> EntryPoint:
    root = parse_xml(data)
    if root.tag != q("entrypoint"):
        raise SchemaError(f"expected entrypoint, got {root.tag}")
    links = {}
    for link in root.findall(q("link")):
        rel, uri = link.get("rel"), link.get("uri")
        if rel and uri:
            links[rel.rstrip("/").rsplit("/", 1)[-1].lower()] = uri
    return EntryPoint(_text(root, "certificate"), links)
