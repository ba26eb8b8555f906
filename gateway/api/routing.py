"""The tenant's channel routing (priority lists, channel settings, costs) and the savings report."""

from __future__ import annotations

import datetime as dt

from aiohttp import web

from gateway.api.auth import current_tenant
from gateway.api.body import read_json
from gateway.api.errors import ApiError
from gateway.api.inbox import query_value
from gateway.routing import RoutingConfig, RoutingConfigError, channel_report, load_routing, merge_secrets, save_routing
from gateway.services import services
from gateway.store.db import run_db

routes = web.RouteTableDef()


def _load(engine, tenant_id: str) -> RoutingConfig:
    with engine.connect() as conn:
        return load_routing(conn, tenant_id)


@routes.get("/api/v1/routing")
async def get_routing(request: web.Request) -> web.Response:
    svc, tenant = services(request.app), current_tenant(request)
    config = await run_db(_load, svc.engine, tenant.id)
    return web.json_response(config.to_dict(mask_secrets=True))


@routes.put("/api/v1/routing")
async def put_routing(request: web.Request) -> web.Response:
    svc, tenant = services(request.app), current_tenant(request)
    body = await read_json(request, "a JSON routing configuration")
    old = await run_db(_load, svc.engine, tenant.id)
    try:
        config = RoutingConfig.parse(merge_secrets(body, old) if isinstance(body, dict) else body)
    except RoutingConfigError as exc:
        raise ApiError(400, "invalid-routing", str(exc)) from None
    await run_db(save_routing, svc.engine, tenant.id, config)
    return web.json_response(config.to_dict(mask_secrets=True))


def parse_period(query) -> tuple[dt.datetime, dt.datetime]:
    """`from`/`to` as dates or ISO timestamps (UTC when no zone); default: the last 30 days."""
    def parse(value: str, name: str) -> dt.datetime:
        try:
            if len(value) == 10:
                return dt.datetime.fromisoformat(value).replace(tzinfo=dt.timezone.utc)
            parsed = dt.datetime.fromisoformat(value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)
        except ValueError:
            raise ApiError(400, "invalid-period", f"{name} must be YYYY-MM-DD or an ISO timestamp") from None

    now = dt.datetime.now(dt.timezone.utc)
    end = parse(query["to"], "to") if query.get("to") else now
    try:
        if query.get("to") and len(query["to"]) == 10:
            end += dt.timedelta(days=1)  # a date means the whole day
        start = parse(query["from"], "from") if query.get("from") else end - dt.timedelta(days=30)
    except OverflowError:  # to=9999-12-31, or to=0001-01-01 without from
        raise ApiError(400, "invalid-period", "the period reaches outside the years 1-9999") from None
    if start >= end:
        raise ApiError(400, "invalid-period", "from must be before to")
    return start, end


@routes.get("/api/v1/reports/channels")
async def report_channels(request: web.Request) -> web.Response:
    svc, tenant = services(request.app), current_tenant(request)
    for name in ("from", "to"):
        query_value(request, name, "invalid-period")
    start, end = parse_period(request.query)
    try:
        report = await run_db(channel_report, svc.engine, tenant.id, start, end)
    except RoutingConfigError as exc:
        raise ApiError(409, "invalid-routing", str(exc)) from None
    return web.json_response(report)
