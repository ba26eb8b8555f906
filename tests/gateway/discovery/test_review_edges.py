"""Edge cases from an independent review of issue 4 (discovery): exact SMP request paths, NAPTR
record choice, caching windows, trust separation. Expected values are written out by hand here
rather than computed with the code under test."""

from __future__ import annotations

import pytest

from gateway.discovery.errors import DiscoveryError, DiscoveryUnavailable, NotRegistered
from gateway.discovery.sml import NaptrRecord, naptr_label, select_smp_url
from gateway.identifiers import DocumentTypeId, IdentifierError, ParticipantId, identifiers_from_ubl

from .conftest import INVOICE, ZONE, issue, service_metadata_xml, sign
from .test_end_to_end import EP_URL, make_discovery

QNAME = "label.iso6523-actorid-upis." + ZONE

# what a real SMP expects on the wire (memo §4.2, vefa hrefs): one percent-encoded path segment each
PARTICIPANT_PATH = "/iso6523-actorid-upis%3A%3A0192%3A923609016"
INVOICE_PATH = ("/services/busdox-docid-qns%3A%3Aurn%3Aoasis%3Anames%3Aspecification%3Aubl%3Aschema%3Axsd%3A"
                "Invoice-2%3A%3AInvoice%23%23urn%3Acen.eu%3Aen16931%3A2017%23compliant%23urn%3Afdc%3Apeppol.eu"
                "%3A2017%3Apoacc%3Abilling%3A3.0%3A%3A2.1")


# --- identifiers --------------------------------------------------------------------------------


def test_url_segments_written_out():
    p = ParticipantId.parse("iso6523-actorid-upis::0192:923609016")
    assert "/" + p.url_segment == PARTICIPANT_PATH
    assert "/services/" + INVOICE.url_segment == INVOICE_PATH
    # '#' must never reach the wire unencoded (it would start a fragment), nor '/' (a new segment)
    odd = ParticipantId.parse("9915:a/b#c?d%e")
    assert odd.url_segment == "iso6523-actorid-upis%3A%3A9915%3Aa%2Fb%23c%3Fd%25e"


@pytest.mark.parametrize("text", ["ISO6523-ACTORID-UPIS::0192:923609016", "0192:923609016",
                                  "iso6523-actorid-upis::0192:923609016"])
def test_participant_spellings_hash_alike(text):
    # memo §4.1: only the lower-cased value is hashed
    assert naptr_label(ParticipantId.parse(text)) == naptr_label("0192:923609016")


def test_upper_case_participant_value_hashes_lower_case():
    assert naptr_label(ParticipantId.parse("9925:BE0848934496")) == \
        "3kbwcdjpjlznbhgy2qydzak2gvaadf323uwokpt44l6l4jm3mpyq"


@pytest.mark.parametrize("orgnr", ["923609017", "923609015", "123456784"])
def test_mod11_failures(orgnr):
    with pytest.raises(IdentifierError) as info:
        ParticipantId.parse(f"iso6523-actorid-upis::0192:{orgnr}")
    assert info.value.code == "invalid-check-digit"


def test_9908_in_ubl_refused_or_mapped(shared_dir):
    invoice = (shared_dir / "conformance/ehf-billing-3/examples/Norwegian-example-1.xml").read_bytes()
    legacy = invoice.replace(b'schemeID="0192">987654325<', b'schemeID="9908">987654325<', 1)
    assert legacy != invoice
    with pytest.raises(IdentifierError) as info:
        identifiers_from_ubl(legacy)
    assert info.value.code == "deprecated-icd"
    assert str(identifiers_from_ubl(legacy, map_legacy=True).receiver) == "iso6523-actorid-upis::0192:987654325"


# --- SML ------------------------------------------------------------------------------------------


def test_naptr_non_matching_services_and_flags_ignored():
    records = [
        NaptrRecord(1, 1, "U", "Meta:SMPX", "!.*!https://wrong-service.example!"),
        NaptrRecord(1, 1, "S", "Meta:SMP", "!.*!https://wrong-flag.example!"),
        NaptrRecord(1, 1, "", "Meta:SMP", "!.*!https://no-flag.example!"),
        NaptrRecord(5, 1, "u", "meta:smp", "!^.*$!https://smp.example/base/!"),
    ]
    assert select_smp_url(records, QNAME) == "https://smp.example/base"


def test_naptr_regexp_with_backreference_applied_to_the_qname():
    record = NaptrRecord(1, 1, "U", "Meta:SMP", r"!^([^.]+)\..*$!https://\1.smp.example!")
    assert select_smp_url([record], QNAME) == "https://label.smp.example"


def test_naptr_record_whose_regexp_does_not_match_is_skipped():
    """DDDS (RFC 3402) / peppol-commons NaptrResolver: rules are tried in order; one that yields
    nothing usable does not hide the next one."""
    records = [
        NaptrRecord(10, 10, "U", "Meta:SMP", "!^nomatch$!https://never.example!"),
        NaptrRecord(20, 10, "U", "Meta:SMP", "!.*!https://smp.example!"),
    ]
    assert select_smp_url(records, QNAME) == "https://smp.example"


