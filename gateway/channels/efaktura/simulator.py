"""A faithful local eFaktura (MPS) SOAP service for tests: registry, rules, auth, async statuses.

What it enforces (channel notes §2 and §12):

* transport: POST, `text/xml` (SOAP 1.1), a `SOAPAction` equal to namespace + operation, one
  operation element in the service namespace, no DOCTYPE/entities;
* auth: WS-Security UsernameToken (PasswordText or PasswordDigest with `Created` within ±5 minutes
  and no replayed nonce) for every registered user, and optionally a TLS client certificate whose
  subject CN is registered (start with an `ssl.SSLContext` that requires client certificates);
  refusals are SOAP faults `wsse:FailedAuthentication` / `wsse:InvalidSecurity`;
* structure: every request is validated against `schema.request_schema` (order, names, lengths,
  patterns, xs:date, two-decimal amounts), reported as a `validationFault`;
* business rules: `serviceProvider` required for distributors (5009) and refused for others (5010),
  one of efakturaReference / efakturaIdentifier / socialSecurityNumber (5003), duplicate
  consignmentId (209), unknown consignment (201), issuer agreement exists and the user may act for
  it, orgnr / kontonummer MOD11, the account registered to the issuer (when the issuer lists
  accounts), KID length and check digit per the issuer's configured MOD10/MOD11, fødselsnummer check
  digits, due date not in the past, issue date not after due date, the presentation a PDF;
* registry: consumers with "Ja takk til alle" consent (seedable, name+address matching with
  ambiguity, narrowing by e-mail/phone/birth date), blocks per issuer (`getBlackList`);
* asynchronous statuses: an accepted consignment is RECEIVED; after `process_after_polls` status
  polls (or a control call) each invoice becomes PROCESSED, or REJECTED when the consumer has no
  consent any more or has blocked the issuer since; tests can force any status.

Error codes that MPS publishes (201, 209, 5003, 5009, 5010) are used as published; the other codes
are this simulator's own names (MPS' list is not public — see docs/channels-efaktura.md).
Control endpoints under `/_control/` (loopback only) seed and steer it over HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import re
import ssl
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable

from aiohttp import web
from lxml import etree

from gateway.channels.efaktura.schema import NAMESPACE, OPERATIONS, request_schema
from gateway.channels.efaktura.wssecurity import (WSSE, PASSWORD_DIGEST, WsSecurityError,
                                                  parse_username_token, verify_password)
from gateway.kid import KidError, validate_kid
from gateway.norwegian_ids import NorwegianIdError, validate_fodselsnummer, validate_kontonr, validate_orgnr

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
_PARSER = dict(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False)
_DOCTYPE = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)

#: Invoice/consignment states the simulator plays back.
RECEIVED, PROCESSED, REJECTED, CANCELLED = "RECEIVED", "PROCESSED", "REJECTED", "CANCELLED"


# --------------------------------------------------------------------------- registry values


@dataclass
class SimConsumer:
    efaktura_identifier: str
    social_security_number: str | None = None
    first_name: str = ""
    last_name: str = ""
    street_address: str = ""
    postal_code: str = ""
    postal_place: str = ""
    email: str | None = None
    phone: str | None = None
    date_of_birth: dt.date | None = None
    consent: bool = True  # "Ja takk til alle" (or "Alltid Vipps eFaktura")
    vipps: bool = False  # chose to see eFaktura in Vipps too (invisible to issuers)


@dataclass
class SimIssuer:
    orgnr: str
    name: str = ""
    kid_algorithm: str | None = None  # "mod10", "mod11" or None (either)
    accounts: set[str] = field(default_factory=set)  # empty: any valid kontonummer


@dataclass
class SimUser:
    username: str
    password: str
    issuers: set[str] = field(default_factory=set)  # orgnrs this user may submit for; empty = any registered
    service_provider: str | None = None  # orgnr when the user is a distributor acting for issuers
    certificate_cn: str | None = None  # required TLS client certificate subject CN, if any


@dataclass
class SimInvoice:
    invoice_number: str
    issuer: str
    recipient_kind: str  # efakturaIdentifier / socialSecurityNumber / efakturaReference
    recipient: str
    kid: str
    amount: Decimal
    due_date: dt.date
    account: str
    pdf: bytes
    status: str = RECEIVED
    status_time: dt.datetime | None = None
    error_code: str | None = None
    error_message: str | None = None


@dataclass
class SimConsignment:
    consignment_id: str
    username: str
    invoices: list[SimInvoice]
    status: str = RECEIVED
    status_time: dt.datetime | None = None
    polls: int = 0


class _Fault(Exception):
    def __init__(self, faultcode: str, message: str, *, kind: str = "validationFault",
                 errors: list[tuple[str, str]] | None = None, http_status: int = 500):
        super().__init__(message)
        self.faultcode, self.message, self.kind = faultcode, message, kind
        self.errors = errors or []
        self.http_status = http_status


def _norm(text: str | None) -> str:
    return " ".join((text or "").casefold().replace(".", " ").split())


def _phone_key(text: str | None) -> str:
    digits = re.sub(r"\D", "", text or "")
    return digits[-8:]


# --------------------------------------------------------------------------- simulator


class EfakturaSimulator:
    """Run with `async with EfakturaSimulator() as sim:`; `sim.url` is the service endpoint."""

    path = "/invoicing-nets-submitter/v1/"

    def __init__(self, *, namespace: str = NAMESPACE, process_after_polls: int = 2,
                 clock: Callable[[], dt.datetime] | None = None, max_pdf_bytes: int = 10 * 1024 * 1024,
                 clock_skew: dt.timedelta = dt.timedelta(minutes=5), require_auth: bool = True):
        self.namespace = namespace
        self.process_after_polls = process_after_polls
        self.clock = clock or (lambda: dt.datetime.now(dt.timezone.utc))
        self.max_pdf_bytes = max_pdf_bytes
        self.clock_skew = clock_skew
        self.require_auth = require_auth
        self.delay: float = 0.0  # seconds before answering (timeouts)
        self.fail_next: list[int] = []  # HTTP statuses to answer with (plain, no SOAP) next
        self.users: dict[str, SimUser] = {}
        self.issuers: dict[str, SimIssuer] = {}
        self.consumers: list[SimConsumer] = []
        self.blocks: dict[str, set[str]] = {}
        self.consignments: dict[tuple[str, str], SimConsignment] = {}
        self.requests: list[dict[str, Any]] = []
        self._nonces: set[bytes] = set()
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.base_url = ""

    # -- seeding --------------------------------------------------------------------------------

    def add_user(self, username: str, password: str, **kw: Any) -> SimUser:
        user = SimUser(username, password, **kw)
        self.users[username] = user
        return user

    def add_issuer(self, orgnr: str, **kw: Any) -> SimIssuer:
        issuer = SimIssuer(orgnr, **kw)
        self.issuers[orgnr] = issuer
        return issuer

    def add_consumer(self, efaktura_identifier: str, **kw: Any) -> SimConsumer:
        consumer = SimConsumer(efaktura_identifier, **kw)
        self.consumers.append(consumer)
        return consumer

    def block(self, issuer_orgnr: str, efaktura_identifier: str) -> None:
        """The consumer reserves against this issuer (shows in getBlackList, stops deliveries)."""
        self.blocks.setdefault(issuer_orgnr, set()).add(efaktura_identifier)

    def unblock(self, issuer_orgnr: str, efaktura_identifier: str) -> None:
        self.blocks.get(issuer_orgnr, set()).discard(efaktura_identifier)

    def withdraw_consent(self, efaktura_identifier: str) -> None:
        for c in self.consumers:
            if c.efaktura_identifier == efaktura_identifier:
                c.consent = False

    def consignment(self, consignment_id: str, username: str | None = None) -> SimConsignment:
        for (user, cid), cons in self.consignments.items():
            if cid == consignment_id and (username is None or user == username):
                return cons
        raise KeyError(consignment_id)

    def process(self, consignment_id: str) -> SimConsignment:
        """Finish processing now (as if the polls had run out)."""
        cons = self.consignment(consignment_id)
        self._process(cons)
        return cons

    def set_invoice_status(self, consignment_id: str, invoice_number: str, status: str,
                           error_code: str | None = None, error_message: str | None = None) -> None:
        cons = self.consignment(consignment_id)
        now = self.clock()
        for inv in cons.invoices:
            if inv.invoice_number == invoice_number:
                inv.status, inv.status_time = status, now
                inv.error_code, inv.error_message = error_code, error_message
                break
        else:
            raise KeyError(invoice_number)
        self._settle_consignment(cons)

    def operations(self, name: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.requests if name is None or r.get("operation") == name]

    # -- lifecycle --------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post(self.path, self._handle)
        app.router.add_post("/_control/consumers", self._ctl_consumer)
        app.router.add_post("/_control/blocks", self._ctl_block)
        app.router.add_post("/_control/consignments/{cid}/process", self._ctl_process)
        app.router.add_post("/_control/consignments/{cid}/invoices/{number}/status", self._ctl_status)
        app.router.add_get("/_control/requests", self._ctl_requests)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0,
                    ssl_context: ssl.SSLContext | None = None) -> "EfakturaSimulator":
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=ssl_context)
        await site.start()
        sock = site._server.sockets[0]  # type: ignore[union-attr]
        real_port = sock.getsockname()[1]
        scheme = "https" if ssl_context else "http"
        self.base_url = f"{scheme}://{host}:{real_port}"
        self.url = self.base_url + self.path
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "EfakturaSimulator":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- SOAP plumbing --------------------------------------------------------------------------

    def _q(self, name: str) -> str:
        return f"{{{self.namespace}}}{name}"

    def _envelope(self, body_child: etree._Element) -> bytes:
        env = etree.Element(f"{{{SOAP11}}}Envelope", nsmap={"soapenv": SOAP11, "ef": self.namespace})
        etree.SubElement(env, f"{{{SOAP11}}}Body").append(body_child)
        return etree.tostring(env, xml_declaration=True, encoding="UTF-8")

    def _fault_response(self, fault: _Fault) -> web.Response:
        nsmap = {"soapenv": SOAP11, "ef": self.namespace, "wsse": WSSE}
        env = etree.Element(f"{{{SOAP11}}}Envelope", nsmap=nsmap)
        body = etree.SubElement(env, f"{{{SOAP11}}}Body")
        f = etree.SubElement(body, f"{{{SOAP11}}}Fault")
        etree.SubElement(f, "faultcode").text = fault.faultcode
        etree.SubElement(f, "faultstring").text = fault.message
        if fault.errors or fault.kind == "serverFault":
            detail = etree.SubElement(f, "detail")
            holder = etree.SubElement(detail, self._q(fault.kind))
            errors = etree.SubElement(holder, self._q("errors"))
            for code, message in fault.errors:
                err = etree.SubElement(errors, self._q("error"))
                etree.SubElement(err, self._q("code")).text = code
                etree.SubElement(err, self._q("message")).text = message
        data = etree.tostring(env, xml_declaration=True, encoding="UTF-8")
        return web.Response(status=fault.http_status, body=data, content_type="text/xml", charset="utf-8")

    def _response(self, op: str, message_id: str) -> etree._Element:
        resp = etree.Element(self._q(op + "Response"), nsmap={"ef": self.namespace})
        audit = etree.SubElement(resp, self._q("auditInformation"))
        etree.SubElement(audit, self._q("messageIdentifier")).text = message_id
        return resp

    def _sub(self, parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
        el = etree.SubElement(parent, self._q(name))
        if text is not None:
            el.text = text
        return el

    def _text(self, el: etree._Element, name: str) -> str | None:
        found = el.find(self._q(name))
        return found.text if found is not None else None

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        record: dict[str, Any] = {"headers": dict(request.headers), "body": raw, "operation": None}
        self.requests.append(record)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_next:
            return web.Response(status=self.fail_next.pop(0), text="injected failure")
        try:
            return await self._dispatch(request, raw, record)
        except _Fault as fault:
            record["fault"] = (fault.faultcode, fault.errors)
            return self._fault_response(fault)
        except Exception as exc:  # a simulator bug must still look like the service's server fault
            fault = _Fault("soapenv:Server", f"internal error: {exc!r}", kind="serverFault")
            record["fault"] = (fault.faultcode, [])
            return self._fault_response(fault)

    def _client_fault(self, message: str, errors: list[tuple[str, str]] | None = None) -> _Fault:
        return _Fault("soapenv:Client", message, errors=errors)

    async def _dispatch(self, request: web.Request, raw: bytes, record: dict[str, Any]) -> web.Response:
        ctype = request.headers.get("Content-Type", "")
        if not ctype.lower().startswith("text/xml"):
            return web.Response(status=415, text="SOAP 1.1 requires Content-Type text/xml")
        if _DOCTYPE.search(raw[:4096]):
            raise self._client_fault("DOCTYPE and entity declarations are not allowed")
        try:
            env = etree.fromstring(raw, etree.XMLParser(**_PARSER))
        except etree.XMLSyntaxError as exc:
            raise self._client_fault(f"request is not well-formed XML: {exc}") from exc
        if env.tag != f"{{{SOAP11}}}Envelope":
            raise _Fault("soapenv:VersionMismatch", "expected a SOAP 1.1 Envelope")
        header = env.find(f"{{{SOAP11}}}Header")
        body = env.find(f"{{{SOAP11}}}Body")
        children = [c for c in body if isinstance(c.tag, str)] if body is not None else []
        if len(children) != 1:
            raise self._client_fault("the SOAP Body must hold exactly one operation element")
        op_el = children[0]
        qn = etree.QName(op_el)
        if qn.namespace != self.namespace or qn.localname not in OPERATIONS:
            raise self._client_fault(f"unknown operation {op_el.tag}")
        op = qn.localname
        record["operation"] = op
        action = request.headers.get("SOAPAction", "").strip().strip('"')
        if action != self.namespace + op:
            raise self._client_fault(f"SOAPAction {action!r} does not match operation {op}")
        user = self._authenticate(request, header)
        record["user"] = user.username if user else None
        schema = request_schema(self.namespace)
        if not schema.validate(op_el):
            errs = [("SCHEMA", f"line {e.line}: {e.message}") for e in schema.error_log]
            raise self._client_fault("request does not match the schema", errs)
        self._check_service_provider(op_el, user)
        message_id = op_el.find(self._q("auditInformation")).findtext(self._q("messageIdentifier")) or ""
        handler = getattr(self, "_op_" + op)
        resp = handler(op_el, user, self._response(op, message_id))
        return web.Response(body=self._envelope(resp), content_type="text/xml", charset="utf-8")

    # -- auth -----------------------------------------------------------------------------------

    def _auth_fault(self, code: str, message: str) -> _Fault:
        return _Fault(f"wsse:{code}", message, kind="")

    def _authenticate(self, request: web.Request, header: etree._Element | None) -> SimUser | None:
        if not self.require_auth:
            return None
        try:
            token = parse_username_token(header)
        except WsSecurityError as exc:
            raise self._auth_fault(exc.code, str(exc)) from exc
        user = self.users.get(token.username)
        if user is None or not verify_password(token, user.password):
            raise self._auth_fault("FailedAuthentication", "The security token could not be authenticated")
        if token.password_type == PASSWORD_DIGEST or token.created is not None:
            if token.created is None:
                raise self._auth_fault("InvalidSecurityToken", "PasswordDigest needs wsu:Created")
            if abs(self.clock() - token.created) > self.clock_skew:
                raise self._auth_fault("FailedAuthentication", "wsu:Created outside the allowed clock skew")
        if token.nonce is not None:
            if token.nonce in self._nonces:
                raise self._auth_fault("FailedAuthentication", "replayed nonce")
            self._nonces.add(token.nonce)
        if user.certificate_cn is not None:
            peer = request.transport.get_extra_info("peercert") if request.transport else None
            cns = [v for rdn in (peer or {}).get("subject", ()) for k, v in rdn if k == "commonName"]
            if user.certificate_cn not in cns:
                raise self._auth_fault("FailedAuthentication", "client certificate missing or not registered")
        return user

    def _check_service_provider(self, op_el: etree._Element, user: SimUser | None) -> None:
        sp = self._text(op_el, "serviceProvider")
        if user is None:
            return
        if user.service_provider and not sp:
            raise self._client_fault("service provider id missing", [("5009", "User must supply service provider id")])
        if sp and not user.service_provider:
            raise self._client_fault("service provider id not allowed", [("5010", "User not allowed to supply service provider id")])
        if sp and sp != user.service_provider:
            raise self._client_fault("service provider id not allowed", [("5010", "service provider id does not belong to the user")])

    def _check_issuer(self, orgnr: str, user: SimUser | None, where: str) -> list[tuple[str, str]]:
        try:
            validate_orgnr(orgnr)
        except NorwegianIdError as exc:
            return [("INVALID_ORGANIZATION_NUMBER", f"{where}: {exc.message}")]
        if orgnr not in self.issuers:
            return [("NO_ISSUER_AGREEMENT", f"{where}: no eFaktura issuer agreement for {orgnr}")]
        if user is not None and user.issuers and orgnr not in user.issuers:
            return [("ISSUER_NOT_ALLOWED", f"{where}: user {user.username} may not act for {orgnr}")]
        return []

    # -- registry lookups -------------------------------------------------------------------------

    def _find_by_ssn(self, ssn: str) -> SimConsumer | None:
        return next((c for c in self.consumers if c.social_security_number == ssn), None)

    def _find_by_identifier(self, ident: str) -> SimConsumer | None:
        return next((c for c in self.consumers if c.efaktura_identifier == ident), None)

    def _match_by_name(self, req: etree._Element) -> list[SimConsumer]:
        name, addr = req.find(self._q("name")), req.find(self._q("address"))
        first, last = _norm(self._text(name, "firstName")), _norm(self._text(name, "lastName"))
        street, postal = _norm(self._text(addr, "streetAddress")), _norm(self._text(addr, "postalCode"))
        email, phone = self._text(req, "email"), self._text(req, "phoneNumber")
        dob = self._text(req, "dateOfBirth")
        out = []
        for c in self.consumers:
            if not c.consent or _norm(c.last_name) != last or _norm(c.postal_code) != postal:
                continue
            if _norm(c.street_address) != street:
                continue
            given = _norm(c.first_name).split()
            if not first or first.split()[0] not in given:
                continue
            out.append(c)
        if len(out) > 1 and email:
            out = [c for c in out if c.email and c.email.casefold() == email.casefold()] or out
        if len(out) > 1 and phone:
            out = [c for c in out if c.phone and _phone_key(c.phone) == _phone_key(phone)] or out
        if len(out) > 1 and dob:
            out = [c for c in out if c.date_of_birth and c.date_of_birth == _xs_date(dob)] or out
        # Contradicting optional data rules a single candidate out.
        if len(out) == 1:
            c = out[0]
            if email and c.email and c.email.casefold() != email.casefold():
                return []
            if dob and c.date_of_birth and c.date_of_birth != _xs_date(dob):
                return []
        return out

    # -- operations -------------------------------------------------------------------------------

    def _op_getEfakturaIdentifiers(self, op_el, user, resp):
        issuer = self._text(op_el, "issuerOrganizationNumber") or ""
        errors = self._check_issuer(issuer, user, "issuerOrganizationNumber")
        reqs = op_el.find(self._q("requests")).findall(self._q("request"))
        for i, req in enumerate(reqs, 1):
            ssn = self._text(req, "socialSecurityNumber")
            if ssn:
                try:
                    validate_fodselsnummer(ssn, allow_2032_rule=True)
                except NorwegianIdError as exc:
                    errors.append(("INVALID_SOCIAL_SECURITY_NUMBER", f"request {i}: {exc.message}"))
        if errors:
            raise self._client_fault("validation failed", errors)
        out = self._sub(resp, "responses")
        for req in reqs:
            ssn = self._text(req, "socialSecurityNumber")
            if ssn:
                c = self._find_by_ssn(ssn)
                matches = [c] if c is not None and c.consent else []
            else:
                matches = self._match_by_name(req)
            r = self._sub(out, "response")
            if len(matches) == 1:
                self._sub(r, "status", "FOUND")
                self._sub(r, "efakturaIdentifier", matches[0].efaktura_identifier)
            else:
                self._sub(r, "status", "AMBIGUOUS" if matches else "NOT_FOUND")
        return resp

    def _op_getBlackList(self, op_el, user, resp):
        issuer = self._text(op_el, "issuerOrganizationNumber") or ""
        errors = self._check_issuer(issuer, user, "issuerOrganizationNumber")
        if errors:
            raise self._client_fault("validation failed", errors)
        holder = self._sub(resp, "blackList")
        for ident in sorted(self.blocks.get(issuer, ())):
            entry = self._sub(holder, "blockedConsumer")
            self._sub(entry, "efakturaIdentifier", ident)
        return resp

    def _validate_invoice(self, i: int, inv_el: etree._Element, user: SimUser | None) -> tuple[list, SimInvoice | None]:
        where = f"invoice {i}"
        errors: list[tuple[str, str]] = []
        number = self._text(inv_el, "invoiceNumber") or ""
        recipient = None
        for kind in ("efakturaReference", "efakturaIdentifier", "socialSecurityNumber"):
            value = self._text(inv_el, kind)
            if value:
                recipient = (kind, value)
        if recipient is None:
            errors.append(("5003", f"{where}: One of efakturaReference,efakturaIdentifier or "
                                   "socialSecurityNumber is required"))
        elif recipient[0] == "socialSecurityNumber":
            try:
                validate_fodselsnummer(recipient[1], allow_2032_rule=True)
            except NorwegianIdError as exc:
                errors.append(("INVALID_SOCIAL_SECURITY_NUMBER", f"{where}: {exc.message}"))
        elif recipient[0] == "efakturaReference":
            errors.append(("EFAKTURA_REFERENCE_DISCONTINUED",
                           f"{where}: eFaktura 1.0 references are no longer accepted (eFaktura 2.0 only)"))
        issuer_orgnr = self._text(inv_el, "issuerOrganizationNumber") or ""
        issuer_errors = self._check_issuer(issuer_orgnr, user, f"{where} issuerOrganizationNumber")
        errors += issuer_errors
        issuer = self.issuers.get(issuer_orgnr)
        kid = self._text(inv_el, "kid") or ""
        try:
            validate_kid(kid, issuer.kid_algorithm if issuer else None)  # type: ignore[arg-type]
        except KidError as exc:
            errors.append(("INVALID_KID", f"{where}: {exc.message}"))
        account = self._text(inv_el, "accountNumber") or ""
        try:
            validate_kontonr(account)
        except NorwegianIdError as exc:
            errors.append(("INVALID_ACCOUNT_NUMBER", f"{where}: {exc.message}"))
        else:
            if issuer and issuer.accounts and account not in issuer.accounts:
                errors.append(("ACCOUNT_NOT_REGISTERED", f"{where}: account {account} is not registered "
                                                         f"for issuer {issuer_orgnr}"))
        today = self.clock().date()
        due = _xs_date(self._text(inv_el, "dueDate"))
        if due < today:
            errors.append(("INVALID_DUE_DATE", f"{where}: due date {due} is in the past"))
        issue_text = self._text(inv_el, "issueDate")
        if issue_text and _xs_date(issue_text) > due:
            errors.append(("INVALID_ISSUE_DATE", f"{where}: issue date after due date"))
        pres = inv_el.find(self._q("presentation"))
        try:
            pdf = base64.b64decode("".join((self._text(pres, "content") or "").split()), validate=True)
        except (binascii.Error, ValueError):
            pdf = b""
        if not pdf.startswith(b"%PDF-"):
            errors.append(("INVALID_PRESENTATION", f"{where}: presentation is not a PDF"))
        elif len(pdf) > self.max_pdf_bytes:
            errors.append(("PRESENTATION_TOO_LARGE", f"{where}: PDF larger than {self.max_pdf_bytes} bytes"))
        if errors or recipient is None:
            return errors, None
        return [], SimInvoice(number, issuer_orgnr, recipient[0], recipient[1], kid,
                              Decimal(self._text(inv_el, "amount") or "0"), due, account, pdf)

    def _op_addInvoices(self, op_el, user, resp):
        username = user.username if user else ""
        cid = self._text(op_el, "consignmentId") or ""
        if (username, cid) in self.consignments:
            raise self._client_fault("duplicate consignmentId", [("209", "Duplicate consignmentId (Sender has used this "
                                                     "consignmentId before)")])
        errors, invoices = [], []
        seen: set[tuple[str, str]] = set()
        for i, inv_el in enumerate(op_el.find(self._q("invoices")).findall(self._q("invoice")), 1):
            errs, inv = self._validate_invoice(i, inv_el, user)
            errors += errs
            if inv is None:
                continue
            key = (inv.issuer, inv.invoice_number)
            taken = any((c.status != CANCELLED and any((x.issuer, x.invoice_number) == key for x in c.invoices))
                        for (u, _), c in self.consignments.items() if u == username)
            if key in seen or taken:
                errors.append(("DUPLICATE_INVOICE_NUMBER", f"invoice {i}: invoice number {inv.invoice_number} "
                                                           f"already sent for issuer {inv.issuer}"))
            seen.add(key)
            invoices.append(inv)
        if errors:
            raise self._client_fault("validation failed", errors)
        now = self.clock()
        for inv in invoices:
            inv.status_time = now
        self.consignments[(username, cid)] = SimConsignment(cid, username, invoices, RECEIVED, now)
        self._sub(resp, "consignmentId", cid)
        self._sub(resp, "consignmentStatus", RECEIVED)
        return resp

    def _own_consignment(self, op_el, user) -> SimConsignment:
        cid = self._text(op_el, "consignmentId") or ""
        cons = self.consignments.get((user.username if user else "", cid))
        if cons is None:
            raise self._client_fault("unknown consignment", [("201", "Unable to find consignment.")])
        cons.polls += 1
        if cons.status == RECEIVED and cons.polls >= self.process_after_polls:
            self._process(cons)
        return cons

    def _op_getConsignmentStatus(self, op_el, user, resp):
        cons = self._own_consignment(op_el, user)
        holder = self._sub(resp, "consignment")
        self._sub(holder, "consignmentId", cons.consignment_id)
        self._sub(holder, "status", cons.status)
        self._sub(holder, "numberOfInvoices", str(len(cons.invoices)))
        self._sub(holder, "statusTime", _iso(cons.status_time))
        return resp

    def _op_getInvoiceStatus(self, op_el, user, resp):
        cons = self._own_consignment(op_el, user)
        number = self._text(op_el, "invoiceNumber")
        selected = [i for i in cons.invoices if number is None or i.invoice_number == number]
        if number is not None and not selected:
            raise self._client_fault("unknown invoice", [("INVOICE_NOT_FOUND", f"Unable to find invoice {number} in consignment")])
        holder = self._sub(resp, "invoiceStatuses")
        for inv in selected:
            st = self._sub(holder, "invoiceStatus")
            self._sub(st, "invoiceNumber", inv.invoice_number)
            self._sub(st, "status", inv.status)
            self._sub(st, "statusTime", _iso(inv.status_time))
            if inv.error_code:
                self._sub(st, "errorCode", inv.error_code)
                self._sub(st, "errorMessage", inv.error_message or "")
        return resp

    # -- processing -------------------------------------------------------------------------------

    def _process(self, cons: SimConsignment) -> None:
        now = self.clock()
        for inv in cons.invoices:
            if inv.status != RECEIVED:
                continue
            if inv.recipient_kind == "socialSecurityNumber":
                consumer = self._find_by_ssn(inv.recipient)
            else:
                consumer = self._find_by_identifier(inv.recipient)
            if consumer is None or not consumer.consent:
                inv.status, inv.error_code = REJECTED, "NO_EFAKTURA_AGREEMENT"
                inv.error_message = "the consumer has no eFaktura (Ja takk til alle) agreement"
            elif consumer.efaktura_identifier in self.blocks.get(inv.issuer, ()):
                inv.status, inv.error_code = REJECTED, "BLOCKED_BY_CONSUMER"
                inv.error_message = "the consumer has blocked eFaktura from this issuer"
            else:
                inv.status = PROCESSED
            inv.status_time = now
        self._settle_consignment(cons)

    def _settle_consignment(self, cons: SimConsignment) -> None:
        states = {i.status for i in cons.invoices}
        if RECEIVED in states:
            return
        cons.status = REJECTED if states <= {REJECTED, CANCELLED} and REJECTED in states else PROCESSED
        cons.status_time = self.clock()

    # -- control endpoints --------------------------------------------------------------------------

    async def _ctl_consumer(self, request: web.Request) -> web.Response:
        data = await request.json()
        if data.get("date_of_birth"):
            data["date_of_birth"] = dt.date.fromisoformat(data["date_of_birth"])
        self.add_consumer(**data)
        return web.json_response({"ok": True})

    async def _ctl_block(self, request: web.Request) -> web.Response:
        data = await request.json()
        (self.unblock if data.get("unblock") else self.block)(data["issuer"], data["efakturaIdentifier"])
        return web.json_response({"ok": True})

    async def _ctl_process(self, request: web.Request) -> web.Response:
        try:
            cons = self.process(request.match_info["cid"])
        except KeyError:
            return web.json_response({"error": "unknown consignment"}, status=404)
        return web.json_response({"status": cons.status})

    async def _ctl_status(self, request: web.Request) -> web.Response:
        data = await request.json()
        try:
            self.set_invoice_status(request.match_info["cid"], request.match_info["number"], data["status"],
                                    data.get("errorCode"), data.get("errorMessage"))
        except KeyError:
            return web.json_response({"error": "unknown consignment or invoice"}, status=404)
        return web.json_response({"ok": True})

    async def _ctl_requests(self, request: web.Request) -> web.Response:
        return web.json_response([{"operation": r.get("operation"), "user": r.get("user"),
                                   "fault": r.get("fault")} for r in self.requests])


def _xs_date(text: str | None) -> dt.date:
    """An xs:date already checked by the schema; an optional zone suffix is ignored."""
    return dt.date.fromisoformat((text or "").strip()[:10])


def _iso(moment: dt.datetime | None) -> str:
    moment = moment or dt.datetime.now(dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
