"""Build the aiohttp application: middlewares, routes, and the services' lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web

from gateway.api import documents, health, inbox, openapi, validate, webhook
from gateway.api.auth import TokenCache, make_auth_middleware
from gateway.api.errors import error_middleware
from gateway.config import Settings
from gateway.identity import load_identity
from gateway.inbound.endpoint import as4_endpoint
from gateway.inbound.processor import InboundProcessor
from gateway.outbound.worker import OutboundWorker
from gateway.discovery.lookup import Discovery
from gateway.services import SERVICES, Services
from gateway.store.db import make_engine
from gateway.store.payloads import payload_store_from
from gateway.webhooks import WebhookWorker

log = logging.getLogger("sendgw")


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
    owns_discovery = discovery is None and run_workers and ap is not None
    if owns_discovery:
        discovery = Discovery.from_settings(settings)
    app[SERVICES] = svc
    for module in (health, openapi, validate, inbox, webhook, documents):
        app.router.add_routes(module.routes)
    app.router.add_post(settings.server.as4_path, as4_endpoint)

    async def lifecycle(app: web.Application):
        if owns_validation:
            await svc.validation.start()
        tasks: list[asyncio.Task] = []
        if run_workers:
            webhooks = WebhookWorker(engine, settings)
            inbound = InboundProcessor(engine, svc.payloads, svc.validation, on_notify=webhooks.wake)
            svc.extra.update(webhooks=webhooks, inbound=inbound)
            tasks += [asyncio.create_task(webhooks.run(), name="webhooks"),
                      asyncio.create_task(inbound.run(), name="inbound")]
            if ap is not None:
                outbound = OutboundWorker(engine, svc.payloads, settings, ap, discovery)
                svc.extra["outbound"] = outbound
                tasks.append(asyncio.create_task(outbound.run(), name="outbound"))
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if owns_discovery:
            await discovery.close()
        if owns_validation:
            await svc.validation.close()

    app.cleanup_ctx.append(lifecycle)
    return app
