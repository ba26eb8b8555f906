"""SOAP client for eFaktura 2.0 at Mastercard Payment Services (MPS, ex-Nets).

Operations (document/literal SOAP 1.1 over HTTPS, `SOAPAction` = namespace + operation name, as on
MPS' public WSDL pages): `getEfakturaIdentifiers` (consumer lookup by fødselsnummer, or by name +
address ± e-mail/phone/birth date), `getBlackList` (consumers who blocked the issuer; offered by
`submitter-service` and the Combo API, not by the "issuer via MPS" service, hence its own
configurable endpoint), `addInvoices` (the payment claim + PDF presentation), and
`getConsignmentStatus` / `getInvoiceStatus` (polling; eFaktura never reports payment).

The request builders and response parsers are pure functions (unit-tested without a network);
`EfakturaClient` adds transport, WS-Security and error mapping. Responses are parsed without DTDs,
entities or network access and matched on local names, so a server that qualifies its response
elements differently still parses.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import re
import ssl
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Iterable

import aiohttp
from lxml import etree

from gateway.channels.base import ChannelError
from gateway.channels.efaktura.schema import NAMESPACE
from gateway.channels.efaktura.wssecurity import username_token_header

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
CONTENT_TYPE = "text/xml; charset=utf-8"
_PARSER = dict(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
               huge_tree=False)
_DOCTYPE = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)
AUTH_FAULTS = frozenset({"FailedAuthentication", "InvalidSecurity", "InvalidSecurityToken",
                         "FailedCheck", "SecurityTokenUnavailable", "MessageExpired"})
#: validationFault codes that mean "this consignment id was used before" (submitter-service 209;
#: Combo API 3002 duplicate shipment id).
DUPLICATE_CODES = frozenset({"209", "3002"})


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class IdentifierLookup:
    """One consumer to look up: by fødselsnummer, or by name + address (± e-mail/phone/birth date)."""

    social_security_number: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    street_address: str | None = None
    postal_code: str | None = None
    postal_place: str | None = None
    country_code: str | None = None
    email: str | None = None
    phone: str | None = None
    date_of_birth: dt.date | None = None

    @property
    def by_ssn(self) -> bool:
        return bool(self.social_security_number)

    def is_complete(self) -> bool:
        return self.by_ssn or all((self.first_name, self.last_name, self.street_address, self.postal_code))


@dataclass(frozen=True)
class IdentifierResult:
    status: str  # FOUND, NOT_FOUND, AMBIGUOUS (upper-cased as received)
    efaktura_identifier: str | None = None

    @property
    def found(self) -> bool:
        return self.status == "FOUND" and bool(self.efaktura_identifier)


@dataclass(frozen=True)
class BlockedConsumer:
    efaktura_identifier: str | None
    social_security_number: str | None = None


@dataclass(frozen=True)
class ClaimInvoice:
    """The payment claim of one invoice, as addInvoices carries it."""

    invoice_number: str
    issuer_orgnr: str
    kid: str
    amount: Decimal
    due_date: dt.date
    account: str
    pdf: bytes
    efaktura_identifier: str | None = None
    social_security_number: str | None = None
    efaktura_reference: str | None = None
    issuer_name: str | None = None
    issue_date: dt.date | None = None


@dataclass(frozen=True)
class AddInvoicesResult:
    consignment_id: str
    status: str


@dataclass(frozen=True)
class ConsignmentStatus:
    consignment_id: str
    status: str
    number_of_invoices: int | None = None
    status_time: dt.datetime | None = None


@dataclass(frozen=True)
class InvoiceStatus:
    invoice_number: str
    status: str
    status_time: dt.datetime | None = None
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class FaultError:
    code: str | None
    message: str


class EfakturaError(ChannelError):
    """A refused or failed call; `fault_code`/`errors` keep what the service said."""

    def __init__(self, code: str, message: str, *, transient: bool = False,
                 fault_code: str | None = None, errors: tuple[FaultError, ...] = (),
                 http_status: int | None = None):
        super().__init__(code, message, transient=transient)
        self.fault_code, self.errors, self.http_status = fault_code, errors, http_status

    @property
    def error_codes(self) -> tuple[str, ...]:
        return tuple(e.code for e in self.errors if e.code)


# --------------------------------------------------------------------------- building


def _q(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


def _sub(parent: etree._Element, ns: str, name: str, text: str | None = None) -> etree._Element:
    el = etree.SubElement(parent, _q(ns, name))
    if text is not None:
        el.text = text
    return el


def new_message_identifier() -> str:
    """A fresh auditInformation/messageIdentifier (5-50 characters) per request/response pair."""
    return f"sendgw-{uuid.uuid4().hex}"


def _start(ns: str, operation: str, message_id: str, service_provider: str | None) -> etree._Element:
    root = etree.Element(_q(ns, operation), nsmap={"ef": ns})
    audit = _sub(root, ns, "auditInformation")
    _sub(audit, ns, "messageIdentifier", message_id)
    if service_provider:
        _sub(root, ns, "serviceProvider", service_provider)
    return root


def format_amount(amount: Decimal) -> str:
    """xs:decimal with exactly two decimals, no grouping: `1234.50`."""
    return f"{amount.quantize(Decimal('0.01')):f}"


def build_add_invoices(consignment_id: str, invoices: Iterable[ClaimInvoice], *,
                       namespace: str = NAMESPACE, message_id: str | None = None,
                       service_provider: str | None = None) -> etree._Element:
    ns = namespace
    root = _start(ns, "addInvoices", message_id or new_message_identifier(), service_provider)
    _sub(root, ns, "consignmentId", consignment_id)
    holder = _sub(root, ns, "invoices")
    for inv in invoices:
        el = _sub(holder, ns, "invoice")
        _sub(el, ns, "invoiceNumber", inv.invoice_number)
        if inv.efaktura_reference:
            _sub(el, ns, "efakturaReference", inv.efaktura_reference)
        elif inv.efaktura_identifier:
            _sub(el, ns, "efakturaIdentifier", inv.efaktura_identifier)
        elif inv.social_security_number:
            _sub(el, ns, "socialSecurityNumber", inv.social_security_number)
        _sub(el, ns, "issuerOrganizationNumber", inv.issuer_orgnr)
        if inv.issuer_name:
            _sub(el, ns, "issuerName", inv.issuer_name[:100])
        _sub(el, ns, "kid", inv.kid)
        _sub(el, ns, "amount", format_amount(inv.amount))
        _sub(el, ns, "dueDate", inv.due_date.isoformat())
        if inv.issue_date:
            _sub(el, ns, "issueDate", inv.issue_date.isoformat())
        _sub(el, ns, "accountNumber", inv.account)
        pres = _sub(el, ns, "presentation")
        _sub(pres, ns, "mimeType", "application/pdf")
        _sub(pres, ns, "content", base64.b64encode(inv.pdf).decode("ascii"))
    return root


def build_get_identifiers(issuer_orgnr: str, lookups: Iterable[IdentifierLookup], *,
                          namespace: str = NAMESPACE, message_id: str | None = None,
                          service_provider: str | None = None) -> etree._Element:
    ns = namespace
    root = _start(ns, "getEfakturaIdentifiers", message_id or new_message_identifier(), service_provider)
    _sub(root, ns, "issuerOrganizationNumber", issuer_orgnr)
    reqs = _sub(root, ns, "requests")
    for lk in lookups:
        req = _sub(reqs, ns, "request")
        if lk.social_security_number:
            _sub(req, ns, "socialSecurityNumber", lk.social_security_number)
            continue
        name = _sub(req, ns, "name")
        _sub(name, ns, "firstName", lk.first_name)
        _sub(name, ns, "lastName", lk.last_name)
        addr = _sub(req, ns, "address")
        _sub(addr, ns, "streetAddress", lk.street_address)
        _sub(addr, ns, "postalCode", lk.postal_code)
        if lk.postal_place:
            _sub(addr, ns, "postalPlace", lk.postal_place)
        if lk.country_code:
            _sub(addr, ns, "countryCode", lk.country_code)
        if lk.email:
            _sub(req, ns, "email", lk.email)
        if lk.phone:
            _sub(req, ns, "phoneNumber", lk.phone)
        if lk.date_of_birth:
            _sub(req, ns, "dateOfBirth", lk.date_of_birth.isoformat())
    return root


def build_get_blacklist(issuer_orgnr: str, *, namespace: str = NAMESPACE, message_id: str | None = None,
                        service_provider: str | None = None) -> etree._Element:
    root = _start(namespace, "getBlackList", message_id or new_message_identifier(), service_provider)
    _sub(root, namespace, "issuerOrganizationNumber", issuer_orgnr)
    return root


def build_get_consignment_status(consignment_id: str, *, namespace: str = NAMESPACE,
                                 message_id: str | None = None,
                                 service_provider: str | None = None) -> etree._Element:
    root = _start(namespace, "getConsignmentStatus", message_id or new_message_identifier(), service_provider)
    _sub(root, namespace, "consignmentId", consignment_id)
    return root


def build_get_invoice_status(consignment_id: str, invoice_number: str | None = None, *,
                             namespace: str = NAMESPACE, message_id: str | None = None,
                             service_provider: str | None = None) -> etree._Element:
    root = _start(namespace, "getInvoiceStatus", message_id or new_message_identifier(), service_provider)
    _sub(root, namespace, "consignmentId", consignment_id)
    if invoice_number:
        _sub(root, namespace, "invoiceNumber", invoice_number)
    return root


def set_message_identifier(body: etree._Element, message_id: str) -> None:
    """Give a stored request (e.g. a rendered addInvoices) a fresh messageIdentifier."""
    for el in body.iter():
        if isinstance(el.tag, str) and etree.QName(el).localname == "messageIdentifier":
            el.text = message_id
            return


def build_envelope(body: etree._Element, security: etree._Element | None = None) -> bytes:
    env = etree.Element(_q(SOAP11, "Envelope"), nsmap={"soapenv": SOAP11})
    if security is not None:
        etree.SubElement(env, _q(SOAP11, "Header")).append(security)
    etree.SubElement(env, _q(SOAP11, "Body")).append(body)
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


def soap_action(namespace: str, operation: str) -> str:
    """`https://…/v1/addInvoices` (MPS' pages: namespace followed by the operation name)."""
    return namespace + operation if namespace.endswith("/") else f"{namespace}/{operation}"


# --------------------------------------------------------------------------- parsing


def parse_xml(data: bytes) -> etree._Element:
    if _DOCTYPE.search(data[:4096]):
        raise EfakturaError("bad-response", "response carries a DOCTYPE or entity declaration")
    try:
        return etree.fromstring(data, etree.XMLParser(**_PARSER))
    except etree.XMLSyntaxError as exc:
        raise EfakturaError("bad-response", f"response is not XML: {exc}", transient=True) from exc


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _children(el: etree._Element, name: str) -> list[etree._Element]:
    return [c for c in el if _local(c) == name]


def _child_text(el: etree._Element, *names: str) -> str | None:
    for c in el:
        if _local(c) in names:
            return (c.text or "").strip() or None
    return None


def _descendants(el: etree._Element, name: str) -> list[etree._Element]:
    return [d for d in el.iter() if _local(d) == name]


def _datetime(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


_AUTH_WORDS = re.compile(r"authenticat|unauthori[sz]ed|credential|security token|forbidden", re.IGNORECASE)


def _soap12_code(fault: etree._Element) -> str:
    """SOAP 1.2 `Code/Value`, preferring the most specific `Subcode/Value`."""
    values = [(v.text or "").strip() for v in _descendants(fault, "Value") if (v.text or "").strip()]
    return values[-1] if values else ""


def _fault_error(fault: etree._Element, http_status: int | None) -> EfakturaError:
    code_text = (_child_text(fault, "faultcode") or _soap12_code(fault)).strip()
    fault_local = code_text.split(":")[-1]
    reason = next(iter(_descendants(fault, "Text")), None)
    message = _child_text(fault, "faultstring") or (reason.text if reason is not None else None) or "SOAP fault"
    detail = next(iter(_children(fault, "detail") or _children(fault, "Detail")), None)
    errors: list[FaultError] = []
    kind = None
    if detail is not None:
        for d in detail:
            kind = _local(d)
            break
        for err in _descendants(detail, "error"):
            errors.append(FaultError(_child_text(err, "code", "errorCode"),
                                     _child_text(err, "message", "errorMessage", "description") or ""))
        if not errors:
            for holder in detail.iter():
                code = _child_text(holder, "errorCode", "code")
                if code:
                    errors.append(FaultError(code, _child_text(holder, "errorMessage", "message") or message))
                    break
    summary = "; ".join(f"{e.code}: {e.message}" if e.code else e.message for e in errors) or message
    common = dict(fault_code=code_text, errors=tuple(errors), http_status=http_status)
    if fault_local in AUTH_FAULTS or (not errors and _AUTH_WORDS.search(message)):
        return EfakturaError("auth-refused", f"eFaktura refused the credentials: {message}", **common)
    if any(e.code in DUPLICATE_CODES for e in errors):
        return EfakturaError("duplicate-consignment", summary, **common)
    if kind == "serverFault" or fault_local in ("Server", "Receiver"):
        return EfakturaError("server-error", f"eFaktura server fault: {summary}", transient=True, **common)
    return EfakturaError("invalid-data", f"eFaktura rejected the request: {summary}", **common)


def parse_response(data: bytes, http_status: int = 200) -> etree._Element:
    """The operation's response element from a SOAP envelope; a Fault raises `EfakturaError`."""
    root = parse_xml(data)
    if _local(root) != "Envelope":
        raise EfakturaError("bad-response", "response is not a SOAP envelope", transient=True)
    body = next(iter(_children(root, "Body")), None)
    if body is None or len(body) == 0:
        raise EfakturaError("bad-response", "SOAP envelope without a Body element", transient=True)
    first = next((c for c in body if isinstance(c.tag, str)), None)
    if first is None:
        raise EfakturaError("bad-response", "empty SOAP Body", transient=True)
    if _local(first) == "Fault":
        raise _fault_error(first, http_status)
    return first


def parse_identifiers_response(resp: etree._Element) -> list[IdentifierResult]:
    """One result per lookup, in request order; a bare identifier (no wrappers) counts as one FOUND."""
    out = []
    for r in _descendants(resp, "response"):
        ident = _child_text(r, "efakturaIdentifier")
        status = (_child_text(r, "status") or ("FOUND" if ident else "NOT_FOUND")).upper()
        out.append(IdentifierResult(status, ident))
    if not out:
        idents = [(e.text or "").strip() for e in _descendants(resp, "efakturaIdentifier") if (e.text or "").strip()]
        status = next(((e.text or "").strip().upper() for e in _descendants(resp, "status")), None)
        if len(idents) == 1:
            out.append(IdentifierResult("FOUND", idents[0]))
        elif not idents:
            out.append(IdentifierResult(status or "NOT_FOUND"))
    return out


def parse_blacklist_response(resp: etree._Element) -> list[BlockedConsumer]:
    out = []
    for entry in _descendants(resp, "blockedConsumer"):
        out.append(BlockedConsumer(_child_text(entry, "efakturaIdentifier"),
                                   _child_text(entry, "socialSecurityNumber")))
    if not out:  # a flat list of identifiers
        out = [BlockedConsumer((e.text or "").strip()) for e in _descendants(resp, "efakturaIdentifier")
               if (e.text or "").strip()]
    return out


def parse_add_invoices_response(resp: etree._Element, consignment_id: str) -> AddInvoicesResult:
    status = (_child_text(resp, "consignmentStatus", "status") or "RECEIVED").upper()
    return AddInvoicesResult(_child_text(resp, "consignmentId") or consignment_id, status)


def parse_consignment_status(resp: etree._Element, consignment_id: str) -> ConsignmentStatus:
    holder = next(iter(_descendants(resp, "consignment")), resp)
    status = _child_text(holder, "status", "consignmentStatus")
    if not status:
        raise EfakturaError("bad-response", "consignment status without a status", transient=True)
    count = _child_text(holder, "numberOfInvoices")
    return ConsignmentStatus(_child_text(holder, "consignmentId") or consignment_id, status.upper(),
                             int(count) if count and count.isdigit() else None,
                             _datetime(_child_text(holder, "statusTime", "statusDate")))


def parse_invoice_statuses(resp: etree._Element) -> list[InvoiceStatus]:
    out = []
    for st in _descendants(resp, "invoiceStatus"):
        number = _child_text(st, "invoiceNumber")
        status = _child_text(st, "status")
        if not number or not status:
            continue
        out.append(InvoiceStatus(number, status.upper(), _datetime(_child_text(st, "statusTime", "statusDate")),
                                 _child_text(st, "errorCode"), _child_text(st, "errorMessage")))
    return out


# --------------------------------------------------------------------------- transport


@dataclass(frozen=True)
class ClientSettings:
    url: str
    namespace: str = NAMESPACE
    blacklist_url: str | None = None  # getBlackList endpoint (submitter-service / Combo API)
    blacklist_namespace: str | None = None
    username: str | None = None  # WS-Security UsernameToken when set
    password: str | None = None
    password_digest: bool = False  # PasswordDigest instead of PasswordText
    client_cert_file: str | None = None  # TLS client certificate (PEM) when set
    client_key_file: str | None = None
    ca_file: str | None = None  # trust anchors for the server certificate (default: system)
    verify_tls: bool = True
    timeout_seconds: float = 30.0
    service_provider_orgnr: str | None = None
    extra_headers: dict[str, str] = field(default_factory=dict)


class EfakturaClient:
    """Async SOAP client; reuse one per tenant (it may own an aiohttp session)."""

    def __init__(self, settings: ClientSettings, session: aiohttp.ClientSession | None = None):
        self.settings = settings
        self._session = session
        self._own_session = session is None
        self._ssl: ssl.SSLContext | bool | None = self._ssl_context()

    def _ssl_context(self) -> ssl.SSLContext | bool | None:
        s = self.settings
        if not (s.client_cert_file or s.ca_file or not s.verify_tls):
            return None
        ctx = ssl.create_default_context(cafile=s.ca_file)
        if not s.verify_tls:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if s.client_cert_file:
            ctx.load_cert_chain(s.client_cert_file, s.client_key_file)
        return ctx

    async def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        return self._session

    async def close(self) -> None:
        if self._own_session and self._session is not None and not self._session.closed:
            await self._session.close()

    def _security(self) -> etree._Element | None:
        s = self.settings
        if not s.username:
            return None
        return username_token_header(s.username, s.password or "", digest=s.password_digest)

    async def call(self, operation: str, body: etree._Element, *, url: str | None = None,
                   namespace: str | None = None) -> etree._Element:
        """POST one SOAP request; return the response element or raise `EfakturaError`."""
        s = self.settings
        data = build_envelope(body, self._security())
        headers = {"Content-Type": CONTENT_TYPE,
                   "SOAPAction": f'"{soap_action(namespace or s.namespace, operation)}"', **s.extra_headers}
        session = await self._get_session()
        try:
            async with session.post(url or s.url, data=data, headers=headers, ssl=self._ssl,
                                    timeout=aiohttp.ClientTimeout(total=s.timeout_seconds)) as resp:
                raw = await resp.read()
                status = resp.status
                ctype = resp.headers.get("Content-Type", "")
        except asyncio.TimeoutError as exc:
            raise EfakturaError("timeout", f"eFaktura {operation} timed out after {s.timeout_seconds}s",
                                transient=True) from exc
        except aiohttp.ClientSSLError as exc:
            raise EfakturaError("auth-refused", f"TLS handshake with eFaktura failed: {exc}") from exc
        except aiohttp.ClientError as exc:
            raise EfakturaError("transport-error", f"eFaktura {operation}: {exc}", transient=True) from exc
        if status in (401, 403):
            raise EfakturaError("auth-refused", f"eFaktura {operation}: HTTP {status}", http_status=status)
        if status == 429 or (status >= 500 and b"Fault" not in raw):
            raise EfakturaError("server-error", f"eFaktura {operation}: HTTP {status}", transient=True,
                                http_status=status)
        if status != 200:
            if "xml" in ctype or raw.lstrip().startswith(b"<"):
                parse_response(raw, status)  # raises on the SOAP Fault it should carry
            raise EfakturaError("http-error", f"eFaktura {operation}: HTTP {status}", http_status=status)
        return parse_response(raw, status)

    # -- operations -------------------------------------------------------------------------------

    async def get_identifiers(self, issuer_orgnr: str,
                              lookups: list[IdentifierLookup]) -> list[IdentifierResult]:
        s = self.settings
        body = build_get_identifiers(issuer_orgnr, lookups, namespace=s.namespace,
                                     service_provider=s.service_provider_orgnr)
        results = parse_identifiers_response(await self.call("getEfakturaIdentifiers", body))
        if len(results) != len(lookups):
            raise EfakturaError("bad-response", f"asked {len(lookups)} lookups, got {len(results)} answers",
                                transient=True)
        return results

    async def get_blacklist(self, issuer_orgnr: str) -> list[BlockedConsumer]:
        s = self.settings
        ns = s.blacklist_namespace or s.namespace
        body = build_get_blacklist(issuer_orgnr, namespace=ns, service_provider=s.service_provider_orgnr)
        resp = await self.call("getBlackList", body, url=s.blacklist_url or s.url, namespace=ns)
        return parse_blacklist_response(resp)

    async def add_invoices(self, body: etree._Element) -> AddInvoicesResult:
        """Send a built (or rendered) addInvoices element; a fresh messageIdentifier per attempt."""
        set_message_identifier(body, new_message_identifier())
        cid = _child_text(body, "consignmentId") or ""
        return parse_add_invoices_response(await self.call("addInvoices", body), cid)

    async def get_consignment_status(self, consignment_id: str) -> ConsignmentStatus:
        s = self.settings
        body = build_get_consignment_status(consignment_id, namespace=s.namespace,
                                            service_provider=s.service_provider_orgnr)
        return parse_consignment_status(await self.call("getConsignmentStatus", body), consignment_id)

    async def get_invoice_status(self, consignment_id: str,
                                 invoice_number: str | None = None) -> list[InvoiceStatus]:
        s = self.settings
        body = build_get_invoice_status(consignment_id, invoice_number, namespace=s.namespace,
                                        service_provider=s.service_provider_orgnr)
        return parse_invoice_statuses(await self.call("getInvoiceStatus", body))
