"""Validation benchmark: the engine against the bare saxonche transforms it wraps.

    .venv/bin/python bench/validate.py [--cache DIR] [--seconds 5] [--skip-api] [--skip-pool]

Documents (generated from the official Peppol `base-example.xml`, Billing 3.0.21):
  * base-example.xml, 9 KB;
  * a synthetic 1,000-line invoice (~1.3 MB, totals recomputed, valid);
  * a ~3 MB invoice carrying a 2.3 MB embedded PDF attachment (valid).

1. Latency, one process: median milliseconds per document through `Validator.validate()` (size
   check, hardened lxml parse, SBDH/encoding handling, rule selection, XSD, Saxon parse, CEN +
   PEPPOL transforms, SVRL scan, source lines, report) and median of the *bare* work for the same
   layers: decode + `parse_xml` once + `transform_to_string` per Schematron layer with the same
   compiled executables. Both are timed alternately in the same loop, so machine load hits both.
   Target: engine / bare <= 1.15.
2. Throughput for base-example.xml: docs/s of the bare transforms in 1 and 2 processes, of
   `ValidationPool` with 1 and 2 workers (2 requests in flight per worker), and of the HTTP API
   (`POST /api/v1/validate` with a bearer token from `sendgw tenant create`, served by
   `gateway.app.create_app` with 1 and 2 validation workers, client: a raw-socket keep-alive
   load generator in a separate process), and of the same API with workers that run only the bare
   transforms (bench/floor_worker.py: the ceiling of the HTTP path, whatever the engine does).
   Target: pool / API with 2 workers >= 90% of the bare transforms in 2 processes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

EXAMPLE = "conformance/peppol-bis-billing-3/3.0.21/examples/base-example.xml"


def shared_dir() -> Path:
    return Path(os.environ.get("SENDGW_SHARED_DIR") or REPO.parent / "shared").resolve()


def find_cache(arg: str | None) -> Path:
    """The artefact cache: --cache, else the configured one, synced from the mirror if needed."""
    from gateway.config import load_settings
    from schematron.sync import sync, verify
    from validation.errors import ArtefactError

    if arg:
        return Path(arg)
    settings = load_settings(None)
    cache = settings.path(settings.artefacts.cache)
    try:
        verify(cache)
    except ArtefactError:
        mirror = settings.artefacts.mirror or str(shared_dir() / "artefacts")
        sync(cache, Path(mirror))
    return cache


def documents() -> dict[str, bytes]:
    from validation import samples

    base = (shared_dir() / EXAMPLE).read_bytes()
    return {
        "base-example.xml (9 KB)": base,
        "1,000-line invoice": samples.many_lines(base, 1000),
        "3 MB invoice (PDF attachment)": samples.with_attachment(base, 3 * 1024 * 1024),
    }


# -- 1. latency --------------------------------------------------------------------------------------
def latency(cache: Path, docs: dict[str, bytes], quick: bool) -> list[dict]:
    from validation.engine import Validator, saxon_processor

    v = Validator(cache)
    rs = v.catalogue.sets["peppol-billing-invoice@3.0.21"]
    executables = [v._stylesheet(layer) for layer in rs.schematron]  # the very same compiled stylesheets
    proc = saxon_processor()

    def bare(data: bytes) -> None:
        node = proc.parse_xml(xml_text=data.decode("utf-8"), encoding="UTF-8")
        for ex in executables:
            ex.transform_to_string(xdm_node=node)

    def engine(data: bytes) -> None:  # as the API and `--format json` call it
        v.validate(data, svrl=False)

    rows = []
    for name, data in docs.items():
        size = len(data)
        rounds = 15 if quick else (400 if size < 100_000 else 30 if size < 2_000_000 else 40)
        if "1,000-line" in name:
            rounds = 5 if quick else 11
        report = v.validate(data, svrl=False)
        assert report.valid, (name, report.to_dict()["errors"][:3])
        for _ in range(3 if size > 100_000 else 30):  # warm both paths
            bare(data)
            engine(data)
        tb, te = [], []
        for i in range(rounds):
            order = (bare, engine) if i % 2 == 0 else (engine, bare)
            for fn in order:
                t0 = time.perf_counter()
                fn(data)
                (tb if fn is bare else te).append(time.perf_counter() - t0)
        mb, me = statistics.median(tb) * 1000, statistics.median(te) * 1000
        rows.append({"document": name, "bytes": size, "runs": rounds, "bare_ms": mb, "engine_ms": me,
                     "ratio": me / mb})
        print(f"  {name:<32} {size:>9,} B  engine {me:9.2f} ms  bare {mb:9.2f} ms  ratio {me / mb:5.3f}"
              f"  (median of {rounds})", flush=True)
    return rows


# -- 2. throughput -----------------------------------------------------------------------------------
BARE_WORKER = r"""
import sys, time, json
sys.path.insert(0, {repo!r})
from pathlib import Path
from validation.engine import Validator, saxon_processor
v = Validator(Path({cache!r}))
rs = v.catalogue.sets["peppol-billing-invoice@3.0.21"]
exs = [v._stylesheet(l) for l in rs.schematron]
proc = saxon_processor()
data = Path({doc!r}).read_bytes()
def bare():
    node = proc.parse_xml(xml_text=data.decode("utf-8"), encoding="UTF-8")
    for ex in exs:
        ex.transform_to_string(xdm_node=node)
