"""Gateway to gateway: two `sendgw serve` processes, each with its own dev PKI (`sendgw certs
dev-pki`), both trusting both dev CAs, with static routes to each other and a tenant + participant
on each. Documents are submitted with `sendgw send --wait`; they must arrive in the other side's
inbox byte-identical, and the other side's signed receipt must be stored as evidence.

Gateway A runs on PostgreSQL (when reachable) and B on SQLite, so one run covers both backends.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.identifiers import ParticipantId
from gateway.store.db import make_engine
from gateway.store.migrate import upgrade
from gateway.store.participants import add_participant
from gateway.store.tenants import create_tenant
from tests.conftest import postgres_schema
from tests.gateway.outbound.workerproc import REPO
from tests.gateway.server_process import write_config

A_PARTICIPANT, B_PARTICIPANT = "0192:123456785", "0192:987654325"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, token: str, body: bytes | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@dataclass
class Gateway:
    name: str
    seat: str
    dir: Path
    port: int
    db_url: str
    pki: dict
    token: str = ""
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config(self) -> Path:
        return self.dir / "sendgw.toml"

    def log(self) -> str:
        path = self.dir / "serve.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


@pytest.fixture
def pg_schema_url():
    """A fresh PostgreSQL schema, or a SQLite fallback when no server is reachable."""
    with postgres_schema("g2g_") as url:
        yield url


@pytest.fixture
def gateways(tmp_path, artefact_cache, trust_dir, pg_schema_url, capsys):
    a = Gateway("A", "PNO000011", tmp_path / "a", free_port(), pg_schema_url or f"sqlite:///{tmp_path}/a/a.db", {})
    b = Gateway("B", "PNO000022", tmp_path / "b", free_port(), f"sqlite:///{tmp_path}/b/b.db", {})
    for gw in (a, b):
        gw.dir.mkdir(parents=True)
        assert main(["certs", "dev-pki", str(gw.dir / "pki"), "--seat", gw.seat]) == 0
        gw.pki = {name: gw.dir / f"pki/{file}" for name, file in
                  (("ca", "ca.cert.pem"), ("key", "ap.key.pem"), ("cert", "ap.cert.pem"))}
    capsys.readouterr()
    for gw, other, ours, theirs in ((a, b, A_PARTICIPANT, B_PARTICIPANT), (b, a, B_PARTICIPANT, A_PARTICIPANT)):
        write_config(gw.config, {
            "server": {"host": "127.0.0.1", "port": gw.port},
            "database": {"url": gw.db_url, "pool_size": 4},
            "storage": {"directory": str(gw.dir / "payloads")},
            "artefacts": {"cache": str(artefact_cache)},
            "validation": {"workers": 1},
            "ap": {"seat_id": gw.seat, "key": str(gw.pki["key"]), "certificate": str(gw.pki["cert"])},
            "trust": {"ap_anchors": [str(a.pki["ca"]), str(b.pki["ca"])], "smp_anchors": ["peppol-test"],
                      "cache": str(trust_dir)},
            "discovery": {"allow_http": True},
            "outbound": {"allow_http": True, "first_retry_seconds": 0.2, "max_retry_seconds": 1.0},
            f'routes."{theirs}"': {"url": f"{other.url}/as4", "certificate": str(other.pki["cert"])},
        })
        engine = make_engine(gw.db_url)
        upgrade(engine)
        tenant, gw.token = create_tenant(engine, f"Tenant {gw.name}")
        add_participant(engine, ParticipantId.parse(ours), tenant.name)
        engine.dispose()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for gw in (a, b):
        gw.proc = subprocess.Popen([sys.executable, "-m", "gateway", "--config", str(gw.config), "serve"],
                                   cwd=gw.dir, env=env, stdout=(gw.dir / "serve.log").open("wb"),
                                   stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        for gw in (a, b):
            while True:
                try:
                    with urllib.request.urlopen(f"{gw.url}/health", timeout=2) as resp:
                        if resp.status == 200:
                            break
                except OSError:
                    pass
                if gw.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"gateway {gw.name} did not start:\n{gw.log()}")
                time.sleep(0.2)
        yield a, b
    finally:
        for gw in (a, b):
            if gw.proc.poll() is None:
                gw.proc.terminate()
                try:
                    gw.proc.wait(20)
                except subprocess.TimeoutExpired:
                    gw.proc.kill()
                    gw.proc.wait()


def send(gw: Gateway, document: Path) -> dict:
    """`sendgw send FILE --wait --json` against gateway `gw`, as an operator would run it."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "SENDGW_TOKEN": gw.token}
    out = subprocess.run([sys.executable, "-m", "gateway", "send", str(document), "--url", gw.url, "--wait",
                          "--timeout", "60", "--json"], env=env, capture_output=True, timeout=120)
    assert out.returncode == 0, (out.returncode, out.stdout.decode(), out.stderr.decode(), gw.log())
    return json.loads(out.stdout)


def received(gw: Gateway, message_id: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = http("GET", f"{gw.url}/api/v1/inbox", gw.token)
        assert status == 200, body
        for item in json.loads(body)["items"]:
            if item["as4_message_id"] == message_id and item["valid"] is not None:
                return item
        time.sleep(0.2)
    raise AssertionError(f"{message_id} not (validated) in {gw.name}'s inbox:\n{gw.log()}")


def check_delivery(sender: Gateway, receiver: Gateway, document: bytes, path: Path) -> None:
    details = send(sender, path)
    assert details["state"] == "delivered", details
    assert details["endpoint"] == f"{receiver.url}/as4"
    mid = details["as4_message_id"]
    item = received(receiver, mid)
    assert item["valid"] is True
    status, got = http("GET", f"{receiver.url}/api/v1/inbox/{item['id']}/document", receiver.token)
    assert status == 200 and got == document  # byte-identical business document
    status, receipt = http("GET", f"{sender.url}/api/v1/documents/{details['id']}/evidence/receipt", sender.token)
    assert status == 200
    assert mid.encode() in receipt and b"NonRepudiationInformation" in receipt
    # signed by the receiving gateway: its AP certificate is the receipt's security token
    cert_b64 = b"".join(receiver.pki["cert"].read_bytes().splitlines()[1:-1])
    assert cert_b64 in receipt.replace(b"\n", b"").replace(b"\r", b"")


@pytest.mark.slow
def test_two_gateways_deliver_to_each_other(gateways, shared_dir, tmp_path):
    a, b = gateways
    invoice = (shared_dir / "conformance/ehf-billing-3/examples/Norwegian-example-1.xml").read_bytes()
    seller, buyer = b'<cbc:EndpointID schemeID="0192">123456785<', b'<cbc:EndpointID schemeID="0192">987654325<'
    assert invoice.count(seller) == 1 and invoice.count(buyer) == 1
    a_to_b = tmp_path / "a-to-b.xml"
    a_to_b.write_bytes(invoice)
    # the same invoice the other way round: swap the seller's and the buyer's endpoint ids
    swapped = invoice.replace(seller, b"\0").replace(buyer, seller).replace(b"\0", buyer)
    b_to_a = tmp_path / "b-to-a.xml"
    b_to_a.write_bytes(swapped)
    check_delivery(a, b, invoice, a_to_b)
    check_delivery(b, a, swapped, b_to_a)
