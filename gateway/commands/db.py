"""`sendgw db`: schema migrations."""

from __future__ import annotations

import argparse

from gateway.commands._common import connected, engine_from, guarded, settings_from
from gateway.store.migrate import current_revision, head_revision, upgrade


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("db", help="database schema migrations",
                            description="Manage the database schema (Alembic migrations).")
    dsub = parser.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    p = dsub.add_parser("upgrade", help="migrate the database to the newest schema",
                        description="Apply every pending migration to the configured database.")
    p.set_defaults(func=guarded(run_upgrade))
    p = dsub.add_parser("status", help="show the schema revision",
                        description="Print the database's schema revision and the one this code needs; "
                                    "exit 0 when current, 1 when an upgrade is needed.")
    p.set_defaults(func=guarded(run_status))


def run_upgrade(args: argparse.Namespace) -> int:
    engine = connected(engine_from(settings_from(args)))
    before = current_revision(engine)
    after = upgrade(engine)
    print(f"database schema: {before or 'empty'} -> {after}" if before != after
          else f"database schema already at {after}")
    return 0


def run_status(args: argparse.Namespace) -> int:
    engine = connected(engine_from(settings_from(args)))
    current, head = current_revision(engine), head_revision()
    print(f"current: {current or 'empty'}\nrequired: {head}")
    return 0 if current == head else 1
