"""AS4 core benchmark: build (SBDH + gzip + sign + encrypt + MIME) and receive (MIME + verify +
decrypt + gunzip + SBDH checks + signed receipt) for 10 KB, 1 MB and 100 MB invoices, side by side
with the PyPI `as4` library on the same payloads, plus peak memory of a 100 MB receive measured in
a fresh subprocess (RSS high-water mark above the process baseline).

    .venv/bin/python bench/as4.py [--runs-small 30] [--skip-as4-large]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# this file is named as4.py: keep its folder off sys.path so `import as4` finds the PyPI library
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))

from certs.devpki import make_ap_cert, make_ca  # noqa: E402
from certs.trust import TrustStore  # noqa: E402
from gateway.as4 import build_receipt, build_user_message, receive_user_message  # noqa: E402
from gateway.sbdh import build_sbd  # noqa: E402
from bench.benchlib import C1, C4, DOC, PROC  # noqa: E402

NOW = dt.datetime.now(dt.timezone.utc)


def invoice(size: int) -> bytes:
    """A UBL-like invoice of about `size` bytes: many lines with varying amounts and text."""
    head = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Invoice xmlns="urn:oasis:names:specification:ubl:schema:'
            b'xsd:Invoice-2" xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2" '
            b'xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">'
            b'<cbc:CustomizationID>urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0'
            b'</cbc:CustomizationID><cbc:ID>INV-1</cbc:ID>')
    parts = [head]
    n = len(head)
    i = 0
    rnd = os.urandom(max(16, size // 8))
    while n < size - 20:
        frag = rnd[(i * 6) % (len(rnd) - 6):(i * 6) % (len(rnd) - 6) + 6].hex().encode()
        line = (b"<cac:InvoiceLine><cbc:ID>%d</cbc:ID><cbc:InvoicedQuantity unitCode=\"EA\">%d</cbc:InvoicedQuantity>"
                b"<cbc:LineExtensionAmount currencyID=\"NOK\">%d.%02d</cbc:LineExtensionAmount><cac:Item>"
                b"<cbc:Name>Article %s</cbc:Name></cac:Item></cac:InvoiceLine>\n"
                % (i, i % 17 + 1, (i * 7919) % 100000, i % 100, frag))
        parts.append(line)
        n += len(line)
        i += 1
    parts.append(b"</Invoice>")
    return b"".join(parts)


def median_ms(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


class Env:
    def __init__(self):
        self.ca = make_ca(now=NOW)
        self.s = make_ap_cert("PNO000001", self.ca, now=NOW)
        self.r = make_ap_cert("PNO000002", self.ca, now=NOW)
        self.trust = TrustStore.from_pem(self.ca.cert_pem())
        self.tmp = Path(tempfile.mkdtemp(prefix="as4bench-"))


def ours_build(env: Env, doc: bytes, n: int):
    sbd = build_sbd(doc, sender=C1, receiver=C4, document_id=DOC, process_id=PROC, country_c1="NO",
                    creation_date_time=NOW)
    return build_user_message(sbd, message_id=f"bench-{n}@sendgw", timestamp=NOW, from_party="PNO000001",
                              to_party="PNO000002", service=PROC, action="busdox-docid-qns::" + DOC,
                              original_sender=C1, final_recipient=C4, signing_key=env.s.key,
                              signing_cert=env.s.cert, receiver_cert=env.r.cert, tmp_dir=env.tmp)


def ours_receive(env: Env, body, content_type: str):
    rec = receive_user_message(body, content_type, our_key=env.r.key, our_cert=env.r.cert, trust=env.trust,
                               now=NOW, tmp_dir=env.tmp)
    receipt = build_receipt(rec.message_id, rec.reference_xml, message_id="r@sendgw", timestamp=NOW,
                            signing_key=env.r.key, signing_cert=env.r.cert)
    rec.close()
    return receipt


def as4_setup(env: Env):
    from as4 import AS4LocalPrivateKey
    from as4.peppol import (BusdoxDocidQnsDocumentIdentifier, PeppolAS4MessageBuilderArgs,
                            create_peppol_external_party, create_peppol_internal_party, peppol_security_policy)
    lp = create_peppol_internal_party("PNO000001", env.s.cert, AS4LocalPrivateKey(env.s.key))
    rp = create_peppol_external_party("PNO000002", env.r.cert)
    rl = create_peppol_internal_party("PNO000002", env.r.cert, AS4LocalPrivateKey(env.r.key))
    args = PeppolAS4MessageBuilderArgs(
        sender=C1, recipient=C4, document_type_identifier=BusdoxDocidQnsDocumentIdentifier.from_identifier_value(DOC),
        document_identification_instance_identifier="3f1c2b9e-1111-4222-8333-444455556666",
        process_identifier=PROC, c1_country_id="NO")
    return lp, rp, rl, args, peppol_security_policy(env.ca.cert)


def as4_build(ctx, doc: bytes):
    from as4.peppol import PeppolSendingExchange
    from as4.profiles.peppol.profile import PeppolAS4Profile
    lp, rp, _, args, _ = ctx
    ex = PeppolSendingExchange(profile=PeppolAS4Profile, local_party=lp, remote_party=rp)
    return ex.build(doc, args)


def as4_receive(ctx, headers, body):
    from as4.peppol import parse_peppol_message
    _, _, rl, _, policy = ctx
    ex = parse_peppol_message(headers, body, rl, security_policy=policy)
    assert ex.message.parse_error is None, ex.message.parse_error
    return ex.build_signal()


def measure_memory(env_dir: Path, body_path: Path, content_type: str) -> None:
    """Child process: load keys, note baseline RSS, receive from the file, print peak above baseline."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    key = serialization.load_pem_private_key((env_dir / "r.key.pem").read_bytes(), None)
    cert = x509.load_pem_x509_certificate((env_dir / "r.cert.pem").read_bytes())
    trust = TrustStore.from_pem((env_dir / "ca.cert.pem").read_bytes())
    import gateway.as4.usermessage  # noqa: F401,E501  (imported before the baseline is taken)

    def status_kb(field: str) -> int:
        # VmHWM is this process image's RSS high-water mark; ru_maxrss would include the
        # parent's RSS inherited through fork before exec.
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return 0

    base = status_kb("VmHWM")
    t = time.perf_counter()
    rec = receive_user_message(body_path, content_type, our_key=key, our_cert=cert, trust=trust, now=NOW,
                               tmp_dir=env_dir)
    build_receipt(rec.message_id, rec.reference_xml, message_id="r@x", timestamp=NOW, signing_key=key,
                  signing_cert=cert)
    elapsed = (time.perf_counter() - t) * 1000
    size = rec.payload.size
    rec.close()
    peak = status_kb("VmHWM")
    print(f"{base} {peak} {elapsed:.0f} {size}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs-small", type=int, default=30)
    ap.add_argument("--runs-medium", type=int, default=7)
    ap.add_argument("--skip-as4-large", action="store_true", help="do not run the as4 library on 100 MB")
    ap.add_argument("--measure-memory", nargs=3, metavar=("ENVDIR", "BODY", "CTYPE"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.measure_memory:
        measure_memory(Path(a.measure_memory[0]), Path(a.measure_memory[1]), a.measure_memory[2])
        return 0
    env = Env()
    try:
        ctx = as4_setup(env)
    except ImportError:
        ctx = None
    rows = []
    for label, size, runs in (("10 KB", 10_000, a.runs_small), ("1 MB", 1_000_000, a.runs_medium),
                              ("100 MB", 100_000_000, 1)):
        doc = invoice(size)
        counter = iter(range(10**6))
        ob = median_ms(lambda: ours_build(env, doc, next(counter)).close(), runs)
        out = ours_build(env, doc, 0)
        if size >= 50_000_000:
            body_path = env.tmp / "large.mime"
            out.save_to(body_path)
            orc = median_ms(lambda: ours_receive(env, body_path, out.content_type), runs)
        else:
            raw = out.read_bytes()
            orc = median_ms(lambda: ours_receive(env, raw, out.content_type), runs)
        ab = arc = None
        if ctx is not None and not (size >= 50_000_000 and a.skip_as4_large):
            ab = median_ms(lambda: as4_build(ctx, doc), runs)
            headers, body = as4_build(ctx, doc)
            arc = median_ms(lambda: as4_receive(ctx, headers, body), runs)
            del body
        rows.append((label, ob, ab, orc, arc))
        print(f"{label:>7}: build ours {ob:9.1f} ms  as4 {fmt(ab)}  | receive ours {orc:9.1f} ms  as4 {fmt(arc)}"
              f"  | speed-up build {ratio(ab, ob)} receive {ratio(arc, orc)}", flush=True)
    # peak memory of a 100 MB receive, in a fresh process
    (env.tmp / "r.key.pem").write_bytes(env.r.key_pem())
    (env.tmp / "r.cert.pem").write_bytes(env.r.cert_pem())
    (env.tmp / "ca.cert.pem").write_bytes(env.ca.cert_pem())
    res = subprocess.run([sys.executable, __file__, "--measure-memory", str(env.tmp), str(env.tmp / "large.mime"),
                          out.content_type], capture_output=True, text=True, check=True)
    base, peak, ms, size = map(int, res.stdout.split())
    print(f"100 MB receive in a fresh process: {ms} ms, payload {size / 1e6:.0f} MB decompressed, "
          f"RSS baseline {base / 1024:.0f} MB, peak {peak / 1024:.0f} MB, "
          f"peak above baseline {(peak - base) / 1024:.0f} MB")
    out.close()
    for p in env.tmp.iterdir():
        p.unlink()
    env.tmp.rmdir()
    return 0


def fmt(v):
    return f"{v:9.1f} ms" if v is not None else "      n/a   "


def ratio(a, b):
    return f"{a / b:5.1f}x" if a and b else "  n/a"


if __name__ == "__main__":
    sys.exit(main())
