"""Enveloped-signature verifier: independent signer (signxml) variants and hostile structures."""

from __future__ import annotations

import pytest
from lxml import etree
from signxml import XMLSigner, methods

from gateway.discovery.errors import DiscoveryError
from gateway.discovery.xmldsig import verify_enveloped

from .conftest import INVOICE, service_metadata_xml

DS = "http://www.w3.org/2000/09/xmldsig#"


@pytest.fixture(scope="module")
def signed_variants(pki):
    from gateway.identifiers import ParticipantId

    xml = service_metadata_xml(ParticipantId.parse("9915:sig"), INVOICE, endpoint_url="https://ap.test/as4",
                               cert_der=pki.ap.der)
    out = {}
    for name, c14n in [("c14n11-default", None),
                       ("c14n10", "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"),
                       ("exc", "http://www.w3.org/2001/10/xml-exc-c14n#")]:
        kw = {} if c14n is None else {"c14n_algorithm": c14n}
        signed = XMLSigner(method=methods.enveloped, **kw).sign(etree.fromstring(xml), key=pki.smp.key, cert=[pki.smp.cert])
        out[name] = etree.tostring(signed)
    return out


@pytest.mark.parametrize("name", ["c14n11-default", "c14n10", "exc"])
def test_signxml_variants_verify(signed_variants, pki, name):
    verified = verify_enveloped(signed_variants[name])
    assert verified.signer == pki.smp.cert
    assert verified.signature_method.endswith("rsa-sha256")


def test_signature_in_the_middle_keeps_following_text(pki):
    # signxml fills a placeholder in place; the text after it stays in the signed node-set
    doc = (b'<r xmlns="urn:t">\n  <a>1</a>\n  <ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Id="placeholder"/>'
           b'\n  tail text\n  <b>2</b>\n</r>')
    signed = XMLSigner(method=methods.enveloped, c14n_algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315").sign(
        etree.fromstring(doc), key=pki.smp.key, cert=[pki.smp.cert])
    data = etree.tostring(signed)
    assert data.index(b"Signature") < data.index(b"tail text")
    verify_enveloped(data)
    with pytest.raises(DiscoveryError) as info:
        verify_enveloped(data.replace(b"tail text", b"tail texT"))
    assert info.value.code == "digest-mismatch"


def _mutate(data: bytes, fn) -> bytes:
    root = etree.fromstring(data)
    fn(root)
    return etree.tostring(root)


@pytest.mark.parametrize("mutation,code", [
    (lambda r: r.find(f".//{{{DS}}}Reference").set("URI", "#other"), "signature-malformed"),
    (lambda r: r.find(f".//{{{DS}}}SignedInfo").append(etree.fromstring(etree.tostring(r.find(f".//{{{DS}}}Reference")))),
     "signature-malformed"),
    (lambda r: r.find(f".//{{{DS}}}Transform").set("Algorithm", "http://www.w3.org/TR/1999/REC-xpath-19991116"),
     "signature-malformed"),
    (lambda r: r.find(f".//{{{DS}}}SignatureMethod").set("Algorithm", "http://www.w3.org/2000/09/xmldsig#hmac-sha1"),
     "signature-algorithm"),
    (lambda r: r.find(f".//{{{DS}}}DigestMethod").set("Algorithm", "http://www.w3.org/2001/04/xmldsig-more#md5"),
     "signature-algorithm"),
    (lambda r: r.find(f".//{{{DS}}}CanonicalizationMethod").set("Algorithm", "urn:none"), "signature-algorithm"),
    (lambda r: r.find(f".//{{{DS}}}KeyInfo").getparent().remove(r.find(f".//{{{DS}}}KeyInfo")), "signature-no-certificate"),
    (lambda r: setattr(r.find(f".//{{{DS}}}X509Certificate"), "text", "not base64!"), "signature-malformed"),
    (lambda r: setattr(r.find(f".//{{{DS}}}SignatureValue"), "text", "AAAA"), "signature-invalid"),
    (lambda r: r[0].append(etree.fromstring(etree.tostring(r.find(f"{{{DS}}}Signature")))), "signature-malformed"),
    (lambda r: r.remove(r.find(f"{{{DS}}}Signature")), "signature-missing"),
])
def test_hostile_structures(signed_variants, mutation, code):
    with pytest.raises(DiscoveryError) as info:
        verify_enveloped(_mutate(signed_variants["exc"], mutation))
    assert info.value.code == code


def test_not_xml():
    for data in (b"", b"<a>", b"\xff\xfe", b'<!DOCTYPE a SYSTEM "http://evil/x.dtd"><a/>'):
        with pytest.raises(DiscoveryError) as info:
            verify_enveloped(data)
        assert info.value.code == "not-xml"
