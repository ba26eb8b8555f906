"""Peppol SMP 1.x ("busdox") client: URLs, fetch, signature + trust check, parsing, endpoint choice.

Order of trust (memo §4.2): nothing in a ServiceMetadata response is read before its enveloped
signature verifies and the signer chains to the SMP CA trust set. Then the response must name
exactly the participant (case-insensitive) and document type (case-sensitive) that were asked for.
A Redirect is followed once; the target must be signed by the certificate named in CertificateUID.
HTTP 3xx redirects are never followed (peppol-commons 12.3.1).

The parse/verify/select functions are pure (bytes and a clock value in, data or a typed error out).
`fetch()` and `get_service_metadata()` are the only network-facing code; the session is passed in.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp
import yarl
from cryptography import x509
from lxml import etree

from certs.trust import CertificateError, TrustStore
from gateway.discovery.errors import DiscoveryError, DiscoveryUnavailable, NotRegistered
from gateway.discovery.xmldsig import verify_enveloped
from gateway.discovery.xmlparse import parse_xml
from gateway.identifiers import (
    DocumentTypeId,
    IdentifierError,
    ParticipantId,
    ProcessId,
    decode_url_segment,
)

SMP_NS = "http://busdox.org/serviceMetadata/publishing/1.0/"
IDS_NS = "http://busdox.org/transport/identifiers/1.0/"
WSA_NS = "http://www.w3.org/2005/08/addressing"
AS4_PROFILE = "peppol-transport-as4-v2_0"
USER_AGENT = "SEND-gateway/0.1 (Peppol SMP client)"


def _smp(name: str) -> str:
    return f"{{{SMP_NS}}}{name}"


def _ids(name: str) -> str:
    return f"{{{IDS_NS}}}{name}"


# --- URLs --------------------------------------------------------------------------------------


def service_group_url(smp_url: str, participant: ParticipantId) -> str:
    return f"{smp_url.rstrip('/')}/{participant.url_segment}"


def service_metadata_url(smp_url: str, participant: ParticipantId, doctype: DocumentTypeId) -> str:
    return f"{smp_url.rstrip('/')}/{participant.url_segment}/services/{doctype.url_segment}"


def check_url(url: str, allow_http: bool, code: str) -> str:
    """Only https:// (http:// when allowed for tests) absolute URLs with a host."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise DiscoveryError(code, f"bad URL {url!r}") from exc
    if parts.scheme.lower() not in (("https", "http") if allow_http else ("https",)) or not parts.hostname:
        raise DiscoveryError(code, f"URL {url!r} is not an absolute https:// URL")
    if any(c.isspace() for c in url):
        raise DiscoveryError(code, f"URL {url!r} contains whitespace")
    return url


# --- data --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EndpointInfo:
    transport_profile: str
    url: str
    certificate_der: bytes
    activation: dt.datetime | None
    expiration: dt.datetime | None
    require_business_level_signature: bool = False
    minimum_authentication_level: str | None = None
    description: str | None = None
    technical_contact_url: str | None = None
    technical_information_url: str | None = None

    def active_at(self, at: dt.datetime) -> bool:
        return (self.activation is None or self.activation <= at) and (self.expiration is None or at <= self.expiration)


@dataclass(frozen=True)
class ProcessInfo:
    process: ProcessId
    endpoints: tuple[EndpointInfo, ...]


@dataclass(frozen=True)
class ServiceInformation:
    participant: ParticipantId
    document_type: DocumentTypeId
    processes: tuple[ProcessInfo, ...]


@dataclass(frozen=True)
class Redirect:
    href: str
    certificate_uid: str


@dataclass(frozen=True)
class SignedMetadata:
    """A verified SMP answer: ServiceInformation or Redirect, plus who signed it and where from."""

    content: ServiceInformation | Redirect
    signer: x509.Certificate
    url: str = ""
    redirected_from: str | None = None


@dataclass(frozen=True)
class ServiceGroup:
    participant: ParticipantId
    document_types: tuple[DocumentTypeId, ...]
    hrefs: tuple[str, ...] = field(default=())


