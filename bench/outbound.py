"""Outbound throughput: documents/s from submission to verified receipt, ~10 KB invoices, with 1 and
2 `sendgw worker` processes, on SQLite and PostgreSQL, payloads in files or in the database.

Everything is set up here: a temporary folder, a development PKI (our AP and the receiving AP, one
dev CA), a fresh sender database (PostgreSQL: a throw-away schema) with a tenant, and the receiving
access point on the same machine:

* `--receiver as4lib` (default): a receiving AP on the independent PyPI `as4` library
  (tests/peers/as4lib_receiver.py, in its own process): it verifies the signature, decrypts,
  checks the message and answers with a signed receipt, but stores nothing, so the figure is the
  sending side's throughput (the peer's CPU is still spent on the same cores);
* `--receiver gateway`: our own gateway (`sendgw serve`, SQLite, `run_worker = false`), a complete
  AP that also commits the document, the raw message and its receipt before answering, so both
  access points' full work shares the cores.

A run: the worker processes are started and idle; then `--submitters` threads submit the documents
into the outbox the way `POST /api/v1/documents` does after validation
(`gateway.store.outbox.submit`: the document, the validation report and the queued row committed,
MessageId fixed). The clock runs from the first submission until every document is `delivered`
(the worker built and stored the AS4 message, POSTed it, verified the signed receipt and stored it
as evidence). Latency is per document, from its commit to its delivered state, so it includes
queueing behind the burst. Afterwards the receiver must hold exactly one message per document.
CPU per document is measured from /proc for the worker processes, the receiver, this process
(submissions), the PostgreSQL server processes, and the whole machine (other jobs included).
Validation at submission is a separate cost (bench/validate.py) and is not included.

    .venv/bin/python bench/outbound.py [--documents 1000] [--workers 1,2] [--databases sqlite,postgresql]
                                       [--payloads file,database] [--receiver as4lib|gateway]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))

import sqlalchemy as sa  # noqa: E402

from certs.devpki import make_ap_cert, make_ca  # noqa: E402
from gateway.identifiers import ParticipantId  # noqa: E402
from gateway.store.db import make_engine  # noqa: E402
from gateway.store.migrate import upgrade  # noqa: E402
from gateway.store.outbox import Submission, submit  # noqa: E402
from gateway.store.participants import add_participant  # noqa: E402
from gateway.store.payloads import PayloadStore  # noqa: E402
from gateway.store.schema import messages  # noqa: E402
from gateway.store.tenants import create_tenant  # noqa: E402
from bench.benchlib import C1, C4, DOC, PG_DEFAULT, PROC, Database, free_port, invoice, pct  # noqa: E402

NOW = dt.datetime.now(dt.timezone.utc)
DOCTYPE, PROCESS = f"busdox-docid-qns::{DOC}", f"cenbii-procid-ubl::{PROC}"
SENDER, RECEIVER = f"iso6523-actorid-upis::{C1}", f"iso6523-actorid-upis::{C4}"
SEAT, PEER = "PNO000001", "PNO000002"


class Pki:
    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        ca = make_ca(now=NOW)
        us, peer = make_ap_cert(SEAT, ca, now=NOW), make_ap_cert(PEER, ca, now=NOW)
        self.paths = {}
        for name, data in (("ca", ca.cert_pem()), ("us.key", us.key_pem()), ("us.cert", us.cert_pem()),
                           ("peer.key", peer.key_pem()), ("peer.cert", peer.cert_pem())):
            self.paths[name] = directory / f"{name}.pem"
            self.paths[name].write_bytes(data)


def toml(tables: dict[str, dict]) -> str:
    lines = []
    for name, table in tables.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in table.items()]  # JSON scalars/lists are TOML
    return "\n".join(lines) + "\n"


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENDGW_")}
    env["PYTHONPATH"] = str(REPO)
    return env


class Receiver:
    """Our gateway as the receiving AP (`sendgw serve`, run_worker = false, SQLite)."""

    def __init__(self, root: Path, pki: Pki, artefacts: Path, trust: Path, processes: int = 1):
        self.dir = root / "receiver"
        self.dir.mkdir()
        self.port = free_port()
        self.db_url = f"sqlite:///{self.dir}/receiver.db"
        engine = make_engine(self.db_url)
        upgrade(engine)
        tenant, _ = create_tenant(engine, "Receiver AS")
        add_participant(engine, ParticipantId.parse(C4), tenant.name)
        self.engine = engine
        config = self.dir / "sendgw.toml"
        config.write_text(toml({
            "server": {"port": self.port, "run_worker": False, "processes": processes},
            "database": {"url": self.db_url},
            "storage": {"directory": str(self.dir / "payloads")},
            "validation": {"workers": 1},
            "artefacts": {"cache": str(artefacts)},
            "ap": {"seat_id": PEER, "key": str(pki.paths["peer.key"]), "certificate": str(pki.paths["peer.cert"])},
            "trust": {"ap_anchors": [str(pki.paths["ca"])], "cache": str(trust)},
            "as4": {"tmp_dir": str(self.dir / "tmp")},
        }))
        self.log = open(self.dir / "serve.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "gateway", "--config", str(config), "serve"],
                                     cwd=self.dir, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=clean_env(), start_new_session=True)
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"receiver did not start: {(self.dir / 'serve.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/as4"

    def received(self) -> tuple[int, int]:
        with self.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(messages)).scalar()
            distinct = conn.execute(sa.select(sa.func.count(sa.distinct(messages.c.as4_message_id)))).scalar()
        return total, distinct

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        finally:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.log.close()
            self.engine.dispose()


AS4LIB_RECEIVER = """
import asyncio, json, signal, sys
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from tests.peers.as4lib_receiver import As4LibReceiver

