"""The tenant's webhook: where notifications are pushed, and the secret that signs them."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from gateway.api.auth import current_tenant
from gateway.api.body import read_json
from gateway.api.errors import ApiError
from gateway.services import services
from gateway.store.db import run_db
from gateway.store.schema import tenants
from gateway.webhooks import SIGNATURE_HEADER, WebhookUrlError, delivery_counts, set_webhook

routes = web.RouteTableDef()


def _url(engine, tenant_id: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(select(tenants.c.webhook_url).where(tenants.c.id == tenant_id)).scalar()


@routes.get("/api/v1/webhook")
async def get_webhook(request: web.Request) -> web.Response:
    svc, tenant = services(request.app), current_tenant(request)
    url = await run_db(_url, svc.engine, tenant.id)
    counts = await run_db(delivery_counts, svc.engine, tenant.id)
    return web.json_response({"url": url, "signature_header": SIGNATURE_HEADER, "deliveries": counts})


@routes.put("/api/v1/webhook")
async def put_webhook(request: web.Request) -> web.Response:
    svc, tenant = services(request.app), current_tenant(request)
    body = await read_json(request, 'a JSON object {"url": "https://..."}')
    url = body.get("url") if isinstance(body, dict) else None
    if not isinstance(url, str):
        raise ApiError(400, "invalid-webhook", "field url (string) is required")
    if set(body) != {"url"}:  # e.g. a "secret" of one's own would be silently replaced by ours
        raise ApiError(400, "invalid-webhook", f"unknown field(s): {', '.join(sorted(set(body) - {'url'}))}")
    try:
        secret = await run_db(set_webhook, svc.engine, tenant.id, url)
    except WebhookUrlError as exc:
        raise ApiError(400, "invalid-webhook", str(exc)) from None
    return web.json_response({"url": url, "secret": secret, "signature_header": SIGNATURE_HEADER})


@routes.delete("/api/v1/webhook")
async def delete_webhook(request: web.Request) -> web.Response:
    svc, tenant = services(request.app), current_tenant(request)
    await run_db(set_webhook, svc.engine, tenant.id, None)
    return web.json_response({"url": None})
