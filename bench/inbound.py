"""Inbound AS4 throughput over real HTTP: messages/s and latency of `POST /as4` for ~10 KB invoices,
with 1 and 2 `sendgw serve` processes, on SQLite and PostgreSQL.

Everything is set up here: a temporary folder, a development PKI (our AP + a sending AP), a config
file, a fresh database (PostgreSQL: a throw-away schema), a tenant hosting the receiver, and N
distinct messages pre-built with our AS4 core (`build_user_message`, the same wire format the
`as4` library and other APs send). `sendgw serve` runs as a subprocess; this process drives the
load with aiohttp over loopback (keep-alive, `--concurrency` requests in flight), checks that every
answer is a receipt, and after each run that the database holds exactly one document per message.

A request is timed from the first byte sent to the last byte of the receipt; the receipt is only
sent after the document, the raw message and the receipt are committed. By default the background
inbound processor is off (`run_worker = false`), so the figure is the receiving edge alone; with
`--run-worker` every received document is also validated (Schematron) in the same processes.

    .venv/bin/python bench/inbound.py [--messages 1500] [--processes 1,2] [--databases sqlite,postgresql]
                                      [--payloads file,database] [--run-worker] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402

from certs.devpki import make_ap_cert, make_ca  # noqa: E402
from gateway.as4 import build_user_message  # noqa: E402
from gateway.identifiers import ParticipantId  # noqa: E402
from gateway.sbdh import build_sbd  # noqa: E402
from gateway.store.participants import add_participant  # noqa: E402
from gateway.store.tenants import create_tenant  # noqa: E402
from bench.benchlib import C1, C4, DOC, PG_DEFAULT, PROC, Database, free_port, invoice, pct  # noqa: E402

NOW = dt.datetime.now(dt.timezone.utc)
SEAT, PEER = "PNO000001", "POP000099"


class Pki:
    def __init__(self, directory: Path):
        self.ca = make_ca(now=NOW)
        self.us, self.peer = make_ap_cert(SEAT, self.ca, now=NOW), make_ap_cert(PEER, self.ca, now=NOW)
        directory.mkdir(parents=True, exist_ok=True)
        self.ca_path, self.key_path, self.cert_path = (directory / n for n in ("ca.pem", "ap.key.pem", "ap.cert.pem"))
        self.ca_path.write_bytes(self.ca.cert_pem())
        self.key_path.write_bytes(self.us.key_pem())
        self.cert_path.write_bytes(self.us.cert_pem())


def build_messages(pki: Pki, count: int, size: int, tmp: Path) -> list[tuple[str, bytes]]:
    out = []
    for n in range(count):
        sbd = build_sbd(invoice(size, n), sender=C1, receiver=C4, document_id=DOC, process_id=PROC,
                        country_c1="NO", creation_date_time=NOW)
        msg = build_user_message(sbd, message_id=f"{uuid.uuid4()}@bench.{PEER.lower()}", timestamp=NOW,
                                 from_party=PEER, to_party=SEAT, service=PROC, action="busdox-docid-qns::" + DOC,
                                 original_sender=C1, final_recipient=C4, signing_key=pki.peer.key,
                                 signing_cert=pki.peer.cert, receiver_cert=pki.us.cert, tmp_dir=tmp)
        out.append((msg.content_type, bytes(msg.body)))
    return out


def write_config(workdir: Path, db_url: str, pki: Pki, port: int, processes: int, run_worker: bool,
                 artefacts: Path, trust: Path, payloads: str = "file") -> Path:
    tables = {
        "server": {"port": port, "processes": processes, "run_worker": run_worker},
        "database": {"url": db_url},
        "storage": {"payloads": payloads, "directory": str(workdir / "payloads")},
        "ap": {"seat_id": SEAT, "key": str(pki.key_path), "certificate": str(pki.cert_path)},
        "trust": {"ap_anchors": [str(pki.ca_path)], "cache": str(trust)},
        "artefacts": {"cache": str(artefacts)},
        "as4": {"tmp_dir": str(workdir / "tmp")},
    }
    lines = []
    for name, table in tables.items():
        lines.append(f"[{name}]")
        for key, value in table.items():
            lines.append(f"{key} = {json.dumps(value)}")  # JSON scalars and string lists are valid TOML
    path = workdir / "sendgw.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


class Server:
    def __init__(self, config: Path, port: int):
        self.port = port
        self.log = open(config.parent / "server.log", "wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("SENDGW_")}
        env["PYTHONPATH"] = str(REPO)
        self.proc = subprocess.Popen([sys.executable, "-m", "gateway", "--config", str(config), "serve"],
                                     cwd=config.parent, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited: {(config.parent / 'server.log').read_text()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise SystemExit("server did not become ready")

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


async def drive(url: str, batch: list[tuple[str, bytes]], concurrency: int, deadline: float) -> tuple[list[float], float, int]:
    """POST every message (at most `concurrency` in flight); latencies in seconds, wall time, errors."""
    latencies: list[float] = []
    errors = 0
    it = iter(batch)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        async def worker():
            nonlocal errors
            for content_type, body in it:
                if time.monotonic() > deadline:
                    return
                t0 = time.perf_counter()
                async with session.post(url, data=body, headers={"Content-Type": content_type}) as resp:
                    answer = await resp.read()
                latencies.append(time.perf_counter() - t0)
                if resp.status != 200 or b"Receipt" not in answer or b"ebint:Error" in answer:
                    errors += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, time.perf_counter() - start, errors


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pgid: int | None = None, comm: str | None = None) -> float:
    """CPU time (user + system) of the live processes in process group `pgid`, or named `comm`."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, rest = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
        if (pgid is not None and int(rest[2]) == pgid) or (comm is not None and name == comm):
            total += int(rest[11]) + int(rest[12])
    return total / _TICK


