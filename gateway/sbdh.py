"""Peppol Business Message Envelope (SBDH) 2.0.x: build, parse and rule checks.

Rules (Peppol Envelope spec 2.0.1/2.0.2, codes after peppol-commons EPeppolSBDHDataError):
HeaderVersion 1.0; exactly one Sender/Receiver with Authority iso6523-actorid-upis and a
`scheme:value` participant id; DocumentIdentification Standard = business root namespace,
Type = business root local name, TypeVersion = doctype suffix, InstanceIdentifier unique
(UUID required by us when building, any non-empty token accepted on input as the spec only
RECOMMENDS UUIDs), CreationDateAndTime with a time zone; scopes DOCUMENTID, PROCESSID, COUNTRY_C1
mandatory and unique; MLS_TO `scheme:value` (a non-0242 scheme only warns, a malformed value or
invalid 0242 SPID is rejected); MLS_TYPE FAILURE_ONLY|ALWAYS_SEND; exactly one business document
element; no nested envelope.

Large payloads are checked with a streaming parse (`read_sbdh`) that never holds the business
document in memory; `unwrap_business_document` cuts the document out byte-for-byte.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from xml.sax.saxutils import escape

from lxml import etree

from gateway.as4.blob import CHUNK, Blob, BlobWriter

NS = "http://www.unece.org/cefact/namespaces/StandardBusinessDocumentHeader"
N = "{%s}" % NS
AUTHORITY = "iso6523-actorid-upis"
DOCTYPE_SCHEMES = ("busdox-docid-qns", "peppol-doctype-wildcard")
DEFAULT_DOCTYPE_SCHEME = "busdox-docid-qns"
DEFAULT_PROCESS_SCHEME = "cenbii-procid-ubl"
MLS_TYPES = ("FAILURE_ONLY", "ALWAYS_SEND")
PARTICIPANT_RE = re.compile(r"^[0-9]{4}:[^\s:][^\s]*$")
SPID_RE = re.compile(r"^[0-9]{6}(-[0-9A-Z_]{3,12}(\.[0-9A-Z\-._~]{3,24})?)?$")
COUNTRY_RE = re.compile(r"^[A-Z0-9]{2}$")
DATETIME_TZ_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
ENVELOPE_NS = "http://peppol.eu/xsd/ticc/envelope/1.0"
MAX_HEADER_BYTES = 1 << 20
FULL_PARSE_LIMIT = 8 << 20


class SbdhError(ValueError):
    """An SBDH rule violation. `code` is machine-readable (e.g. "invalid-scope-count")."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Sbdh:
    sender: str
    receiver: str
    standard: str
    type_version: str
    instance_identifier: str
    document_type: str          # DocumentIdentification/Type (root local name)
    creation_date_time: str
    document_id: str            # DOCUMENTID value
    document_id_scheme: str
    process_id: str
    process_scheme: str
    country_c1: str
    mls_to: str | None = None
    mls_type: str | None = None
    sender_authority: str = AUTHORITY
    receiver_authority: str = AUTHORITY
    scopes: dict[str, str] = field(default_factory=dict)
    business_namespace: str = ""
    business_local_name: str = ""
    warnings: tuple[str, ...] = ()

    @property
    def action(self) -> str:
        """The AS4 eb:Action for this document type: `<scheme>::<value>`."""
        return f"{self.document_id_scheme}::{self.document_id}"


def _text(el: etree._Element | None) -> str:
    return (el.text or "").strip() if el is not None else ""


def _one(parent: etree._Element, name: str, code: str) -> etree._Element:
    found = parent.findall(N + name)
    if len(found) != 1:
        raise SbdhError(code, f"expected exactly one {name}, found {len(found)}")
    return found[0]


