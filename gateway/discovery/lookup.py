"""The `Discovery` service: participant + document type (+ process) -> receiving AS4 endpoint.

    discovery = Discovery.from_settings(settings)            # or Discovery(DiscoveryConfig(...), ...)
    endpoint = await discovery.lookup(receiver, doctype, process)
    ... endpoint.url, endpoint.certificate, endpoint.seat_id ...
    await discovery.close()

Steps: SML U-NAPTR -> SMP base URL (cached for the DNS TTL); signed ServiceMetadata (cached for
`smp_cache_ttl`, negative answers for `negative_cache_ttl`); then, on every call, the endpoint whose
activation window covers *now* and whose certificate chains to the AP trust set *now* (certificate
checks are memoised by fingerprint and instant range, so cached lookups stay cheap).
Errors: NotRegistered (permanent), DiscoveryUnavailable (retry), DiscoveryError (untrusted/bad).
"""

from __future__ import annotations

import datetime as dt
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Self

import aiohttp
from cryptography import x509

from certs.trust import CertificateError, TrustStore, common_name
from gateway.discovery import sml, smp
from gateway.discovery.cache import TTLCache
from gateway.discovery.errors import DiscoveryError, NotRegistered
from gateway.identifiers import DocumentTypeId, ParticipantId, ProcessId

MODES = {"test": sml.TEST_ZONE, "prod": sml.PROD_ZONE}

# Revocation hook: `await check(path, at)` with path = [leaf, issuing CA, ..., root]; raise
# certs.trust.CertificateError("revoked" | "revocation-unknown", ...) to refuse the certificate.
# It is called for the SMP signer on every SMP fetch and for the endpoint certificate on every
# lookup, so it must cache (CRLs until nextUpdate, OCSP answers for their validity).
RevocationCheck = Callable[[list[x509.Certificate], dt.datetime], Awaitable[None]]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class DiscoveryConfig:
    """Runtime knobs (the `[discovery]` section, resolved)."""

    zone: str = sml.TEST_ZONE
    nameservers: tuple[str, ...] = ()
    dns_timeout: float = 5.0
    smp_timeout: float = 10.0
    smp_cache_ttl: float = 900.0
    negative_cache_ttl: float = 60.0
    cache_size: int = 10000
    allow_http: bool = False
    allow_sha1: bool = False
    max_response_bytes: int = 1024 * 1024
    transport_profile: str = smp.AS4_PROFILE


@dataclass(frozen=True)
class Endpoint:
    """Where and to whom to send: the result of a successful lookup."""

    url: str
    transport_profile: str
    certificate: x509.Certificate
    seat_id: str  # certificate subject CN = AS4 PartyId of the receiving AP
    smp_url: str  # SMP base URL from the SML
    metadata_url: str  # the ServiceMetadata URL that finally answered (after a redirect, the target)
    activation: dt.datetime | None
    expiration: dt.datetime | None
    participant: ParticipantId
    document_type: DocumentTypeId  # for wildcard lookups: the registered doctype that matched
    process: ProcessId
    smp_signer: x509.Certificate | None  # None for a static route
    redirected_from: str | None = None
    require_business_level_signature: bool = False
    technical_contact_url: str | None = None
    description: str | None = None

    def describe(self) -> dict:
        """JSON-friendly summary (used by `sendgw lookup --json`)."""
        cert = self.certificate
        return {
            "participant": str(self.participant),
            "document_type": str(self.document_type),
            "process": str(self.process),
            "smp_url": self.smp_url,
            "metadata_url": self.metadata_url,
            "redirected_from": self.redirected_from,
            "endpoint_url": self.url,
            "transport_profile": self.transport_profile,
            "seat_id": self.seat_id,
            "certificate": {
                "subject": cert.subject.rfc4514_string(),
                "issuer": cert.issuer.rfc4514_string(),
                "serial": format(cert.serial_number, "x"),
                "not_before": cert.not_valid_before_utc.isoformat(),
                "not_after": cert.not_valid_after_utc.isoformat(),
            },
            "activation": self.activation.isoformat() if self.activation else None,
            "expiration": self.expiration.isoformat() if self.expiration else None,
            "smp_signer": self.smp_signer.subject.rfc4514_string() if self.smp_signer else None,
            "technical_contact_url": self.technical_contact_url,
        }


@dataclass
class _CertMemo:
    """Trust result for one certificate: valid for instants in [start, end], else re-check."""

    certificate: x509.Certificate
    start: dt.datetime
    end: dt.datetime
    error: CertificateError | None = None
    path: list[x509.Certificate] = field(default_factory=list)