def test_naptr_http_record_skipped_for_a_later_https_one():
    records = [
        NaptrRecord(10, 10, "U", "Meta:SMP", "!.*!http://plain.example!"),
        NaptrRecord(10, 20, "U", "Meta:SMP", "!.*!https://smp.example!"),
    ]
    assert select_smp_url(records, QNAME) == "https://smp.example"


@pytest.mark.parametrize("regexp, code", [
    ("!^nomatch$!https://never.example!", "sml-bad-regexp"),
    ("!.*!http://plain.example!", "sml-bad-url"),
    ("!.*!ftp://smp.example!", "sml-bad-url"),
])
def test_naptr_nothing_usable_reports_the_first_problem(regexp, code):
    records = [NaptrRecord(10, 10, "U", "Meta:SMP", regexp),
               NaptrRecord(20, 10, "U", "Meta:SMP", "!broken")]
    with pytest.raises(DiscoveryError) as info:
        select_smp_url(records, QNAME)
    assert info.value.code == code


# --- end to end -----------------------------------------------------------------------------------


async def test_smp_sees_exactly_the_encoded_paths(local_net, pki):
    participant = ParticipantId.parse("iso6523-actorid-upis::0192:923609016")
    base = local_net.smp.base + "/review-exact"
    local_net.dns.register(participant, base)
    path = "/review-exact" + PARTICIPANT_PATH + INVOICE_PATH
    xml = service_metadata_xml(participant, INVOICE, endpoint_url=EP_URL, cert_der=pki.ap.der)
    local_net.smp.responses[path] = (200, sign(xml, pki.smp))
    async with make_discovery(local_net, pki) as discovery:
        ep = await discovery.lookup("ISO6523-ACTORID-UPIS::0192:923609016", str(INVOICE))
    assert ep.url == EP_URL
    assert local_net.smp.hits[path] == 1


async def test_naptr_fallthrough_end_to_end(local_net, pki, participant):
    base = local_net.smp.base + "/review-fallthrough"
    qname = local_net.dns.register(participant, base)
    local_net.dns.records[qname] = [
        '10 10 "U" "Meta:SMP" "!^nomatch$!https://never.example!" .',
        '20 10 "U" "Meta:SMP" "!.*!' + base + '!" .',
        '5 10 "U" "Meta:OTHER" "!.*!https://other.example!" .',
    ]
    from gateway.discovery.smp import service_metadata_url
    url = service_metadata_url(base, participant, INVOICE)
    local_net.smp.put(url, sign(service_metadata_xml(participant, INVOICE, endpoint_url=EP_URL,
                                                     cert_der=pki.ap.der), pki.smp))
    async with make_discovery(local_net, pki) as discovery:
        ep = await discovery.lookup(participant, INVOICE)
    assert ep.smp_url == base and ep.url == EP_URL


async def test_negative_answer_expires_after_negative_ttl(local_net, pki, participant):
    ticks = [1000.0]
    from gateway.discovery.lookup import Discovery, DiscoveryConfig

    config = DiscoveryConfig(zone=ZONE, nameservers=(local_net.nameserver,), dns_timeout=1.0, smp_timeout=2.0,
                             allow_http=True, negative_cache_ttl=30)
    async with Discovery(config, pki.ap_trust, pki.smp_trust, monotonic=lambda: ticks[0]) as discovery:
        with pytest.raises(NotRegistered):
            await discovery.lookup(participant, INVOICE)
        base = local_net.smp.base + "/review-negative"
        local_net.dns.register(participant, base)
        from gateway.discovery.smp import service_metadata_url
        local_net.smp.put(service_metadata_url(base, participant, INVOICE),
                          sign(service_metadata_xml(participant, INVOICE, endpoint_url=EP_URL,
                                                    cert_der=pki.ap.der), pki.smp))
        ticks[0] += 29
        with pytest.raises(NotRegistered):  # still remembered
            await discovery.lookup(participant, INVOICE)
        assert local_net.dns.count(participant) == 1
        ticks[0] += 2
        ep = await discovery.lookup(participant, INVOICE)  # forgotten: asked again, now registered
    assert ep.url == EP_URL and local_net.dns.count(participant) == 2


async def test_transient_smp_failure_not_cached_then_found(local_net, pki, participant):
    from gateway.discovery.smp import service_metadata_url
    url = service_metadata_url(local_net.smp.base, participant, INVOICE)
    local_net.dns.register(participant, local_net.smp.base)
    local_net.smp.put(url, b"busy", 503)
    async with make_discovery(local_net, pki) as discovery:
        with pytest.raises(DiscoveryUnavailable) as info:
            await discovery.lookup(participant, INVOICE)
        assert info.value.retryable and info.value.code == "smp-unavailable"
        local_net.smp.put(url, sign(service_metadata_xml(participant, INVOICE, endpoint_url=EP_URL,
                                                         cert_der=pki.ap.der), pki.smp))
        assert (await discovery.lookup(participant, INVOICE)).url == EP_URL


