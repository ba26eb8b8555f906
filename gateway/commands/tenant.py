"""`sendgw tenant`: issuers that use the API, and their bearer tokens."""

from __future__ import annotations

import argparse

from gateway.commands._common import CommandError, current_engine, guarded
from gateway.store.tenants import TenantExists, TenantNotFound, create_tenant, create_token, list_tenants, revoke_tokens


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("tenant", help="manage tenants (issuers) and their API tokens",
                            description="Manage tenants (issuers) and their API bearer tokens.")
    tsub = parser.add_subparsers(dest="tenant_command", metavar="ACTION", required=True)
    p = tsub.add_parser("create", help="create a tenant and print its API token once",
                        description="Create a tenant and print its bearer token. The token is stored "
                                    "only as a hash: this is the only time it is shown.")
    p.add_argument("name")
    p.set_defaults(func=guarded(run_create))
    p = tsub.add_parser("token", help="issue an additional token for a tenant",
                        description="Issue another bearer token for an existing tenant (rotation).")
    p.add_argument("name")
    p.add_argument("--label", help="a note to remember what the token is for")
    p.set_defaults(func=guarded(run_token))
    p = tsub.add_parser("revoke", help="revoke every token of a tenant",
                        description="Revoke all bearer tokens of a tenant (takes effect within 10 s).")
    p.add_argument("name")
    p.set_defaults(func=guarded(run_revoke))
    p = tsub.add_parser("list", help="list tenants", description="List the tenants.")
    p.set_defaults(func=guarded(run_list))


def run_create(args: argparse.Namespace) -> int:
    try:
        tenant, token = create_tenant(current_engine(args), args.name)
    except (TenantExists, ValueError) as exc:
        raise CommandError(str(exc), 1) from exc
    print(token)
    return 0


def run_token(args: argparse.Namespace) -> int:
    try:
        print(create_token(current_engine(args), args.name, args.label))
    except TenantNotFound as exc:
        raise CommandError(str(exc), 1) from exc
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    try:
        n = revoke_tokens(current_engine(args), args.name)
    except TenantNotFound as exc:
        raise CommandError(str(exc), 1) from exc
    print(f"revoked {n} token(s)")
    return 0


def run_list(args: argparse.Namespace) -> int:
    for t in list_tenants(current_engine(args)):
        print(f"{t.name}\t{t.id}\t{t.created_at:%Y-%m-%d %H:%M}")
    return 0
