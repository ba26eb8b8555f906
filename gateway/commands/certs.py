"""`sendgw certs`: install the pinned Peppol CA certificates; generate a development PKI."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from certs.trust import TrustError, sync_trust
from gateway.config import ConfigError, load_settings


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("certs", help="trust anchors and development certificates",
                            description="Manage Peppol CA trust anchors and development certificates.")
    csub = parser.add_subparsers(dest="certs_command", metavar="ACTION", required=True)
    p = csub.add_parser("sync", help="install the pinned Peppol CA certificates into the trust cache",
                        description="Copy every Peppol CA certificate pinned in certs/manifest.json from "
                                    "a folder (--from, or [trust] mirror) into the trust cache, checking "
                                    "each SHA-256 fingerprint. Exit 0 on success, 1 on a missing or "
                                    "tampered certificate, 2 on a configuration error (no source, "
                                    "a trust cache that cannot be written).")
    p.add_argument("--from", dest="source", metavar="DIR", help="folder holding the Peppol CA PEM files")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=run_sync)
    d = csub.add_parser("dev-pki", help="generate a development CA and AP key/certificate",
                        description="Create a development root CA and an AP key + certificate following the "
                                    "Peppol AP profile (CN = seat id) in DIR, and print the matching config "
                                    "lines. For development and tests only: never use in the Peppol network.")
    d.add_argument("directory", metavar="DIR", help="output folder (created if missing)")
    d.add_argument("--seat", required=True, help="AP seat id used as certificate CN, e.g. PNO000001")
    d.add_argument("--force", action="store_true", help="replace existing files")
    d.set_defaults(func=run_dev_pki)


def run_sync(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"sendgw certs sync: configuration: {exc}", file=sys.stderr)
        return 2
    source = args.source or settings.trust.mirror
    if not source:
        print("sendgw certs sync: no source folder: pass --from DIR or set [trust] mirror", file=sys.stderr)
        return 2
    target = settings.path(settings.trust.cache)
    try:
        installed = sync_trust(Path(source), target)
    except TrustError as exc:
        print(f"sendgw certs sync: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # the trust cache cannot be created or written: [trust] cache is wrong
        print(f"sendgw certs sync: cannot install into [trust] cache {target}: "
              f"{exc.strerror or exc}: {exc.filename}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(f"installed {len(installed)} Peppol CA certificates into {target}")
    return 0


SEAT_RE = r"^P[A-Z]{2}[0-9]{6}$"


def run_dev_pki(args: argparse.Namespace) -> int:
    import datetime as dt
    import re

    from certs.devpki import write_dev_pki

    if not re.match(SEAT_RE, args.seat):
        print(f"sendgw certs dev-pki: seat id {args.seat!r} does not look like a Peppol seat id "
              "(P + 2 letters + 6 digits)", file=sys.stderr)
        return 2
    directory = Path(args.directory).resolve()
    try:
        paths = write_dev_pki(directory, args.seat, now=dt.datetime.now(dt.timezone.utc), overwrite=args.force)
    except (FileExistsError, OSError) as exc:
        print(f"sendgw certs dev-pki: {exc}", file=sys.stderr)
        return 1
    print(f"# development PKI written to {directory} (not valid in the Peppol network)")
    print("[ap]")
    print(f'seat_id = "{args.seat}"')
    print(f'key = "{paths["ap_key"]}"')
    print(f'certificate = "{paths["ap_cert"]}"')
    print()
    print("[trust]")
    print(f'ap_anchors = ["{paths["ca_cert"]}"]')
    return 0
