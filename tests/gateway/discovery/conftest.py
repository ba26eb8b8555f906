"""Test PKI (generated SMP/AP CAs), a real local DNS server answering NAPTR, and a real local SMP.

Both servers run on 127.0.0.1 in one background thread with its own event loop, so async tests and
the synchronous CLI (`asyncio.run` inside `sendgw lookup`) can use them alike. Each test registers
its own participants, so tests do not interfere.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
import threading
from pathlib import Path
from dataclasses import dataclass, field

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from lxml import etree
from signxml import XMLSigner, methods

from certs.trust import TrustStore
from gateway.discovery import sml
from gateway.identifiers import DocumentTypeId, ParticipantId, ProcessId

NOW = dt.datetime.now(dt.UTC)
ZONE = "participant.sml.unit.test"
INVOICE = DocumentTypeId.parse(
    "busdox-docid-qns::urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##"
    "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1")
CREDIT_NOTE = DocumentTypeId.parse(
    "busdox-docid-qns::urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2::CreditNote##"
    "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1")
BILLING = ProcessId.parse("cenbii-procid-ubl::urn:fdc:peppol.eu:2017:poacc:billing:01:1.0")
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"


# --- PKI ---------------------------------------------------------------------------------------


@dataclass
class Issued:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)


_KEYS: list[rsa.RSAPrivateKey] = []


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(cn: str, ou: str = "FOR TEST ONLY") -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "NO"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SEND gateway tests"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


def issue(cn: str, issuer: Issued | None, *, ca: bool, ou: str = "FOR TEST ONLY",
          not_before: dt.datetime | None = None, not_after: dt.datetime | None = None,
          san_ip: str | None = None) -> Issued:
    key = _key()
    subject = _name(cn, ou)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - dt.timedelta(days=30))
        .not_valid_after(not_after or NOW + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), True)
    else:
        builder = builder.add_extension(x509.KeyUsage(True, False, True, True, False, False, False, False, False), True)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]), False)
    if san_ip:
        import ipaddress
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(san_ip))]), False)
    cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
    return Issued(key, cert)


@dataclass
class Pki:
    root: Issued
    smp_ca: Issued
    ap_ca: Issued
    smp: Issued  # trusted SMP signer
    smp2: Issued  # second trusted SMP signer (redirect target)
    ap: Issued  # trusted AP endpoint certificate
    rogue_root: Issued
    rogue_ap: Issued  # AP certificate from an untrusted CA
    rogue_smp: Issued  # SMP signer from an untrusted CA
    expired_ap: Issued
    tls_ca: Issued
    tls_server: Issued

    @property
    def smp_trust(self) -> TrustStore:
        return TrustStore.from_pem(self.root.pem + self.smp_ca.pem)

    @property
    def ap_trust(self) -> TrustStore:
        return TrustStore.from_pem(self.root.pem + self.ap_ca.pem)


@pytest.fixture(scope="session")
def pki() -> Pki:
    root = issue("SENDGW TEST ROOT CA", None, ca=True)
    smp_ca = issue("SENDGW TEST SMP CA", root, ca=True)
    ap_ca = issue("SENDGW TEST AP CA", root, ca=True)
    rogue_root = issue("ROGUE ROOT CA", None, ca=True)
    tls_ca = issue("SENDGW TEST TLS CA", None, ca=True)
    return Pki(
        root=root, smp_ca=smp_ca, ap_ca=ap_ca,
        smp=issue("PNO000901", smp_ca, ca=False, ou="PEPPOL TEST SMP"),
        smp2=issue("PNO000902", smp_ca, ca=False, ou="PEPPOL TEST SMP"),
        ap=issue("PNO000123", ap_ca, ca=False, ou="PEPPOL TEST AP"),
        rogue_root=rogue_root,
        rogue_ap=issue("PNO000666", rogue_root, ca=False, ou="PEPPOL TEST AP"),
        rogue_smp=issue("PNO000667", rogue_root, ca=False, ou="PEPPOL TEST SMP"),
        expired_ap=issue("PNO000124", ap_ca, ca=False, ou="PEPPOL TEST AP",
                         not_before=NOW - dt.timedelta(days=400), not_after=NOW - dt.timedelta(days=1)),
        tls_ca=tls_ca,
        tls_server=issue("127.0.0.1", tls_ca, ca=False, ou="TLS", san_ip="127.0.0.1"),
    )


# --- SMP documents -----------------------------------------------------------------------------

SMP_NS = "http://busdox.org/serviceMetadata/publishing/1.0/"
IDS_NS = "http://busdox.org/transport/identifiers/1.0/"
WSA_NS = "http://www.w3.org/2005/08/addressing"


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def service_metadata_xml(participant: ParticipantId, doctype: DocumentTypeId, *, endpoint_url: str,
                         cert_der: bytes, process: ProcessId = BILLING,
                         profile: str = "peppol-transport-as4-v2_0",
                         activation: dt.datetime | None = None, expiration: dt.datetime | None = None,
                         participant_text: str | None = None, doctype_text: str | None = None) -> bytes:
    import base64

    dates = ""
    if activation:
        dates += f"<smp:ServiceActivationDate>{_iso(activation)}</smp:ServiceActivationDate>"
    if expiration:
        dates += f"<smp:ServiceExpirationDate>{_iso(expiration)}</smp:ServiceExpirationDate>"
    b64 = base64.encodebytes(cert_der).decode()
    return f"""<smp:SignedServiceMetadata xmlns:smp="{SMP_NS}" xmlns:ids="{IDS_NS}" xmlns:wsa="{WSA_NS}">
  <smp:ServiceMetadata>
    <smp:ServiceInformation>
      <ids:ParticipantIdentifier scheme="{participant.scheme}">{participant_text or participant.value}</ids:ParticipantIdentifier>
      <ids:DocumentIdentifier scheme="{doctype.scheme}">{doctype_text or doctype.value}</ids:DocumentIdentifier>
      <smp:ProcessList>
        <smp:Process>
          <ids:ProcessIdentifier scheme="{process.scheme}">{process.value}</ids:ProcessIdentifier>
          <smp:ServiceEndpointList>
            <smp:Endpoint transportProfile="{profile}">
              <wsa:EndpointReference><wsa:Address>{endpoint_url}</wsa:Address></wsa:EndpointReference>
              <smp:RequireBusinessLevelSignature>false</smp:RequireBusinessLevelSignature>
              {dates}
              <smp:Certificate>{b64}</smp:Certificate>
              <smp:ServiceDescription>test AP</smp:ServiceDescription>
              <smp:TechnicalContactUrl>mailto:ops@example.test</smp:TechnicalContactUrl>
            </smp:Endpoint>
          </smp:ServiceEndpointList>
        </smp:Process>
      </smp:ProcessList>
    </smp:ServiceInformation>
  </smp:ServiceMetadata>
