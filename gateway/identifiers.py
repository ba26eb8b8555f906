"""Peppol identifiers (Policy for use of Identifiers 4.4): participant, document type, process.

Case rules decide equality and therefore caching, SML hashing and SMP response checks:

* participant identifiers are case-insensitive: scheme and value are lower-cased on parsing, so two
  spellings of one participant compare, hash and URL-encode identically;
* document type and process identifier *values* are case-sensitive and kept exactly as given
  (peppol-commons #73: SMPs that answer case-insensitively must be caught); their schemes are
  lower-case tokens and compared as such.

ICD checks: `0192` (Norwegian organisation number) must be nine digits with a valid MOD11 check
digit; `9908` (the removed "NO:ORGNR" scheme) is refused, or mapped to `0192` on request; other ICDs
are checked syntactically (four digits, then a non-empty printable ASCII id).

`identifiers_from_ubl()` derives the routing identifiers from a UBL document (Invoice, CreditNote,
Order, ...), or from the UBL payload of a StandardBusinessDocument.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

from stdnum.no import orgnr as _orgnr

PARTICIPANT_SCHEME = "iso6523-actorid-upis"
DOCTYPE_SCHEME = "busdox-docid-qns"
DOCTYPE_WILDCARD_SCHEME = "peppol-doctype-wildcard"
PROCESS_SCHEME = "cenbii-procid-ubl"
NOPROCESS_SCHEME = "busdox-procid-transport"
NOPROCESS_VALUE = "busdox:noprocess"

DOCTYPE_SCHEMES = (DOCTYPE_SCHEME, DOCTYPE_WILDCARD_SCHEME)
PROCESS_SCHEMES = (PROCESS_SCHEME, NOPROCESS_SCHEME)

MAX_SCHEME = 25
MAX_PARTICIPANT_ID = 130  # after the "xxxx:" ICD prefix (SMP 1.4.0; previously 50)
MAX_DOCTYPE = 500
MAX_PROCESS = 200

_ICD_RE = re.compile(r"^([0-9]{4}):(.+)$")
_PRINTABLE = re.compile(r"^[\x21-\x7e]+$")  # printable US-ASCII, no spaces
_SCHEME_RE = re.compile(r"^[a-z0-9][a-z0-9._+-]*$")


class IdentifierError(ValueError):
    """An identifier is unusable. `code` is machine-readable:

    empty, bad-syntax, unsupported-scheme, too-long, invalid-icd, invalid-check-digit,
    deprecated-icd, bad-wildcard, not-ubl, missing-element.
    """

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _split(text: str, default_scheme: str | None, kind: str) -> tuple[str, str]:
    if not isinstance(text, str):
        raise IdentifierError("bad-syntax", f"{kind} identifier must be a string")
    text = text.strip()
    if not text:
        raise IdentifierError("empty", f"empty {kind} identifier")
    if "::" in text:
        scheme, value = text.split("::", 1)
        scheme = scheme.strip().lower()
        if kind != "participant" and default_scheme is not None and ":" in scheme:
            # "urn:...:Invoice-2::Invoice##..." without scheme: that "::" belongs to the value
            return default_scheme, text
        if not scheme or len(scheme) > MAX_SCHEME or not _SCHEME_RE.match(scheme):
            raise IdentifierError("bad-syntax", f"bad {kind} identifier scheme {scheme!r}")
        return scheme, value.strip()
    if default_scheme is None:
        raise IdentifierError("bad-syntax", f"{kind} identifier {text!r} has no scheme (expected scheme::value)")
    return default_scheme, text


def _checked(kind: str, scheme: str, schemes, value: str, max_len: int) -> tuple[str, str]:
    """The scheme (lower-cased, one of `schemes`) and the trimmed, printable, bounded value."""
    scheme = scheme.strip().lower()
    if scheme not in schemes:
        raise IdentifierError("unsupported-scheme", f"{kind} scheme must be one of {schemes}, got {scheme!r}")
    value = (value or "").strip()
    if not value:
        raise IdentifierError("empty", f"empty {kind} identifier value")
    if len(value) > max_len:
        raise IdentifierError("too-long", f"{kind} identifier is {len(value)} characters (max {max_len})")
    if not _PRINTABLE.match(value):
        raise IdentifierError("bad-syntax", f"{kind} identifier contains spaces or non-ASCII characters")
    return scheme, value


def url_segment(scheme: str, value: str) -> str:
    """`scheme::value` percent-encoded as ONE URL path segment (Java URLEncoder style, `*` literal)."""
    return quote(f"{scheme}::{value}", safe="*")


class _SchemedId:
    """`scheme::value` rendering and URL encoding shared by document type and process ids."""

    scheme: str
    value: str

    def __str__(self) -> str:
        return f"{self.scheme}::{self.value}"

    @property
    def url_segment(self) -> str:
        return url_segment(self.scheme, self.value)


# --- participants ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParticipantId(_SchemedId):
    """`iso6523-actorid-upis::<ICD>:<id>`, stored lower-cased (participant ids are case-insensitive)."""

    scheme: str
    value: str

    @property
    def icd(self) -> str:
        return self.value.split(":", 1)[0]

    @property
    def local_id(self) -> str:
        return self.value.split(":", 1)[1]

    @classmethod
    def parse(cls, text: str, *, map_legacy: bool = False) -> ParticipantId:
        """Parse `iso6523-actorid-upis::0192:923609016` or the bare value `0192:923609016`."""
        scheme, value = _split(text, PARTICIPANT_SCHEME, "participant")
        return cls.of(value, scheme=scheme, map_legacy=map_legacy)

    @classmethod
    def unchecked(cls, scheme: str, value: str) -> ParticipantId:
        """Normalise without ICD checks: for comparing what a remote party (an SMP) answered."""
        return cls(scheme.strip().lower(), value.strip().lower())

    @classmethod
    def of(cls, value: str, icd: str | None = None, *, scheme: str = PARTICIPANT_SCHEME,
           map_legacy: bool = False) -> ParticipantId:
        """Build from a value (`0192:923609016`) or from an ICD plus local id (EndpointID/@schemeID)."""
        scheme = scheme.strip().lower()
        if scheme != PARTICIPANT_SCHEME:
            raise IdentifierError("unsupported-scheme", f"participant scheme must be {PARTICIPANT_SCHEME}, got {scheme!r}")
        value = (value or "").strip()
        if icd is not None:
            icd = icd.strip()
            if not icd:
                raise IdentifierError("invalid-icd", "empty ICD (schemeID)")
            value = f"{icd}:{value}"
        if not value or value.endswith(":"):
            raise IdentifierError("empty", "empty participant identifier value")
        m = _ICD_RE.match(value)
        if not m:
            raise IdentifierError("invalid-icd", f"participant value {value!r} must start with a 4-digit ICD and ':'")
        code, local = m.group(1), m.group(2)
        if not _PRINTABLE.match(local):
            raise IdentifierError("bad-syntax", f"participant id {local!r} contains spaces or non-ASCII characters")
        if len(local) > MAX_PARTICIPANT_ID:
            raise IdentifierError("too-long", f"participant id is {len(local)} characters (max {MAX_PARTICIPANT_ID})")
        if code == "9908":
            if not map_legacy:
                raise IdentifierError("deprecated-icd", "ICD 9908 (NO:ORGNR) was removed from the Peppol code list; use 0192")
            code = "0192"
        if code == "0192":
            if not re.fullmatch(r"[0-9]{9}", local):
                raise IdentifierError("bad-syntax", f"0192 organisation number must be 9 digits, got {local!r}")
            if not _orgnr.is_valid(local):
                raise IdentifierError("invalid-check-digit", f"0192 organisation number {local} fails the MOD11 check")
        return cls(PARTICIPANT_SCHEME, f"{code}:{local}".lower())


# --- document types ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DocumentTypeId(_SchemedId):
    """`busdox-docid-qns::<root ns>::<local name>##<customization>::<version>`; value case-sensitive."""

    scheme: str
    value: str

    @property
    def is_wildcard(self) -> bool:
        return self.scheme == DOCTYPE_WILDCARD_SCHEME

    def _parts(self) -> tuple[str, str, str | None, str | None]:
        head, sep, tail = self.value.partition("##")
        ns, _, local = head.rpartition("::")
        if not sep:
            return ns, local, None, None
        customization, _, version = tail.rpartition("::")
        return ns, local, customization, version

    @property
    def root_namespace(self) -> str:
        return self._parts()[0]

    @property
    def local_name(self) -> str:
        return self._parts()[1]

    @property
    def customization_id(self) -> str | None:
        return self._parts()[2]

    @property
    def version(self) -> str | None:
        return self._parts()[3]

    @classmethod
    def unchecked(cls, scheme: str, value: str) -> DocumentTypeId:
        """Normalise without syntax checks (scheme lower-cased, value trimmed, case kept)."""
        return cls(scheme.strip().lower(), value.strip())

    @classmethod
    def parse(cls, text: str) -> DocumentTypeId:
        """Parse `scheme::value`; a value without scheme gets `busdox-docid-qns`."""
        scheme, value = _split(text, DOCTYPE_SCHEME, "document type")
        return cls.of(value, scheme)

    @classmethod
    def of(cls, value: str, scheme: str = DOCTYPE_SCHEME) -> DocumentTypeId:
        scheme, value = _checked("document type", scheme, DOCTYPE_SCHEMES, value, MAX_DOCTYPE)
        head, sep, tail = value.partition("##")
        if "::" not in head or head.startswith("::") or head.endswith("::"):
            raise IdentifierError("bad-syntax", f"document type {value!r} must start with <root namespace>::<local name>")
        if sep and ("::" not in tail or tail.startswith("::") or tail.endswith("::")):
            raise IdentifierError("bad-syntax", f"document type {value!r} must end with ##<customization id>::<version>")
        if "*" in value:
            customization = tail.rpartition("::")[0] if sep else ""
            if scheme != DOCTYPE_WILDCARD_SCHEME or not customization.endswith("*") or customization.count("*") != 1 \
                    or "*" in head:
                raise IdentifierError("bad-wildcard", f"'*' is only allowed at the end of a {DOCTYPE_WILDCARD_SCHEME} customization id")
        return cls(scheme, value)

    @classmethod
    def from_parts(cls, root_namespace: str, local_name: str, customization_id: str, version: str = "2.1",
                   scheme: str = DOCTYPE_SCHEME) -> DocumentTypeId:
        return cls.of(f"{root_namespace}::{local_name}##{customization_id}::{version}", scheme)

    def wildcard_candidates(self) -> list[DocumentTypeId]:
        """Doctype ids to look for in a ServiceGroup, best first (PFUOI 4.3 wildcard selection).

        exact customization id, then `<id>*`, then repeatedly drop the last `@...` part and try `<id>*`.
        """
        ns, local, customization, version = self._parts()
        if customization is None:
            return [self]
        base = customization.removesuffix("*")
        ids = [base, base + "*"]
        shorter = base
        while "@" in shorter:
            shorter = shorter.rsplit("@", 1)[0]
            ids.append(shorter + "*")
        out: list[DocumentTypeId] = []
        for cid in ids:
            candidate = DocumentTypeId(DOCTYPE_WILDCARD_SCHEME, f"{ns}::{local}##{cid}::{version}")
            if candidate not in out:
                out.append(candidate)
        return out


# --- processes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessId(_SchemedId):
    """`cenbii-procid-ubl::<value>`; value case-sensitive."""

    scheme: str
    value: str

    @classmethod
    def unchecked(cls, scheme: str, value: str) -> ProcessId:
        return cls(scheme.strip().lower(), value.strip())

    @classmethod
    def parse(cls, text: str) -> ProcessId:
        scheme, value = _split(text, PROCESS_SCHEME, "process")
        return cls.of(value, scheme)

    @classmethod
    def of(cls, value: str, scheme: str = PROCESS_SCHEME) -> ProcessId:
        scheme, value = _checked("process", scheme, PROCESS_SCHEMES, value, MAX_PROCESS)
        return cls(scheme, value)


def decode_url_segment(segment: str) -> tuple[str, str]:
    """Inverse of url_segment: `busdox-docid-qns%3A%3Aurn...` -> (scheme, value)."""
    text = unquote(segment)
    if "::" not in text:
        raise IdentifierError("bad-syntax", f"URL segment {segment!r} is not scheme::value")
    scheme, value = text.split("::", 1)
    return scheme.lower(), value


# --- UBL ---------------------------------------------------------------------------------------

CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
SBDH = "http://www.unece.org/cefact/namespaces/StandardBusinessDocumentHeader"

# root local name -> (sender party path, receiver party path), each ending at a cac:Party-like element
_PARTIES: dict[str, tuple[str, str]] = {
    "Invoice": ("cac:AccountingSupplierParty/cac:Party", "cac:AccountingCustomerParty/cac:Party"),
    "CreditNote": ("cac:AccountingSupplierParty/cac:Party", "cac:AccountingCustomerParty/cac:Party"),
    "DebitNote": ("cac:AccountingSupplierParty/cac:Party", "cac:AccountingCustomerParty/cac:Party"),
    "SelfBilledInvoice": ("cac:AccountingCustomerParty/cac:Party", "cac:AccountingSupplierParty/cac:Party"),
    "SelfBilledCreditNote": ("cac:AccountingCustomerParty/cac:Party", "cac:AccountingSupplierParty/cac:Party"),
    "Order": ("cac:BuyerCustomerParty/cac:Party", "cac:SellerSupplierParty/cac:Party"),
    "OrderChange": ("cac:BuyerCustomerParty/cac:Party", "cac:SellerSupplierParty/cac:Party"),
    "OrderCancellation": ("cac:BuyerCustomerParty/cac:Party", "cac:SellerSupplierParty/cac:Party"),
    "OrderResponse": ("cac:SellerSupplierParty/cac:Party", "cac:BuyerCustomerParty/cac:Party"),
    "OrderResponseSimple": ("cac:SellerSupplierParty/cac:Party", "cac:BuyerCustomerParty/cac:Party"),
    "DespatchAdvice": ("cac:DespatchSupplierParty/cac:Party", "cac:DeliveryCustomerParty/cac:Party"),
    "ReceiptAdvice": ("cac:DeliveryCustomerParty/cac:Party", "cac:DespatchSupplierParty/cac:Party"),
    "Catalogue": ("cac:ProviderParty", "cac:ReceiverParty"),
    "ApplicationResponse": ("cac:SenderParty", "cac:ReceiverParty"),
    "Reminder": ("cac:AccountingSupplierParty/cac:Party", "cac:AccountingCustomerParty/cac:Party"),
    "Statement": ("cac:AccountingSupplierParty/cac:Party", "cac:AccountingCustomerParty/cac:Party"),
}
_FALLBACK = [("cac:SenderParty", "cac:ReceiverParty"),
             ("cac:AccountingSupplierParty/cac:Party", "cac:AccountingCustomerParty/cac:Party"),
             ("cac:SellerSupplierParty/cac:Party", "cac:BuyerCustomerParty/cac:Party")]
_NS = {"cac": CAC, "cbc": CBC}


@dataclass(frozen=True)
class DocumentIdentifiers:
    """The routing identifiers of one business document."""

    sender: ParticipantId
    receiver: ParticipantId
    document_type: DocumentTypeId
    process: ProcessId
    customization_id: str
    root_namespace: str
    local_name: str


def _endpoint(root, path: str, role: str, map_legacy: bool) -> ParticipantId:
    parties = root.xpath(path, namespaces=_NS)
    if not parties:
        raise IdentifierError("missing-element", f"{role}: {path} is missing")
    endpoints = parties[0].findall(f"{{{CBC}}}EndpointID")
    if len(endpoints) != 1:
        raise IdentifierError("missing-element", f"{role}: {path}/cbc:EndpointID is missing")
    scheme_id = endpoints[0].get("schemeID")
    if not scheme_id:
        raise IdentifierError("invalid-icd", f"{role}: cbc:EndpointID has no schemeID")
    try:
        return ParticipantId.of(endpoints[0].text or "", icd=scheme_id, map_legacy=map_legacy)
    except IdentifierError as exc:
        raise IdentifierError(exc.code, f"{role}: {exc.message}") from exc


def _text(root, name: str) -> str | None:
    el = root.find(f"{{{CBC}}}{name}")
    if el is None or not (el.text or "").strip():
        return None
    return el.text.strip()


def identifiers_from_ubl(xml: bytes, *, map_legacy: bool = False) -> DocumentIdentifiers:
    """Derive sender, receiver (EndpointID + schemeID), document type and process from UBL.

    Document type = `<root ns>::<root local name>##<CustomizationID>::<UBLVersionID or 2.1>`,
    process = `cenbii-procid-ubl::<ProfileID>`. An SBD is unwrapped to its UBL payload.
    """
    from gateway.discovery.xmlparse import (
        parse_xml,  # lazy: keeps this module import-light
    )

    root = parse_xml(xml, error=IdentifierError).getroot()
    if root.tag == f"{{{SBDH}}}StandardBusinessDocument":
        payload = [el for el in root if isinstance(el.tag, str) and el.tag != f"{{{SBDH}}}StandardBusinessDocumentHeader"]
        if len(payload) != 1:
            raise IdentifierError("not-ubl", "StandardBusinessDocument must hold exactly one payload element")
        root = payload[0]
    ns, _, local = root.tag[1:].partition("}") if root.tag.startswith("{") else ("", "", root.tag)
    if not ns.startswith("urn:oasis:names:specification:ubl:schema:xsd:"):
        raise IdentifierError("not-ubl", f"root element {root.tag} is not a UBL document")
    customization = _text(root, "CustomizationID")
    if customization is None:
        raise IdentifierError("missing-element", "cbc:CustomizationID is missing")
    profile = _text(root, "ProfileID")
    if profile is None:
        raise IdentifierError("missing-element", "cbc:ProfileID is missing")
    version = _text(root, "UBLVersionID") or "2.1"
    paths = [_PARTIES[local]] if local in _PARTIES else _FALLBACK
    last: IdentifierError | None = None
    for sender_path, receiver_path in paths:
        try:
            sender = _endpoint(root, sender_path, "sender", map_legacy)
            receiver = _endpoint(root, receiver_path, "receiver", map_legacy)
            break
        except IdentifierError as exc:
            last = exc
            if local in _PARTIES or exc.code != "missing-element":
                raise
    else:
        assert last is not None
        raise last
    return DocumentIdentifiers(
        sender=sender,
        receiver=receiver,
        document_type=DocumentTypeId.from_parts(ns, local, customization, version),
        process=ProcessId.of(profile),
        customization_id=customization,
        root_namespace=ns,
        local_name=local,
    )