def _pg(row: dict) -> str:
    # every postgres process on the machine: other clients of the same server are counted too
    return f"{row['cpu'][1]:.1f}" if row["db"] == "postgresql" else "-"


def run_one(kind: str, processes: int, payloads: str, args, pki: Pki, msgs, artefacts: Path, trust: Path,
            root: Path) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"{kind}-{processes}p-", dir=root))
    db = Database(kind, workdir, args.pg_url)
    try:
        tenant, _ = create_tenant(db.engine, "Bench AS")
        add_participant(db.engine, ParticipantId.parse(C4), tenant.name)
        port = free_port()
        server = Server(write_config(workdir, db.url, pki, port, processes, args.run_worker, artefacts, trust,
                                     payloads), port)
        try:
            url = f"http://127.0.0.1:{port}/as4"
            warm, measured = msgs[:args.warmup], msgs[args.warmup:]
            asyncio.run(drive(url, warm, args.concurrency, time.monotonic() + 60))
            cpu0 = (cpu_seconds(pgid=server.proc.pid), cpu_seconds(comm="postgres"), time.process_time())
            latencies, wall, errors = asyncio.run(drive(url, measured, args.concurrency,
                                                        time.monotonic() + args.seconds))
            cpu1 = (cpu_seconds(pgid=server.proc.pid), cpu_seconds(comm="postgres"), time.process_time())
        finally:
            server.stop()
        total, distinct = db.message_counts()
        sent = len(warm) + len(latencies)
        if errors or total != sent or distinct != sent:
            raise SystemExit(f"{kind}/{processes}: {errors} errors; {total} stored ({distinct} distinct) for {sent} sent")
        return {"db": kind, "processes": processes, "payloads": payloads, "n": len(latencies), "rate": len(latencies) / wall,
                "p50": pct(latencies, 50) * 1000, "p99": pct(latencies, 99) * 1000,
                "cpu": [(b - a) * 1000 / len(latencies) for a, b in zip(cpu0, cpu1)]}
    finally:
        db.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=1500, help="measured messages per run")
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=60, help="stop a run after this long")
    ap.add_argument("--size", type=int, default=10 * 1024, help="invoice size in bytes")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--processes", default="1,2")
    ap.add_argument("--databases", default="sqlite,postgresql")
    ap.add_argument("--payloads", default="file", help="[storage] payloads modes to measure: file, database")
    ap.add_argument("--run-worker", action="store_true", help="also validate each document in the background")
    ap.add_argument("--pg-url", default=PG_DEFAULT)
    ap.add_argument("--shared", default=os.environ.get("SENDGW_SHARED_DIR") or str(REPO.parent / "shared"),
                    help="shared data folder (artefact mirror and Peppol CA PEMs)")
    args = ap.parse_args()

    from certs.trust import sync_trust
    from schematron.sync import sync as sync_artefacts

    with tempfile.TemporaryDirectory(prefix="sendgw-bench-inbound-") as tmp:
        root = Path(tmp)
        artefacts, trust = root / "artefacts", root / "trust"
        sync_artefacts(artefacts, Path(args.shared) / "artefacts")
        sync_trust(Path(args.shared) / "pki", trust)
        pki = Pki(root / "pki")
        t0 = time.perf_counter()
        msgs = build_messages(pki, args.warmup + args.messages, args.size, root / "build")
        print(f"built {len(msgs)} messages of {len(msgs[-1][1])} bytes on the wire in {time.perf_counter() - t0:.1f} s"
              f" (invoice ~{args.size} bytes, concurrency {args.concurrency}, run_worker={args.run_worker},"
              f" {os.cpu_count()} cores)")
        rows = []
        for kind in [d.strip() for d in args.databases.split(",") if d.strip()]:
            for processes, payloads in [(int(p), m.strip()) for p in args.processes.split(",")
                                        for m in args.payloads.split(",")]:
                row = run_one(kind, processes, payloads, args, pki, msgs, artefacts, trust, root)
                rows.append(row)
                print(f"  {kind:<10} {processes} process(es), payloads {payloads:<8}: {row['rate']:7.1f} msgs/s  p50 {row['p50']:6.1f} ms"
                      f"  p99 {row['p99']:6.1f} ms  (n={row['n']}); CPU ms/msg: server {row['cpu'][0]:.1f},"
                      f" postgres {_pg(row)}, load driver {row['cpu'][2]:.1f}", flush=True)
        print()
        print("| database | server processes | payloads | messages | messages/s | p50 latency | p99 latency "
              "| CPU ms/msg: server / postgres / driver |")
        print("|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['db']} | {r['processes']} | {r['payloads']} | {r['n']} | {r['rate']:.0f} | {r['p50']:.1f} ms | {r['p99']:.1f} ms "
                  f"| {r['cpu'][0]:.1f} / {_pg(r)} / {r['cpu'][2]:.1f} |")
        for r in rows:
            if r["db"] == "postgresql" and r["processes"] == 2:
                print(f"\ntarget >= 150 msgs/s with PostgreSQL and 2 server processes (payloads {r['payloads']}): "
                      f"{r['rate']:.0f} msgs/s, " + ("met" if r["rate"] >= 150 else "NOT met")
                      + f" (server + postgres + driver CPU {sum(r['cpu']):.1f} ms/msg: "
                      f"at most {os.cpu_count() * 1000 / sum(r['cpu']):.0f} msgs/s on {os.cpu_count()} idle cores)")


if __name__ == "__main__":
    main()
