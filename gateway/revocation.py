"""Certificate revocation checking over the network: the I/O edge of certs/revocation.py.

    checker = RevocationChecker.from_settings(settings)
    await checker(path, at)          # path = [leaf, issuing CA, ..., root] from TrustStore.verify
    await checker.close()

Each certificate of the path is checked against its issuer (the self-signed root is trusted as
such). The `[revocation]` mode orders the sources: CRL first and OCSP only when no CRL gives an
answer (the peppol-commons/phase4 default), or the reverse, or one kind only, or off. A certificate
confirmed revoked is always refused (CertificateError "revoked"). When no source gives a usable
answer, soft fail lets it pass with a warning (Peppol CRL/OCSP outages must not stop all traffic,
phase4 #354), hard fail refuses it ("revocation-unknown").

Why the caching: this is called for every inbound message and every lookup. CRLs are kept per URL
and OCSP answers per certificate until their nextUpdate (at most a day); a failed fetch is
remembered for `failure_ttl` so an unreachable source does not add its timeout to every message;
concurrent checks share one fetch per URL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable

import aiohttp
from cryptography import x509

from certs.revocation import (
    RevocationStatus,
    build_ocsp_request,
    check_crl,
    check_ocsp,
    crl_urls,
    load_crl,
    ocsp_urls,
)
from certs.trust import CertificateError, common_name, fingerprint
from gateway.discovery.cache import TTLCache

log = logging.getLogger("sendgw.revocation")

MODES = ("crl-ocsp", "ocsp-crl", "crl", "ocsp", "off")
MAX_OCSP_BYTES = 64 * 1024
MAX_CACHE = dt.timedelta(days=1)  # re-fetch at least daily, whatever nextUpdate says
DEFAULT_OCSP_TTL = dt.timedelta(hours=1)  # an OCSP answer without nextUpdate
CHUNK = 64 * 1024


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class FetchError(Exception):
    """A source could not be reached or answered with something other than a CRL/OCSP body."""


class RevocationChecker:
    """Async revocation hook (`await checker(path, at)`); one per process, shared."""

    def __init__(self, *, mode: str = "crl-ocsp", soft_fail: bool = True, timeout: float = 5.0,
                 max_crl_bytes: int = 10 * 1024 * 1024, cache_size: int = 1000, failure_ttl: float = 60.0,
                 clock: Callable[[], dt.datetime] = utcnow, session: aiohttp.ClientSession | None = None):
        if mode not in MODES:
            raise ValueError(f"revocation mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.mode, self.soft_fail = mode, soft_fail
        self.timeout, self.max_crl_bytes = timeout, max_crl_bytes
        self.failure_ttl = dt.timedelta(seconds=failure_ttl)
        self.clock = clock
        self._session = session
        self._own_session = session is None
        # bounded TTL caches with one load per key at a time; a CRL URL maps to the CRL or, for
        # failure_ttl, to the text of the failed fetch; OCSP failures are remembered per URL
        seconds = lambda: self.clock().timestamp()  # noqa: E731
        self._crls: TTLCache[x509.CertificateRevocationList | str] = TTLCache(cache_size, 0, seconds)
        self._ocsp: TTLCache[RevocationStatus] = TTLCache(cache_size, 0, seconds)
        self._ocsp_failures: TTLCache[str] = TTLCache(cache_size, 0, seconds)

    @classmethod
    def from_settings(cls, settings, **kwargs) -> RevocationChecker:
        r = settings.revocation
        return cls(mode=r.mode.lower(), soft_fail=r.soft_fail, timeout=r.timeout_seconds,
                   max_crl_bytes=r.max_crl_bytes, cache_size=r.cache_size, **kwargs)

    async def close(self) -> None:
        self._crls.cancel()
        self._ocsp.cancel()
        if self._own_session and self._session is not None and not self._session.closed:
            await self._session.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(trust_env=False)
            self._own_session = True
        return self._session

    # --- the hook --------------------------------------------------------------------------------

    async def __call__(self, path: list[x509.Certificate], at: dt.datetime) -> None:
        """Refuse the path when one of its certificates is revoked (or, hard fail, of unknown status)."""
        if self.mode == "off":
            return
        for cert, issuer in zip(path, path[1:]):
            status = await self.status(cert, issuer, at)
            if status.state == "good":
                continue
            name = common_name(cert)
            if status.state == "revoked":
                raise CertificateError("revoked", f"{name} is revoked: {status.reason} [{status.source}]")
            if not self.soft_fail:
                raise CertificateError("revocation-unknown", f"revocation status of {name} unknown: {status.reason}")
            if status.source:
                log.warning("revocation status of %s unknown, accepted (soft fail): %s", name, status.reason)
            else:  # no CRL/OCSP URL at all (dev certificates): expected, not worth a warning per message
                log.debug("revocation status of %s unknown, accepted (soft fail): %s", name, status.reason)

    async def status(self, cert: x509.Certificate, issuer: x509.Certificate, at: dt.datetime) -> RevocationStatus:
        """The first good/revoked answer of the sources in mode order; else unknown with all reasons."""
        sources: list[tuple[str, Callable[[str], Awaitable[RevocationStatus]]]] = []
        for kind in self.mode.split("-"):
            if kind == "crl":
                sources += [(u, lambda u: self._crl_status(u, cert, issuer, at)) for u in crl_urls(cert)]
            else:
                sources += [(u, lambda u: self._ocsp_status(u, cert, issuer, at)) for u in ocsp_urls(cert)]
        if not sources:
            return RevocationStatus("unknown", f"no {self.mode.replace('-', '/').upper()} source in the certificate")
        reasons = []
        for url, check in sources:
            status = await check(url)
            if status.state != "unknown":
                return status
            reasons.append(f"{url}: {status.reason}")
        return RevocationStatus("unknown", "; ".join(reasons), sources[-1][0])

    # --- sources ---------------------------------------------------------------------------------

    async def _crl_status(self, url: str, cert, issuer, at) -> RevocationStatus:
        crl = await self._crls.get(url, lambda: self._load_crl(url))
        if isinstance(crl, str):
            return RevocationStatus("unknown", crl, url)
        return check_crl(cert, issuer, crl, at, url)

    async def _load_crl(self, url: str) -> tuple[x509.CertificateRevocationList | str, float]:
        """The CRL of `url` from the network, or the failure text (remembered for failure_ttl)."""
        try:
            data = await self._fetch("GET", url, self.max_crl_bytes, "CRL")
            crl = await asyncio.to_thread(load_crl, data)  # a large CRL takes a while to parse
        except (FetchError, ValueError) as exc:
            return f"CRL fetch failed: {exc}", self.failure_ttl.total_seconds()
        return crl, self._ttl(crl.next_update_utc, MAX_CACHE)

    async def _ocsp_status(self, url: str, cert, issuer, at) -> RevocationStatus:
        key = (url, fingerprint(issuer), cert.serial_number)
        return await self._ocsp.get(key, lambda: self._load_ocsp(url, cert, issuer, at))

    async def _load_ocsp(self, url: str, cert, issuer, at) -> tuple[RevocationStatus, float]:
        """The answer for one certificate and how long to keep it (0: not kept, the responder's
        failure is remembered instead)."""
        failure = self._ocsp_failures.peek(url)
        if failure is not None:
            return RevocationStatus("unknown", failure, url), 0
        try:
            data = await self._fetch("POST", url, MAX_OCSP_BYTES, "OCSP response",
                                     build_ocsp_request(cert, issuer))
        except FetchError as exc:
            reason = f"OCSP request failed: {exc}"
            self._ocsp_failures.put(url, reason, self.failure_ttl.total_seconds())
            return RevocationStatus("unknown", reason, url), 0
        status = check_ocsp(data, cert, issuer, at, url)
        if status.state == "unknown":  # unusable answer: asked again only after the failure time
            return status, self.failure_ttl.total_seconds()
        return status, self._ttl(status.next_update, DEFAULT_OCSP_TTL)

    # --- plumbing --------------------------------------------------------------------------------

    def _ttl(self, next_update: dt.datetime | None, default: dt.timedelta) -> float:
        """Seconds to keep an answer: until nextUpdate, bounded by MAX_CACHE, and at least the
        failure time (a stale answer is then not fetched again for every message)."""
        now = self.clock()
        until = min(next_update, now + MAX_CACHE) if next_update is not None else now + default
        return ((until if until > now else now + self.failure_ttl) - now).total_seconds()

    async def _fetch(self, method: str, url: str, cap: int, what: str, body: bytes | None = None) -> bytes:
        headers = {"Content-Type": "application/ocsp-request"} if body is not None else {}
        try:
            async with self._http().request(method, url, data=body, headers=headers, allow_redirects=False,
                                            timeout=aiohttp.ClientTimeout(total=self.timeout)) as resp:
                if resp.status != 200:
                    raise FetchError(f"HTTP {resp.status}")
                if resp.content_length is not None and resp.content_length > cap:
                    raise FetchError(f"{what} larger than {cap} bytes")
                buf = bytearray()
                async for chunk in resp.content.iter_chunked(CHUNK):
                    buf += chunk
                    if len(buf) > cap:
                        raise FetchError(f"{what} larger than {cap} bytes")
                return bytes(buf)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
            raise FetchError(f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