def check_header(header: etree._Element, business_ns: str, business_name: str, business_count: int) -> Sbdh:
    """Apply the Peppol envelope rules to a parsed StandardBusinessDocumentHeader element."""
    warnings: list[str] = []
    if _text(_one(header, "HeaderVersion", "invalid-header-version")) != "1.0":
        raise SbdhError("invalid-header-version", "HeaderVersion must be 1.0")
    parties = {}
    for role in ("Sender", "Receiver"):
        els = header.findall(N + role)
        if len(els) != 1:
            raise SbdhError(f"invalid-{role.lower()}-count", f"expected exactly one {role}, found {len(els)}")
        ident = els[0].find(N + "Identifier")
        if ident is None:
            raise SbdhError(f"invalid-{role.lower()}-value", f"{role} has no Identifier")
        if ident.get("Authority") != AUTHORITY:
            raise SbdhError(f"invalid-{role.lower()}-authority",
                            f"{role} Authority {ident.get('Authority')!r} is not {AUTHORITY}")
        value = _text(ident)
        if not PARTICIPANT_RE.match(value):
            raise SbdhError(f"invalid-{role.lower()}-value", f"{role} identifier {value!r} is not `scheme:value`")
        parties[role] = value
    di = _one(header, "DocumentIdentification", "invalid-document-identification")
    standard = _text(di.find(N + "Standard"))
    type_version = _text(di.find(N + "TypeVersion"))
    instance = _text(di.find(N + "InstanceIdentifier"))
    doc_type = _text(di.find(N + "Type"))
    created = _text(di.find(N + "CreationDateAndTime"))
    if not instance or len(instance) > 200 or any(c.isspace() for c in instance):
        raise SbdhError("invalid-instance-identifier", f"InstanceIdentifier {instance!r} is missing or malformed")
    if not DATETIME_TZ_RE.match(created):
        raise SbdhError("invalid-creation-date-time",
                        f"CreationDateAndTime {created!r} must be an xs:dateTime with a time zone")
    if standard != business_ns:
        raise SbdhError("invalid-standard", f"Standard {standard!r} does not match the business document namespace "
                        f"{business_ns!r}")
    if doc_type != business_name:
        raise SbdhError("invalid-type", f"Type {doc_type!r} does not match the business document root "
                        f"{business_name!r}")
    scopes_parent = header.find(N + "BusinessScope")
    if scopes_parent is None:
        raise SbdhError("business-scope-missing", "BusinessScope is missing")
    scopes: dict[str, tuple[str, str]] = {}
    for scope in scopes_parent.findall(N + "Scope"):
        stype = _text(scope.find(N + "Type"))
        if stype in scopes:
            raise SbdhError("invalid-scope-count", f"scope {stype} appears more than once")
        scopes[stype] = (_text(scope.find(N + "InstanceIdentifier")), _text(scope.find(N + "Identifier")))
    mandatory = ("DOCUMENTID", "PROCESSID", "COUNTRY_C1")
    if len(scopes) < 3 or any(m not in scopes for m in mandatory):
        missing = [m for m in mandatory if m not in scopes]
        raise SbdhError("invalid-scope-count", f"mandatory scope(s) missing: {', '.join(missing)}")
    doc_id, doc_scheme = scopes["DOCUMENTID"]
    doc_scheme = doc_scheme or DEFAULT_DOCTYPE_SCHEME
    if not doc_id or doc_scheme not in DOCTYPE_SCHEMES:
        raise SbdhError("invalid-document-type-identifier", f"DOCUMENTID {doc_scheme}::{doc_id} is not valid")
    if doc_scheme == "busdox-docid-qns":
        m = re.match(r"^(.+)::([^:#]+)##(.+)::([^:]+)$", doc_id)
        if not m:
            raise SbdhError("invalid-document-type-identifier",
                            f"DOCUMENTID {doc_id!r} is not `<ns>::<root>##<customization>::<version>`")
        if m.group(1) != standard or m.group(2) != doc_type:
            raise SbdhError("invalid-document-type-identifier",
                            "DOCUMENTID root namespace/name do not match Standard/Type")
        if m.group(4) != type_version:
            raise SbdhError("invalid-type-version",
                            f"TypeVersion {type_version!r} does not match the document type suffix {m.group(4)!r}")
    elif not type_version:
        raise SbdhError("invalid-type-version", "TypeVersion is missing")
    proc_id, proc_scheme = scopes["PROCESSID"]
    proc_scheme = proc_scheme or DEFAULT_PROCESS_SCHEME
    if not proc_id or any(c.isspace() for c in proc_id):
        raise SbdhError("invalid-process-identifier", f"PROCESSID {proc_id!r} is not valid")
    country = scopes["COUNTRY_C1"][0]
    if not COUNTRY_RE.match(country):
        raise SbdhError("invalid-country-c1", f"COUNTRY_C1 {country!r} is not an ISO 3166-1 alpha-2 code")
    mls_to = mls_type = None
    if "MLS_TO" in scopes:
        mls_to, mls_scheme = scopes["MLS_TO"]
        if (mls_scheme or AUTHORITY) != AUTHORITY or not PARTICIPANT_RE.match(mls_to):
            raise SbdhError("invalid-mls-to", f"MLS_TO {mls_to!r} is not a participant identifier")
        if mls_to.startswith("0242:"):
            if not SPID_RE.match(mls_to[5:]):
                raise SbdhError("invalid-mls-to", f"MLS_TO {mls_to!r} is not a valid SPID")
        else:
            warnings.append(f"MLS_TO {mls_to!r} is not a 0242 SPID; C3 will fall back to C2's SPID")
    if "MLS_TYPE" in scopes:
        mls_type = scopes["MLS_TYPE"][0]
        if mls_type not in MLS_TYPES:
            raise SbdhError("invalid-mls-type", f"MLS_TYPE {mls_type!r} is not FAILURE_ONLY or ALWAYS_SEND")
    if business_count != 1:
        raise SbdhError("invalid-business-message",
                        f"the envelope must contain exactly one business document, found {business_count}")
    if business_ns == NS and business_name == "StandardBusinessDocument":
        raise SbdhError("nested-envelope", "an envelope must not contain another envelope")
    return Sbdh(
        sender=parties["Sender"], receiver=parties["Receiver"], standard=standard, type_version=type_version,
        instance_identifier=instance, document_type=doc_type, creation_date_time=created,
        document_id=doc_id, document_id_scheme=doc_scheme, process_id=proc_id, process_scheme=proc_scheme,
        country_c1=country, mls_to=mls_to, mls_type=mls_type,
        scopes={k: v[0] for k, v in scopes.items()}, business_namespace=business_ns,
        business_local_name=business_name, warnings=tuple(warnings),
    )