@dataclass(frozen=True)
class StaticRoute:
    """A `[routes."<participant>"]` entry: replaces SML/SMP for one receiver (private networks, tests).

    The certificate is pinned by the operator, so it is not chained to the AP trust set; only its
    validity period is checked. `document_types` empty = every document type.
    """

    url: str
    certificate: x509.Certificate
    transport_profile: str = smp.AS4_PROFILE
    document_types: tuple[DocumentTypeId, ...] = ()
    process: ProcessId | None = None


_ROUTE_KEYS = {"url", "certificate", "transport_profile", "document_types", "process"}


def static_routes_from_settings(settings) -> dict[ParticipantId, StaticRoute]:
    """Parse `[routes."<participant>"]` tables (url, certificate PEM path, optional
    transport_profile, document_types, process); any problem is a ConfigError naming the table."""
    from gateway.config import ConfigError
    from gateway.identifiers import IdentifierError

    routes: dict[ParticipantId, StaticRoute] = {}
    for key, table in (settings.routes or {}).items():
        where = f'[routes."{key}"]'
        try:
            participant = ParticipantId.parse(key)
            if not isinstance(table, dict):
                raise ConfigError(f"{where} must be a table")
            unknown = set(table) - _ROUTE_KEYS
            if unknown:
                raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)} (known: {sorted(_ROUTE_KEYS)})")
            url, cert_path = table.get("url"), table.get("certificate")
            if not isinstance(url, str) or not url or not isinstance(cert_path, str) or not cert_path:
                raise ConfigError(f"{where}: `url` and `certificate` (PEM file) are required")
            pem = settings.path(cert_path).read_bytes()
            certificate = x509.load_pem_x509_certificate(pem)
            doctypes = tuple(DocumentTypeId.parse(d) for d in table.get("document_types", []))
            process = ProcessId.parse(table["process"]) if table.get("process") else None
        except IdentifierError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{where}: certificate: {exc}") from exc
        routes[participant] = StaticRoute(url, certificate, str(table.get("transport_profile", smp.AS4_PROFILE)),
                                          doctypes, process)
    return routes