@pytest.mark.parametrize("status, error, code", [
    (404, NotRegistered, "doctype-not-served"),
    (410, NotRegistered, "doctype-not-served"),
    (500, DiscoveryUnavailable, "smp-unavailable"),
    (502, DiscoveryUnavailable, "smp-unavailable"),
    (403, DiscoveryError, "smp-http-status"),
])
async def test_smp_status_classes(local_net, pki, participant, status, error, code):
    from gateway.discovery.smp import service_metadata_url
    local_net.dns.register(participant, local_net.smp.base)
    local_net.smp.put(service_metadata_url(local_net.smp.base, participant, INVOICE), b"<x/>", status)
    async with make_discovery(local_net, pki) as discovery:
        with pytest.raises(error) as info:
            await discovery.lookup(participant, INVOICE)
    assert info.value.code == code


async def test_endpoint_certificate_from_the_smp_ca_is_not_an_ap_certificate(local_net, pki, participant):
    """Trust separation (memo §5): an endpoint certificate must chain to the AP CA, not the SMP CA."""
    from gateway.discovery.smp import service_metadata_url
    smp_issued = issue("PNO000555", pki.smp_ca, ca=False, ou="PEPPOL TEST AP")
    local_net.dns.register(participant, local_net.smp.base)
    local_net.smp.put(service_metadata_url(local_net.smp.base, participant, INVOICE),
                      sign(service_metadata_xml(participant, INVOICE, endpoint_url=EP_URL,
                                                cert_der=smp_issued.der), pki.smp))
    async with make_discovery(local_net, pki) as discovery:
        with pytest.raises(DiscoveryError) as info:
            await discovery.lookup(participant, INVOICE)
    assert info.value.code == "endpoint-certificate-untrusted"


async def test_signed_by_trusted_key_with_another_trusted_certificate_in_keyinfo(local_net, pki, participant):
    """The KeyInfo certificate is the one checked: signing with smp2's key but presenting smp's
    certificate does not verify."""
    from gateway.discovery.smp import service_metadata_url
    from lxml import etree
    import base64

    from .conftest import Issued
    xml = service_metadata_xml(participant, INVOICE, endpoint_url=EP_URL, cert_der=pki.ap.der)
    signed = sign(xml, Issued(pki.smp2.key, pki.smp2.cert))
    root = etree.fromstring(signed)
    node = root.find(".//{http://www.w3.org/2000/09/xmldsig#}X509Certificate")
    node.text = base64.b64encode(pki.smp.der).decode()
    local_net.dns.register(participant, local_net.smp.base)
    local_net.smp.put(service_metadata_url(local_net.smp.base, participant, INVOICE), etree.tostring(root))
    async with make_discovery(local_net, pki) as discovery:
        with pytest.raises(DiscoveryError) as info:
            await discovery.lookup(participant, INVOICE)
    assert info.value.code == "signature-invalid"


@pytest.mark.parametrize("field, other", [
    ("participant_text", lambda: ParticipantId.parse("0192:923609016").value),
    # a doctype with another version suffix is another doctype
    ("doctype_text", lambda: DocumentTypeId.parse(str(INVOICE)[:-len("::2.1")] + "::2.2").value),
], ids=["different-participant", "doctype-version-suffix"])
async def test_response_naming_another_identifier_is_refused(local_net, pki, participant, field, other):
    from gateway.discovery.smp import service_metadata_url
    xml = service_metadata_xml(participant, INVOICE, endpoint_url=EP_URL, cert_der=pki.ap.der, **{field: other()})
    local_net.dns.register(participant, local_net.smp.base)
    local_net.smp.put(service_metadata_url(local_net.smp.base, participant, INVOICE), sign(xml, pki.smp))
    async with make_discovery(local_net, pki) as discovery:
        with pytest.raises(DiscoveryError) as info:
            await discovery.lookup(participant, INVOICE)
    assert info.value.code == "smp-identifier-mismatch"


# --- cache ----------------------------------------------------------------------------------------


async def test_negative_hits_do_not_grow_the_cached_exception():
    """Re-raising one stored exception object prepends a traceback entry on every hit, so a hot
    negative entry would keep an ever longer chain of frames (and their locals) alive until it
    expires. Each hit must raise a fresh copy with the same code."""
    from gateway.discovery.cache import TTLCache

    cache = TTLCache(10, negative_ttl=60)

    async def loader():
        raise NotRegistered("sml-not-registered", "nobody")

    seen = []
    for _ in range(500):
        with pytest.raises(NotRegistered) as info:
            await cache.get("k", loader)
        seen.append(info.value)
    depth, tb = 0, seen[-1].__traceback__
    while tb is not None:
        depth, tb = depth + 1, tb.tb_next
    assert depth < 10
    assert all(e.code == "sml-not-registered" and e.message == "nobody" and not e.retryable for e in seen)
    assert cache.stats.loads == 1 and cache.stats.negative_hits == 499
