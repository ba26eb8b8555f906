"""`sendgw serve`: run the gateway (HTTP API, AS4 endpoint, workers), in one or several processes."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import ssl

from aiohttp import web
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from certs.trust import TrustError
from gateway.config import ConfigError
from gateway.identity import IdentityError
from gateway.commands._common import CommandError, engine_from, guarded, settings_from
from gateway.store.migrate import SchemaOutOfDate, check_schema, current_revision, upgrade

log = logging.getLogger("sendgw")
LOG_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"
# the log line already carries the time; %Tf = seconds spent on the request
ACCESS_LOG_FORMAT = '%a "%r" %s %b %Tf "%{User-Agent}i"'
EXIT_CANNOT_START = 78  # a server process that cannot start (EX_CONFIG): the supervisor stops


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the gateway server",
                       description="Run the gateway: HTTP API, AS4 endpoint and background workers. "
                                   "With no configuration it listens on 127.0.0.1:8080 with SQLite "
                                   "under ./var/. A new embedded SQLite database is created on first "
                                   "start; any other out-of-date schema stops start-up (run "
                                   "`sendgw db upgrade`). With --processes N (or [server] processes) "
                                   "N server processes share the port and a supervising parent "
                                   "restarts any that die; SIGTERM/SIGINT stop them gracefully.")
    p.add_argument("--host", help="override [server] host")
    p.add_argument("--port", type=_port, help="override [server] port (0-65535; 0 = any free port)")
    p.add_argument("--processes", type=int, metavar="N",
                   help="override [server] processes: server processes sharing the port (0 = one per CPU core)")
    p.set_defaults(func=guarded(run))


def _port(value: str) -> int:
    """--port is checked like [server] port: a usage error, not a failure to listen later."""
    try:
        port = int(value)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number (0-65535): {value!r}")
    return port


def prepare_database(settings, engine) -> None:
    """Create a fresh embedded database; refuse any other schema that is not current."""
    try:
        if make_url(engine.url).get_backend_name() == "sqlite" and current_revision(engine) is None:
            upgrade(engine)
        check_schema(engine)
    except SchemaOutOfDate as exc:
        raise CommandError(f"refusing to start: {exc}", 1) from exc
    except OperationalError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        raise CommandError(f"refusing to start: database {engine.url.render_as_string()} unreachable: {reason}",
                           1) from exc


def prepare_folders(settings) -> None:
    """Create the payload and AS4 spill folders now: one that cannot be made or written would
    otherwise fail each received or submitted document, long after a clean start."""
    folders = [("[as4] tmp_dir", settings.as4.tmp_dir)]
    if settings.storage.payloads == "file":
        folders.append(("[storage] directory", settings.storage.directory))
    for name, value in folders:
        folder = settings.path(value)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CommandError(f"refusing to start: {name} {folder}: {exc.strerror or exc}", 1) from exc
        if not os.access(folder, os.W_OK | os.X_OK):
            raise CommandError(f"refusing to start: {name} {folder}: not writable", 1)


def tls_context(settings) -> ssl.SSLContext | None:
    """The server's TLS context from [server] tls_certificate/tls_key, or None for plain HTTP."""
    cert, key = settings.server.tls_certificate, settings.server.tls_key
    if not (cert or key):
        return None
    if not (cert and key):
        missing = "tls_key" if cert else "tls_certificate"
        raise CommandError(f"refusing to start: [server] tls_certificate and tls_key must be set together "
                           f"({missing} is empty)", 1)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(settings.path(cert), settings.path(key))
    except FileNotFoundError as exc:
        raise CommandError(f"refusing to start: [server] TLS file not found: {exc.filename}", 1) from exc
    except (OSError, ssl.SSLError) as exc:
        raise CommandError(f"refusing to start: [server] cannot load tls_certificate {settings.path(cert)} "
                           f"with tls_key {settings.path(key)}: {exc}", 1) from exc
    return context