def _reject_doctype(head: bytes) -> None:
    if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
        raise SbdhError("invalid-xml", "DOCTYPE/ENTITY declarations are not allowed")


def read_sbdh(source: bytes | Blob | Path | BinaryIO, max_header_bytes: int = MAX_HEADER_BYTES,
              full_parse_limit: int = FULL_PARSE_LIMIT) -> Sbdh:
    """Parse and check an SBD document.

    Up to `full_parse_limit` bytes the whole SBD is parsed (well-formedness and "exactly one business
    document" are proven). Above it only the SBDH and the business root start tag are parsed and the
    envelope end tag is checked at the tail, so a 100 MB invoice costs milliseconds and no memory;
    the business document is parsed fully by the validation stage anyway.
    """
    if isinstance(source, (bytes, bytearray)):
        source = Blob.from_bytes(bytes(source))
    if isinstance(source, Path):
        source = Blob.from_path(source)
    fh = source.open() if isinstance(source, Blob) else source
    fh.seek(0, 2)
    size = fh.tell()
    fh.seek(0)
    large = size > full_parse_limit
    try:
        head = fh.read(65536)
        _reject_doctype(head)
        if not large:
            fh.seek(0)
            return _check_document(fh.read())
        head += fh.read(max_header_bytes)
        fh.seek(max(0, size - 4096))
        tail = fh.read()
        return _check_head(head, tail)
    finally:
        if isinstance(source, Blob):
            fh.close()


_local = threading.local()


