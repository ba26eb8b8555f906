"""`sendgw serve` as a real process: HTTPS, refusing bad TLS configuration, and several supervised
server processes sharing one port (restart after a crash, graceful stop)."""

from __future__ import annotations

import re
import signal
import socket
import ssl
import time
import urllib.error
import urllib.request

import pytest

from tests.gateway.server_process import (
    ServerProcess,
    free_port,
    gateway_config,
    sendgw,
    write_config,
    write_pki,
    write_tls_cert,
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return write_pki(tmp_path_factory.mktemp("pki"))


def _config(tmp_path, db_url, pki, artefact_cache, trust_dir, **kw):
    port = free_port()
    return gateway_config(tmp_path, db_url=db_url, pki=pki, port=port, artefact_cache=artefact_cache,
                          trust_dir=trust_dir, **kw), port


def test_serves_https_with_the_configured_certificate(tmp_path, db_url, engine, pki, artefact_cache, trust_dir):
    cert, key = write_tls_cert(tmp_path, pki.ca)
    config, port = _config(tmp_path, db_url, pki, artefact_cache, trust_dir,
                           server={"tls_certificate": str(cert), "tls_key": str(key)})
    client_ctx = ssl.create_default_context(cafile=str(pki.ca_path))
    server = ServerProcess(config, port, scheme="https", ssl_context=client_ctx).start()
    try:
        with urllib.request.urlopen(server.url + "/health", context=client_ctx, timeout=5) as resp:
            assert resp.status == 200
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with client_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                assert tls.version() in ("TLSv1.2", "TLSv1.3")
                assert tls.getpeercert()["subjectAltName"] == (("IP Address", "127.0.0.1"),)
        with pytest.raises(urllib.error.HTTPError) as err:  # the API over TLS still wants a token
            urllib.request.urlopen(server.url + "/api/v1/inbox", context=client_ctx, timeout=5)
        assert err.value.code == 401
        # plain HTTP on the TLS port gets no HTTP answer
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5).read()
        # a client that does not trust our CA refuses the server
        with pytest.raises(urllib.error.URLError) as err:
            urllib.request.urlopen(server.url + "/health", context=ssl.create_default_context(), timeout=5)
        assert isinstance(err.value.reason, ssl.SSLCertVerificationError)
    finally:
        assert server.stop() == 0
    assert not server.leftovers


@pytest.mark.parametrize("server_table, message", [
    ({"tls_certificate": "tls.cert.pem"}, "tls_certificate and tls_key must be set together (tls_key is empty)"),
    ({"tls_key": "tls.key.pem"}, "tls_certificate and tls_key must be set together (tls_certificate is empty)"),
    ({"tls_certificate": "missing.pem", "tls_key": "missing.key"}, "TLS file not found"),
    ({"tls_certificate": "ap.key.pem", "tls_key": "ap.key.pem"}, "cannot load tls_certificate"),
])
def test_bad_tls_configuration_refuses_to_start(tmp_path, pki, server_table, message):
    (tmp_path / "ap.key.pem").write_bytes(pki.us.key_pem())
    config = write_config(tmp_path / "sendgw.toml", {
        "server": {"port": free_port(), **server_table},
        "database": {"url": f"sqlite:///{tmp_path}/db.sqlite"}})
    result = sendgw(config, "serve")
    assert result.returncode == 1, result.stderr
    assert "refusing to start" in result.stderr and message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "db.sqlite").exists()  # refused before touching anything


def test_occupied_port_refuses_to_start(tmp_path, pki, artefact_cache, trust_dir):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        for processes in ("1", "2"):
            config = gateway_config(tmp_path, db_url=f"sqlite:///{tmp_path}/db.sqlite", pki=pki, port=port,
                                    artefact_cache=artefact_cache, trust_dir=trust_dir)
            result = sendgw(config, "serve", "--processes", processes)
            assert result.returncode == 1, result.stderr
            assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
            assert "Traceback" not in result.stderr


def test_negative_process_count_is_a_usage_error(tmp_path):
    config = write_config(tmp_path / "sendgw.toml", {"server": {"processes": -1}})
    result = sendgw(config, "serve")
    assert result.returncode == 2
    assert "[server] processes must be 0" in result.stderr


def _pids_serving(server: ServerProcess, requests: int) -> set[int]:
    for _ in range(requests):  # a new connection each time: SO_REUSEPORT spreads connections
        with urllib.request.urlopen(server.url + "/health", timeout=5) as resp:
            assert resp.status == 200
    time.sleep(0.3)
    return {int(m) for m in re.findall(r"\[(\d+)\] sendgw\.access: .*GET /health", server.output())}


@pytest.mark.slow
def test_several_processes_share_the_port_and_are_restarted(tmp_path, db_url, engine, pki, artefact_cache, trust_dir):
    config, port = _config(tmp_path, db_url, pki, artefact_cache, trust_dir, processes=2)
    server = ServerProcess(config, port).start()
    try:
        children = server.children()
        assert len(children) == 2
        deadline = time.monotonic() + 30  # the second process may still be starting
        while (served := _pids_serving(server, 20)) != set(children):
            assert served <= set(children)
            assert time.monotonic() < deadline, f"only {served} of {children} accept connections"

        victim = children[0]
        import os

        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = server.children()
            if len(now) == 2 and victim not in now:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"no replacement process:\n{server.output()}")
        replacement = (set(now) - set(children)).pop()
        assert children[1] in now
        deadline = time.monotonic() + 30
        while replacement not in _pids_serving(server, 20):
            assert time.monotonic() < deadline, server.output()
        assert "server process died (slot 0, signal 9" in server.output()
    finally:
        code = server.stop()
    assert code == 0, server.output()
    assert not server.leftovers, "every server and validation process stopped with the supervisor"
    assert "received SIGTERM: stopping 2 server processes" in server.output()


def test_unreachable_database_refuses_to_start(tmp_path):
    config = write_config(tmp_path / "sendgw.toml", {
        "server": {"port": free_port()},
        "database": {"url": f"postgresql://postgres:secret@127.0.0.1:{free_port()}/none"}})
    result = sendgw(config, "serve")
    assert result.returncode == 1
    assert "refusing to start: database postgresql+psycopg://postgres:***@127.0.0.1" in result.stderr
    assert "unreachable" in result.stderr and "secret" not in result.stderr
    assert "Traceback" not in result.stderr
