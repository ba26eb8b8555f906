"""Independent check: xmlsec1 (libxmlsec) verifies our signed Receipt and Error signals.
Skipped when xmlsec1 is not installed (it is optional; `apt-get install xmlsec1`)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from gateway.as4 import build_error_signal, build_receipt, not_serviced, receive_user_message

from .conftest import NOW, build

XMLSEC1 = shutil.which("xmlsec1")
pytestmark = pytest.mark.skipif(XMLSEC1 is None, reason="xmlsec1 not installed")


def xmlsec_verify(xml: bytes, cert_pem: bytes, tmp_path) -> subprocess.CompletedProcess:
    (tmp_path / "doc.xml").write_bytes(xml)
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    return subprocess.run(
        [XMLSEC1, "--verify", "--pubkey-cert-pem", str(tmp_path / "cert.pem"),
         "--id-attr:Id", "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/:Messaging",
         "--id-attr:Id", "http://www.w3.org/2003/05/soap-envelope:Body", str(tmp_path / "doc.xml")],
        capture_output=True, text=True, timeout=60)


def test_receipt_verifies_with_xmlsec1(pki, sbd, tmp_path):
    out = build(pki, sbd)
    rec = receive_user_message(out.read_bytes(), out.content_type, pki.receiver.key, pki.receiver.cert,
                               pki.trust, NOW)
    receipt = build_receipt(rec.message_id, rec.reference_xml, message_id="r@x", timestamp=NOW,
                            signing_key=pki.receiver.key, signing_cert=pki.receiver.cert)
    res = xmlsec_verify(receipt, pki.receiver.cert_pem(), tmp_path)
    assert res.returncode == 0 and "OK" in res.stdout + res.stderr, res.stderr
    tampered = receipt.replace(b"r@x", b"s@x")
    assert xmlsec_verify(tampered, pki.receiver.cert_pem(), tmp_path).returncode != 0
    assert xmlsec_verify(receipt, pki.sender.cert_pem(), tmp_path).returncode != 0


def test_error_signal_verifies_with_xmlsec1(pki, tmp_path):
    raw = build_error_signal(not_serviced("no", "m@x"), message_id="e@x", timestamp=NOW,
                             signing_key=pki.receiver.key, signing_cert=pki.receiver.cert)
    res = xmlsec_verify(raw, pki.receiver.cert_pem(), tmp_path)
    assert res.returncode == 0, res.stderr
