"""End to end against a real local DNS server (NAPTR) and a real local SMP (HTTP and HTTPS)."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from gateway.discovery.errors import DiscoveryError, DiscoveryUnavailable, NotRegistered
from gateway.discovery.lookup import Discovery, DiscoveryConfig
from gateway.discovery.smp import service_metadata_url

from .conftest import (
    BILLING,
    CREDIT_NOTE,
    INVOICE,
    NOW,
    ZONE,
    fresh_participant,
    redirect_xml,
    service_group_xml,
    service_metadata_xml,
    sign,
    tls_context,
)

EP_URL = "https://ap.example.test/as4"


def make_discovery(local_net, pki, **overrides) -> Discovery:
    ssl_context = overrides.pop("ssl_context", None)
    clock = overrides.pop("clock", None)
    settings = {"zone": ZONE, "nameservers": (local_net.nameserver,), "dns_timeout": 1.0, "smp_timeout": 2.0,
                "allow_http": True, **overrides}
    config = DiscoveryConfig(**settings)
    kwargs = {"ssl_context": ssl_context}
    if clock:
        kwargs["clock"] = clock
    return Discovery(config, pki.ap_trust, pki.smp_trust, **kwargs)


def publish(local_net, pki, participant, doctype=INVOICE, *, signer=None, cert=None, base=None, body=None,
            status=200, **xml_kwargs) -> str:
    """Register participant in DNS -> local SMP and serve signed metadata; returns the metadata URL."""
    base = base or local_net.smp.base
    local_net.dns.register(participant, base)
    url = service_metadata_url(base, participant, doctype)
    if body is None:
        xml = service_metadata_xml(participant, doctype, endpoint_url=EP_URL,
                                   cert_der=(cert or pki.ap).der, **xml_kwargs)
        body = sign(xml, signer or pki.smp)
    local_net.smp.put(url, body, status)
    return url


async def test_found(local_net, pki, participant):
    url = publish(local_net, pki, participant)
    async with make_discovery(local_net, pki) as discovery:
        ep = await discovery.lookup(participant, INVOICE, BILLING)
    assert ep.url == EP_URL
    assert ep.transport_profile == "peppol-transport-as4-v2_0"
    assert ep.certificate == pki.ap.cert
    assert ep.seat_id == "PNO000123"
    assert ep.smp_url == local_net.smp.base
    assert ep.metadata_url == url
    assert ep.process == BILLING and ep.document_type == INVOICE
    assert ep.smp_signer == pki.smp.cert
    assert ep.redirected_from is None


async def test_found_with_string_identifiers_and_upper_case_participant(local_net, pki, participant):
    publish(local_net, pki, participant)
    async with make_discovery(local_net, pki) as discovery:
        ep = await discovery.lookup(f"iso6523-actorid-upis::{participant.value.upper()}", str(INVOICE))
    assert ep.url == EP_URL and ep.process == BILLING


async def test_not_registered_in_dns(local_net, pki, participant):
    async with make_discovery(local_net, pki) as discovery:
        with pytest.raises(NotRegistered) as info:
            await discovery.lookup(participant, INVOICE)
    assert info.value.code == "sml-not-registered"
    assert not info.value.retryable


async def test_registered_but_not_for_this_doctype(local_net, pki, participant):
    publish(local_net, pki, participant, INVOICE)
    async with make_discovery(local_net, pki) as discovery:
        with pytest.raises(NotRegistered) as info:
            await discovery.lookup(participant, CREDIT_NOTE)
    assert info.value.code == "doctype-not-served"


async def test_process_not_served(local_net, pki, participant):
    publish(local_net, pki, participant)
    async with make_discovery(local_net, pki) as discovery:
        with pytest.raises(NotRegistered) as info:
            await discovery.lookup(participant, INVOICE, "cenbii-procid-ubl::urn:fdc:peppol.eu:2017:poacc:ordering:01:1.0")
    assert info.value.code == "process-not-served"


async def test_smp_down_is_retryable(local_net, pki, participant):
    local_net.dns.register(participant, f"http://127.0.0.1:{local_net.dead_port}/smp")
    async with make_discovery(local_net, pki) as discovery:
        with pytest.raises(DiscoveryUnavailable) as info:
            await discovery.lookup(participant, INVOICE)
    assert info.value.code == "smp-unavailable" and info.value.retryable


async def test_smp_5xx_is_retryable_and_not_cached(local_net, pki, participant):
    url = publish(local_net, pki, participant, body=b"busy", status=503)
    async with make_discovery(local_net, pki) as discovery:
        with pytest.raises(DiscoveryUnavailable):
            await discovery.lookup(participant, INVOICE)
        publish(local_net, pki, participant)  # SMP recovers
        ep = await discovery.lookup(participant, INVOICE)
    assert ep.url == EP_URL
    assert local_net.smp.hit_count(url) == 2


async def test_smp_timeout_is_retryable(local_net, pki, participant):
    publish(local_net, pki, participant)
    local_net.smp.delay = 1.0
    try:
        async with make_discovery(local_net, pki, smp_timeout=0.3) as discovery:
            with pytest.raises(DiscoveryUnavailable) as info:
                await discovery.lookup(participant, INVOICE)
    finally:
        local_net.smp.delay = 0.0
    assert info.value.code == "smp-timeout"


async def test_tampered_response_rejected(local_net, pki, participant):
    xml = service_metadata_xml(participant, INVOICE, endpoint_url=EP_URL, cert_der=pki.ap.der)
    body = sign(xml, pki.smp).replace(EP_URL.encode(), b"https://evil.example.test/as4")
    publish(local_net, pki, participant, body=body)
    async with make_discovery(local_net, pki) as discovery:
        with pytest.raises(DiscoveryError) as info:
            await discovery.lookup(participant, INVOICE)
    assert info.value.code == "digest-mismatch"


async def test_signature_value_invalid(local_net, pki, participant):
    xml = service_metadata_xml(participant, INVOICE, endpoint_url=EP_URL, cert_der=pki.ap.der)
    # signed with the key of smp2 but carrying smp's certificate in KeyInfo
    from dataclasses import replace
    body = sign(xml, replace(pki.smp2, cert=pki.smp.cert))
    publish(local_net, pki, participant, body=body)
    async with make_discovery(local_net, pki) as discovery:
        with pytest.raises(DiscoveryError) as info:
            await discovery.lookup(participant, INVOICE)
    assert info.value.code == "signature-invalid"


async def test_unsigned_response_rejected(local_net, pki, participant):
    xml = service_metadata_xml(participant, INVOICE, endpoint_url=EP_URL, cert_der=pki.ap.der)
    publish(local_net, pki, participant, body=xml)
    async with make_discovery(local_net, pki) as discovery:
        with pytest.raises(DiscoveryError) as info:
            await discovery.lookup(participant, INVOICE)
    assert info.value.code == "signature-missing"


async def test_smp_signer_from_untrusted_ca(local_net, pki, participant):
    publish(local_net, pki, participant, signer=pki.rogue_smp)
    async with make_discovery(local_net, pki) as discovery:
        with pytest.raises(DiscoveryError) as info:
            await discovery.lookup(participant, INVOICE)
    assert info.value.code == "smp-certificate-untrusted"


async def test_smp_signed_by_ap_certificate_rejected(local_net, pki, participant):
    # AP and SMP hierarchies are separate trust sets
    publish(local_net, pki, participant, signer=pki.ap)
    async with make_discovery(local_net, pki) as discovery:
        with pytest.raises(DiscoveryError) as info:
            await discovery.lookup(participant, INVOICE)
    assert info.value.code == "smp-certificate-untrusted"


async def test_endpoint_certificate_from_untrusted_ca(local_net, pki, participant):
    publish(local_net, pki, participant, cert=pki.rogue_ap)
    async with make_discovery(local_net, pki) as discovery:
        with pytest.raises(DiscoveryError) as info:
            await discovery.lookup(participant, INVOICE)
    assert info.value.code == "endpoint-certificate-untrusted"


async def test_endpoint_certificate_expired(local_net, pki, participant):
    publish(local_net, pki, participant, cert=pki.expired_ap)
    async with make_discovery(local_net, pki) as discovery:
        with pytest.raises(DiscoveryError) as info:
            await discovery.lookup(participant, INVOICE)
    assert info.value.code == "endpoint-certificate-expired"


async def test_response_for_other_doctype_case_rejected(local_net, pki, participant):
    publish(local_net, pki, participant, doctype_text=INVOICE.value.replace("Invoice##", "INVOICE##"))
    async with make_discovery(local_net, pki) as discovery:
        with pytest.raises(DiscoveryError) as info:
            await discovery.lookup(participant, INVOICE)
    assert info.value.code == "smp-identifier-mismatch"


async def test_response_participant_case_insensitive(local_net, pki, participant):
    publish(local_net, pki, participant, participant_text=participant.value.upper())
    async with make_discovery(local_net, pki) as discovery:
        assert (await discovery.lookup(participant, INVOICE)).url == EP_URL


async def test_response_for_other_participant_rejected(local_net, pki, participant):
    publish(local_net, pki, participant, participant_text="9915:someone-else")
    async with make_discovery(local_net, pki) as discovery:
        with pytest.raises(DiscoveryError) as info:
            await discovery.lookup(participant, INVOICE)
    assert info.value.code == "smp-identifier-mismatch"


async def test_endpoint_date_windows(local_net, pki):
    expired, future, active = fresh_participant(), fresh_participant(), fresh_participant()
    publish(local_net, pki, expired, activation=NOW - dt.timedelta(days=10), expiration=NOW - dt.timedelta(days=1))
    publish(local_net, pki, future, activation=NOW + dt.timedelta(days=1))
    publish(local_net, pki, active, activation=NOW - dt.timedelta(days=1), expiration=NOW + dt.timedelta(days=1))
    async with make_discovery(local_net, pki) as discovery:
        for p in (expired, future):
            with pytest.raises(NotRegistered) as info:
                await discovery.lookup(p, INVOICE)
            assert info.value.code == "endpoint-not-active"
        ep = await discovery.lookup(active, INVOICE)
    assert ep.activation is not None and ep.expiration is not None


async def test_window_checked_at_use_time_not_cache_time(local_net, pki, participant):
    publish(local_net, pki, participant, expiration=NOW + dt.timedelta(hours=1))
    now = [NOW]
    async with make_discovery(local_net, pki, clock=lambda: now[0]) as discovery:
        await discovery.lookup(participant, INVOICE)
        now[0] = NOW + dt.timedelta(hours=2)  # still cached (900 s TTL uses the monotonic clock)
        with pytest.raises(NotRegistered) as info:
            await discovery.lookup(participant, INVOICE)
    assert info.value.code == "endpoint-not-active"


async def test_no_as4_endpoint(local_net, pki, participant):
    publish(local_net, pki, participant, profile="busdox-transport-as2-ver1p0")
    async with make_discovery(local_net, pki) as discovery:
        with pytest.raises(NotRegistered) as info:
            await discovery.lookup(participant, INVOICE)
    assert info.value.code == "no-as4-endpoint"


async def test_redirect_followed_once(local_net, pki, participant):
    target_base = local_net.smp.base + "/second-smp"
    target = service_metadata_url(target_base, participant, INVOICE)
    local_net.smp.put(target, sign(service_metadata_xml(participant, INVOICE, endpoint_url=EP_URL,
                                                        cert_der=pki.ap.der), pki.smp2))
    uid = "C=NO,O=SEND gateway tests,OU=PEPPOL TEST SMP,CN=PNO000902"  # DN order differs from the cert's
    first = publish(local_net, pki, participant, body=sign(redirect_xml(target, uid), pki.smp))
    async with make_discovery(local_net, pki) as discovery:
        ep = await discovery.lookup(participant, INVOICE)
    assert ep.url == EP_URL
    assert ep.redirected_from == first and ep.metadata_url == target
    assert ep.smp_signer == pki.smp2.cert


async def test_redirect_certificate_uid_mismatch(local_net, pki, participant):
    target = service_metadata_url(local_net.smp.base + "/third-smp", participant, INVOICE)
    local_net.smp.put(target, sign(service_metadata_xml(participant, INVOICE, endpoint_url=EP_URL,
                                                        cert_der=pki.ap.der), pki.smp))
    uid = "C=NO,O=SEND gateway tests,OU=PEPPOL TEST SMP,CN=PNO000902"  # but the target signs as PNO000901
    publish(local_net, pki, participant, body=sign(redirect_xml(target, uid), pki.smp))
    async with make_discovery(local_net, pki) as discovery:
        with pytest.raises(DiscoveryError) as info:
            await discovery.lookup(participant, INVOICE)
    assert info.value.code == "smp-redirect-certificate"


async def test_second_redirect_refused(local_net, pki, participant):
    uid = "CN=PNO000901,OU=PEPPOL TEST SMP,O=SEND gateway tests,C=NO"
    hop2 = service_metadata_url(local_net.smp.base + "/hop2", participant, INVOICE)
    hop1 = service_metadata_url(local_net.smp.base + "/hop1", participant, INVOICE)
    local_net.smp.put(hop2, sign(service_metadata_xml(participant, INVOICE, endpoint_url=EP_URL,
                                                      cert_der=pki.ap.der), pki.smp))
    local_net.smp.put(hop1, sign(redirect_xml(hop2, uid), pki.smp))
    publish(local_net, pki, participant, body=sign(redirect_xml(hop1, uid), pki.smp))
    async with make_discovery(local_net, pki) as discovery:
        with pytest.raises(DiscoveryError) as info:
            await discovery.lookup(participant, INVOICE)
    assert info.value.code == "smp-redirect-loop"
    assert local_net.smp.hit_count(hop2) == 0


async def test_http_redirect_not_followed(local_net, pki, participant):
    publish(local_net, pki, participant, body=b"", status=302)
    async with make_discovery(local_net, pki) as discovery:
        with pytest.raises(DiscoveryError) as info:
            await discovery.lookup(participant, INVOICE)
    assert info.value.code == "smp-http-redirect"


async def test_http_smp_refused_unless_allowed(local_net, pki, participant):
    publish(local_net, pki, participant)
    async with make_discovery(local_net, pki, allow_http=False) as d:
        with pytest.raises(DiscoveryError) as info:
            await d.lookup(participant, INVOICE)
    assert info.value.code == "sml-bad-url"


async def test_sha1_signature_refused_by_default(local_net, pki, participant):
    xml = service_metadata_xml(participant, INVOICE, endpoint_url=EP_URL, cert_der=pki.ap.der)
    publish(local_net, pki, participant, body=sign(xml, pki.smp, algorithm="rsa-sha1", digest="sha1"))
    async with make_discovery(local_net, pki) as discovery:
        with pytest.raises(DiscoveryError) as info:
            await discovery.lookup(participant, INVOICE)
    assert info.value.code == "signature-algorithm"
    async with make_discovery(local_net, pki, allow_sha1=True) as discovery:
        assert (await discovery.lookup(participant, INVOICE)).url == EP_URL


async def test_response_size_cap(local_net, pki, participant):
    publish(local_net, pki, participant, body=b"<x>" + b" " * 5000 + b"</x>")
    async with make_discovery(local_net, pki, max_response_bytes=4096) as discovery:
        with pytest.raises(DiscoveryError) as info:
            await discovery.lookup(participant, INVOICE)
    assert info.value.code == "smp-response-too-large"


async def test_doctype_is_hostile_xml(local_net, pki, participant):
    body = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>'
    publish(local_net, pki, participant, body=body)
    async with make_discovery(local_net, pki) as discovery:
        with pytest.raises(DiscoveryError) as info:
            await discovery.lookup(participant, INVOICE)
    assert info.value.code == "not-xml"


async def test_dns_servfail_and_timeout_are_retryable(local_net, pki):
    p1, p2 = fresh_participant(), fresh_participant()
    from gateway.discovery.sml import naptr_qname
    local_net.dns.servfail.add(naptr_qname(p1, ZONE))
    local_net.dns.silent.add(naptr_qname(p2, ZONE))
    async with make_discovery(local_net, pki, dns_timeout=0.5) as discovery:
        with pytest.raises(DiscoveryUnavailable) as servfail:
            await discovery.lookup(p1, INVOICE)
        with pytest.raises(DiscoveryUnavailable) as timeout:
            await discovery.lookup(p2, INVOICE)
    assert servfail.value.code == "dns-servfail"
    assert timeout.value.code == "dns-timeout"


async def test_naptr_without_meta_smp(local_net, pki, participant):
    from gateway.discovery.sml import naptr_qname
    local_net.dns.records[naptr_qname(participant, ZONE)] = ['100 10 "U" "Meta:Other" "!.*!https://x.test!" .']
    async with make_discovery(local_net, pki) as discovery:
        with pytest.raises(NotRegistered) as info:
            await discovery.lookup(participant, INVOICE)
    assert info.value.code == "sml-no-smp-record"


async def test_cached_and_single_flight(local_net, pki, participant):
    url = publish(local_net, pki, participant)
    local_net.smp.delay = 0.1
    try:
        async with make_discovery(local_net, pki) as discovery:
            results = await asyncio.gather(*(discovery.lookup(participant, INVOICE) for _ in range(50)))
            again = await discovery.lookup(participant, INVOICE)
    finally:
        local_net.smp.delay = 0.0
    assert {r.url for r in results} == {EP_URL} and again.url == EP_URL
    assert local_net.dns.count(participant) == 1
    assert local_net.smp.hit_count(url) == 1


async def test_negative_answers_cached(local_net, pki, participant):
    async with make_discovery(local_net, pki, negative_cache_ttl=60) as discovery:
        for _ in range(3):
            with pytest.raises(NotRegistered):
                await discovery.lookup(participant, INVOICE)
    assert local_net.dns.count(participant) == 1


async def test_dns_ttl_honoured(local_net, pki, participant):
    publish(local_net, pki, participant)
    from gateway.discovery.sml import naptr_qname
    local_net.dns.ttls[naptr_qname(participant, ZONE)] = 0
    async with make_discovery(local_net, pki) as discovery:
        await discovery.lookup(participant, INVOICE)
        await discovery.lookup(participant, INVOICE)
    assert local_net.dns.count(participant) == 2  # TTL 0: never cached, one query per lookup


async def test_wildcard_lookup_via_service_group(local_net, pki, participant):
    from gateway.identifiers import DocumentTypeId

    registered = DocumentTypeId.parse(
        "peppol-doctype-wildcard::urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##"
        "urn:peppol:pint:billing-1@jp-1*::2.1")
    requested = DocumentTypeId.parse(
        "peppol-doctype-wildcard::urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##"
        "urn:peppol:pint:billing-1@jp-1@sub-2::2.1")
    base = local_net.smp.base
    publish(local_net, pki, participant, registered)
    local_net.smp.put(f"{base}/{participant.url_segment}", service_group_xml(participant, base, [INVOICE, registered]))
    async with make_discovery(local_net, pki) as discovery:
        ep = await discovery.lookup(participant, requested)
        assert ep.document_type == registered
        with pytest.raises(NotRegistered) as info:
            await discovery.lookup(participant, DocumentTypeId.parse(
                "peppol-doctype-wildcard::urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##"
                "urn:peppol:pint:billing-1@sg-1::2.1"))
    assert info.value.code == "doctype-not-served"


async def test_https_smp(local_net, pki, participant):
    publish(local_net, pki, participant, base=local_net.smp.tls_base)
    async with make_discovery(local_net, pki, ssl_context=tls_context(pki), allow_http=False) as discovery:
        ep = await discovery.lookup(participant, INVOICE)
    assert ep.url == EP_URL and ep.smp_url.startswith("https://")


async def test_https_smp_with_untrusted_tls_is_unavailable(local_net, pki, participant):
    publish(local_net, pki, participant, base=local_net.smp.tls_base)
    async with make_discovery(local_net, pki) as discovery:  # system Web PKI: our test TLS CA unknown
        with pytest.raises(DiscoveryUnavailable) as info:
            await discovery.lookup(participant, INVOICE)
    assert info.value.code == "smp-tls-error"


async def test_revocation_hook(local_net, pki, participant):
    from certs.trust import CertificateError

    publish(local_net, pki, participant)
    seen = []

    async def revoked_endpoint(path, at):
        seen.append(path[0].subject.rfc4514_string())
        if path[0] == pki.ap.cert:
            raise CertificateError("revoked", "serial on CRL")

    async with make_discovery(local_net, pki) as discovery:
        discovery.revocation = revoked_endpoint
        with pytest.raises(DiscoveryError) as info:
            await discovery.lookup(participant, INVOICE)
    assert info.value.code == "endpoint-certificate-revoked"
    assert any("PNO000901" in s for s in seen)  # the SMP signer was checked too
    assert len(seen[-1]) > 0 and [p for p in seen if "PNO000123" in p]


async def test_dns_server_down_is_retryable(local_net, pki, participant):
    config = DiscoveryConfig(zone=ZONE, nameservers=(f"127.0.0.1:{local_net.dead_port}",), dns_timeout=0.5,
                             allow_http=True)
    async with Discovery(config, pki.ap_trust, pki.smp_trust) as discovery:
        with pytest.raises(DiscoveryUnavailable) as info:
            await discovery.lookup(participant, INVOICE)
    assert info.value.code in ("dns-timeout", "dns-servfail", "dns-error")
