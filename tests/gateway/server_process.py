"""Run `sendgw serve` as a real subprocess for tests: config file, dev PKI on disk, start/kill/stop.

The server runs in its own session (process group), so `kill()` SIGKILLs the supervisor and every
server and validation process at once: a real crash, nothing gets to clean up.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certs.devpki import Issued, make_ap_cert, make_ca, new_key

REPO = Path(__file__).resolve().parents[2]
SEAT = "PNO000001"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class DevPki:
    ca: Issued
    us: Issued  # our AP (the server)
    peer: Issued  # a sending AP, same CA
    ca_path: Path
    key_path: Path
    cert_path: Path


def write_pki(directory: Path, now: dt.datetime | None = None) -> DevPki:
    now = now or dt.datetime.now(dt.timezone.utc)
    directory.mkdir(parents=True, exist_ok=True)
    ca = make_ca(now=now)
    us, peer = make_ap_cert(SEAT, ca, now=now), make_ap_cert("POP000099", ca, now=now)
    paths = {"ca": directory / "ca.cert.pem", "key": directory / "ap.key.pem", "cert": directory / "ap.cert.pem"}
    paths["ca"].write_bytes(ca.cert_pem())
    paths["key"].write_bytes(us.key_pem())
    paths["cert"].write_bytes(us.cert_pem())
    return DevPki(ca, us, peer, paths["ca"], paths["key"], paths["cert"])


def write_tls_cert(directory: Path, ca: Issued, now: dt.datetime | None = None) -> tuple[Path, Path]:
    """A server certificate for 127.0.0.1 issued by `ca` (the client trusts `ca`)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    key = new_key()
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca.key, hashes.SHA256()))
    tls = Issued(key, cert)
    cert_path, key_path = directory / "tls.cert.pem", directory / "tls.key.pem"
    cert_path.write_bytes(tls.cert_pem())
    key_path.write_bytes(tls.key_pem())
    return cert_path, key_path


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def write_config(path: Path, tables: dict[str, dict]) -> Path:
    lines = []
    for name, table in tables.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {_toml(value)}" for key, value in table.items()]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def gateway_config(workdir: Path, *, db_url: str, pki: DevPki, port: int, artefact_cache: Path, trust_dir: Path,
                   processes: int = 1, run_worker: bool = False, validation_workers: int = 1,
                   server: dict | None = None) -> Path:
    return write_config(workdir / "sendgw.toml", {
        "server": {"host": "127.0.0.1", "port": port, "processes": processes, "run_worker": run_worker,
                   **(server or {})},
        "database": {"url": db_url, "pool_size": 4},
        "storage": {"directory": str(workdir / "payloads")},
        "ap": {"seat_id": SEAT, "key": str(pki.key_path), "certificate": str(pki.cert_path)},
        "trust": {"ap_anchors": [str(pki.ca_path)], "cache": str(trust_dir)},
        "artefacts": {"cache": str(artefact_cache)},
        "validation": {"workers": validation_workers},
        "as4": {"tmp_dir": str(workdir / "tmp")},
    })


def sendgw(config: Path, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway", "--config", str(config), *argv], cwd=config.parent,
                          capture_output=True, text=True, timeout=timeout, env=_env())


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return {k: v for k, v in env.items() if not k.startswith("SENDGW_")}


class ServerProcess:
    """`sendgw --config FILE serve` in its own process group, output appended to `log`."""

    def __init__(self, config: Path, port: int, *, scheme: str = "http", ssl_context: ssl.SSLContext | None = None):
        self.config, self.port, self.scheme, self.ssl_context = config, port, scheme, ssl_context
        self.log = config.parent / "server.log"
        self.proc: subprocess.Popen | None = None
        self.leftovers = False  # after stop(): did any process of the group outlive the server?

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self, *extra: str, wait: bool = True, timeout: float = 60) -> "ServerProcess":
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "gateway", "--config", str(self.config), "serve",
                                          *extra], cwd=self.config.parent, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=_env(), start_new_session=True)
        if wait:
            self.wait_ready(timeout)
        return self

    def health(self) -> int | None:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=2, context=self.ssl_context) as resp:
                return resp.status
        except (urllib.error.URLError, OSError):
            return None

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            if self.health() == 200:
                return
            time.sleep(0.1)
        raise AssertionError(f"server not ready within {timeout} s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL the whole process group: supervisor, server processes, validation workers."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)
        self.proc = None

    def _group_alive(self, wait: float) -> bool:
        deadline = time.monotonic() + wait
        while True:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                return False
            if time.monotonic() > deadline:
                return True
            time.sleep(0.05)

    def children(self) -> list[int]:
        """Direct child pids of the server process (the server processes under a supervisor)."""
        try:
            text = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM the server (the supervisor when there is one) and wait for a graceful exit."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
            self.leftovers = self._group_alive(5.0)
        finally:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # whatever did not stop, for the next test
            except ProcessLookupError:
                pass
        self.proc = None
        return code
