"""Dev PKI: Peppol AP profile of generated certificates, trust checks, and the CLI action."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from certs.devpki import make_ap_cert, make_ca, new_key, write_dev_pki
from certs.trust import CertificateError, TrustStore, common_name

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.timezone.utc)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ca():
    return make_ca(now=NOW)


def test_ap_leaf_follows_peppol_profile(ca):
    ap = make_ap_cert("PNO000001", ca, now=NOW)
    c = ap.cert
    assert common_name(c) == "PNO000001"
    ku = c.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.key_encipherment and ku.data_encipherment and not ku.key_cert_sign
    eku = c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert c.public_key().key_size >= 2048
    assert TrustStore.from_pem(ca.cert_pem()).verify(c, at=NOW)[-1] == ca.cert


def test_defective_certificates_are_rejected(ca):
    store = TrustStore.from_pem(ca.cert_pem())
    expired = make_ap_cert("PNO000001", ca, now=NOW, not_before=NOW - dt.timedelta(days=30),
                           not_after=NOW - dt.timedelta(days=1))
    with pytest.raises(CertificateError) as e:
        store.verify(expired.cert, at=NOW)
    assert e.value.code == "expired"
    other = make_ca("OTHER CA", now=NOW)
    with pytest.raises(CertificateError) as e:
        store.verify(make_ap_cert("PNO000001", other, now=NOW).cert, at=NOW)
    assert e.value.code == "untrusted"
    with pytest.raises(CertificateError) as e:
        store.verify(make_ap_cert("PNO000001", ca, now=NOW, ca_flag=True).cert, at=NOW)
    assert e.value.code == "not-a-leaf"


def test_small_keys_refused():
    with pytest.raises(ValueError):
        new_key(1024)


def test_write_dev_pki(tmp_path):
    paths = write_dev_pki(tmp_path / "pki", "PNO000001", now=NOW)
    key = serialization.load_pem_private_key(paths["ap_key"].read_bytes(), None)
    cert = x509.load_pem_x509_certificate(paths["ap_cert"].read_bytes())
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    assert (paths["ap_key"].stat().st_mode & 0o777) == 0o600
    assert TrustStore.from_config([str(paths["ca_cert"])], "ap", tmp_path).verify(cert, at=NOW)
    with pytest.raises(FileExistsError):
        write_dev_pki(tmp_path / "pki", "PNO000001", now=NOW)


def test_cli_dev_pki(tmp_path):
    out = subprocess.run([sys.executable, "-m", "gateway", "certs", "dev-pki", str(tmp_path / "d"),
                          "--seat", "PNO000123"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert 'seat_id = "PNO000123"' in out.stdout
    assert f'ap_anchors = ["{tmp_path / "d" / "ca.cert.pem"}"]' in out.stdout
    cert = x509.load_pem_x509_certificate((tmp_path / "d" / "ap.cert.pem").read_bytes())
    assert common_name(cert) == "PNO000123"
    bad = subprocess.run([sys.executable, "-m", "gateway", "certs", "dev-pki", str(tmp_path / "e"),
                          "--seat", "not a seat"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