def _check_head(head: bytes, tail: bytes) -> Sbdh:
    """Check a large SBD from its head and tail only: the SBDH and the business root start tag are
    parsed as a synthetic document `<SBD>header<root/></SBD>`, the envelope end tag is checked."""
    root = _ROOT_START_RE.search(head)
    end = _header_end(head)
    if not root or not end:
        raise SbdhError("sbdh-missing", "StandardBusinessDocumentHeader not found in the first "
                        f"{len(head)} bytes (missing or larger than the header cap)")
    if not _ROOT_END_RE.search(tail):
        raise SbdhError("invalid-xml", "the envelope does not end with </StandardBusinessDocument>")
    pos = end.end()
    while m := _PROLOG_RE.match(head, pos):
        pos = m.end()
    pos += len(head[pos:]) - len(head[pos:].lstrip())
    start = _START_RE.match(head, pos)
    if not start:
        raise SbdhError("invalid-business-message", "no business document after the SBDH")
    closing = re.match(rb"<([^\s>/]+)", head[root.start():]).group(1)
    tag = start.group(0)
    if not tag.endswith(b"/>"):
        tag = tag[:-1] + b"/>"
    return _check_document(head[:end.end()] + tag + b"</" + closing + b">")


def _check_document(data: bytes) -> Sbdh:
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                                                 huge_tree=True, remove_comments=True, remove_pis=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise SbdhError("invalid-xml", f"SBD is not well-formed XML: {exc}") from exc
    if root.getroottree().docinfo.doctype:
        raise SbdhError("invalid-xml", "DOCTYPE declarations are not allowed")
    if root.tag != N + "StandardBusinessDocument":
        raise SbdhError("invalid-root", f"root element is {root.tag}, not StandardBusinessDocument")
    children = [c for c in root if isinstance(c.tag, str)]
    if not children or children[0].tag != N + "StandardBusinessDocumentHeader":
        raise SbdhError("sbdh-missing", "StandardBusinessDocumentHeader is missing or not first")
    business = children[1:]
    if not business:
        raise SbdhError("invalid-business-message", "the envelope contains no business document")
    q = etree.QName(business[0])
    return check_header(children[0], q.namespace or "", q.localname, len(business))


def parse_sbdh(data: bytes) -> Sbdh:
    return read_sbdh(data)


_HEADER_END_RE = re.compile(rb"</(?:[A-Za-z_][\w.\-]*:)?StandardBusinessDocumentHeader\s*>")
# The envelope end tag, then only whitespace, comments and PIs (XML "Misc") up to the end.
_ROOT_END_RE = re.compile(rb"</(?:[A-Za-z_][\w.\-]*:)?StandardBusinessDocument\s*>(?:\s|<!--.*?-->|<\?.*?\?>)*$",
                          re.S)


_SKIPPED = ((b"<!--", b"-->"), (b"<![CDATA[", b"]]>"), (b"<?", b"?>"))


def _header_end(head: bytes) -> re.Match | None:
    """The SBDH end tag in `head`. Comments, CDATA sections and PIs are the only places where its
    text can occur otherwise; they are skipped as whole tokens (one linear pass)."""
    pos = head.find(b"<")
    while pos >= 0:
        for opening, closing in _SKIPPED:
            if head.startswith(opening, pos):
                close = head.find(closing, pos + len(opening))
                if close < 0:
                    return None
                pos = close + len(closing) - 1
                break
        else:
            m = _HEADER_END_RE.match(head, pos)
            if m:
                return m
        pos = head.find(b"<", pos + 1)
    return None
_ROOT_START_RE = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?StandardBusinessDocument(\s[^>]*)?>")
_XMLNS_RE = re.compile(rb"""\sxmlns(?::([A-Za-z_][\w.\-]*))?\s*=\s*("[^"]*"|'[^']*')""")


