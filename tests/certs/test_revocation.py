"""The sans-IO revocation core: URLs from certificates, CRL and OCSP answers judged without I/O."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from certs.devpki import make_ap_cert, make_ca, new_key
from certs.revocation import build_ocsp_request, check_crl, check_ocsp, crl_urls, ocsp_urls
from tests.certs.revocation_pki import issue_leaf, make_crl, make_ocsp, make_responder

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.timezone.utc)
CRL_URL = "http://crl.example.test/ca.crl"
OCSP_URL = "http://ocsp.example.test"


@pytest.fixture(scope="module")
def ca():
    return make_ca("REVOCATION CORE CA", now=NOW)


@pytest.fixture(scope="module")
def other_ca():
    return make_ca("REVOCATION CORE CA", now=NOW)  # same name, other key


@pytest.fixture(scope="module")
def leaf(ca):
    return issue_leaf("PNO000010", ca, now=NOW, crl=[CRL_URL, "ldap://crl.example.test/x"], ocsp_urls=[OCSP_URL])


def test_urls_of_a_certificate(leaf, ca):
    assert crl_urls(leaf.cert) == [CRL_URL]  # LDAP skipped
    assert ocsp_urls(leaf.cert) == [OCSP_URL]
    plain = make_ap_cert("PNO000011", ca, now=NOW)
    assert crl_urls(plain.cert) == [] and ocsp_urls(plain.cert) == []


# --- CRL -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("pem", [False, True])
def test_crl_good_in_der_and_pem(leaf, ca, pem):
    status = check_crl(leaf.cert, ca.cert, make_crl(ca, {12345: NOW}, now=NOW, pem=pem), NOW, CRL_URL)
    assert status.state == "good" and status.source == CRL_URL
    assert status.next_update == NOW + dt.timedelta(days=1)


def test_crl_revoked(leaf, ca):
    crl = make_crl(ca, {leaf.cert.serial_number: NOW - dt.timedelta(days=2)}, now=NOW)
    status = check_crl(leaf.cert, ca.cert, crl, NOW)
    assert status.state == "revoked" and "revoked on" in status.reason


def test_crl_revoked_exactly_at_the_instant_and_not_before(leaf, ca):
    crl = make_crl(ca, {leaf.cert.serial_number: NOW}, now=NOW)
    assert check_crl(leaf.cert, ca.cert, crl, NOW).state == "revoked"
    assert check_crl(leaf.cert, ca.cert, crl, NOW - dt.timedelta(minutes=1)).state == "good"


@pytest.mark.parametrize("case", ["stale", "future", "other-key", "other-name", "garbage"])
def test_unusable_crl_is_unknown(leaf, ca, other_ca, case):
    serial = {leaf.cert.serial_number: NOW - dt.timedelta(days=2)}  # listed: an unusable CRL must not say revoked either
    if case == "stale":
        data = make_crl(ca, serial, now=NOW, last_update=NOW - dt.timedelta(days=3),
                        next_update=NOW - dt.timedelta(hours=1))
    elif case == "future":
        data = make_crl(ca, serial, now=NOW, last_update=NOW + dt.timedelta(hours=1))
    elif case == "other-key":
        data = make_crl(other_ca, serial, now=NOW)  # same issuer name, signed by another key
    elif case == "other-name":
        data = make_crl(make_ca("SOMEONE ELSE", now=NOW), serial, now=NOW)
    else:
        data = b"not a crl"
    status = check_crl(leaf.cert, ca.cert, data, NOW)
    assert status.state == "unknown", status


def test_crl_small_clock_skew_is_tolerated(leaf, ca):
    early = make_crl(ca, now=NOW, last_update=NOW + dt.timedelta(minutes=2))
    late = make_crl(ca, now=NOW, last_update=NOW - dt.timedelta(days=1), next_update=NOW - dt.timedelta(minutes=2))
    assert check_crl(leaf.cert, ca.cert, early, NOW).state == "good"
    assert check_crl(leaf.cert, ca.cert, late, NOW).state == "good"
    assert check_crl(leaf.cert, ca.cert, late, NOW + dt.timedelta(minutes=4)).state == "unknown"


# --- OCSP ----------------------------------------------------------------------------------------


def test_ocsp_request_names_the_certificate(leaf, ca):
    req = ocsp.load_der_ocsp_request(build_ocsp_request(leaf.cert, ca.cert))
    assert req.serial_number == leaf.cert.serial_number
    assert req.issuer_key_hash == x509.SubjectKeyIdentifier.from_public_key(ca.cert.public_key()).digest


@pytest.mark.parametrize("delegated", [False, True])
def test_ocsp_good_and_revoked(leaf, ca, delegated):
    responder = make_responder(ca, now=NOW) if delegated else None
    good = check_ocsp(make_ocsp(leaf.cert, ca, now=NOW, responder=responder), leaf.cert, ca.cert, NOW, OCSP_URL)
    assert good.state == "good" and good.source == OCSP_URL
    assert good.next_update == NOW + dt.timedelta(hours=4)
    revoked = check_ocsp(make_ocsp(leaf.cert, ca, "revoked", now=NOW, responder=responder), leaf.cert, ca.cert, NOW)
    assert revoked.state == "revoked" and "key_compromise" in revoked.reason


def test_ocsp_unknown_status(leaf, ca):
    assert check_ocsp(make_ocsp(leaf.cert, ca, "unknown", now=NOW), leaf.cert, ca.cert, NOW).state == "unknown"


def test_ocsp_revocation_after_the_instant_is_good(leaf, ca):
    data = make_ocsp(leaf.cert, ca, "revoked", now=NOW, revoked_at=NOW - dt.timedelta(minutes=5))
    assert check_ocsp(data, leaf.cert, ca.cert, NOW - dt.timedelta(minutes=6)).state == "good"


@pytest.mark.parametrize("case", ["stale", "future", "other-key", "no-eku", "foreign-responder",
                                  "other-certificate", "garbage", "try-later"])
def test_unusable_ocsp_is_unknown(leaf, ca, other_ca, case):
    cert = leaf.cert
    if case == "stale":
        data = make_ocsp(cert, ca, "revoked", now=NOW, this_update=NOW - dt.timedelta(days=2),
                         next_update=NOW - dt.timedelta(hours=1))
    elif case == "future":
        data = make_ocsp(cert, ca, "revoked", now=NOW, this_update=NOW + dt.timedelta(hours=1))
    elif case == "other-key":
        data = make_ocsp(cert, other_ca, "revoked", now=NOW)  # issuer name matches, key does not
    elif case == "no-eku":
        data = make_ocsp(cert, ca, "revoked", now=NOW, responder=make_responder(ca, now=NOW, eku=False))
    elif case == "foreign-responder":
        data = make_ocsp(cert, ca, "revoked", now=NOW, responder=make_responder(other_ca, now=NOW))
    elif case == "other-certificate":
        other = make_ap_cert("PNO000012", ca, now=NOW)
        data = make_ocsp(other.cert, ca, "revoked", now=NOW)
    elif case == "try-later":
        data = ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.TRY_LATER).public_bytes(Encoding.DER)
    else:
        data = b"\x30\x03\x0a\x01\x00garbage"
    status = check_ocsp(data, cert, ca.cert, NOW)
    assert status.state == "unknown", status


def test_ocsp_signed_by_a_stranger_key_claiming_the_issuer(leaf, ca):
    impostor = make_ca("REVOCATION CORE CA", now=NOW, key=new_key())
    data = make_ocsp(leaf.cert, ca, "good", now=NOW, responder=None)
    assert check_ocsp(data, leaf.cert, ca.cert, NOW).state == "good"
    assert check_ocsp(data, leaf.cert, impostor.cert, NOW).state == "unknown"
