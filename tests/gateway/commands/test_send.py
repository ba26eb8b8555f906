"""`sendgw send` against a real gateway (HTTP API + outbox worker, both databases) delivering to a
receiving AP built on the PyPI `as4` library: output and exit codes."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from aiohttp import web

from certs.devpki import make_ap_cert, make_ca
from certs.trust import TrustStore
from gateway.app import create_app
from gateway.cli import main
from gateway.identifiers import ParticipantId
from gateway.identity import ApIdentity
from gateway.store.participants import add_participant
from tests.gateway.conftest import InProcessValidation

pytest.importorskip("as4")
from tests.gateway.outbound.workerproc import ThreadedReceiver  # noqa: E402
from tests.peers.as4lib_receiver import As4LibReceiver  # noqa: E402

NOW = dt.datetime.now(dt.timezone.utc)
SELLER, BUYER = "0192:123456785", "0192:987654325"


class GatewayAndPeer:
    """Our gateway app and an `as4` receiving AP, both served from one background event loop."""

    def __init__(self, settings, engine, validator, identity, peer: As4LibReceiver, peer_cert: str,
                 tls=None):
        self.settings, self.engine, self.validator, self.identity, self.peer = (
            settings, engine, validator, identity, peer)
        self.peer_cert, self.tls = peer_cert, tls
        self.runner = None
        self.url = ""

    async def start(self):
        await self.peer.start()
        self.settings.routes = {BUYER: {"url": self.peer.url, "certificate": self.peer_cert}}
        app = create_app(self.settings, engine=self.engine, validation=InProcessValidation(self.validator),
                         identity=self.identity, run_workers=True)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0, ssl_context=self.tls)
        await site.start()
        scheme = "https" if self.tls else "http"
        self.url = f"{scheme}://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"

    async def stop(self):
        await self.runner.cleanup()
        await self.peer.stop()


@pytest.fixture(scope="module")
def pki():
    ca = make_ca(now=NOW)
    return {"ca": ca, "us": make_ap_cert("PNO000001", ca, now=NOW), "peer": make_ap_cert("POP000077", ca, now=NOW)}


@pytest.fixture
def invoice_file(shared_dir, tmp_path):
    path = tmp_path / "invoice.xml"
    path.write_bytes((shared_dir / "conformance/ehf-billing-3/examples/Norwegian-example-1.xml").read_bytes())
    return path


@pytest.fixture
def gateway(request, engine, settings, validator, tenant, pki, tmp_path, monkeypatch):
    """Start with `gateway(script)`: the peer AP answers the first requests per `script`."""
    t, auth = tenant
    add_participant(engine, ParticipantId.parse(SELLER), t.name)
    (tmp_path / "peer.pem").write_bytes(pki["peer"].cert_pem())
    settings.outbound.allow_http = True
    settings.discovery.allow_http = True
    identity = ApIdentity("PNO000001", pki["us"].key, pki["us"].cert, TrustStore.from_pem(pki["ca"].cert_pem()))
    started = []
    monkeypatch.chdir(tmp_path)  # no ./sendgw.toml from elsewhere
    monkeypatch.delenv("SENDGW_URL", raising=False)
    monkeypatch.setenv("SENDGW_TOKEN", auth["Authorization"].split()[1])

    def start(script=None, tls=None):
        peer = As4LibReceiver("POP000077", pki["peer"].key, pki["peer"].cert, pki["ca"].cert, script)
        server = ThreadedReceiver(GatewayAndPeer(settings, engine, validator, identity, peer,
                                                   str(tmp_path / "peer.pem"), tls))
        started.append(server)
        return server.receiver

    yield start
    for server in started:
        server.close()
    # a database call the stopped worker had already handed to a thread may still be running:
    # let it finish before the database is dropped
    deadline = time.monotonic() + 10
    while engine.pool.checkedout() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_send_and_wait_until_delivered(gateway, invoice_file, capsys):
    gw = gateway()
    assert main(["send", str(invoice_file), "--url", gw.url, "--wait"]) == 0
    out = capsys.readouterr().out
    doc_id, state = out.splitlines()[0].split("\t")
    assert state == "delivered"
    assert "attempt 1" in out and "delivered" in out.splitlines()[-1]
    assert gw.url not in out and gw.peer.url in out  # the endpoint
    assert sum(gw.peer.accepted.values()) == 1


def test_without_wait_prints_the_queued_document(gateway, invoice_file, capsys, monkeypatch):
    gw = gateway()
    monkeypatch.setenv("SENDGW_URL", gw.url)
    assert main(["send", str(invoice_file), "--json", "--idempotency-key", "k-1"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["state"] == "queued" and first["links"]["self"].endswith(first["id"])
    assert main(["send", str(invoice_file), "--json", "--idempotency-key", "k-1"]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == first["id"]  # same key + same file: same document


def test_receiver_override_and_failure_exit_code(gateway, invoice_file, capsys):
    gw = gateway(script=["error"])
    assert main(["send", str(invoice_file), "--url", gw.url, "--wait", "--json", "--receiver", BUYER]) == 1
    details = json.loads(capsys.readouterr().out)
    assert details["state"] == "failed" and "EBMS:0101" in details["last_error"]
    assert details["receiver"] == f"iso6523-actorid-upis::{BUYER}"


def test_invalid_document_prints_the_validation_errors(gateway, invoice_file, capsys):
    gw = gateway()
    invoice_file.write_bytes(invoice_file.read_bytes().replace(b"<cbc:IssueDate>", b"<cbc:IssueDate>x", 1))
    assert main(["send", str(invoice_file), "--url", gw.url, "--wait"]) == 1
    err = capsys.readouterr().err
    assert "HTTP 422 invalid-document" in err
    assert "[fatal]" in err and "IssueDate" in err
    assert gw.peer.requests == 0


def test_rejections_and_usage_errors(gateway, invoice_file, capsys, monkeypatch, tmp_path):
    gw = gateway()
    assert main(["send", str(invoice_file), "--url", gw.url, "--token", "sgw_wrong"]) == 2
    assert "authentication refused" in capsys.readouterr().err
    foreign = tmp_path / "foreign.xml"
    foreign.write_bytes(invoice_file.read_bytes().replace(b'schemeID="0192">123456785<',
                                                          b'schemeID="0192">974760673<', 1))
    assert main(["send", str(foreign), "--url", gw.url]) == 1
    assert "403 sender-not-yours" in capsys.readouterr().err
    assert main(["send", str(tmp_path / "missing.xml"), "--url", gw.url]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["send", str(invoice_file), "--url", "ftp://example"]) == 2
    assert "http:// or https://" in capsys.readouterr().err
    monkeypatch.delenv("SENDGW_TOKEN")
    assert main(["send", str(invoice_file), "--url", gw.url]) == 2
    assert "no API token" in capsys.readouterr().err


def test_unreachable_gateway_is_exit_2(invoice_file, capsys, monkeypatch, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sendgw.toml").write_text(f"[server]\nport = {port}\n")
    monkeypatch.delenv("SENDGW_URL", raising=False)
    # the default URL comes from [server] of the configuration
    assert main(["send", str(invoice_file), "--token", "t"]) == 2
    assert f"cannot reach http://127.0.0.1:{port}" in capsys.readouterr().err


def test_https_gateway_with_a_private_ca(gateway, invoice_file, capsys, tmp_path):
    import ssl

    from tests.gateway.server_process import write_tls_cert

    ca = make_ca("SEND TEST TLS CA", now=NOW)
    (tmp_path / "tls-ca.pem").write_bytes(ca.cert_pem())
    cert, key = write_tls_cert(tmp_path, ca)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    gw = gateway(tls=tls)
    assert gw.url.startswith("https://")
    assert main(["send", str(invoice_file), "--url", gw.url]) == 2  # not trusted by the system CAs
    assert "CERTIFICATE_VERIFY_FAILED" in capsys.readouterr().err
    assert main(["send", str(invoice_file), "--url", gw.url, "--cacert", str(tmp_path / "tls-ca.pem"),
                 "--wait"]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith("\tdelivered")
    assert main(["send", str(invoice_file), "--url", gw.url, "--cacert", str(tmp_path / "missing.pem")]) == 2
    assert "--cacert" in capsys.readouterr().err
