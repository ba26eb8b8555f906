"""Client-certificate (mutual TLS) mode against the simulator on HTTPS."""

from __future__ import annotations

import datetime as dt
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.channels.base import ChannelError
from gateway.channels.efaktura.adapter import EfakturaAdapter, EfakturaConfig
from gateway.channels.efaktura.simulator import EfakturaSimulator

from .conftest import ISSUER, KARI, PASSWORD, USER, seed


def _cert(cn: str, key, issuer_cert=None, issuer_key=None, *, ca=False, san=None):
    now = dt.datetime.now(dt.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer_cert.subject if issuer_cert else name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san:
        builder = builder.add_extension(san, critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


def _write(path, cert, key):
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                           serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
    return str(path.with_suffix(".crt")), str(path.with_suffix(".key"))


@pytest.fixture
def pki(tmp_path):
    import ipaddress

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("Test MPS CA", ca_key, ca=True)
    srv_key, cli_key, rogue_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    srv = _cert("127.0.0.1", srv_key, ca, ca_key,
                san=x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]))
    cli = _cert("sendgw-issuer-client", cli_key, ca, ca_key)
    rogue = _cert("someone-else", rogue_key, ca, ca_key)
    ca_file = tmp_path / "ca.crt"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return {"ca": str(ca_file), "server": _write(tmp_path / "server", srv, srv_key),
            "client": _write(tmp_path / "client", cli, cli_key), "rogue": _write(tmp_path / "rogue", rogue, rogue_key)}


@pytest.fixture
async def tls_sim(pki):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=pki["ca"])
    ctx.load_cert_chain(*pki["server"])
    ctx.verify_mode = ssl.CERT_OPTIONAL  # the simulator answers a missing certificate with a SOAP fault
    sim = seed(EfakturaSimulator())
    sim.users[USER].certificate_cn = "sendgw-issuer-client"
    await sim.start(ssl_context=ctx)
    yield sim
    await sim.stop()


def _config(sim, pki, cert: str | None):
    d = {"issuer_orgnr": ISSUER, "url": sim.url, "username": USER, "password": PASSWORD, "ca_file": pki["ca"],
         "timeout_seconds": 2}
    if cert:
        d["client_cert_file"], d["client_key_file"] = pki[cert]
    return EfakturaConfig.from_dict(d)


async def test_client_certificate_accepted(tls_sim, pki):
    a = EfakturaAdapter(_config(tls_sim, pki, "client"))
    try:
        assert (await a.reachability(KARI)).reachable
    finally:
        await a.close()


@pytest.mark.parametrize("cert", [None, "rogue"])
async def test_missing_or_unregistered_certificate_refused(tls_sim, pki, cert):
    a = EfakturaAdapter(_config(tls_sim, pki, cert))
    try:
        with pytest.raises(ChannelError) as err:
            await a.reachability(KARI)
        assert err.value.code == "auth-refused" and not err.value.transient
    finally:
        await a.close()


async def test_untrusted_server_certificate_refused(tls_sim, pki):
    cfg = _config(tls_sim, pki, "client")
    import dataclasses

    a = EfakturaAdapter(dataclasses.replace(cfg, ca_file=None))  # system trust does not know the test CA
    try:
        with pytest.raises(ChannelError) as err:
            await a.reachability(KARI)
        assert err.value.code == "auth-refused"
    finally:
        await a.close()
