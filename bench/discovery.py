"""Discovery benchmark: cached lookups per second and cold lookup latency against local servers.

Starts a real local DNS server (NAPTR over UDP) and a real local SMP (aiohttp, HTTP) signing its
responses with a generated test SMP CA, then measures with `Discovery.lookup()`:

* cold: each lookup for a new participant (DNS query + SMP GET + signature and trust checks);
* cached: repeated lookups for warm participants (target >= 20,000 lookups/s in one process).

    .venv/bin/python bench/discovery.py [--cold 200] [--seconds 3] [--participants 100]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from certs.trust import TrustStore
from gateway.discovery.lookup import Discovery, DiscoveryConfig
from gateway.discovery.smp import service_metadata_url
from gateway.identifiers import ParticipantId
from tests.gateway.discovery.conftest import (
    INVOICE,
    ZONE,
    LocalDns,
    LocalSmp,
    issue,
    serve,
    service_metadata_xml,
    sign,
)


async def main(args: argparse.Namespace) -> None:
    root = issue("BENCH ROOT CA", None, ca=True)
    smp_ca, ap_ca = issue("BENCH SMP CA", root, ca=True), issue("BENCH AP CA", root, ca=True)
    smp_cert, ap_cert = issue("PNO000901", smp_ca, ca=False), issue("PNO000123", ap_ca, ca=False)

    dns_server, smp_server = LocalDns(), LocalSmp()
    transport, runner = await serve(dns_server, smp_server)

    total = args.cold + args.participants
    participants = [ParticipantId.parse(f"9915:bench-{i}") for i in range(total)]
    body_template = None
    for p in participants:
        dns_server.register(p, smp_server.base)
        xml = service_metadata_xml(p, INVOICE, endpoint_url="https://ap.example.test/as4", cert_der=ap_cert.der)
        if body_template is None:
            body_template = xml
        smp_server.put(service_metadata_url(smp_server.base, p, INVOICE), sign(xml, smp_cert))

    config = DiscoveryConfig(zone=ZONE, nameservers=(f"127.0.0.1:{dns_server.port}",), allow_http=True)
    discovery = Discovery(config, TrustStore.from_pem(root.pem + ap_ca.pem), TrustStore.from_pem(root.pem + smp_ca.pem))
    try:
        cold = []
        for p in participants[: args.cold]:
            t0 = time.perf_counter()
            await discovery.lookup(p, INVOICE)
            cold.append((time.perf_counter() - t0) * 1000)
        warm = participants[args.cold:]
        for p in warm:
            await discovery.lookup(p, INVOICE)
        n, t0 = 0, time.perf_counter()
        deadline = t0 + args.seconds
        while time.perf_counter() < deadline:
            for p in warm:
                await discovery.lookup(p, INVOICE)
            n += len(warm)
        elapsed = time.perf_counter() - t0
    finally:
        await discovery.close()
        transport.close()
        await runner.cleanup()

    cold.sort()
    print(f"python {sys.version.split()[0]}, {len(body_template or b'')}-byte ServiceMetadata before signing, RSA-2048/SHA-256")
    print(f"cold lookups:   n={len(cold)} mean={statistics.mean(cold):.2f} ms p50={cold[len(cold) // 2]:.2f} ms "
          f"p95={cold[int(len(cold) * 0.95) - 1]:.2f} ms max={cold[-1]:.2f} ms")
    rate = n / elapsed
    print(f"cached lookups: {n} in {elapsed:.2f} s = {rate:,.0f} lookups/s over {len(warm)} participants "
          f"(target >= 20,000/s: {'met' if rate >= 20000 else 'NOT met'})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cold", type=int, default=200)
    parser.add_argument("--participants", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=3.0)
    asyncio.run(main(parser.parse_args()))
