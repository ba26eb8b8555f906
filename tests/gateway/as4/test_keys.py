"""AP credentials from PEM files or PKCS#12."""

from __future__ import annotations

import pytest

from certs.devpki import write_dev_pki
from gateway.as4 import CredentialError, load_credentials
from certs.trust import common_name

from .conftest import NOW


def test_pem_files(tmp_path):
    paths = write_dev_pki(tmp_path, "PNO000001", now=NOW)
    creds = load_credentials(key=paths["ap_key"], certificate=paths["ap_cert"])
    assert common_name(creds.certificate) == "PNO000001"


def test_pkcs12_real_peppol_test_store(shared_dir):
    creds = load_credentials(pkcs12_path=shared_dir / "interop/phase4/peppol-expired-test-ap-POP000306-g2-pw-peppol.p12",
                             password="peppol")
    assert common_name(creds.certificate) == "POP000306" and len(creds.chain) >= 1


def test_mismatched_key_and_wrong_password(tmp_path, pki, shared_dir):
    paths = write_dev_pki(tmp_path, "PNO000001", now=NOW)
    (tmp_path / "other.cert.pem").write_bytes(pki.sender.cert_pem())
    with pytest.raises(CredentialError, match="does not match"):
        load_credentials(key=paths["ap_key"], certificate=tmp_path / "other.cert.pem")
    with pytest.raises(CredentialError):
        load_credentials(pkcs12_path=shared_dir / "interop/phase4/peppol-expired-test-ap-POP000306-g2-pw-peppol.p12",
                         password="wrong")
    with pytest.raises(CredentialError):
        load_credentials()
