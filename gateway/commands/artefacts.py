"""`sendgw artefacts`: install, verify and list the pinned official validation artefacts."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from gateway.config import ConfigError, load_settings


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "artefacts", help="official validation artefacts (sync, verify, list)",
        description="Manage the official validation artefacts pinned in schematron/manifest.json "
                    "(UBL XSDs, CEN / Peppol / EHF compiled Schematron) in the local cache "
                    "([artefacts] cache, default var/artefacts).")
    asub = parser.add_subparsers(dest="artefacts_command", metavar="ACTION", required=True)

    p = asub.add_parser(
        "sync", help="install the pinned artefacts into the cache, verifying every SHA-256",
        description="Install every pinned artefact into the cache. The source is --from DIR, else "
                    "[artefacts] mirror (SENDGW_ARTEFACTS_MIRROR), else the official source addresses "
                    "over HTTPS. Every file is checked against its pinned SHA-256 before anything is "
                    "installed. Exit 0 on success, 1 on a missing or tampered file (named on stderr), "
                    "2 on a configuration error.")
    p.add_argument("--from", dest="source", metavar="DIR", help="a mirror folder laid out like the manifest paths")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=run_sync)

    p = asub.add_parser(
        "verify", help="check the cache against the pinned hashes",
        description="Check that the cache holds every pinned artefact with its pinned SHA-256. "
                    "Exit 0 when it does, 1 naming the first missing or tampered file.")
    p.set_defaults(func=run_verify)

    p = asub.add_parser(
        "list", help="list the rule sets with version, valid-from date and status",
        description="List every validation rule set: id, version, the date from which it applies and "
                    "its status on that day (active = the release in force for its document type, "
                    "superseded = an older release kept for re-validation, upcoming = valid-from ahead).")
    p.add_argument("--at", metavar="YYYY-MM-DD", help="status as of this date (default: today)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run_list)


def _settings(args):
    try:
        return load_settings(args.config)
    except ConfigError as exc:
        print(f"sendgw artefacts: configuration: {exc}", file=sys.stderr)
        return None


def run_sync(args: argparse.Namespace) -> int:
    from schematron.sync import sync
    from validation.errors import ArtefactError

    settings = _settings(args)
    if settings is None:
        return 2
    source = args.source or settings.artefacts.mirror or None
    cache = settings.path(settings.artefacts.cache)
    progress = None if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    try:
        result = sync(cache, Path(source) if source else None, progress=progress)
    except ArtefactError as exc:
        print(f"sendgw artefacts sync: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # the cache cannot be created or written: [artefacts] cache is wrong
        print(f"sendgw artefacts sync: cannot install into [artefacts] cache {cache}: "
              f"{exc.strerror or exc}: {exc.filename}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(f"{result.total} artefacts in {cache} from {result.source}: "
              f"{len(result.installed)} installed, {len(result.unchanged)} already present")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from schematron.sync import verify
    from validation.errors import ArtefactError

    settings = _settings(args)
    if settings is None:
        return 2
    cache = settings.path(settings.artefacts.cache)
    try:
        n = verify(cache)
    except ArtefactError as exc:
        print(f"sendgw artefacts verify: {exc}", file=sys.stderr)
        return 1
    print(f"{n} artefacts in {cache} match their pinned SHA-256")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from validation.artefacts import Catalogue
    from validation.errors import ArtefactError

    settings = _settings(args)
    if settings is None:
        return 2
    try:
        on = dt.date.fromisoformat(args.at) if args.at else dt.date.today()
    except ValueError:
        print(f"sendgw artefacts list: not a date (YYYY-MM-DD): {args.at!r}", file=sys.stderr)
        return 2
    try:
        cat = Catalogue(settings.path(settings.artefacts.cache))
    except ArtefactError as exc:
        print(f"sendgw artefacts list: {exc}", file=sys.stderr)
        return 2
    rows = []
    for rs in sorted(cat.sets.values(), key=lambda r: (r.family, r.valid_from)):
        rows.append({
            "id": rs.id, "version": rs.version, "valid_from": rs.valid_from.isoformat(),
            "status": cat.status_on(rs, on), "title": rs.title,
            "layers": [f"{lay.artefact} {lay.version}" for lay in rs.layers],
        })
    if args.json:
        print(json.dumps({"date": on.isoformat(), "rule_sets": rows}, indent=2))
        return 0
    width = max(len(r["id"]) for r in rows)
    print(f"{'RULE SET':<{width}}  {'VERSION':<10}  {'VALID FROM':<10}  {'STATUS':<10}  TITLE")
    for r in rows:
        print(f"{r['id']:<{width}}  {r['version']:<10}  {r['valid_from']:<10}  {r['status']:<10}  {r['title']}")
    print(f"\n{len(rows)} rule sets; status as of {on.isoformat()}. Cache: {cat.cache_dir}")
    return 0
