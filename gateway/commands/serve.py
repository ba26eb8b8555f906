"""`sendgw serve`: run the gateway (HTTP API, AS4 endpoint, workers)."""

from __future__ import annotations

import argparse
import logging
import ssl

from aiohttp import web
from sqlalchemy.engine import make_url

from certs.trust import TrustError
from gateway.config import ConfigError
from gateway.identity import IdentityError
from gateway.commands._common import CommandError, engine_from, guarded, settings_from
from gateway.store.migrate import SchemaOutOfDate, check_schema, current_revision, upgrade


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the gateway server",
                       description="Run the gateway: HTTP API, AS4 endpoint and background workers. "
                                   "With no configuration it listens on 127.0.0.1:8080 with SQLite "
                                   "under ./var/. A new embedded SQLite database is created on first "
                                   "start; any other out-of-date schema stops start-up (run "
                                   "`sendgw db upgrade`).")
    p.add_argument("--host", help="override [server] host")
    p.add_argument("--port", type=int, help="override [server] port")
    p.set_defaults(func=guarded(run))


def prepare_database(settings, engine) -> None:
    """Create a fresh embedded database; refuse any other schema that is not current."""
    if make_url(engine.url).get_backend_name() == "sqlite" and current_revision(engine) is None:
        upgrade(engine)
    try:
        check_schema(engine)
    except SchemaOutOfDate as exc:
        raise CommandError(f"refusing to start: {exc}", 1) from exc


def run(args: argparse.Namespace) -> int:
    from gateway.app import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings_from(args)
    if args.host:
        settings.server.host = args.host
    if args.port:
        settings.server.port = args.port
    engine = engine_from(settings)
    prepare_database(settings, engine)
    ssl_context = None
    if settings.server.tls_certificate or settings.server.tls_key:
        if not (settings.server.tls_certificate and settings.server.tls_key):
            raise CommandError("[server] tls_certificate and tls_key must be set together")
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.minimum_version = ssl.TLSVersion.TLSv1_2
        ssl_context.load_cert_chain(settings.path(settings.server.tls_certificate),
                                    settings.path(settings.server.tls_key))
    try:
        app = create_app(settings, engine=engine)
    except (IdentityError, ConfigError, TrustError) as exc:
        raise CommandError(f"refusing to start: {exc}", 1) from exc
    web.run_app(app, host=settings.server.host, port=settings.server.port, ssl_context=ssl_context,
                access_log=logging.getLogger("sendgw.access"), print=None)
    return 0
