"""Discovery with the real RevocationChecker: a revoked endpoint or SMP signer certificate makes the
lookup fail with a clear error; Discovery.from_settings plugs the checker in and closes it."""

from __future__ import annotations

import datetime as dt

import pytest

from gateway.config import Settings
from gateway.discovery.errors import DiscoveryError
from gateway.discovery.lookup import Discovery, DiscoveryConfig
from gateway.revocation import RevocationChecker
from tests.certs.revocation_pki import issue_leaf, make_crl, server  # server: fixture

from .conftest import INVOICE, NOW, ZONE, Issued
from .test_end_to_end import EP_URL, publish


def discovery_with(local_net, pki, checker) -> Discovery:
    config = DiscoveryConfig(zone=ZONE, nameservers=(local_net.nameserver,), dns_timeout=1.0, smp_timeout=2.0,
                             allow_http=True)
    return Discovery(config, pki.ap_trust, pki.smp_trust, revocation=checker)


def with_crl(ca, url, seat) -> Issued:
    """An AP certificate of the conftest AP CA that names a CRL distribution point."""
    leaf = issue_leaf(seat, ca, now=NOW, crl=[url])
    return Issued(leaf.key, leaf.cert)


async def test_revoked_endpoint_certificate_fails_the_lookup(local_net, pki, participant, server):
    endpoint = with_crl(pki.ap_ca, server.url("crl", "ap"), "PNO000777")
    server.crls["ap"] = make_crl(pki.ap_ca,
                                 {endpoint.cert.serial_number: NOW - dt.timedelta(days=1)}, now=NOW)
    publish(local_net, pki, participant, cert=endpoint)
    checker = RevocationChecker()
    async with discovery_with(local_net, pki, checker) as discovery:
        with pytest.raises(DiscoveryError) as info:
            await discovery.lookup(participant, INVOICE)
    await checker.close()
    assert info.value.code == "endpoint-certificate-revoked"
    assert "PNO000777 is revoked" in str(info.value) and server.url("crl", "ap") in str(info.value)


async def test_good_endpoint_certificate_is_found(local_net, pki, participant, server):
    endpoint = with_crl(pki.ap_ca, server.url("crl", "ap"), "PNO000778")
    server.crls["ap"] = make_crl(pki.ap_ca, now=NOW)
    publish(local_net, pki, participant, cert=endpoint)
    checker = RevocationChecker(soft_fail=False, mode="crl")
    # the CAs of the conftest PKI name no CRL: checked for the leaf only with a hard-failing checker
    async with discovery_with(local_net, pki, checker) as discovery:
        with pytest.raises(DiscoveryError) as info:
            await discovery.lookup(participant, INVOICE)
        assert info.value.code == "smp-certificate-revocation-unknown"
    soft = RevocationChecker()
    async with discovery_with(local_net, pki, soft) as discovery:
        ep = await discovery.lookup(participant, INVOICE)
        await discovery.lookup(participant, INVOICE)
    await checker.close()
    await soft.close()
    assert ep.url == EP_URL and ep.certificate == endpoint.cert
    assert server.count("crl", "ap") == 1  # cached across lookups


async def test_from_settings_checks_revocation_and_closes_its_checker(local_net, pki, participant, server, tmp_path):
    endpoint = with_crl(pki.ap_ca, server.url("crl", "ap"), "PNO000779")
    server.crls["ap"] = make_crl(pki.ap_ca,
                                 {endpoint.cert.serial_number: NOW - dt.timedelta(days=1)}, now=NOW)
    publish(local_net, pki, participant, cert=endpoint)
    (tmp_path / "ap.pem").write_bytes(pki.root.pem + pki.ap_ca.pem)
    (tmp_path / "smp.pem").write_bytes(pki.root.pem + pki.smp_ca.pem)
    settings = Settings(base_dir=tmp_path)
    settings.trust.ap_anchors, settings.trust.smp_anchors = ["ap.pem"], ["smp.pem"]
    settings.discovery.sml_zone, settings.discovery.nameservers = ZONE, [local_net.nameserver]
    settings.discovery.allow_http = True
    discovery = Discovery.from_settings(settings)
    assert isinstance(discovery.revocation, RevocationChecker)
    async with discovery:
        with pytest.raises(DiscoveryError) as info:
            await discovery.lookup(participant, INVOICE)
        session = discovery.revocation._session
    assert info.value.code == "endpoint-certificate-revoked"
    assert session is not None and session.closed
    settings.revocation.mode = "off"
    async with Discovery.from_settings(settings) as discovery:
        assert (await discovery.lookup(participant, INVOICE)).certificate == endpoint.cert
    assert server.count("crl", "ap") == 1