def process_count(settings) -> int:
    n = settings.server.processes
    if n < 0:
        raise CommandError(f"[server] processes must be 0 (one per CPU core) or more, not {n}")
    return n or os.cpu_count() or 1


def _build_app(settings, engine):
    from gateway.app import create_app

    try:
        return create_app(settings, engine=engine)
    except (IdentityError, ConfigError, TrustError, ValueError) as exc:
        raise CommandError(f"refusing to start: {exc}", 1) from exc


def _reserve_port(host: str, port: int) -> socket.socket:
    """Bind (without listening) with SO_REUSEPORT: proves the address is usable before forking,
    resolves port 0 to one port shared by all children, and keeps the port ours across restarts."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                                          flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise CommandError(f"refusing to start: cannot listen on {host}:{port}: {exc}", 1) from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        raise CommandError(f"refusing to start: cannot listen on {host}:{port}: {exc.strerror or exc}", 1) from exc
    return sock


def _child_settings(settings, processes: int):
    """Each child's validation pool gets its share of the cores unless [validation] workers is set."""
    if settings.validation.workers == 0:
        settings.validation.workers = max(1, (os.cpu_count() or 1) // processes)
    return settings


def _run_app(app, settings, ssl_context, **kw) -> None:
    """Serve until stopped; start-up failures of the app's services become one clear line."""
    from validation.errors import ArtefactError, ValidationEngineError

    try:
        web.run_app(app, host=settings.server.host, port=settings.server.port, ssl_context=ssl_context,
                    access_log=logging.getLogger("sendgw.access"), access_log_format=ACCESS_LOG_FORMAT,
                    print=None, **kw)
    except (ArtefactError, ValidationEngineError) as exc:
        raise CommandError(f"refusing to start: validation: {exc}", 1) from exc
    except OSError as exc:  # e.g. address already in use
        raise CommandError(f"refusing to start: cannot listen on {settings.server.host}:{settings.server.port}: "
                           f"{exc.strerror or exc}", 1) from exc


def configure_logging() -> None:
    """Our INFO lines; libraries' chatter (WeasyPrint's per-render progress, fontTools) at WARNING."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    for noisy in ("weasyprint", "weasyprint.progress", "fontTools"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run(args: argparse.Namespace) -> int:
    configure_logging()
    settings = settings_from(args)
    if args.host:
        settings.server.host = args.host
    if args.port is not None:
        settings.server.port = args.port
    if args.processes is not None:
        settings.server.processes = args.processes
    processes = process_count(settings)
    ssl_context = tls_context(settings)
    prepare_folders(settings)
    engine = engine_from(settings)
    prepare_database(settings, engine)
    scheme = "https" if ssl_context else "http"
    if processes == 1:
        app = _build_app(settings, engine)
        log.info("sendgw serving on %s://%s:%d (1 process)", scheme, settings.server.host, settings.server.port)
        _run_app(app, settings, ssl_context)
        return 0

    from gateway.supervisor import Supervisor

    _build_app(settings, engine)  # configuration errors stop the parent, not N children in a loop
    engine.dispose()  # children open their own connections; nothing is shared across fork()
    reserved = _reserve_port(settings.server.host, settings.server.port)
    settings.server.port = reserved.getsockname()[1]
    _child_settings(settings, processes)

    def serve_child(index: int) -> int:
        try:
            _run_app(_build_app(settings, engine_from(settings)), settings, tls_context(settings), reuse_port=True)
        except CommandError as exc:
            log.error("%s", exc)
            return EXIT_CANNOT_START
        return 0

    log.info("sendgw serving on %s://%s:%d (%d processes, %d validation workers each)", scheme,
             settings.server.host, settings.server.port, processes, settings.validation.workers)
    supervisor = Supervisor(serve_child, processes, close_in_child=reserved.close,
                            fatal_exit_code=EXIT_CANNOT_START)
    try:
        code = supervisor.run()
    finally:
        reserved.close()
    if code:
        raise CommandError("server processes failed to start or kept dying; see the log above", code)
    return 0
