"""Test PKI for revocation: a CA whose leaf certificates name CRL and OCSP URLs of a local aiohttp
server, real CRLs and OCSP responses signed by that CA (or a delegated responder, or a stranger),
and the server that serves them and counts requests."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from certs.devpki import Issued, make_ap_cert, new_key


def issue_leaf(seat_id: str, ca: Issued, *, now: dt.datetime, crl: list[str] = (), ocsp_urls: list[str] = (),
               key=None) -> Issued:
    """An AP certificate (dev PKI profile) with CRL distribution points and AIA OCSP URLs added."""
    base = make_ap_cert(seat_id, ca, now=now, key=key)
    builder = (x509.CertificateBuilder().subject_name(base.cert.subject).issuer_name(base.cert.issuer)
               .public_key(base.key.public_key()).serial_number(base.cert.serial_number)
               .not_valid_before(base.cert.not_valid_before_utc).not_valid_after(base.cert.not_valid_after_utc))
    for ext in base.cert.extensions:
        builder = builder.add_extension(ext.value, ext.critical)
    if crl:
        builder = builder.add_extension(x509.CRLDistributionPoints([
            x509.DistributionPoint([x509.UniformResourceIdentifier(u)], None, None, None) for u in crl]), False)
    if ocsp_urls:
        builder = builder.add_extension(x509.AuthorityInformationAccess([
            x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(u))
            for u in ocsp_urls]), False)
    return Issued(base.key, builder.sign(ca.key, hashes.SHA256()))


def make_responder(ca: Issued, *, now: dt.datetime, eku: bool = True) -> Issued:
    """A delegated OCSP responder certificate issued by `ca` (with id-kp-OCSPSigning unless eku=False)."""
    key = new_key()
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "TEST OCSP RESPONDER")]))
               .issuer_name(ca.cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30)))
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), False)
    return Issued(key, builder.sign(ca.key, hashes.SHA256()))


def make_crl(ca: Issued, revoked: dict[int, dt.datetime] | None = None, *, now: dt.datetime,
             last_update: dt.datetime | None = None, next_update: dt.datetime | None = None,
             signer=None, pem: bool = False) -> bytes:
    """A CRL named after `ca`, listing `revoked` serials, signed by `signer` (default: ca's key)."""
    builder = (x509.CertificateRevocationListBuilder().issuer_name(ca.cert.subject)
               .last_update(last_update or now - dt.timedelta(hours=1))
               .next_update(next_update or now + dt.timedelta(days=1)))
    for serial, when in (revoked or {}).items():
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build())
    crl = builder.sign(signer or ca.key, hashes.SHA256())
    return crl.public_bytes(serialization.Encoding.PEM if pem else serialization.Encoding.DER)


def make_ocsp(cert: x509.Certificate, ca: Issued, status: str = "good", *, now: dt.datetime,
              responder: Issued | None = None, this_update: dt.datetime | None = None,
              next_update: dt.datetime | None = None, revoked_at: dt.datetime | None = None) -> bytes:
    """A successful OCSP response about `cert`, signed by `responder` (default: the CA itself)."""
    signer = responder or ca
    cert_status = {"good": ocsp.OCSPCertStatus.GOOD, "revoked": ocsp.OCSPCertStatus.REVOKED,
                   "unknown": ocsp.OCSPCertStatus.UNKNOWN}[status]
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=cert, issuer=ca.cert, algorithm=hashes.SHA1(), cert_status=cert_status,
        this_update=this_update or now - dt.timedelta(minutes=10),
        next_update=next_update or now + dt.timedelta(hours=4),
        revocation_time=(revoked_at or now - dt.timedelta(hours=1)) if status == "revoked" else None,
        revocation_reason=x509.ReasonFlags.key_compromise if status == "revoked" else None,
    ).responder_id(ocsp.OCSPResponderEncoding.HASH, signer.cert)
    if responder is not None:
        builder = builder.certificates([responder.cert])
    return builder.sign(signer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


@dataclass
class Responder:
    """Local CRL (GET /crl/<name>) and OCSP (POST /ocsp/<name>) server.

    `crls[name]` is the CRL body; `ocsp[name]` maps a DER request to a DER response. `hits` counts
    requests per path; `delay` holds every answer back (timeouts, concurrency)."""

    crls: dict[str, bytes] = field(default_factory=dict)
    ocsp: dict = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    requests: list[bytes] = field(default_factory=list)
    delay: float = 0.0
    chunked: bool = False  # send CRLs without Content-Length (the size cap must hold while reading)
    port: int = 0

    def url(self, kind: str, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{kind}/{name}"

    def count(self, kind: str, name: str) -> int:
        return self.hits.get(f"/{kind}/{name}", 0)

    def total(self) -> int:
        return sum(self.hits.values())

    async def _crl(self, request: web.Request) -> web.Response:
        self.hits[request.path] = self.hits.get(request.path, 0) + 1
        if self.delay:
            await asyncio.sleep(self.delay)
        body = self.crls.get(request.match_info["name"])
        if body is None:
            return web.Response(status=404)
        if not self.chunked:
            return web.Response(body=body, content_type="application/pkix-crl")
        resp = web.StreamResponse(headers={"Content-Type": "application/pkix-crl"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for i in range(0, len(body), 100):
            await resp.write(body[i:i + 100])
        await resp.write_eof()
        return resp

    async def _ocsp(self, request: web.Request) -> web.Response:
        self.hits[request.path] = self.hits.get(request.path, 0) + 1
        assert request.content_type == "application/ocsp-request"
        body = await request.read()
        self.requests.append(body)
        if self.delay:
            await asyncio.sleep(self.delay)
        answer = self.ocsp.get(request.match_info["name"])
        if answer is None:
            return web.Response(status=404)
        return web.Response(body=answer(body), content_type="application/ocsp-response")

    async def start(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_get("/crl/{name}", self._crl)
        app.router.add_post("/ocsp/{name}", self._ocsp)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return runner


@pytest.fixture
async def server():
    """A Responder on a free local port for one test (import it where it is used)."""
    responder = Responder()
    runner = await responder.start()
    yield responder
    await runner.cleanup()