port, key, cert, ca = int(sys.argv[1]), *sys.argv[2:5]
r = As4LibReceiver(sys.argv[5], load_pem_private_key(open(key, "rb").read(), None),
                   x509.load_pem_x509_certificate(open(cert, "rb").read()),
                   x509.load_pem_x509_certificate(open(ca, "rb").read()))

async def main():
    from aiohttp import web
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/as4", r.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    print(json.dumps({"requests": r.requests, "accepted": r.accepted}), flush=True)
    await runner.cleanup()

asyncio.run(main())
"""


class As4LibPeer:
    """A receiving AP on the PyPI `as4` library (tests/peers/as4lib_receiver.py) in its own process;
    it verifies and decrypts each message and answers with a signed receipt, but stores nothing."""

    def __init__(self, root: Path, pki: Pki):
        self.dir = root / "receiver"
        self.dir.mkdir()
        self.port = free_port()
        self.counts: dict = {}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", AS4LIB_RECEIVER, str(self.port), str(pki.paths["peer.key"]),
             str(pki.paths["peer.cert"]), str(pki.paths["ca"]), PEER],
            cwd=REPO, stdout=subprocess.PIPE, stderr=(self.dir / "receiver.log").open("wb"), env=clean_env(),
            start_new_session=True)
        if self.proc.stdout.readline().strip() != b"ready":
            raise SystemExit(f"as4 receiver did not start: {(self.dir / 'receiver.log').read_text()[-3000:]}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/as4"

    def received(self) -> tuple[int, int]:
        self.proc.send_signal(signal.SIGTERM)
        self.counts = json.loads(self.proc.stdout.readline())
        accepted = self.counts["accepted"]
        return sum(accepted.values()), len(accepted)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_workers(n: int, workdir: Path, db: Database, pki: Pki, receiver: Receiver, payloads: str,
                  args) -> list[subprocess.Popen]:
    config = workdir / "worker.toml"
    config.write_text(toml({
        "database": {"url": db.url, "pool_size": 8},
        "storage": {"payloads": payloads, "directory": str(workdir / "payloads")},
        "ap": {"seat_id": SEAT, "key": str(pki.paths["us.key"]), "certificate": str(pki.paths["us.cert"])},
        "trust": {"ap_anchors": [str(pki.paths["ca"])], "smp_anchors": [str(pki.paths["ca"])]},
        "discovery": {"allow_http": True},
        "outbound": {"allow_http": True, "concurrency": args.concurrency,
                     "per_endpoint_concurrency": args.concurrency, "lease_seconds": 120.0},
        "as4": {"tmp_dir": str(workdir / "tmp")},
    }) + toml({f'routes."{C4}"': {"url": receiver.url, "certificate": str(pki.paths["peer.cert"])}}))
    procs = []
    for i in range(n):
        log = open(workdir / f"worker{i}.log", "wb")
        procs.append(subprocess.Popen([sys.executable, "-m", "gateway", "--config", str(config), "worker",
                                       "--only", "outbound"], cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, env=clean_env()))
    deadline = time.monotonic() + 60
    for i in range(n):
        while b"running" not in (workdir / f"worker{i}.log").read_bytes():
            if procs[i].poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"worker did not start: {(workdir / f'worker{i}.log').read_text()[-3000:]}")
            time.sleep(0.1)
    return procs


TICK = os.sysconf("SC_CLK_TCK")


def cpu_by_pid(pids: set[int] | None = None, pgid: int | None = None, comm: str | None = None) -> dict[int, float]:
    """User + system CPU seconds of the given processes, of every process in process group `pgid`,
    or of every process named `comm` (e.g. the PostgreSQL server's processes), by pid."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = (Path("/proc") / entry / "stat").read_text()
        except OSError:
            continue
        name, rest = stat.split("(", 1)[1].rsplit(")", 1)
        fields = rest.split()
        if ((pids is not None and int(entry) in pids) or (pgid is not None and int(fields[2]) == pgid)
                or (comm is not None and name == comm)):
            out[int(entry)] = (int(fields[11]) + int(fields[12])) / TICK
    return out


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU used between two samples by the processes alive at the second (new ones count in full)."""
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


def machine_cpu_seconds() -> float:
    """CPU time spent by everything on the machine (all cores), from /proc/stat."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / TICK


def run_one(kind: str, payload_mode: str, workers: int, args, pki: Pki, docs: list[bytes], root: Path,
            artefacts: Path, trust: Path) -> dict:
    workdir = root / f"{kind}-{payload_mode}-{workers}"
    workdir.mkdir()
    db = Database(kind, workdir, args.pg_url, "bench_out")
    receiver = (Receiver(workdir, pki, artefacts, trust, args.receiver_processes) if args.receiver == "gateway"
                else As4LibPeer(workdir, pki))
    procs: list[subprocess.Popen] = []
    try:
        tenant, _ = create_tenant(db.engine, "Sender AS")
        payloads = PayloadStore(payload_mode, workdir / "payloads")
        procs = start_workers(workers, workdir, db, pki, receiver, payload_mode, args)
        worker_pids = {p.pid for p in procs}
        report = {"valid": True, "rules": "bench", "errors": [], "warnings": []}
        def sample():
            return (cpu_by_pid(worker_pids), cpu_by_pid(pgid=receiver.proc.pid), time.process_time(),
                    cpu_by_pid(comm="postgres"), machine_cpu_seconds())

        cpu0 = sample()
        def one(i: int) -> None:
            submit(db.engine, payloads, Submission(
                tenant_id=tenant.id, document=docs[i], sender=SENDER, receiver=RECEIVER, document_type=DOCTYPE,
                process=PROCESS, report=report, options={}, idempotency_key=None, request_sha256=f"{i:064x}",
                deadline=dt.timedelta(hours=1)), message_id_domain=SEAT.lower())

        t0 = time.perf_counter()
        # several submissions at once, as concurrent API requests would commit them
        with ThreadPoolExecutor(args.submitters) as pool:
            list(pool.map(one, range(len(docs))))
        submitted = time.perf_counter() - t0
        deadline = time.monotonic() + args.seconds
        while True:
            states = db.states()
            if states.get("delivered", 0) == len(docs):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"not all delivered after {args.seconds} s: {states}")
            time.sleep(0.05)
        elapsed = time.perf_counter() - t0
        cpu1 = sample()
        for p in procs:  # stop the workers before the receiver goes away
            p.send_signal(signal.SIGTERM)
        total, distinct = receiver.received()
        if total != len(docs) or distinct != len(docs):
            raise SystemExit(f"receiver holds {total} messages ({distinct} distinct), expected {len(docs)}")
        lat = db.latencies()
        per_doc = [(cpu_delta(a, b) if isinstance(a, dict) else b - a) * 1000 / len(docs) for a, b in zip(cpu0, cpu1)]
        return {"db": kind, "payloads": payload_mode, "workers": workers, "n": len(docs),
                "rate": len(docs) / elapsed, "submit_rate": len(docs) / submitted, "p50": pct(lat, 50),
                "p99": pct(lat, 99), "cpu_workers": per_doc[0], "cpu_receiver": per_doc[1],
                "cpu_submit": per_doc[2], "cpu_postgres": per_doc[3], "cpu_machine": per_doc[4]}
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        receiver.stop()
        db.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--documents", type=int, default=1000, help="documents per run")
    ap.add_argument("--size", type=int, default=10 * 1024, help="invoice size in bytes")
    ap.add_argument("--workers", default="1,2", help="worker process counts to run")
    ap.add_argument("--databases", default="sqlite,postgresql")
    ap.add_argument("--payloads", default="file,database",
                    help="sender [storage] payloads modes to run: file (fsynced files) and/or database")
    ap.add_argument("--receiver", choices=("as4lib", "gateway"), default="as4lib",
                    help="the receiving AP: the PyPI as4 library (default) or our own gateway")
    ap.add_argument("--receiver-processes", type=int, default=1, help="[server] processes of the receiving gateway")
    ap.add_argument("--concurrency", type=int, default=32, help="[outbound] concurrency per worker process")
    ap.add_argument("--submitters", type=int, default=8, help="threads submitting documents at once")
    ap.add_argument("--seconds", type=float, default=300, help="give up a run after this long")
    ap.add_argument("--pg-url", default=PG_DEFAULT)
    ap.add_argument("--shared", default=os.environ.get("SENDGW_SHARED_DIR") or str(REPO.parent / "shared"),
                    help="shared data folder (artefact mirror and Peppol CA PEMs)")
    args = ap.parse_args()

    from certs.trust import sync_trust
    from schematron.sync import sync as sync_artefacts

    with tempfile.TemporaryDirectory(prefix="sendgw-bench-outbound-") as tmp:
        root = Path(tmp)
        artefacts, trust = root / "artefacts", root / "trust"
        sync_artefacts(artefacts, Path(args.shared) / "artefacts")
        sync_trust(Path(args.shared) / "pki", trust)
        pki = Pki(root / "pki")
        docs = [invoice(args.size, n, "OUT") for n in range(args.documents)]
        print(f"{len(docs)} invoices of ~{len(docs[0])} bytes, [outbound] concurrency {args.concurrency}, "
              f"{os.cpu_count()} cores; receiver: " + (f"sendgw serve (SQLite, run_worker = false, "
              f"{args.receiver_processes} process(es))" if args.receiver == "gateway" else "as4 library"))
        rows = []
        for kind in [d.strip() for d in args.databases.split(",") if d.strip()]:
            for payload_mode in [m.strip() for m in args.payloads.split(",") if m.strip()]:
                for workers in [int(w) for w in args.workers.split(",")]:
                    row = run_one(kind, payload_mode, workers, args, pki, docs, root, artefacts, trust)
                    rows.append(row)
                    print(f"  {kind:<10} {payload_mode:<8} {workers} worker(s): {row['rate']:6.1f} docs/s "
                          f"(submitted at {row['submit_rate']:.0f}/s)  p50 {row['p50']:6.0f} ms  "
                          f"p99 {row['p99']:6.0f} ms"
                          f"  CPU ms/doc: workers {row['cpu_workers']:.1f}, receiver {row['cpu_receiver']:.1f}, "
                          f"submit {row['cpu_submit']:.1f}, postgres {row['cpu_postgres']:.1f}, "
                          f"whole machine {row['cpu_machine']:.1f}", flush=True)
        print()
        print("| sender database | payloads | worker processes | documents | documents/s | p50 submit→receipt | p99 "
              "| CPU ms/doc: workers / receiver / submit / postgres / whole machine |")
        print("|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['db']} | {r['payloads']} | {r['workers']} | {r['n']} | {r['rate']:.0f} | {r['p50']:.0f} ms "
                  f"| {r['p99']:.0f} ms | {r['cpu_workers']:.1f} / {r['cpu_receiver']:.1f} / {r['cpu_submit']:.1f} / "
                  f"{r['cpu_postgres']:.1f} / {r['cpu_machine']:.1f} |")


if __name__ == "__main__":
    main()