# --- parsing -----------------------------------------------------------------------------------


def _text(el: etree._Element | None) -> str | None:
    if el is None:
        return None
    value = "".join(el.itertext()).strip()
    return value or None


def parse_datetime(text: str, what: str) -> dt.datetime:
    """xs:dateTime (or xs:date) -> aware UTC datetime; no zone means UTC."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        try:
            parsed = dt.datetime.combine(dt.date.fromisoformat(value[:10]), dt.time())
            if len(value) > 10:
                raise ValueError
        except ValueError as exc:
            raise DiscoveryError("smp-bad-response", f"{what} {text!r} is not an xs:dateTime") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def _b64_der(text: str | None) -> bytes:
    compact = "".join((text or "").split())
    try:
        data = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DiscoveryError("smp-bad-response", "endpoint Certificate is not valid base64") from exc
    if not data:
        raise DiscoveryError("smp-bad-response", "endpoint Certificate is empty")
    return data


def _identifier(el: etree._Element | None, what: str) -> tuple[str, str]:
    if el is None:
        raise DiscoveryError("smp-bad-response", f"{what} is missing")
    scheme = (el.get("scheme") or "").strip()
    value = _text(el)
    if not scheme or not value:
        raise DiscoveryError("smp-bad-response", f"{what} has no scheme or no value")
    return scheme, value


def _parse_endpoint(el: etree._Element) -> EndpointInfo:
    profile = (el.get("transportProfile") or "").strip()
    address = _text(el.find(f"{{{WSA_NS}}}EndpointReference/{{{WSA_NS}}}Address"))
    if not profile or not address:
        raise DiscoveryError("smp-bad-response", "Endpoint without transportProfile or EndpointReference/Address")
    cert_el = el.find(_smp("Certificate"))
    activation = _text(el.find(_smp("ServiceActivationDate")))
    expiration = _text(el.find(_smp("ServiceExpirationDate")))
    blsig = (_text(el.find(_smp("RequireBusinessLevelSignature"))) or "false").lower()
    return EndpointInfo(
        transport_profile=profile,
        url=address,
        certificate_der=_b64_der(cert_el.text if cert_el is not None else None),
        activation=parse_datetime(activation, "ServiceActivationDate") if activation else None,
        expiration=parse_datetime(expiration, "ServiceExpirationDate") if expiration else None,
        require_business_level_signature=blsig in ("true", "1"),
        minimum_authentication_level=_text(el.find(_smp("MinimumAuthenticationLevel"))),
        description=_text(el.find(_smp("ServiceDescription"))),
        technical_contact_url=_text(el.find(_smp("TechnicalContactUrl"))),
        technical_information_url=_text(el.find(_smp("TechnicalInformationUrl"))),
    )


def _parse_service_information(el: etree._Element) -> ServiceInformation:
    p_scheme, p_value = _identifier(el.find(_ids("ParticipantIdentifier")), "ParticipantIdentifier")
    d_scheme, d_value = _identifier(el.find(_ids("DocumentIdentifier")), "DocumentIdentifier")
    # Only equality with the request matters here; the request itself was validated.
    participant = ParticipantId.unchecked(p_scheme, p_value)
    doctype = DocumentTypeId.unchecked(d_scheme, d_value)
    processes = []
    process_list = el.find(_smp("ProcessList"))
    for proc in ([] if process_list is None else process_list.findall(_smp("Process"))):
        s, v = _identifier(proc.find(_ids("ProcessIdentifier")), "ProcessIdentifier")
        pid = ProcessId.unchecked(s, v)
        endpoints = []
        for ep in proc.iterfind(f"{_smp('ServiceEndpointList')}/{_smp('Endpoint')}"):
            try:
                endpoints.append(_parse_endpoint(ep))
            except DiscoveryError:
                if (ep.get("transportProfile") or "").strip() == AS4_PROFILE:
                    raise
                # a broken endpoint of a transport we never use does not spoil the AS4 one
        processes.append(ProcessInfo(pid, tuple(endpoints)))
    return ServiceInformation(participant, doctype, tuple(processes))


def verify_signed_metadata(
    data: bytes,
    smp_trust: TrustStore,
    at: dt.datetime,
    allow_sha1: bool = False,
    url: str = "",
) -> SignedMetadata:
    """Verify signature and signer trust of a SignedServiceMetadata, then parse it.

    Raises DiscoveryError: not-xml, signature-* / digest-mismatch, smp-certificate-<trust code>
    (untrusted, expired, not-yet-valid, not-a-leaf), smp-bad-response.
    """
    verified = verify_enveloped(data, allow_sha1=allow_sha1)
    try:
        smp_trust.verify(verified.signer, at=at)
    except CertificateError as exc:
        raise DiscoveryError(f"smp-certificate-{exc.code}", f"SMP signer certificate: {exc}") from exc
    root = verified.root
    if root.tag != _smp("SignedServiceMetadata"):
        raise DiscoveryError("smp-bad-response", f"expected smp:SignedServiceMetadata, got {root.tag}")
    metadata = root.findall(_smp("ServiceMetadata"))
    if len(metadata) != 1:
        raise DiscoveryError("smp-bad-response", "SignedServiceMetadata must hold exactly one ServiceMetadata")
    redirect = metadata[0].find(_smp("Redirect"))
    info = metadata[0].find(_smp("ServiceInformation"))
    if (redirect is None) == (info is None):
        raise DiscoveryError("smp-bad-response", "ServiceMetadata must hold exactly one of ServiceInformation or Redirect")
    if redirect is not None:
        href = (redirect.get("href") or "").strip()
        uid = _text(redirect.find(_smp("CertificateUID")))
        if not href or not uid:
            raise DiscoveryError("smp-bad-response", "Redirect without href or CertificateUID")
        content: ServiceInformation | Redirect = Redirect(href, uid)
    else:
        content = _parse_service_information(info)
    return SignedMetadata(content=content, signer=verified.signer, url=url)


def check_identifiers(info: ServiceInformation, participant: ParticipantId, doctype: DocumentTypeId) -> None:
    """The answer must be about what we asked: participant case-insensitive, doctype case-sensitive."""
    if info.participant != participant:  # both lower-cased on parsing
        raise DiscoveryError("smp-identifier-mismatch",
                             f"SMP answered for participant {info.participant}, asked for {participant}")
    if info.document_type != doctype:
        raise DiscoveryError("smp-identifier-mismatch",
                             f"SMP answered for document type {info.document_type}, asked for {doctype}")


def _dn_parts(text: str) -> list[tuple[str, str]]:
    """Split a DN string (`C=NO,O=x,CN=y` or `CN=y, O=x`) into sorted (TYPE, value) pairs."""
    parts: list[tuple[str, str]] = []
    current, escaped = "", False
    items: list[str] = []
    for ch in text:
        if escaped:
            current += ch
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in ",;+":
            items.append(current)
            current = ""
        else:
            current += ch
    items.append(current)
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            return []
        key = key.strip().upper()
        key = {"EMAILADDRESS": "E", "SERIALNUMBER": "SERIALNUMBER", "S": "ST"}.get(key, key)
        parts.append((key, " ".join(value.split())))
    return sorted(parts)


def _name_parts(name: x509.Name) -> list[tuple[str, str]]:
    return _dn_parts(name.rfc4514_string({x509.NameOID.EMAIL_ADDRESS: "E"}))


def certificate_matches_uid(cert: x509.Certificate, uid: str) -> bool:
    """Does `cert` match a Redirect CertificateUID?

    The UID is the subject DN (order of RDNs and spaces after commas do not matter). A bare value
    without `=` is compared with the subject CN or the serial number (hex or decimal), which some
    SMPs publish instead.
    """
    uid = uid.strip()
    if "=" in uid:
        wanted = _dn_parts(uid)
        return bool(wanted) and wanted == _name_parts(cert.subject)
    cns = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    if cns and str(cns[0].value) == uid:
        return True
    serial = cert.serial_number
    return uid.lower().lstrip("0") in {format(serial, "x").lstrip("0"), str(serial).lstrip("0")} and bool(uid.strip("0"))


def select_endpoint(
    info: ServiceInformation,
    process: ProcessId | None,
    at: dt.datetime,
    transport_profile: str = AS4_PROFILE,
) -> tuple[ProcessInfo, EndpointInfo]:
    """Choose the endpoint for `process` (any process when None) whose date window covers `at`.

    Raises NotRegistered: process-not-served, no-as4-endpoint, endpoint-not-active.
    """
    if process is not None:
        candidates = [p for p in info.processes if p.process == process]
        if not candidates:
            served = ", ".join(str(p.process) for p in info.processes) or "none"
            raise NotRegistered("process-not-served",
                                f"{info.participant} does not serve process {process} for this document type (served: {served})")
    else:
        candidates = list(info.processes)
    with_profile = [(p, e) for p in candidates for e in p.endpoints if e.transport_profile == transport_profile]
    if not with_profile:
        raise NotRegistered("no-as4-endpoint", f"{info.participant} has no {transport_profile} endpoint for this document type")
    for p, e in with_profile:
        if e.active_at(at):
            return p, e
    windows = "; ".join(
        f"{e.activation.isoformat() if e.activation else '-'} .. {e.expiration.isoformat() if e.expiration else '-'}"
        for _, e in with_profile
    )
    raise NotRegistered("endpoint-not-active", f"no {transport_profile} endpoint is active at {at.isoformat()} (windows: {windows})")


def parse_service_group(data: bytes, participant: ParticipantId | None = None) -> ServiceGroup:
    """Parse an (unsigned) ServiceGroup and list the document types it references."""
    root = parse_xml(data).getroot()
    if root.tag != _smp("ServiceGroup"):
        raise DiscoveryError("smp-bad-response", f"expected smp:ServiceGroup, got {root.tag}")
    s, v = _identifier(root.find(_ids("ParticipantIdentifier")), "ParticipantIdentifier")
    pid = ParticipantId.unchecked(s, v)
    if participant is not None and pid != participant:
        raise DiscoveryError("smp-identifier-mismatch", f"ServiceGroup is for {pid}, asked for {participant}")
    doctypes, hrefs = [], []
    for ref in root.iterfind(f"{_smp('ServiceMetadataReferenceCollection')}/{_smp('ServiceMetadataReference')}"):
        href = (ref.get("href") or "").strip()
        path = urlsplit(href).path
        marker = path.rfind("/services/")
        if marker < 0:
            continue
        segment = path[marker + len("/services/"):]
        if "/" in segment:
            continue
        try:
            scheme, value = decode_url_segment(segment)
            doctype = DocumentTypeId.of(value, scheme)
        except IdentifierError:
            continue  # a scheme or form we cannot send; not our business
        if doctype not in doctypes:
            doctypes.append(doctype)
            hrefs.append(href)
    return ServiceGroup(pid, tuple(doctypes), tuple(hrefs))


def choose_wildcard(requested: DocumentTypeId, available: Sequence[DocumentTypeId]) -> DocumentTypeId | None:
    """First wildcard candidate (exact, `id*`, shorter `id*`, ...) the ServiceGroup lists."""
    present = set(available)
    for candidate in requested.wildcard_candidates():
        if candidate in present:
            return candidate
    return None


# --- network -----------------------------------------------------------------------------------


async def fetch(session: aiohttp.ClientSession, url: str, max_bytes: int, timeout: float) -> tuple[int, bytes]:
    """GET `url` without following redirects; body capped at `max_bytes`.

    Connection errors and timeouts -> DiscoveryUnavailable(smp-unavailable / smp-timeout);
    an oversize body -> DiscoveryError(smp-response-too-large).
    """
    try:
        async with asyncio.timeout(timeout):
            async with session.get(
                yarl.URL(url, encoded=True), allow_redirects=False,  # keep %3A%3A / %23 exactly as built
                headers={"User-Agent": USER_AGENT, "Accept": "application/xml, text/xml"},
            ) as response:
                length = response.content_length
                if length is not None and length > max_bytes:
                    raise DiscoveryError("smp-response-too-large", f"{url}: response is {length} bytes (max {max_bytes})")
                body = bytearray()
                async for chunk in response.content.iter_chunked(65536):
                    body += chunk
                    if len(body) > max_bytes:
                        raise DiscoveryError("smp-response-too-large", f"{url}: response exceeds {max_bytes} bytes")
                return response.status, bytes(body)
    except TimeoutError as exc:
        raise DiscoveryUnavailable("smp-timeout", f"{url}: no answer within {timeout} s") from exc
    except (aiohttp.ClientSSLError, aiohttp.ServerFingerprintMismatch) as exc:
        raise DiscoveryUnavailable("smp-tls-error", f"{url}: TLS failure: {exc}") from exc
    except aiohttp.ClientError as exc:
        raise DiscoveryUnavailable("smp-unavailable", f"{url}: {type(exc).__name__}: {exc}") from exc


def _status_error(url: str, status: int, not_found: NotRegistered) -> Exception:
    if status in (404, 410):
        return not_found
    if status >= 500 or status in (408, 429):
        return DiscoveryUnavailable("smp-unavailable", f"{url}: HTTP {status}")
    if 300 <= status < 400:
        return DiscoveryError("smp-http-redirect", f"{url}: HTTP {status} redirect refused (use the SMP Redirect element)")
    return DiscoveryError("smp-http-status", f"{url}: unexpected HTTP {status}")


async def get_service_group(
    session: aiohttp.ClientSession, smp_url: str, participant: ParticipantId, *, max_bytes: int, timeout: float,
) -> ServiceGroup:
    url = service_group_url(smp_url, participant)
    status, body = await fetch(session, url, max_bytes, timeout)
    if status != 200:
        raise _status_error(url, status, NotRegistered("smp-participant-unknown", f"{url}: HTTP {status}: participant not in the SMP"))
    return parse_service_group(body, participant)


async def get_service_metadata(
    session: aiohttp.ClientSession,
    smp_url: str,
    participant: ParticipantId,
    doctype: DocumentTypeId,
    *,
    smp_trust: TrustStore,
    at: dt.datetime,
    allow_sha1: bool = False,
    allow_http: bool = False,
    max_bytes: int = 1 << 20,
    timeout: float = 10.0,
) -> SignedMetadata:
    """Fetch, verify and identity-check the ServiceMetadata, following at most one SMP Redirect."""
    url = service_metadata_url(smp_url, participant, doctype)
    redirected_from: str | None = None
    redirect: Redirect | None = None
    for hop in range(2):
        status, body = await fetch(session, url, max_bytes, timeout)
        if status != 200:
            raise _status_error(url, status, NotRegistered(
                "doctype-not-served", f"{participant} is not registered for {doctype} (HTTP {status} from {url})"))
        signed = verify_signed_metadata(body, smp_trust, at, allow_sha1=allow_sha1, url=url)
        if redirect is not None and not certificate_matches_uid(signed.signer, redirect.certificate_uid):
            raise DiscoveryError(
                "smp-redirect-certificate",
                f"redirect target {url} is signed by {signed.signer.subject.rfc4514_string()}, "
                f"not by CertificateUID {redirect.certificate_uid!r}",
            )
        if isinstance(signed.content, ServiceInformation):
            check_identifiers(signed.content, participant, doctype)
            return SignedMetadata(signed.content, signed.signer, url=url, redirected_from=redirected_from)
        if hop == 1:
            raise DiscoveryError("smp-redirect-loop", f"{url}: a redirect target redirected again (only one hop allowed)")
        redirect = signed.content
        redirected_from = url
        url = check_url(redirect.href, allow_http, "smp-bad-redirect")
    raise AssertionError("unreachable")  # pragma: no cover