def unwrap_business_document(source: Blob | bytes, tmp_dir=None, max_header_bytes: int = MAX_HEADER_BYTES) -> Blob:
    """Return the business document inside an (already checked) SBD, byte for byte, with the
    namespace declarations it inherited from the envelope root copied onto its root element."""
    blob = Blob.from_bytes(source) if isinstance(source, (bytes, bytearray)) else source
    size = blob.size
    with blob.open() as fh:
        head = fh.read(max_header_bytes + 65536)
        m = _header_end(head)
        rs = _ROOT_START_RE.search(head)
        if not m or not rs:
            raise SbdhError("sbdh-missing", "cannot locate the SBDH in the envelope")
        start = m.end()
        tail_len = min(4096, size - start)
        fh.seek(size - tail_len)
        tail = fh.read(tail_len)
        t = _ROOT_END_RE.search(tail)
        if not t:
            raise SbdhError("invalid-xml", "cannot locate the envelope end tag")
        end = size - tail_len + t.start()
        root_ns = {(p or b""): v for p, v in _XMLNS_RE.findall(rs.group(1) or b"")}
        # skip whitespace/comments before the business root start tag
        fh.seek(start)
        lead = fh.read(min(65536, end - start))
        k = 0
        while True:
            ws = re.match(rb"\s*(<!--.*?-->|<\?.*?\?>)?", lead[k:], re.S)
            if not ws or ws.end() == 0:
                break
            k += ws.end()
        body_start = start + k
        tag_m = re.match(rb"<([A-Za-z_][\w.\-:]*)([^>]*?)(/?)>", lead[k:], re.S)
        if not tag_m:
            raise SbdhError("invalid-business-message", "cannot locate the business document root")
        declared = {(p or b"") for p, _ in _XMLNS_RE.findall(tag_m.group(2))}
        inherited = {p: v for p, v in root_ns.items() if p not in declared}
        if inherited:
            used = _prefixes_used(fh, body_start, end, inherited)
            fh.seek(start)
            inherited = {p: v for p, v in inherited.items() if p in used}
        extra = b"".join((b" xmlns:" + p if p else b" xmlns") + b"=" + v for p, v in inherited.items())
        writer = BlobWriter(tmp_dir)
        writer.write(b'<?xml version="1.0" encoding="UTF-8"?>\n')
        insert_at = body_start + 1 + len(tag_m.group(1))
        fh.seek(body_start)
        writer.write(fh.read(insert_at - body_start))
        writer.write(extra)
        pos = insert_at
        while pos < end:
            chunk = fh.read(min(CHUNK, end - pos))
            if not chunk:
                break
            writer.write(chunk)
            pos += len(chunk)
    return writer.finish()


def _prefixes_used(fh, start: int, end: int, candidates: dict[bytes, bytes]) -> set[bytes]:
    """Which inherited namespace prefixes the business document really uses (as `prefix:` in a
    name or a QName value; the default namespace when an unprefixed name occurs). Copying only
    those keeps the unwrapped document byte-identical to what the sender wrapped."""
    patterns = {p: re.compile(rb"[<\s\"'/]" + re.escape(p) + rb":" if p else rb"<[A-Za-z_][\w.\-]*[\s/>]")
                for p in candidates}
    used: set[bytes] = set()
    fh.seek(start)
    pos, carry = start, b""
    while pos < end and len(used) < len(candidates):
        chunk = fh.read(min(CHUNK, end - pos))
        if not chunk:
            break
        pos += len(chunk)
        window = carry + chunk
        for p, pat in patterns.items():
            if p not in used and pat.search(window):
                used.add(p)
        carry = window[-256:]
    return used


_PROLOG_RE = re.compile(rb"\s*(?:<\?.*?\?>|<!--.*?-->)", re.S)
_START_RE = re.compile(rb"<(?:([A-Za-z_][\w.\-]*):)?([A-Za-z_][\w.\-]*)([^>]*)>", re.S)


