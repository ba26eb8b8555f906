"""Build the aiohttp application: middlewares, routes, and the services' lifecycle."""

from __future__ import annotations

import logging

from aiohttp import web

from gateway.api import health, openapi, validate
from gateway.api.auth import TokenCache, make_auth_middleware
from gateway.api.errors import error_middleware
from gateway.config import Settings
from gateway.services import SERVICES, Services
from gateway.store.db import make_engine

log = logging.getLogger("sendgw")


def create_app(settings: Settings, *, engine=None, validation=None) -> web.Application:
    """The gateway's HTTP application. `engine`/`validation` may be injected (tests, benchmarks)."""
    if engine is None:
        engine = make_engine(settings.database.url, base_dir=settings.base_dir,
                             pool_size=settings.database.pool_size, echo=settings.database.echo)
    if validation is None:
        from validation.pool import ValidationPool

        validation = ValidationPool(
            settings.path(settings.artefacts.cache),
            workers=settings.validation.workers,
            max_bytes=settings.validation.max_bytes,
            schematron_after_xsd_error=settings.validation.schematron_after_xsd_error,
        )
    app = web.Application(
        middlewares=[error_middleware, make_auth_middleware(engine, TokenCache())],
        client_max_size=settings.server.max_request_bytes,
    )
    svc = Services(settings=settings, engine=engine, validation=validation)
    app[SERVICES] = svc
    for module in (health, openapi, validate):
        app.router.add_routes(module.routes)

    async def lifecycle(app: web.Application):
        await svc.validation.start()
        yield
        await svc.validation.close()

    app.cleanup_ctx.append(lifecycle)
    return app