for _ in range(100):
    bare()
print("ready", flush=True)
for line in sys.stdin:
    if not line.startswith("go"):
        break
    seconds = float(line.split()[1])
    t0 = time.perf_counter(); c0 = time.process_time(); n = 0
    while time.perf_counter() - t0 < seconds:
        bare(); n += 1
    print(json.dumps({{"n": n, "s": time.perf_counter() - t0, "cpu": time.process_time() - c0}}), flush=True)
"""


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Measure:
    """docs/s (wall clock) and CPU milliseconds per document of everything serving the requests."""

    def __init__(self, rate: float, cpu_ms: float):
        self.rate = rate
        self.cpu_ms = cpu_ms


class BareProcesses:
    """`procs` processes running the bare transforms on command (compiled and warmed once)."""

    @classmethod
    async def start(cls, cache: Path, doc: Path, procs: int) -> "BareProcesses":
        self = cls()
        code = BARE_WORKER.format(repo=str(REPO), cache=str(cache), doc=str(doc))
        self.procs = [await asyncio.create_subprocess_exec(sys.executable, "-c", code, stdin=asyncio.subprocess.PIPE,
                                                           stdout=asyncio.subprocess.PIPE) for _ in range(procs)]
        for p in self.procs:
            assert (await p.stdout.readline()).strip() == b"ready"
        return self

    async def measure(self, seconds: float) -> Measure:
        for p in self.procs:
            p.stdin.write(f"go {seconds}\n".encode())
        await asyncio.gather(*(p.stdin.drain() for p in self.procs))
        rate, cpu, n = 0.0, 0.0, 0
        for p in self.procs:
            r = json.loads((await p.stdout.readline()).decode())
            rate += r["n"] / r["s"]
            cpu += r["cpu"]
            n += r["n"]
        return Measure(rate, cpu / n * 1000)

    async def stop(self) -> None:
        for p in self.procs:
            p.stdin.write(b"quit\n")
            await p.stdin.drain()
            await p.wait()


async def _drive(call, seconds: float, concurrency: int, worker_pids) -> Measure:
    """Run `concurrency` callers for `seconds`; CPU = this process + the worker processes."""
    for _ in range(20):
        await call()
    done = 0
    pids = list(worker_pids())
    c0 = time.process_time() + sum(proc_cpu(p) for p in pids)
    t0 = time.perf_counter()

    async def client():
        nonlocal done
        while time.perf_counter() - t0 < seconds:
            await call()
            done += 1

    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() + sum(proc_cpu(p) for p in pids) - c0
    return Measure(done / elapsed, cpu / done * 1000)


HTTP_CLIENT = r"""
# A minimal keep-alive HTTP/1.1 load client on raw sockets (one thread per connection), in the
# spirit of wrk: it shares the two cores with the server, so it must cost as little as possible
# (~0.1 ms CPU per request, against ~0.45 ms for an aiohttp client).
import json, socket, sys, threading, time
from urllib.parse import urlsplit
url, token, path, seconds, conc = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
u = urlsplit(url)
body = open(path, "rb").read()
request = (f"POST {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nAuthorization: Bearer {token}\r\n"
           f"Content-Type: application/xml\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
def call(sock, buf):
    sock.sendall(request)
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, "connection closed"
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(rest) < length:
        rest += sock.recv(65536)
    assert head.startswith(b"HTTP/1.1 200") and json.loads(rest[:length])["valid"] is True, head
    return rest[length:]
done = [0] * conc
warm, go = threading.Barrier(conc + 1), threading.Event()
def client(i):
    sock = socket.create_connection((u.hostname, u.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    for _ in range(10):
        buf = call(sock, buf)
    warm.wait()
    go.wait()
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        buf = call(sock, buf)
        done[i] += 1
threads = [threading.Thread(target=client, args=(i,)) for i in range(conc)]
for t in threads:
    t.start()
warm.wait()
print("go", flush=True)
sys.stdin.readline()
c0, t0 = time.process_time(), time.perf_counter()
go.set()
for t in threads:
    t.join()
n = sum(done)
print(json.dumps({"rate": n / (time.perf_counter() - t0), "n": n, "client_cpu": time.process_time() - c0}), flush=True)
"""


class ApiServer:
    """`gateway.app.create_app` on a free local port with a tenant token (None: no server yet)."""

    @classmethod
    async def start(cls, cache: Path, workers: int, floor: bool = False) -> "ApiServer | None":
        """`floor`: pool workers from bench/floor_worker.py (bare transforms only, see there)."""
        try:
            from gateway.app import create_app
            from gateway.config import load_settings
        except ImportError:
            return None
        from aiohttp import web

        self = cls()
        tmp = Path(tempfile.mkdtemp(prefix="sendgw-bench-"))
        env = dict(os.environ, SENDGW_DATABASE_URL=f"sqlite:///{tmp}/bench.db", SENDGW_ARTEFACTS_CACHE=str(cache))
        sendgw = [sys.executable, "-m", "gateway"]
        for argv in (["db", "upgrade"], ["tenant", "create", "bench"]):
            p = await asyncio.create_subprocess_exec(*sendgw, *argv, env=env, cwd=tmp, stdout=asyncio.subprocess.PIPE,
                                                     stderr=asyncio.subprocess.PIPE)
            out, err = await p.communicate()
            if p.returncode:
                raise RuntimeError(f"sendgw {' '.join(argv)} failed: {err.decode()}")
        self.token = out.decode().strip()
        settings = load_settings(None, env=env)
        settings.base_dir = tmp
        settings.validation.workers = workers
        settings.server.run_worker = False
        self.pool = None
        if floor:
            from validation.pool import ValidationPool

            class FloorPool(ValidationPool):
                worker_module = "bench.floor_worker"

            self.pool = FloorPool(cache, workers=workers)
            await self.pool.start()
        self.runner = web.AppRunner(create_app(settings, run_workers=False, validation=self.pool), access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/api/v1/validate"
        return self

    async def measure(self, doc: Path, seconds: float, concurrency: int) -> Measure:
        """Client in its own process; CPU = this (server) process + validation workers (the
        client's own CPU is reported separately in `client_cpu_ms`)."""
        from gateway.services import SERVICES

        pool = self.runner.app[SERVICES].validation
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", HTTP_CLIENT, self.url, self.token, str(doc), str(seconds), str(concurrency),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        assert (await proc.stdout.readline()).strip() == b"go"  # warmed up
        pids = list(pool.pids)
        c0 = time.process_time() + sum(proc_cpu(p) for p in pids)
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
        out = await proc.stdout.read()
        await proc.wait()
        cpu = time.process_time() + sum(proc_cpu(p) for p in pids) - c0
        r = json.loads(out.decode().strip().splitlines()[-1])
        m = Measure(r["rate"], cpu / r["n"] * 1000)
        m.client_cpu_ms = r["client_cpu"] / r["n"] * 1000
        return m

    async def stop(self) -> None:
        await self.runner.cleanup()
        if self.pool is not None:
            await self.pool.close()


async def throughput(cache: Path, doc: Path, seconds: float, rounds: int, pool: bool, api: bool) -> dict:
    """For 1 and 2 processes: bare, pool and API measured alternately `rounds` times; medians.

    Besides docs/s, every run records the CPU time spent per document by all processes doing the
    work (bare: the bare processes; pool: this process + its workers; API: the server process + its
    workers). On a shared machine wall-clock rates swing with other jobs; CPU per document is far
    steadier, and `cores / CPU per document` is what the same code would reach on idle cores.
    """
    from validation.pool import ValidationPool

    data = doc.read_bytes()
    result: dict = {}
    for n in (1, 2):
        bare = await BareProcesses.start(cache, doc, n)
        p = ValidationPool(cache, workers=n) if pool else None
        if p is not None:
            await p.start()
        server = await ApiServer.start(cache, n) if api else None
        floor = await ApiServer.start(cache, n, floor=True) if server is not None else None
        if api and server is None:
            print("  HTTP API: skipped (gateway.app not available)")
        runs: dict[str, list[Measure]] = {"bare": [], "pool": [], "api": [], "floor": []}

        async def call(p=p):
            r = await p.validate(data)
            assert r["valid"]

        try:
            for _ in range(rounds):
                runs["bare"].append(await bare.measure(seconds))
                if p is not None:
                    runs["pool"].append(await _drive(call, seconds, 2 * n, lambda p=p: p.pids))
                if server is not None:
                    runs["api"].append(await server.measure(doc, seconds, 2 * n))
                    runs["floor"].append(await floor.measure(doc, seconds, 2 * n))
        finally:
            await bare.stop()
            for s in (server, floor):
                if s is not None:
                    await s.stop()
            if p is not None:
                await p.close()
        for kind, ms in runs.items():
            if ms:
                result[f"{kind}_{n}"] = statistics.median(m.rate for m in ms)
                result[f"{kind}_{n}_cpu_ms"] = statistics.median(m.cpu_ms for m in ms)
                result[f"{kind}_{n}_runs"] = [round(m.rate, 1) for m in ms]
                if hasattr(ms[0], "client_cpu_ms"):
                    result[f"{kind}_{n}_client_cpu_ms"] = statistics.median(m.client_cpu_ms for m in ms)
                if kind != "bare":
                    # each run against the bare run just before it: slow load drifts cancel out
                    result[f"{kind}_{n}_share"] = statistics.median(
                        m.rate / b.rate for m, b in zip(ms, runs["bare"], strict=True))
                    result[f"{kind}_{n}_cpu_share"] = statistics.median(
                        b.cpu_ms / m.cpu_ms for m, b in zip(ms, runs["bare"], strict=True))
        bare_cpu = result[f"bare_{n}_cpu_ms"]
        line = f"  {n} process(es)/worker(s): bare {result[f'bare_{n}']:6.1f} docs/s ({bare_cpu:.2f} ms CPU/doc)"
        for kind, label in (("pool", "ValidationPool"), ("api", "HTTP API"), ("floor", "API, no engine")):
            if f"{kind}_{n}" in result:
                rate, cpu = result[f"{kind}_{n}"], result[f"{kind}_{n}_cpu_ms"]
                line += (f"\n      {label:<14} {rate:6.1f} docs/s"
                         f" ({result[f'{kind}_{n}_share']:.0%} of bare), {cpu:.2f} ms CPU/doc"
                         f" ({result[f'{kind}_{n}_cpu_share']:.0%} of bare's documents per CPU-second)")
        print(line + f"\n      [medians of {rounds} alternating {seconds:g} s runs; shares: median of per-run ratios]",
              flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", help="artefact cache (default: the configured one, synced if needed)")
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each throughput run")
    parser.add_argument("--rounds", type=int, default=5, help="alternating throughput runs per configuration")
    parser.add_argument("--quick", action="store_true", help="few repetitions (smoke test)")
    parser.add_argument("--skip-pool", action="store_true")
    parser.add_argument("--skip-api", action="store_true")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()

    cache = find_cache(args.cache)
    docs = documents()
    print(f"validation benchmark — {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")
    print("1. latency per document, one process (Peppol BIS Billing 3.0.21: XSD + CEN + PEPPOL)")
    result: dict = {"latency": latency(cache, docs, args.quick)}

    print("2. throughput, base-example.xml")
    tmpdoc = Path(tempfile.mkdtemp(prefix="sendgw-bench-")) / "base-example.xml"
    tmpdoc.write_bytes(docs["base-example.xml (9 KB)"])
    seconds = 1.5 if args.quick else args.seconds
    tp = asyncio.run(throughput(cache, tmpdoc, seconds, 1 if args.quick else args.rounds,
                                pool=not args.skip_pool, api=not args.skip_api))
    result["throughput"] = tp
    result["load_average_end"] = os.getloadavg()[0]

    print("targets:")
    worst = max(r["ratio"] for r in result["latency"])
    print(f"  engine / bare transforms <= 1.15: worst {worst:.3f} -> {'met' if worst <= 1.15 else 'NOT met'}")
    for key in ("pool_2", "api_2"):
        if key in tp:
            share = tp[f"{key}_share"]
            cpu_share = tp[f"{key}_cpu_share"]
            print(f"  {key.replace('_', ' with ')} workers >= 90% of bare in 2 processes: wall clock {share:.0%}"
                  f" -> {'met' if share >= 0.9 else 'NOT met'}; per CPU-second {cpu_share:.0%}"
                  f" -> {'met' if cpu_share >= 0.9 else 'NOT met'}")
    if "floor_2" in tp:
        print(f"  ceiling of the HTTP path: the API with workers that only run the bare transforms reached"
              f" {tp['floor_2_share']:.0%} of bare (per CPU-second {tp['floor_2_cpu_share']:.0%})")
    if "api_2_client_cpu_ms" in tp:
        print(f"  (the HTTP client, a separate process on the same cores, used {tp['api_2_client_cpu_ms']:.2f} ms CPU/doc)")
    print(f"load average at end {result['load_average_end']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
