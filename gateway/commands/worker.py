"""`sendgw worker`: run only the background workers (no HTTP server) against the configured database.

Start as many as you like, on one machine or several sharing one PostgreSQL database: the queues
are leased row by row, so no document is ever sent by two workers at the same time.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal

from certs.trust import TrustError
from gateway.commands.serve import configure_logging
from gateway.commands._common import CommandError, engine_from, guarded, seconds, settings_from
from gateway.config import ConfigError
from gateway.identity import IdentityError, load_identity
from gateway.workers import KINDS, start_workers

log = logging.getLogger("sendgw.worker")


def _kinds(value: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in value.split(",") if k.strip())
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(KINDS)} (comma-separated), got {value!r}")
    return kinds


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("worker", help="run the background workers without the HTTP server",
                       description="Run the background workers only: the outbox (sending over AS4), "
                                   "webhook delivery, the inbound processor (validation and hand-over "
                                   "of received documents) and the B2C routing engine, against the "
                                   "configured database. Any number "
                                   "may run at once. SIGTERM/SIGINT stop claiming new work, give documents "
                                   "being sent --grace seconds to finish, then exit 0; a document still in "
                                   "flight is resumed by another worker when its lease expires.")
    p.add_argument("--only", type=_kinds, default=KINDS, metavar="KINDS",
                   help=f"comma-separated subset of {','.join(KINDS)} (default: all)")
    p.add_argument("--grace", type=seconds, default=10.0, metavar="SECONDS",
                   help="how long to wait for documents in flight on SIGTERM (default 10)")
    p.set_defaults(func=guarded(run))


async def _serve(settings, engine, kinds: tuple[str, ...], grace: float) -> int:
    from gateway.discovery.lookup import Discovery
    from gateway.services import Services
    from gateway.store.payloads import payload_store_from

    try:
        ap = load_identity(settings) if "outbound" in kinds else None
        discovery = Discovery.from_settings(settings) if ap is not None else None
    except (IdentityError, ConfigError, TrustError) as exc:
        raise CommandError(f"refusing to start: {exc}", 1) from exc
    if "outbound" in kinds and ap is None:
        raise CommandError("refusing to start: the outbox worker needs an [ap] identity (key and certificate)", 1)
    validation = None
    if "inbound" in kinds:
        from validation.pool import ValidationPool

        v = settings.validation
        validation = ValidationPool(settings.path(settings.artefacts.cache), workers=v.workers,
                                    max_bytes=v.max_bytes, schematron_after_xsd_error=v.schematron_after_xsd_error,
                                    timeout=v.timeout_seconds)
        await validation.start()
    svc = Services(settings=settings, engine=engine, validation=validation, payloads=payload_store_from(settings))
    svc.extra["ap"] = ap
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    workers = start_workers(svc, ap, discovery, kinds)
    log.info("worker %d running: %s", os.getpid(), ", ".join(kinds))
    try:
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait([stopper, *workers.tasks], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        log.info("worker %d stopping", os.getpid())
    finally:
        await workers.stop(grace)
        if discovery is not None:
            await discovery.close()
        if validation is not None:
            await validation.close()
    log.info("worker %d stopped", os.getpid())
    return 0


def run(args: argparse.Namespace) -> int:
    from gateway.commands.serve import prepare_database, prepare_folders

    configure_logging()
    settings = settings_from(args)
    prepare_folders(settings)
    engine = engine_from(settings)
    prepare_database(settings, engine)
    try:
        return asyncio.run(_serve(settings, engine, args.only, args.grace))
    finally:
        engine.dispose()
