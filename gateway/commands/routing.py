"""`sendgw routing`: a tenant's channel priority lists, channel settings and costs."""

from __future__ import annotations

import argparse
import json
import sys

from gateway.commands._common import CommandError, current_engine, guarded
from gateway.routing import RoutingConfig, RoutingConfigError, load_routing, merge_secrets, save_routing
from gateway.store.tenants import TenantNotFound, get_tenant_by_name


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("routing", help="B2C channel routing per tenant",
                            description="Show or set a tenant's channel routing (priority lists, channel "
                                        "settings, costs); the same document as GET/PUT /api/v1/routing.")
    rsub = parser.add_subparsers(dest="routing_command", metavar="ACTION", required=True)
    p = rsub.add_parser("show", help="print the routing as JSON (secrets masked)",
                        description="Print the tenant's routing configuration as JSON, secrets masked.")
    p.add_argument("--tenant", required=True)
    p.add_argument("--reveal", action="store_true", help="print secrets too")
    p.set_defaults(func=guarded(run_show))
    p = rsub.add_parser("set", help="replace the routing from a JSON file (or - for stdin)",
                        description="Replace the tenant's routing with a JSON document (validated by every "
                                    "channel adapter). Masked secrets (********) keep their stored values. "
                                    "Exit 1 when the document is invalid.")
    p.add_argument("--tenant", required=True)
    p.add_argument("file", help="JSON file, or - for standard input")
    p.set_defaults(func=guarded(run_set))


def _tenant(engine, name: str):
    with engine.connect() as conn:
        try:
            return get_tenant_by_name(conn, name)
        except TenantNotFound as exc:
            raise CommandError(str(exc), 1) from exc


def _load(engine, tenant_id: str) -> RoutingConfig:
    with engine.connect() as conn:
        return load_routing(conn, tenant_id)


def run_show(args: argparse.Namespace) -> int:
    engine = current_engine(args)
    config = _load(engine, _tenant(engine, args.tenant).id)
    print(json.dumps(config.to_dict(mask_secrets=not args.reveal), indent=2, ensure_ascii=False))
    return 0


def run_set(args: argparse.Namespace) -> int:
    engine = current_engine(args)
    tenant = _tenant(engine, args.tenant)
    try:
        raw = sys.stdin.read() if args.file == "-" else open(args.file, encoding="utf-8").read()
        data = json.loads(raw)
    except OSError as exc:
        raise CommandError(f"cannot read {args.file}: {exc.strerror}") from exc
    except ValueError as exc:
        raise CommandError(f"{args.file} is not JSON: {exc}", 1) from exc
    try:
        config = RoutingConfig.parse(merge_secrets(data, _load(engine, tenant.id)) if isinstance(data, dict) else data)
    except RoutingConfigError as exc:
        raise CommandError(f"invalid routing: {exc}", 1) from exc
    save_routing(engine, tenant.id, config)
    print(json.dumps(config.to_dict(mask_secrets=True), indent=2, ensure_ascii=False))
    return 0