</smp:SignedServiceMetadata>""".encode()


def redirect_xml(href: str, certificate_uid: str) -> bytes:
    return f"""<smp:SignedServiceMetadata xmlns:smp="{SMP_NS}" xmlns:ids="{IDS_NS}"><smp:ServiceMetadata>
<smp:Redirect href="{href.replace('&', '&amp;')}"><smp:CertificateUID>{certificate_uid}</smp:CertificateUID></smp:Redirect>
</smp:ServiceMetadata></smp:SignedServiceMetadata>""".encode()


def service_group_xml(participant: ParticipantId, base: str, doctypes: list[DocumentTypeId]) -> bytes:
    refs = "".join(
        f'<smp:ServiceMetadataReference href="{base}/{participant.url_segment}/services/{d.url_segment}"/>'
        for d in doctypes
    )
    return f"""<smp:ServiceGroup xmlns:smp="{SMP_NS}" xmlns:ids="{IDS_NS}">
<ids:ParticipantIdentifier scheme="{participant.scheme}">{participant.value}</ids:ParticipantIdentifier>
<smp:ServiceMetadataReferenceCollection>{refs}</smp:ServiceMetadataReferenceCollection></smp:ServiceGroup>""".encode()


def sign(xml: bytes, signer: Issued, *, algorithm: str = "rsa-sha256", digest: str = "sha256") -> bytes:
    """Enveloped signature by signxml (an independent signer), KeyInfo = the signer certificate."""
    class _Signer(XMLSigner):
        def check_deprecated_methods(self):  # allow producing legacy SHA-1 test data
            if "sha1" not in (algorithm, digest):
                super().check_deprecated_methods()

    root = etree.fromstring(xml)
    signed = _Signer(method=methods.enveloped, signature_algorithm=algorithm, digest_algorithm=digest,
                       c14n_algorithm=EXC_C14N).sign(root, key=signer.key, cert=[signer.cert])
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


# --- servers -----------------------------------------------------------------------------------


class _DnsProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: LocalDns):
        self.server = server

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        reply = self.server.answer(data)
        if reply is not None:
            self.transport.sendto(reply, addr)


@dataclass
class LocalDns:
    """A tiny authoritative server: NAPTR answers, NXDOMAIN otherwise, SERVFAIL or silence on demand."""

    records: dict[str, list[str]] = field(default_factory=dict)  # lower-case qname (no dot) -> NAPTR rdata texts
    ttls: dict[str, int] = field(default_factory=dict)
    servfail: set[str] = field(default_factory=set)
    silent: set[str] = field(default_factory=set)
    queries: list[str] = field(default_factory=list)
    port: int = 0

    def answer(self, wire: bytes) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        question = query.question[0]
        name = question.name.to_text().rstrip(".").lower()
        self.queries.append(name)
        if name in self.silent:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if name in self.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
        elif name in self.records:
            if question.rdtype == dns.rdatatype.NAPTR and self.records[name]:
                rrset = dns.rrset.from_text(question.name, self.ttls.get(name, 300), "IN", "NAPTR", *self.records[name])
                response.answer.append(rrset)
        else:
            response.set_rcode(dns.rcode.NXDOMAIN)
        return response.to_wire()

    def register(self, participant: ParticipantId, smp_url: str, zone: str = ZONE, ttl: int = 300,
                 extra: list[str] | None = None) -> str:
        qname = sml.naptr_qname(participant, zone)
        self.records[qname] = (extra or []) + [f'100 10 "U" "Meta:SMP" "!.*!{smp_url}!" .']
        self.ttls[qname] = ttl
        return qname

    def count(self, participant: ParticipantId, zone: str = ZONE) -> int:
        return self.queries.count(sml.naptr_qname(participant, zone))


@dataclass
class LocalSmp:
    """SMP over HTTP (and HTTPS): raw request path -> (status, body); `hits` counts requests per path."""

    responses: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    delay: float = 0.0
    port: int = 0
    tls_port: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def tls_base(self) -> str:
        return f"https://127.0.0.1:{self.tls_port}"

    async def handle(self, request: web.Request) -> web.Response:
        path = request.raw_path
        self.hits[path] = self.hits.get(path, 0) + 1
        if self.delay:
            await asyncio.sleep(self.delay)
        status, body = self.responses.get(path, (404, b"not found"))
        return web.Response(status=status, body=body, content_type="text/xml")

    def put(self, url: str, body: bytes, status: int = 200) -> str:
        """Serve `body` at the absolute `url` (its path part, percent-encoded as given)."""
        path = "/" + url.split("://", 1)[1].split("/", 1)[1]
        self.responses[path] = (status, body)
        return path

    def hit_count(self, url: str) -> int:
        return self.hits.get("/" + url.split("://", 1)[1].split("/", 1)[1], 0)


@dataclass
class LocalNet:
    dns: LocalDns
    smp: LocalSmp
    loop: asyncio.AbstractEventLoop
    dead_port: int  # nothing listens here

    @property
    def nameserver(self) -> str:
        return f"127.0.0.1:{self.dns.port}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def serve(dns_server: LocalDns, smp_server: LocalSmp, tls_dir: Path | None = None):
    """Start the DNS server (UDP) and the SMP (HTTP, and HTTPS with `tls_dir`/{cert,key}.pem) on
    free local ports of the running loop; returns (DNS transport, SMP runner) for shutting down."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: _DnsProtocol(dns_server), local_addr=("127.0.0.1", 0))
    dns_server.port = transport.get_extra_info("sockname")[1]
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", smp_server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    smp_server.port = site._server.sockets[0].getsockname()[1]
    if tls_dir is not None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(tls_dir / "cert.pem", tls_dir / "key.pem")
        tls_site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
        await tls_site.start()
        smp_server.tls_port = tls_site._server.sockets[0].getsockname()[1]
    return transport, runner


@pytest.fixture(scope="session")
def local_net(pki: Pki, tmp_path_factory: pytest.TempPathFactory):
    dns_server, smp_server = LocalDns(), LocalSmp()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    state: dict = {}
    tls_dir = tmp_path_factory.mktemp("tls")
    (tls_dir / "cert.pem").write_bytes(pki.tls_server.pem)
    (tls_dir / "key.pem").write_bytes(pki.tls_server.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))

    async def start():
        state["transport"], state["runner"] = await serve(dns_server, smp_server, tls_dir)

    def run():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="local-net", daemon=True)
    thread.start()
    assert ready.wait(10), "local DNS/SMP servers did not start"
    yield LocalNet(dns_server, smp_server, loop, _free_port())

    async def stop():
        state["transport"].close()
        await state["runner"].cleanup()

    asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


_counter = iter(range(10_000_000))


def fresh_participant() -> ParticipantId:
    """A unique, valid 9915 test participant per call (tests never share SML names)."""
    return ParticipantId.parse(f"9915:sendgw-test-{next(_counter)}")


@pytest.fixture
def participant() -> ParticipantId:
    return fresh_participant()


def tls_context(pki: Pki) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cadata=pki.tls_ca.pem.decode())
    return ctx
