"""Build the aiohttp application: middlewares, routes, and the services' lifecycle."""

from __future__ import annotations

import logging

from aiohttp import web

from gateway.api import documents, health, inbox, openapi, routing, validate, webhook
from gateway.api.auth import TokenCache, make_auth_middleware
from gateway.api.errors import error_middleware
from gateway.config import Settings
from gateway.identity import load_identity
from gateway.inbound.endpoint import as4_endpoint
from gateway.discovery.lookup import Discovery
from gateway.revocation import RevocationChecker
from gateway.services import SERVICES, Services
from gateway.channels.sms.dlr import make_dlr_handler
from gateway.routing import RoutingEngine
from gateway.store.db import make_engine, run_db
from gateway.store.payloads import payload_store_from
from gateway.workers import Workers, start_workers

log = logging.getLogger("sendgw")
SMS_DLR_PATH = "/callbacks/sms/linkmobility"


async def _sms_report(svc: Services, report) -> None:
    """A LINK Mobility delivery report: update the SMS delivery it belongs to."""
    router = svc.extra.get("routing") or RoutingEngine(svc.engine, svc.payloads, svc.settings)
    if report.ref_id:
        await run_db(lambda: router.apply_event(report.ref_id, report.event, channel="sms"))
    else:
        await run_db(router.apply_channel_event, "sms", report.message_id, report.event)


def create_app(settings: Settings, *, engine=None, validation=None, run_workers: bool | None = None,
               identity=None, discovery=None) -> web.Application:
    """The gateway's HTTP application. `engine`/`validation` may be injected (tests, benchmarks);
    an injected validation service is started and closed by its owner, not by the app.

    With `run_workers` (default `[server] run_worker`) the background workers run in this process:
    inbound validation + hand-over, webhook delivery, and (with an [ap] identity) the outbox.
    """
    if engine is None:
        engine = make_engine(settings.database.url, base_dir=settings.base_dir,
                             pool_size=settings.database.pool_size, echo=settings.database.echo)
    owns_validation = validation is None
    if validation is None:
        from validation.pool import ValidationPool

        validation = ValidationPool(
            settings.path(settings.artefacts.cache),
            workers=settings.validation.workers,
            max_bytes=settings.validation.max_bytes,
            schematron_after_xsd_error=settings.validation.schematron_after_xsd_error,
            timeout=settings.validation.timeout_seconds,
        )
    if run_workers is None:
        run_workers = settings.server.run_worker
    app = web.Application(
        middlewares=[error_middleware, make_auth_middleware(engine, TokenCache())],
        client_max_size=settings.server.max_request_bytes,
    )
    svc = Services(settings=settings, engine=engine, validation=validation, payloads=payload_store_from(settings))
    ap = identity if identity is not None else load_identity(settings)
    svc.extra["ap"] = ap
    revocation = RevocationChecker.from_settings(settings)  # inbound senders and, shared, discovery
    svc.extra["revocation"] = revocation
    owns_discovery = discovery is None and run_workers and ap is not None
    if owns_discovery:
        discovery = Discovery.from_settings(settings, revocation=revocation)
    app[SERVICES] = svc
    for module in (health, openapi, validate, inbox, webhook, documents, routing):
        app.router.add_routes(module.routes)
    app.router.add_post(settings.server.as4_path, as4_endpoint)
    app.router.add_post(SMS_DLR_PATH, make_dlr_handler(
        lambda report: _sms_report(svc, report), secret=settings.callbacks.sms_dlr_token or None,
        allowed_networks=settings.callbacks.sms_dlr_networks))

    async def lifecycle(app: web.Application):
        if owns_validation:
            await svc.validation.start()
        workers = start_workers(svc, ap, discovery) if run_workers else Workers()
        yield
        await workers.stop()
        if owns_discovery:
            await discovery.close()
        await revocation.close()
        if owns_validation:
            await svc.validation.close()

    app.cleanup_ctx.append(lifecycle)
    return app
