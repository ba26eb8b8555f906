"""Independent check, both directions, with libxmlsec (the python `xmlsec` binding, a test dependency):

* an SMP ServiceMetadata signed by xmlsec (enveloped, RSA-SHA256, exclusive C14N) is accepted by our
  verifier (`verify_signed_metadata`), and rejected once changed after signing;
* an SMP ServiceMetadata signed by the test signer (signxml) verifies with xmlsec, including the
  certificate chain up to the test SMP CA, and fails when tampered with or signed by a rogue CA;
* on the real SMP samples in shared/interop, xmlsec and our verifier agree (signature only).
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

from gateway.discovery.errors import DiscoveryError
from gateway.discovery.smp import ServiceInformation, verify_signed_metadata
from gateway.discovery.xmldsig import verify_enveloped
from gateway.identifiers import ParticipantId

from .conftest import INVOICE, NOW, Issued, Pki, service_metadata_xml, sign

C = xmlsec.constants
DS = "http://www.w3.org/2000/09/xmldsig#"
ENDPOINT = "https://ap.test/as4"


def metadata(pki: Pki, *, default_namespace: bool = False) -> bytes:
    xml = service_metadata_xml(ParticipantId.parse("9915:xmlsec"), INVOICE, endpoint_url=ENDPOINT,
                               cert_der=pki.ap.der)
    if default_namespace:  # smp:* elements in the default namespace, as some SMPs write them
        xml = xml.replace(b"xmlns:smp=", b"xmlns=").replace(b"<smp:", b"<").replace(b"</smp:", b"</")
    return xml


def xmlsec_sign(xml: bytes, signer: Issued, *, reference_c14n=C.TransformExclC14N, first: bool = False) -> bytes:
    """Enveloped signature made by xmlsec: exc-C14N SignedInfo, RSA-SHA256, SHA-256 digest of URI="",
    KeyInfo/X509Data with the signer certificate."""
    root = etree.fromstring(xml)
    signature = xmlsec.template.create(root, C.TransformExclC14N, C.TransformRsaSha256)
    if first:  # the Signature before the content, with the whitespace that followed it kept
        signature.tail = root.text
        root.insert(0, signature)
    else:
        root.append(signature)
    ref = xmlsec.template.add_reference(signature, C.TransformSha256, uri="")
    xmlsec.template.add_transform(ref, C.TransformEnveloped)
    if reference_c14n is not None:
        xmlsec.template.add_transform(ref, reference_c14n)
    xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(signature))
    key = xmlsec.Key.from_memory(
        signer.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()), C.KeyDataFormatPem)
    key.load_cert_from_memory(signer.pem, C.KeyDataFormatCertPem)
    ctx = xmlsec.SignatureContext()
    ctx.key = key
    ctx.sign(signature)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _signature(data: bytes) -> etree._Element:
    root = etree.fromstring(data)
    signature = xmlsec.tree.find_node(root, C.NodeSignature)
    assert signature is not None
    return signature


def xmlsec_verify_with_cert(data: bytes, cert_pem: bytes) -> None:
    """Verify with an explicitly given certificate (no chain check). Raises xmlsec.VerificationError."""
    ctx = xmlsec.SignatureContext()
    ctx.key = xmlsec.Key.from_memory(cert_pem, C.KeyDataFormatCertPem)
    ctx.verify(_signature(data))


def xmlsec_verify_with_trust(data: bytes, pki: Pki) -> None:
    """Verify with the certificate from KeyInfo, which xmlsec must chain to the test SMP CAs."""
    manager = xmlsec.KeysManager()
    for ca in (pki.root, pki.smp_ca):
        manager.load_cert_from_memory(ca.pem, C.KeyDataFormatCertPem, C.KeyDataTypeTrusted)
    xmlsec.SignatureContext(manager).verify(_signature(data))


# --- xmlsec signs, we verify -------------------------------------------------------------------

VARIANTS = {
    "exc-c14n-reference": dict(),
    "enveloped-only-reference": dict(reference_c14n=None),  # octets by inclusive C14N 1.0
    "inclusive-c14n-reference": dict(reference_c14n=C.TransformInclC14N),
    "signature-first": dict(first=True),
}


@pytest.mark.parametrize("default_namespace", [False, True], ids=["smp-prefix", "default-ns"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_xmlsec_signed_metadata_is_accepted(pki, variant, default_namespace):
    data = xmlsec_sign(metadata(pki, default_namespace=default_namespace), pki.smp, **VARIANTS[variant])
    xmlsec_verify_with_cert(data, pki.smp.pem)  # sanity: xmlsec accepts its own signature
    signed = verify_signed_metadata(data, pki.smp_trust, NOW)
    assert signed.signer == pki.smp.cert
    assert isinstance(signed.content, ServiceInformation)
    [endpoint] = signed.content.processes[0].endpoints
    assert endpoint.url == ENDPOINT and endpoint.certificate_der == pki.ap.der
    verified = verify_enveloped(data)
    assert verified.signature_method.endswith("rsa-sha256") and verified.digest_method.endswith("sha256")


@pytest.mark.parametrize("variant", VARIANTS)
def test_xmlsec_signed_metadata_changed_after_signing_is_rejected(pki, variant):
    data = xmlsec_sign(metadata(pki), pki.smp, **VARIANTS[variant])
    tampered = data.replace(ENDPOINT.encode(), b"https://evil.test/as4")
    assert tampered != data
    with pytest.raises(xmlsec.VerificationError):
        xmlsec_verify_with_cert(tampered, pki.smp.pem)
    with pytest.raises(DiscoveryError) as info:
        verify_signed_metadata(tampered, pki.smp_trust, NOW)
    assert info.value.code == "digest-mismatch"


def test_xmlsec_signed_metadata_with_swapped_certificate_is_rejected(pki):
    # KeyInfo claims another trusted SMP signer: the digest still matches, the signature value does not.
    data = xmlsec_sign(metadata(pki), pki.smp, reference_c14n=None)
    root = etree.fromstring(data)
    cert = root.find(f".//{{{DS}}}X509Certificate")
    cert.text = base64.b64encode(pki.smp2.der).decode()
    with pytest.raises(DiscoveryError) as info:
        verify_signed_metadata(etree.tostring(root), pki.smp_trust, NOW)
    assert info.value.code == "signature-invalid"


def test_xmlsec_signed_metadata_by_rogue_signer_fails_trust(pki):
    data = xmlsec_sign(metadata(pki), pki.rogue_smp)
    assert verify_enveloped(data).signer == pki.rogue_smp.cert  # the signature itself is fine
    with pytest.raises(DiscoveryError) as info:
        verify_signed_metadata(data, pki.smp_trust, NOW)
    assert info.value.code == "smp-certificate-untrusted"


# --- the test signer (signxml) signs, xmlsec verifies ------------------------------------------


@pytest.mark.parametrize("default_namespace", [False, True], ids=["smp-prefix", "default-ns"])
def test_test_signer_metadata_verifies_with_xmlsec(pki, default_namespace):
    data = sign(metadata(pki, default_namespace=default_namespace), pki.smp)
    verify_signed_metadata(data, pki.smp_trust, NOW)
    xmlsec_verify_with_cert(data, pki.smp.pem)
    xmlsec_verify_with_trust(data, pki)


def test_test_signer_metadata_tampered_fails_with_xmlsec(pki):
    data = sign(metadata(pki), pki.smp)
    tampered = data.replace(ENDPOINT.encode(), b"https://evil.test/as4")
    assert tampered != data
    with pytest.raises(xmlsec.VerificationError):
        xmlsec_verify_with_cert(tampered, pki.smp.pem)
    with pytest.raises(xmlsec.Error):
        xmlsec_verify_with_trust(tampered, pki)


def test_test_signer_metadata_with_wrong_certificate_fails_with_xmlsec(pki):
    data = sign(metadata(pki), pki.smp)
    with pytest.raises(xmlsec.VerificationError):
        xmlsec_verify_with_cert(data, pki.smp2.pem)


def test_rogue_signer_fails_xmlsec_chain_check(pki):
    data = sign(metadata(pki), pki.rogue_smp)
    xmlsec_verify_with_cert(data, pki.rogue_smp.pem)  # the signature is valid ...
    with pytest.raises(xmlsec.Error):
        xmlsec_verify_with_trust(data, pki)  # ... but the signer does not chain to the SMP CAs


# --- real SMP samples: xmlsec and our verifier agree -------------------------------------------

SAMPLES = [
    ("vefa-peppol", "smp-servicemetadata-0192-12345678-no-dates.xml"),
    ("vefa-peppol", "smp-servicemetadata-0192-923829644-active-2025-2027.xml"),
    ("vefa-peppol", "smp-servicemetadata-0192-923829644-expired-2024.xml"),
    ("vefa-peppol", "smp-servicemetadata-0192-923829644-future-2027.xml"),
    ("vefa-peppol", "smp-servicemetadata-0192-991825827-prod-as4.xml"),
    ("vefa-peppol", "smp-servicemetadata-0192-991825827-redirect.xml"),
    ("vefa-peppol", "smp-servicemetadata-0192-991825827-redirect-target.xml"),
    ("vefa-peppol", "smp-servicemetadata-9901-peppol-doctype-wildcard-pint.xml"),
    ("peppol-commons", "smp-signed-servicemetadata-0088-sha1-valid.xml"),
    ("peppol-commons", "smp-signed-servicemetadata-0106-as2-as4-sha1-valid.xml"),
    ("peppol-commons", "NEG-smp-signed-servicemetadata-0088-invalid-signature.xml"),
]


@pytest.mark.parametrize("folder,name", SAMPLES, ids=[n for _, n in SAMPLES])
def test_real_smp_samples_xmlsec_agrees(shared_dir: Path, folder, name):
    data = (shared_dir / "interop" / folder / name).read_bytes()
    cert_b64 = etree.fromstring(data).find(f".//{{{DS}}}X509Certificate").text
    cert = x509.load_der_x509_certificate(base64.b64decode("".join(cert_b64.split())))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)  # the signers have expired: no chain check
    if name.startswith("NEG-"):
        with pytest.raises(xmlsec.VerificationError):
            xmlsec_verify_with_cert(data, cert_pem)
        with pytest.raises(DiscoveryError):
            verify_enveloped(data, allow_sha1=True)
    else:
        xmlsec_verify_with_cert(data, cert_pem)
        assert verify_enveloped(data, allow_sha1=True).signer == cert