def _root_qname(document: bytes) -> etree.QName:
    """The business document root from its start tag (the whole SBD is parsed and checked after
    building, so a wrong guess cannot slip through)."""
    pos = 0
    while m := _PROLOG_RE.match(document, pos):
        pos = m.end()
    m = _START_RE.match(document, pos + len(document[pos:]) - len(document[pos:].lstrip()))
    if not m:
        raise SbdhError("invalid-business-message", "business document has no root element")
    prefix, local, attrs = m.group(1), m.group(2), m.group(3)
    decl = {(p or b""): v[1:-1] for p, v in _XMLNS_RE.findall(attrs)}
    ns = decl.get(prefix or b"")
    if prefix and ns is None:
        raise SbdhError("invalid-business-message", "business document root uses an undeclared prefix")
    return etree.QName(ns.decode() if ns else None, local.decode())


def build_sbd(
    document: bytes,
    *,
    sender: str,
    receiver: str,
    document_id: str,
    process_id: str,
    country_c1: str,
    instance_identifier: str | None = None,
    creation_date_time: dt.datetime | None = None,
    document_id_scheme: str = DEFAULT_DOCTYPE_SCHEME,
    process_scheme: str = DEFAULT_PROCESS_SCHEME,
    mls_to: str | None = None,
    mls_type: str | None = None,
) -> bytes:
    """Wrap a business document (UTF-8 XML bytes) in a Peppol SBDH and check the result.

    `instance_identifier` must be a UUID (a fresh uuid4 when omitted); `creation_date_time` must
    be timezone-aware (pass it in: no clock here).
    """
    inst = instance_identifier or str(uuid.uuid4())
    try:
        uuid.UUID(inst)
    except ValueError as exc:
        raise SbdhError("invalid-instance-identifier", f"InstanceIdentifier {inst!r} is not a UUID") from exc
    if creation_date_time is None or creation_date_time.tzinfo is None:
        raise SbdhError("invalid-creation-date-time", "creation_date_time must be a timezone-aware datetime")
    created = creation_date_time.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    body = re.sub(rb"^\s*<\?xml[^>]*\?>\s*", b"", document)
    _reject_doctype(body[:65536])
    q = _root_qname(body)
    m = re.match(r"^(.+)::([^:#]+)##(.+)::([^:]+)$", document_id) if document_id_scheme == "busdox-docid-qns" else None
    type_version = m.group(4) if m else "2.1"
    e = lambda s: escape(s, {'"': "&quot;"})
    scopes = [("DOCUMENTID", document_id, document_id_scheme), ("PROCESSID", process_id, process_scheme),
              ("COUNTRY_C1", country_c1, None)]
    if mls_to:
        scopes.append(("MLS_TO", mls_to, AUTHORITY))
    if mls_type:
        scopes.append(("MLS_TYPE", mls_type, None))
    scope_xml = "".join(
        f"<Scope><Type>{t}</Type><InstanceIdentifier>{e(v)}</InstanceIdentifier>"
        + (f"<Identifier>{e(s)}</Identifier>" if s else "") + "</Scope>"
        for t, v, s in scopes
    )
    header = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<StandardBusinessDocument xmlns="{NS}">'
        f"<StandardBusinessDocumentHeader><HeaderVersion>1.0</HeaderVersion>"
        f'<Sender><Identifier Authority="{AUTHORITY}">{e(sender)}</Identifier></Sender>'
        f'<Receiver><Identifier Authority="{AUTHORITY}">{e(receiver)}</Identifier></Receiver>'
        f"<DocumentIdentification><Standard>{e(q.namespace or '')}</Standard><TypeVersion>{e(type_version)}</TypeVersion>"
        f"<InstanceIdentifier>{e(inst)}</InstanceIdentifier><Type>{e(q.localname)}</Type>"
        f"<CreationDateAndTime>{created}</CreationDateAndTime></DocumentIdentification>"
        f"<BusinessScope>{scope_xml}</BusinessScope></StandardBusinessDocumentHeader>"
    ).encode("utf-8")
    sbd = header + body + b"</StandardBusinessDocument>"
    # The envelope must pass our own checks. Only the header and the document's root start tag are
    # parsed here: the business document itself is validated (and fully parsed) before sending.
    read_sbdh(sbd, full_parse_limit=0)
    return sbd
