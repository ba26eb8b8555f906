"""RevocationChecker against a real local CRL/OCSP server: modes, soft/hard fail, caching, failures."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import socket
import time

import pytest
from cryptography.x509 import ocsp

from certs.devpki import make_ap_cert, make_ca, new_key
from certs.trust import CertificateError, TrustStore
from gateway.revocation import RevocationChecker
from tests.certs.revocation_pki import issue_leaf, make_crl, make_ocsp, make_responder, server  # server: fixture

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
MODES = ["crl-ocsp", "ocsp-crl", "crl", "ocsp"]


@pytest.fixture(scope="module")
def ca():
    return make_ca("SEND REVOCATION TEST CA", now=NOW)


@pytest.fixture(scope="module")
def stranger():
    return make_ca("SEND REVOCATION TEST CA", now=NOW)  # same name, another key


@pytest.fixture(scope="module")
def leaf_key():
    return new_key()


class Clock:
    def __init__(self):
        self.now = NOW

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def make_checker(clock):
    made = []

    def make(**kw):
        kw.setdefault("clock", clock)
        checker = RevocationChecker(**kw)
        made.append(checker)
        return checker

    yield make
    for checker in made:
        await checker.close()


def leaf_for(ca, server, leaf_key, *, crl="ca", ocsp_name="ca"):
    return issue_leaf("PNO000321", ca, now=NOW, key=leaf_key,
                      crl=[server.url("crl", crl)] if crl else [],
                      ocsp_urls=[server.url("ocsp", ocsp_name)] if ocsp_name else [])


def serve(server, ca, leaf, *, crl_revoked=False, ocsp_status="good", responder=None):
    server.crls["ca"] = make_crl(ca, {leaf.cert.serial_number: NOW - dt.timedelta(days=1)} if crl_revoked else {},
                                 now=NOW)
    server.ocsp["ca"] = lambda _req: make_ocsp(leaf.cert, ca, ocsp_status, now=NOW, responder=responder)


def path_of(leaf, ca):
    return TrustStore.from_pem(ca.cert_pem()).verify(leaf.cert, NOW)


async def test_good_from_the_crl_without_asking_ocsp(ca, server, leaf_key, make_checker):
    leaf = leaf_for(ca, server, leaf_key)
    serve(server, ca, leaf)
    await make_checker(soft_fail=False)(path_of(leaf, ca), NOW)
    assert server.count("crl", "ca") == 1 and server.count("ocsp", "ca") == 0


@pytest.mark.parametrize("mode", ["ocsp", "ocsp-crl"])
async def test_good_from_ocsp_with_a_real_request(ca, server, leaf_key, make_checker, mode):
    leaf = leaf_for(ca, server, leaf_key)
    serve(server, ca, leaf, responder=make_responder(ca, now=NOW))  # delegated responder
    await make_checker(mode=mode, soft_fail=False)(path_of(leaf, ca), NOW)
    assert server.count("ocsp", "ca") == 1 and server.count("crl", "ca") == 0
    assert ocsp.load_der_ocsp_request(server.requests[0]).serial_number == leaf.cert.serial_number


async def test_ocsp_answers_when_the_crl_is_missing(ca, server, leaf_key, make_checker):
    leaf = leaf_for(ca, server, leaf_key, crl="gone")  # 404
    serve(server, ca, leaf)
    await make_checker(soft_fail=False)(path_of(leaf, ca), NOW)
    assert server.count("crl", "gone") == 1 and server.count("ocsp", "ca") == 1


@pytest.mark.parametrize("soft_fail", [True, False])
@pytest.mark.parametrize("mode, source", [(m, s) for m in MODES for s in ("crl", "ocsp") if s in m])
async def test_revoked_is_refused_in_every_mode(ca, server, leaf_key, make_checker, mode, source, soft_fail):
    """Only one source knows of the revocation; the other is missing (404): refused all the same."""
    leaf = leaf_for(ca, server, leaf_key, crl="ca" if source == "crl" else "gone",
                    ocsp_name="ca" if source == "ocsp" else "gone")
    serve(server, ca, leaf, crl_revoked=True, ocsp_status="revoked")
    with pytest.raises(CertificateError) as info:
        await make_checker(mode=mode, soft_fail=soft_fail)(path_of(leaf, ca), NOW)
    assert info.value.code == "revoked"
    assert "PNO000321 is revoked" in str(info.value)


def _bad_answer(case, ca, stranger, leaf, other):
    """(CRL body, OCSP answer) pairs that must not be trusted; each claims the certificate revoked."""
    listed = {leaf.cert.serial_number: NOW - dt.timedelta(days=1)}
    stale = dict(last_update=NOW - dt.timedelta(days=3), next_update=NOW - dt.timedelta(hours=1))
    return {
        "stale-crl": (make_crl(ca, listed, now=NOW, **stale), None),
        "crl-other-key": (make_crl(stranger, listed, now=NOW), None),
        "stale-ocsp": (None, make_ocsp(leaf.cert, ca, "revoked", now=NOW, this_update=NOW - dt.timedelta(days=2),
                                       next_update=NOW - dt.timedelta(hours=1))),
        "ocsp-other-key": (None, make_ocsp(leaf.cert, stranger, "revoked", now=NOW)),
        "ocsp-other-certificate": (None, make_ocsp(other.cert, ca, "revoked", now=NOW)),
        "ocsp-unknown": (None, make_ocsp(leaf.cert, ca, "unknown", now=NOW)),
    }[case]


@pytest.mark.parametrize("soft_fail", [True, False])
@pytest.mark.parametrize("case", ["stale-crl", "crl-other-key", "stale-ocsp", "ocsp-other-key",
                                  "ocsp-other-certificate", "ocsp-unknown"])
async def test_unusable_answers_are_unknown(ca, stranger, server, leaf_key, make_checker, caplog, case, soft_fail):
    leaf = leaf_for(ca, server, leaf_key)
    other = make_ap_cert("PNO000322", ca, now=NOW, key=leaf_key)
    crl, answer = _bad_answer(case, ca, stranger, leaf, other)
    mode = "crl" if crl else "ocsp"
    if crl:
        server.crls["ca"] = crl
    else:
        server.ocsp["ca"] = lambda _req: answer
    checker = make_checker(mode=mode, soft_fail=soft_fail)
    caplog.set_level(logging.WARNING, logger="sendgw.revocation")
    if soft_fail:
        await checker(path_of(leaf, ca), NOW)
        assert "PNO000321 unknown, accepted (soft fail)" in caplog.text
    else:
        with pytest.raises(CertificateError) as info:
            await checker(path_of(leaf, ca), NOW)
        assert info.value.code == "revocation-unknown"


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_unreachable_source_soft_passes_hard_refuses(ca, leaf_key, make_checker, caplog):
    port = _dead_port()
    leaf = issue_leaf("PNO000321", ca, now=NOW, key=leaf_key, crl=[f"http://127.0.0.1:{port}/ca.crl"],
                      ocsp_urls=[f"http://127.0.0.1:{port}/ocsp"])
    checker = make_checker()
    caplog.set_level(logging.WARNING, logger="sendgw.revocation")
    await checker(path_of(leaf, ca), NOW)
    assert "CRL fetch failed" in caplog.text and "OCSP request failed" in caplog.text
    hard = make_checker(soft_fail=False)
    with pytest.raises(CertificateError) as info:
        await hard(path_of(leaf, ca), NOW)
    assert info.value.code == "revocation-unknown"


async def test_timeout_is_paid_once_then_remembered(ca, server, leaf_key, make_checker, clock):
    leaf = leaf_for(ca, server, leaf_key, ocsp_name=None)
    serve(server, ca, leaf)
    server.delay = 1.0
    checker = make_checker(timeout=0.2)
    started = time.monotonic()
    await checker(path_of(leaf, ca), NOW)  # soft pass after the timeout
    first = time.monotonic() - started
    started = time.monotonic()
    await checker(path_of(leaf, ca), NOW)
    second = time.monotonic() - started
    assert 0.2 <= first < 0.9 and second < 0.05
    assert server.count("crl", "ca") == 1
    clock.now += dt.timedelta(seconds=61)  # the failure is forgotten: asked again
    server.delay = 0
    await checker(path_of(leaf, ca), clock.now)
    assert server.count("crl", "ca") == 2


async def test_a_failed_ocsp_responder_is_remembered_for_every_certificate(ca, server, leaf_key, make_checker, clock):
    """The failure memory of an OCSP responder is per URL: another certificate of the same CA does
    not pay the timeout again."""
    first, second = (issue_leaf(seat, ca, now=NOW, ocsp_urls=[server.url("ocsp", "ca")])
                     for seat in ("PNO000321", "PNO000322"))
    assert first.cert.serial_number != second.cert.serial_number
    server.ocsp["ca"] = lambda _req: make_ocsp(first.cert, ca, "good", now=NOW)
    server.delay = 1.0
    checker = make_checker(timeout=0.2)
    await checker(path_of(first, ca), NOW)  # soft pass after the timeout
    started = time.monotonic()
    await checker(path_of(second, ca), NOW)
    assert time.monotonic() - started < 0.05 and server.count("ocsp", "ca") == 1
    clock.now += dt.timedelta(seconds=61)  # forgotten: the responder is asked again
    server.delay = 0
    await checker(path_of(second, ca), clock.now)
    assert server.count("ocsp", "ca") == 2


@pytest.mark.parametrize("chunked", [False, True])
async def test_oversized_crl_is_unknown(ca, server, leaf_key, make_checker, chunked):
    leaf = leaf_for(ca, server, leaf_key, ocsp_name=None)
    serve(server, ca, leaf)
    server.chunked = chunked
    with pytest.raises(CertificateError) as info:
        await make_checker(soft_fail=False, max_crl_bytes=len(server.crls["ca"]) - 1)(path_of(leaf, ca), NOW)
    assert info.value.code == "revocation-unknown" and "larger than" in str(info.value)
    await make_checker(soft_fail=False, max_crl_bytes=len(server.crls["ca"]))(path_of(leaf, ca), NOW)


async def test_crl_is_cached_until_next_update(ca, server, leaf_key, make_checker, clock):
    leaf = leaf_for(ca, server, leaf_key)
    server.crls["ca"] = make_crl(ca, now=NOW, next_update=NOW + dt.timedelta(hours=2))
    checker = make_checker(soft_fail=False)
    await checker(path_of(leaf, ca), NOW)
    await checker(path_of(leaf, ca), NOW)
    assert server.count("crl", "ca") == 1
    # after nextUpdate the CA has published a new CRL, which now lists the certificate
    clock.now = NOW + dt.timedelta(hours=2, minutes=1)
    server.crls["ca"] = make_crl(ca, {leaf.cert.serial_number: clock.now - dt.timedelta(minutes=1)}, now=clock.now)
    with pytest.raises(CertificateError) as info:
        await checker(path_of(leaf, ca), clock.now)
    assert info.value.code == "revoked" and server.count("crl", "ca") == 2


async def test_ocsp_answer_is_cached_until_next_update(ca, server, leaf_key, make_checker, clock):
    leaf = leaf_for(ca, server, leaf_key, crl=None)
    serve(server, ca, leaf)  # nextUpdate NOW + 4 h
    checker = make_checker(mode="ocsp", soft_fail=False)
    await checker(path_of(leaf, ca), NOW)
    await checker(path_of(leaf, ca), NOW)
    assert server.count("ocsp", "ca") == 1
    clock.now = NOW + dt.timedelta(hours=4, minutes=1)
    server.ocsp["ca"] = lambda _req: make_ocsp(leaf.cert, ca, "revoked", now=clock.now)
    with pytest.raises(CertificateError):
        await checker(path_of(leaf, ca), clock.now)
    assert server.count("ocsp", "ca") == 2


@pytest.mark.parametrize("mode", ["crl", "ocsp"])
async def test_concurrent_checks_make_one_request(ca, server, leaf_key, make_checker, mode):
    leaf = leaf_for(ca, server, leaf_key)
    serve(server, ca, leaf)
    server.delay = 0.2
    checker = make_checker(mode=mode, soft_fail=False)
    await asyncio.gather(*(checker(path_of(leaf, ca), NOW) for _ in range(10)))
    assert server.total() == 1


async def test_mode_off_never_fetches(ca, server, leaf_key, make_checker):
    leaf = leaf_for(ca, server, leaf_key)
    serve(server, ca, leaf, crl_revoked=True, ocsp_status="revoked")
    await make_checker(mode="off", soft_fail=False)(path_of(leaf, ca), NOW)
    assert server.total() == 0


async def test_certificate_without_sources(ca, leaf_key, make_checker, caplog):
    """Dev certificates name no CRL/OCSP URL: soft fail passes them without a warning per message."""
    leaf = make_ap_cert("PNO000321", ca, now=NOW, key=leaf_key)
    caplog.set_level(logging.DEBUG, logger="sendgw.revocation")
    await make_checker()(path_of(leaf, ca), NOW)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    with pytest.raises(CertificateError) as info:
        await make_checker(soft_fail=False)(path_of(leaf, ca), NOW)
    assert info.value.code == "revocation-unknown" and "no CRL/OCSP source" in str(info.value)


async def test_intermediate_ca_is_checked_against_the_root_and_the_root_is_not(server, leaf_key, make_checker):
    root = make_ca("SEND REVOCATION TEST ROOT", now=NOW)
    inter = make_ca("SEND REVOCATION TEST ISSUING CA", now=NOW, issuer=root)
    inter = issue_ca_with_crl(inter, root, server.url("crl", "root"))
    leaf = leaf_for(inter, server, leaf_key, ocsp_name=None)
    server.crls["ca"] = make_crl(inter, now=NOW)
    server.crls["root"] = make_crl(root, now=NOW)
    trust = TrustStore.from_pem(root.cert_pem() + inter.cert_pem())
    path = trust.verify(leaf.cert, NOW)
    assert len(path) == 3
    await make_checker(soft_fail=False)(path, NOW)  # the root names no source and still passes
    server.crls["root"] = make_crl(root, {inter.cert.serial_number: NOW - dt.timedelta(days=1)}, now=NOW)
    with pytest.raises(CertificateError) as info:
        await make_checker(soft_fail=False)(path, NOW)
    assert info.value.code == "revoked" and "ISSUING CA is revoked" in str(info.value)


def issue_ca_with_crl(ca, root, url):
    """`ca` re-issued by `root` with a CRL distribution point (same key and serial)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    c = ca.cert
    builder = (x509.CertificateBuilder().subject_name(c.subject).issuer_name(c.issuer).public_key(c.public_key())
               .serial_number(c.serial_number).not_valid_before(c.not_valid_before_utc)
               .not_valid_after(c.not_valid_after_utc))
    for ext in c.extensions:
        builder = builder.add_extension(ext.value, ext.critical)
    builder = builder.add_extension(x509.CRLDistributionPoints(
        [x509.DistributionPoint([x509.UniformResourceIdentifier(url)], None, None, None)]), False)
    return type(ca)(ca.key, builder.sign(root.key, hashes.SHA256()))
