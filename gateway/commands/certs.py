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
    csub = parser.add_subparsers(dest="certs_command", metavar="ACTION")
    p = csub.add_parser("sync", help="install the pinned Peppol CA certificates into the trust cache",
                        description="Copy every Peppol CA certificate pinned in certs/manifest.json from "
                                    "a folder (--from, or [trust] mirror) into the trust cache, checking "
                                    "each SHA-256 fingerprint. Exit 0 on success, 1 on a missing or "
                                    "tampered certificate.")
    p.add_argument("--from", dest="source", metavar="DIR", help="folder holding the Peppol CA PEM files")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=run_sync)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def run_sync(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"sendgw: {exc}", file=sys.stderr)
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
    if not args.quiet:
        print(f"installed {len(installed)} Peppol CA certificates into {target}")
    return 0
