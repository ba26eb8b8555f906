"""Real SMP responses from peppol-commons and vefa-peppol (shared/interop): signatures, trust, parsing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from lxml import etree

from certs.trust import TrustStore
from gateway.discovery.errors import DiscoveryError, NotRegistered
from gateway.discovery.smp import (
    Redirect,
    ServiceInformation,
    certificate_matches_uid,
    check_identifiers,
    choose_wildcard,
    parse_service_group,
    select_endpoint,
    verify_signed_metadata,
)
from gateway.discovery.xmldsig import verify_enveloped
from gateway.identifiers import DocumentTypeId, ParticipantId, ProcessId

UTC = dt.UTC
VEFA = [
    "smp-servicemetadata-0192-12345678-no-dates.xml",
    "smp-servicemetadata-0192-923829644-active-2025-2027.xml",
    "smp-servicemetadata-0192-923829644-expired-2024.xml",
    "smp-servicemetadata-0192-923829644-future-2027.xml",
    "smp-servicemetadata-0192-991825827-prod-as4.xml",
    "smp-servicemetadata-0192-991825827-redirect.xml",
    "smp-servicemetadata-0192-991825827-redirect-target.xml",
    "smp-servicemetadata-9901-peppol-doctype-wildcard-pint.xml",
]
COMMONS_VALID = [
    "smp-signed-servicemetadata-0088-sha1-valid.xml",
    "smp-signed-servicemetadata-0106-as2-as4-sha1-valid.xml",
]
BILLING = ProcessId.parse("urn:fdc:peppol.eu:2017:poacc:billing:01:1.0")
INVOICE = DocumentTypeId.parse(
    "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##"
    "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1")


def _read(shared_dir: Path, folder: str, name: str) -> bytes:
    return (shared_dir / "interop" / folder / name).read_bytes()


@pytest.fixture(scope="module")
def g2_smp(trust_dir) -> TrustStore:
    return TrustStore.from_config(["peppol-test-g2", "peppol-prod-g2"], "smp", trust_dir)


@pytest.fixture(scope="module")
def g3_smp(trust_dir) -> TrustStore:
    return TrustStore.from_config(["peppol-test", "peppol-prod"], "smp", trust_dir)


def _midlife(cert) -> dt.datetime:
    return cert.not_valid_before_utc + (cert.not_valid_after_utc - cert.not_valid_before_utc) / 2


@pytest.mark.parametrize("name", VEFA)
def test_vefa_signature_verifies_but_g2_certificate_fails_trust(shared_dir, g2_smp, g3_smp, name):
    data = _read(shared_dir, "vefa-peppol", name)
    verified = verify_enveloped(data, allow_sha1=True)  # the signature itself is valid (xmlsec agrees: test_xmlsec.py)
    assert verified.signature_method.endswith("rsa-sha1")
    now = dt.datetime.now(UTC)
    for trust in (g3_smp, g2_smp):
        with pytest.raises(DiscoveryError) as info:
            verify_signed_metadata(data, trust, now, allow_sha1=True)
        assert info.value.code in ("smp-certificate-expired", "smp-certificate-untrusted")
    # With the retired G2 SMP CAs at a time the signer was valid, the whole response is accepted.
    signed = verify_signed_metadata(data, g2_smp, _midlife(verified.signer), allow_sha1=True)
    assert signed.signer == verified.signer


@pytest.mark.parametrize("name", VEFA)
def test_vefa_sha1_refused_without_switch(shared_dir, name):
    with pytest.raises(DiscoveryError) as info:
        verify_enveloped(_read(shared_dir, "vefa-peppol", name))
    assert info.value.code == "signature-algorithm"


@pytest.mark.parametrize("name", COMMONS_VALID)
def test_peppol_commons_signed_responses_verify(shared_dir, g2_smp, name):
    data = _read(shared_dir, "peppol-commons", name)
    verified = verify_enveloped(data, allow_sha1=True)
    signed = verify_signed_metadata(data, g2_smp, _midlife(verified.signer), allow_sha1=True)
    assert isinstance(signed.content, ServiceInformation)


def test_peppol_commons_negative_rejected(shared_dir):
    with pytest.raises(DiscoveryError) as info:
        verify_enveloped(_read(shared_dir, "peppol-commons", "NEG-smp-signed-servicemetadata-0088-invalid-signature.xml"),
                         allow_sha1=True)
    assert info.value.code == "digest-mismatch"


def test_sample_0088_fixed_date(shared_dir, g2_smp):
    data = _read(shared_dir, "peppol-commons", "smp-signed-servicemetadata-0088-sha1-valid.xml")
    signed = verify_signed_metadata(data, g2_smp, dt.datetime(2020, 6, 1, tzinfo=UTC), allow_sha1=True)
    assert signed.content.participant == ParticipantId.parse("0088:5060482240009")
    assert "PNO000070" in signed.signer.subject.rfc4514_string()


def _mutations(data: bytes) -> list[bytes]:
    return [
        data.replace(b"0192:991825827", b"0192:991825828", 1),  # participant changed
        data.replace(b"peppol-transport-as4-v2_0", b"peppol-transport-as4-v2_1", 1),
        data.replace(b"</ns2:ServiceMetadata>", b"</ns2:ServiceMetadata><!-- c -->", 1),  # comment: ignored by URI=""
    ]


def test_vefa_mutations(shared_dir):
    data = _read(shared_dir, "vefa-peppol", "smp-servicemetadata-0192-991825827-prod-as4.xml")
    changed_participant, changed_profile, with_comment = _mutations(data)
    for bad in (changed_participant, changed_profile):
        with pytest.raises(DiscoveryError) as info:
            verify_enveloped(bad, allow_sha1=True)
        assert info.value.code == "digest-mismatch"
    verify_enveloped(with_comment, allow_sha1=True)  # comments are outside a URI="" reference


def test_signature_wrapping_second_signature_rejected(shared_dir):
    data = _read(shared_dir, "vefa-peppol", "smp-servicemetadata-0192-991825827-prod-as4.xml")
    root = etree.fromstring(data)
    sig = root.find("{http://www.w3.org/2000/09/xmldsig#}Signature")
    root.find("{http://busdox.org/serviceMetadata/publishing/1.0/}ServiceMetadata").append(etree.fromstring(etree.tostring(sig)))
    with pytest.raises(DiscoveryError) as info:
        verify_enveloped(etree.tostring(root), allow_sha1=True)
    assert info.value.code == "signature-malformed"


def test_signed_info_tamper_detected(shared_dir):
    data = _read(shared_dir, "vefa-peppol", "smp-servicemetadata-0192-991825827-redirect.xml")
    bad = data.replace(b"<DigestValue>hmiH", b"<DigestValue>hmiI", 1)
    with pytest.raises(DiscoveryError) as info:
        verify_enveloped(bad, allow_sha1=True)
    assert info.value.code == "digest-mismatch"


def _signed(shared_dir, g2_smp, name):
    data = _read(shared_dir, "vefa-peppol", name)
    signer = verify_enveloped(data, allow_sha1=True).signer
    return verify_signed_metadata(data, g2_smp, _midlife(signer), allow_sha1=True)


@pytest.mark.parametrize("name,at,expected", [
    ("smp-servicemetadata-0192-923829644-expired-2024.xml", dt.datetime(2026, 11, 30, tzinfo=UTC), "endpoint-not-active"),
    ("smp-servicemetadata-0192-923829644-expired-2024.xml", dt.datetime(2023, 6, 1, tzinfo=UTC), None),
    ("smp-servicemetadata-0192-923829644-active-2025-2027.xml", dt.datetime(2026, 11, 30, tzinfo=UTC), None),
    ("smp-servicemetadata-0192-923829644-active-2025-2027.xml", dt.datetime(2027, 2, 8, tzinfo=UTC), "endpoint-not-active"),
    ("smp-servicemetadata-0192-923829644-future-2027.xml", dt.datetime(2026, 11, 30, tzinfo=UTC), "endpoint-not-active"),
    ("smp-servicemetadata-0192-923829644-future-2027.xml", dt.datetime(2027, 3, 4, tzinfo=UTC), None),
    ("smp-servicemetadata-0192-12345678-no-dates.xml", dt.datetime(2026, 11, 30, tzinfo=UTC), None),
])
def test_vefa_date_windows(shared_dir, g2_smp, name, at, expected):
    info = _signed(shared_dir, g2_smp, name).content
    if expected is None:
        _, endpoint = select_endpoint(info, BILLING, at)
        assert endpoint.url.startswith("https://")
    else:
        with pytest.raises(NotRegistered) as err:
            select_endpoint(info, BILLING, at)
        assert err.value.code == expected


def test_vefa_prod_as4_endpoint(shared_dir, g2_smp):
    info = _signed(shared_dir, g2_smp, "smp-servicemetadata-0192-991825827-prod-as4.xml").content
    check_identifiers(info, ParticipantId.parse("0192:991825827"), info.document_type)
    _, endpoint = select_endpoint(info, None, dt.datetime(2021, 6, 1, tzinfo=UTC))  # window 2020-07-31..2022-07-21
    assert endpoint.transport_profile == "peppol-transport-as4-v2_0"
    assert endpoint.url.startswith("https://")
    assert len(endpoint.certificate_der) > 500


def test_vefa_redirect_and_certificate_uid(shared_dir, g2_smp):
    redirect = _signed(shared_dir, g2_smp, "smp-servicemetadata-0192-991825827-redirect.xml").content
    assert isinstance(redirect, Redirect)
    assert redirect.href.startswith("http://test-smp2.difi.no/iso6523-actorid-upis%3A%3A0192%3A991825827/services/")
    assert redirect.certificate_uid == "C=NO,O=Direktoratet for Forvaltning og IKT,OU=PEPPOL TEST SMP,CN=PNO000179"
    target = _signed(shared_dir, g2_smp, "smp-servicemetadata-0192-991825827-redirect-target.xml")
    assert certificate_matches_uid(target.signer, redirect.certificate_uid)
    # the prod signer (OU=PEPPOL PRODUCTION SMP) must not match the test UID
    prod = _signed(shared_dir, g2_smp, "smp-servicemetadata-0192-991825827-prod-as4.xml")
    assert not certificate_matches_uid(prod.signer, redirect.certificate_uid)
    assert certificate_matches_uid(target.signer, "CN=PNO000179, OU=PEPPOL TEST SMP, O=Direktoratet for Forvaltning og IKT, C=NO")
    assert certificate_matches_uid(target.signer, "PNO000179")
    assert not certificate_matches_uid(target.signer, "C=NO,CN=PNO000179")


def test_vefa_wildcard(shared_dir, g2_smp):
    info = _signed(shared_dir, g2_smp, "smp-servicemetadata-9901-peppol-doctype-wildcard-pint.xml").content
    assert info.document_type.scheme == "peppol-doctype-wildcard"
    assert info.document_type.value.endswith("@jp:peppol-1*::2.1")
    requested = DocumentTypeId.parse(
        "peppol-doctype-wildcard::urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##"
        "urn:peppol:pint:billing-3.0@jp:peppol-1@extra-1::2.1")
    assert choose_wildcard(requested, [INVOICE, info.document_type]) == info.document_type
    check_identifiers(info, ParticipantId.parse("9901:pint_c4_jp_sb"), info.document_type)


def test_doctype_case_sensitive_against_sample(shared_dir, g2_smp):
    info = _signed(shared_dir, g2_smp, "smp-servicemetadata-0192-923829644-active-2025-2027.xml").content
    check_identifiers(info, ParticipantId.parse("0192:923829644"), INVOICE)
    with pytest.raises(DiscoveryError) as err:
        check_identifiers(info, ParticipantId.parse("0192:923829644"),
                          DocumentTypeId.parse(str(INVOICE).replace("::Invoice##", "::invoice##")))
    assert err.value.code == "smp-identifier-mismatch"


def test_vefa_service_group(shared_dir):
    group = parse_service_group(_read(shared_dir, "vefa-peppol", "smp-servicegroup-0192-991825827.xml"),
                                ParticipantId.parse("0192:991825827"))
    assert INVOICE in group.document_types
    assert len(group.document_types) == 9
    assert DocumentTypeId.parse("busdox-docid-qns::urn:no:difi:einnsyn:xsd::innsynskrav") in group.document_types
    with pytest.raises(DiscoveryError) as err:
        parse_service_group(_read(shared_dir, "vefa-peppol", "smp-servicegroup-0192-991825827.xml"),
                            ParticipantId.parse("0192:923609016"))
    assert err.value.code == "smp-identifier-mismatch"


def test_broken_non_as4_endpoint_ignored_broken_as4_endpoint_rejected(shared_dir, g2_smp):
    from gateway.discovery.smp import _parse_service_information

    data = _read(shared_dir, "peppol-commons", "smp-signed-servicemetadata-0106-as2-as4-sha1-valid.xml")
    root = etree.fromstring(data)
    ns = {"smp": "http://busdox.org/serviceMetadata/publishing/1.0/"}
    info_el = root.find("smp:ServiceMetadata/smp:ServiceInformation", ns)
    endpoints = info_el.findall(".//smp:Endpoint", ns)
    profiles = [e.get("transportProfile") for e in endpoints]
    assert "peppol-transport-as4-v2_0" in profiles and "busdox-transport-as2-ver1p0" in profiles
    as2 = endpoints[profiles.index("busdox-transport-as2-ver1p0")]
    as2.find("smp:Certificate", ns).text = "%%% not base64 %%%"
    info = _parse_service_information(info_el)
    _, endpoint = select_endpoint(info, None, dt.datetime(2020, 1, 1, tzinfo=UTC))
    assert endpoint.transport_profile == "peppol-transport-as4-v2_0"
    as4 = endpoints[profiles.index("peppol-transport-as4-v2_0")]
    as4.find("smp:Certificate", ns).text = "%%% not base64 %%%"
    with pytest.raises(DiscoveryError) as info_err:
        _parse_service_information(info_el)
    assert info_err.value.code == "smp-bad-response"