class Discovery:
    """Cached, concurrency-safe SML/SMP discovery (one instance per process; share it)."""

    def __init__(
        self,
        config: DiscoveryConfig,
        ap_trust: TrustStore,
        smp_trust: TrustStore,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        ssl_context: ssl.SSLContext | None = None,
        session: aiohttp.ClientSession | None = None,
        monotonic: Callable[[], float] | None = None,
        revocation: RevocationCheck | None = None,
        static_routes: dict[ParticipantId, StaticRoute] | None = None,
    ):
        self.config = config
        self.ap_trust = ap_trust
        self.smp_trust = smp_trust
        self.clock = clock
        self._ssl = ssl_context
        self._session = session
        self._own_session = session is None
        self._resolver = sml.make_resolver(config.nameservers, config.dns_timeout)
        tick = monotonic or time.monotonic
        size, negative = config.cache_size, config.negative_cache_ttl
        self.sml_cache: TTLCache[sml.SmlAnswer] = TTLCache(size, negative, tick)
        self.smp_cache: TTLCache[smp.SignedMetadata] = TTLCache(size, negative, tick)
        self.group_cache: TTLCache[smp.ServiceGroup] = TTLCache(size, negative, tick)
        self._cert_memo: dict[bytes, _CertMemo] = {}
        self.revocation = revocation
        self._own_revocation = None  # a checker made by from_settings, closed with us
        self.static_routes = dict(static_routes or {})

    # --- construction / lifecycle ----------------------------------------------------------------

    @classmethod
    def from_settings(cls, settings, mode: str | None = None, **kwargs) -> Discovery:
        """Build from `Settings`: zone and default trust by mode, trust sets from [trust], and a
        revocation checker from [revocation] unless `revocation=` is given (then its owner closes it)."""
        from gateway.config import ConfigError
        from gateway.revocation import RevocationChecker

        d = settings.discovery
        mode = (mode or d.mode or "test").lower()
        if mode not in MODES:
            raise ConfigError(f"[discovery] mode must be 'test' or 'prod', got {mode!r}")
        trust_dir = settings.path(settings.trust.cache)
        ap_entries = effective_anchors(settings.trust.ap_anchors, mode, "ap_anchors")
        smp_entries = effective_anchors(settings.trust.smp_anchors, mode, "smp_anchors")
        ap_trust = TrustStore.from_config(ap_entries, "ap", trust_dir, settings.base_dir)
        smp_trust = TrustStore.from_config(smp_entries, "smp", trust_dir, settings.base_dir)
        for entry in d.nameservers:
            try:
                sml.parse_nameserver(entry)
            except ValueError as exc:
                raise ConfigError(f"[discovery] nameservers: {entry!r}: {exc}") from exc
        config = DiscoveryConfig(
            zone=d.sml_zone or MODES[mode],
            nameservers=tuple(d.nameservers),
            dns_timeout=d.dns_timeout,
            smp_timeout=d.smp_timeout,
            smp_cache_ttl=d.smp_cache_ttl,
            negative_cache_ttl=d.negative_cache_ttl,
            cache_size=d.cache_size,
            allow_http=d.allow_http,
            allow_sha1=d.allow_sha1,
            max_response_bytes=d.max_response_bytes,
        )
        if d.tls_ca_file and "ssl_context" not in kwargs:
            ctx = ssl.create_default_context()
            ctx.load_verify_locations(cafile=str(settings.path(d.tls_ca_file)))
            kwargs["ssl_context"] = ctx
        kwargs.setdefault("static_routes", static_routes_from_settings(settings))
        owned = None
        if "revocation" not in kwargs:
            owned = kwargs["revocation"] = RevocationChecker.from_settings(settings)
        discovery = cls(config, ap_trust, smp_trust, **kwargs)
        discovery._own_revocation = owned
        return discovery

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else True, limit=100)
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
            self._own_session = True
        return self._session

    async def close(self) -> None:
        if self._own_session and self._session is not None and not self._session.closed:
            await self._session.close()
        if self._own_revocation is not None:
            await self._own_revocation.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # --- steps -----------------------------------------------------------------------------------

    async def smp_url(self, participant: ParticipantId) -> str:
        """SMP base URL of `participant` from the SML (cached for the NAPTR TTL)."""
        async def load():
            answer = await sml.resolve_smp(participant, self.config.zone, self._resolver, self.config.allow_http)
            return answer, answer.ttl
        return (await self.sml_cache.get(("sml", self.config.zone, participant), load)).smp_url

    async def service_group(self, participant: ParticipantId, base: str | None = None) -> smp.ServiceGroup:
        """The (unsigned) list of document types registered for `participant`."""
        base = base or await self.smp_url(participant)

        async def load():
            group = await smp.get_service_group(
                self._http(), base, participant,
                max_bytes=self.config.max_response_bytes, timeout=self.config.smp_timeout)
            return group, self.config.smp_cache_ttl
        return await self.group_cache.get(("sg", base, participant), load)

    async def service_metadata(self, participant: ParticipantId, doctype: DocumentTypeId,
                               base: str | None = None) -> smp.SignedMetadata:
        """Verified ServiceMetadata (redirect followed) for exactly this participant and doctype."""
        base = base or await self.smp_url(participant)

        async def load():
            signed = await smp.get_service_metadata(
                self._http(), base, participant, doctype,
                smp_trust=self.smp_trust, at=self.clock(),
                allow_sha1=self.config.allow_sha1, allow_http=self.config.allow_http,
                max_bytes=self.config.max_response_bytes, timeout=self.config.smp_timeout)
            if self.revocation is not None:
                at = self.clock()
                await self._check_revocation(self.smp_trust.verify(signed.signer, at=at), at, "smp-certificate")
            return signed, self.config.smp_cache_ttl
        return await self.smp_cache.get(("sm", base, participant, doctype), load)

    async def _check_revocation(self, path: list[x509.Certificate], at: dt.datetime, what: str) -> None:
        if self.revocation is None:
            return
        try:
            await self.revocation(path, at)
        except CertificateError as exc:
            raise DiscoveryError(f"{what}-{exc.code}", f"{path[0].subject.rfc4514_string()}: {exc}") from exc

    def check_endpoint_certificate(self, der: bytes, at: dt.datetime) -> x509.Certificate:
        return self._endpoint_memo(der, at).certificate

    def _endpoint_memo(self, der: bytes, at: dt.datetime) -> _CertMemo:
        """Parse and validate an endpoint certificate against the AP trust set (memoised)."""
        memo = self._cert_memo.get(der)
        if memo is None:
            try:
                cert = x509.load_der_x509_certificate(der)
            except ValueError as exc:
                raise DiscoveryError("endpoint-certificate-invalid", f"endpoint Certificate is not X.509 DER: {exc}") from exc
            memo = self._validate(cert, at)
            if len(self._cert_memo) >= self.config.cache_size:
                self._cert_memo.clear()
            self._cert_memo[der] = memo
        elif not (memo.start <= at <= memo.end):
            memo = self._validate(memo.certificate, at)
            self._cert_memo[der] = memo
        if memo.error is not None:
            raise DiscoveryError(f"endpoint-certificate-{memo.error.code}",
                                 f"endpoint certificate {memo.certificate.subject.rfc4514_string()}: {memo.error}")
        return memo

    def _validate(self, cert: x509.Certificate, at: dt.datetime) -> _CertMemo:
        try:
            path = self.ap_trust.verify(cert, at=at)
        except CertificateError as exc:
            return _CertMemo(cert, at, at, exc)  # re-checked at the next different instant
        start = max(c.not_valid_before_utc for c in path)
        end = min(c.not_valid_after_utc for c in path)
        return _CertMemo(cert, start, end, path=path)

    def _static_endpoint(self, participant: ParticipantId, doctype: DocumentTypeId, process: ProcessId | None,
                         route: StaticRoute) -> Endpoint:
        if route.document_types and doctype not in route.document_types:
            raise NotRegistered("doctype-not-served", f"static route for {participant} does not list {doctype}")
        if process is not None and route.process is not None and process != route.process:
            raise NotRegistered("process-not-served", f"static route for {participant} is for process {route.process}")
        url = smp.check_url(route.url, self.config.allow_http, "endpoint-bad-url")
        now = self.clock()
        cert = route.certificate
        if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
            code = "expired" if now > cert.not_valid_after_utc else "not-yet-valid"
            raise DiscoveryError(f"endpoint-certificate-{code}",
                                 f"static route certificate {cert.subject.rfc4514_string()} is not valid now")
        return Endpoint(
            url=url, transport_profile=route.transport_profile, certificate=cert, seat_id=common_name(cert),
            smp_url="", metadata_url="", activation=None, expiration=None, participant=participant,
            document_type=doctype, process=process or route.process or ProcessId.unchecked("busdox-procid-transport", "busdox:noprocess"),
            smp_signer=None, description="static route",
        )

    # --- the one call the sender uses ------------------------------------------------------------

    async def lookup(
        self,
        participant: ParticipantId | str,
        doctype: DocumentTypeId | str,
        process: ProcessId | str | None = None,
    ) -> Endpoint:
        """Find the AS4 endpoint for sending `doctype` (and `process`) to `participant` now.

        Raises NotRegistered, DiscoveryUnavailable or DiscoveryError (see gateway.discovery.errors);
        identifiers given as strings are parsed (IdentifierError on bad syntax).
        """
        if isinstance(participant, str):
            participant = ParticipantId.parse(participant)
        if isinstance(doctype, str):
            doctype = DocumentTypeId.parse(doctype)
        if isinstance(process, str):
            process = ProcessId.parse(process)
        route = self.static_routes.get(participant)
        if route is not None:
            return self._static_endpoint(participant, doctype, process, route)
        base = await self.smp_url(participant)
        registered = doctype
        if doctype.is_wildcard:
            group = await self.service_group(participant, base)
            match = smp.choose_wildcard(doctype, group.document_types)
            if match is None:
                raise NotRegistered("doctype-not-served",
                                    f"{participant} registers no {smp.AS4_PROFILE} doctype matching wildcard {doctype}")
            registered = match
        signed = await self.service_metadata(participant, registered, base)
        info = signed.content
        assert isinstance(info, smp.ServiceInformation)
        now = self.clock()
        proc, ep = smp.select_endpoint(info, process, now, self.config.transport_profile)
        url = smp.check_url(ep.url, self.config.allow_http, "endpoint-bad-url")
        memo = self._endpoint_memo(ep.certificate_der, now)
        cert = memo.certificate
        if self.revocation is not None:
            await self._check_revocation(memo.path, now, "endpoint-certificate")
        return Endpoint(
            url=url,
            transport_profile=ep.transport_profile,
            certificate=cert,
            seat_id=common_name(cert),
            smp_url=base,
            metadata_url=signed.url,
            activation=ep.activation,
            expiration=ep.expiration,
            participant=participant,
            document_type=registered,
            process=proc.process,
            smp_signer=signed.signer,
            redirected_from=signed.redirected_from,
            require_business_level_signature=ep.require_business_level_signature,
            technical_contact_url=ep.technical_contact_url,
            description=ep.description,
        )


def effective_anchors(entries: Sequence[str], mode: str, key: str) -> list[str]:
    """[trust] anchors for `mode`. The untouched default (peppol-test) follows prod mode; mixing refused."""
    from gateway.config import ConfigError

    entries = list(entries)
    if mode == "prod" and entries == ["peppol-test"]:
        return ["peppol-prod"]
    wrong = "peppol-test" if mode == "prod" else "peppol-prod"
    if any(e == wrong or e.startswith(wrong + "-") for e in entries):
        raise ConfigError(f"[trust] {key} = {entries} mixes {wrong} anchors into {mode} discovery")
    return entries
