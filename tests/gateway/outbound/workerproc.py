"""Helpers for tests that run `sendgw worker` as real subprocesses against a shared database:
a dev PKI and a config file on disk, documents queued straight into the outbox, the processes."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from certs.devpki import Issued, make_ap_cert, make_ca
from gateway.store.outbox import Submission, submit
from gateway.store.schema import messages
from tests.gateway.server_process import write_config

REPO = Path(__file__).resolve().parents[3]
SELLER = "iso6523-actorid-upis::0192:123456785"
BUYER = "iso6523-actorid-upis::0192:987654325"
INVOICE_DOCTYPE = ("busdox-docid-qns::urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##"
                   "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1")
BILLING = "cenbii-procid-ubl::urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"


@dataclass
class Pki:
    ca: Issued
    us: Issued
    peer: Issued
    ca_path: Path
    key_path: Path
    cert_path: Path
    peer_cert_path: Path


def write_pki(directory: Path, our_seat: str = "PNO000001", peer_seat: str = "POP000077") -> Pki:
    now = dt.datetime.now(dt.timezone.utc)
    directory.mkdir(parents=True, exist_ok=True)
    ca = make_ca(now=now)
    us, peer = make_ap_cert(our_seat, ca, now=now), make_ap_cert(peer_seat, ca, now=now)
    paths = [directory / n for n in ("ca.pem", "ap.key.pem", "ap.cert.pem", "peer.cert.pem")]
    for path, data in zip(paths, (ca.cert_pem(), us.key_pem(), us.cert_pem(), peer.cert_pem())):
        path.write_bytes(data)
    return Pki(ca, us, peer, *paths)


def worker_config(path: Path, *, db_url: str, payload_dir: Path, pki: Pki, receiver_url: str, **outbound) -> Path:
    return write_config(path, {
        "database": {"url": db_url, "pool_size": 4},
        "storage": {"directory": str(payload_dir)},
        "ap": {"seat_id": "PNO000001", "key": str(pki.key_path), "certificate": str(pki.cert_path)},
        "trust": {"ap_anchors": [str(pki.ca_path)], "smp_anchors": [str(pki.ca_path)]},
        "discovery": {"allow_http": True},
        "outbound": {"allow_http": True, "first_retry_seconds": 0.2, "max_retry_seconds": 1.0,
                     "http_timeout_seconds": 30.0, **outbound},
        'routes."0192:987654325"': {"url": receiver_url, "certificate": str(pki.peer_cert_path)},
    })


def start_worker(config: Path, log: Path, *args: str) -> subprocess.Popen:
    """`sendgw worker --only outbound` in a new process (no validation pool: nothing to receive)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("SENDGW_CONFIG", None)
    return subprocess.Popen([sys.executable, "-m", "gateway", "--config", str(config), "worker", "--only", "outbound",
                             *args], cwd=config.parent, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen, timeout: float = 15.0) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"worker {proc.pid} ignored SIGTERM for {timeout} s") from None
    return proc.returncode


def queue(engine, payloads, tenant_id: str, document: bytes, n: int) -> list[str]:
    """Put `n` documents straight into the outbox (as the API does after validation)."""
    ids = []
    for i in range(n):
        sub = Submission(tenant_id=tenant_id, document=document, sender=SELLER, receiver=BUYER,
                         document_type=INVOICE_DOCTYPE, process=BILLING, report={"valid": True, "errors": []},
                         options={}, idempotency_key=None, request_sha256=f"{i:064x}", deadline=dt.timedelta(hours=1))
        row, created = submit(engine, payloads, sub, message_id_domain="pno000001")
        assert created
        ids.append(row.id)
    return ids


def count_states(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(select(messages.c.state, func.count()).group_by(messages.c.state)).all())


def wait_until(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class ThreadedReceiver:
    """Runs an aiohttp-based receiver (As4LibReceiver or a subclass) on its own event loop in a
    background thread, so synchronous tests can drive subprocesses and poll the database."""

    def __init__(self, receiver):
        import asyncio
        import threading

        self.receiver = receiver
        self.loop = asyncio.new_event_loop()
        started = threading.Event()

        def run():
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(receiver.start())
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, name="receiver", daemon=True)
        self.thread.start()
        assert started.wait(10), "receiver did not start"

    def close(self) -> None:
        import asyncio

        asyncio.run_coroutine_threadsafe(self.receiver.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
