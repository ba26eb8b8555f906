"""The tenant's inbox: documents received over AS4 for its participants (pull hand-over)."""

from __future__ import annotations

import json
import re
import uuid

from aiohttp import web

from gateway.api.auth import current_tenant
from gateway.api.errors import ApiError
from gateway.services import services
from gateway.store.db import run_db
from gateway.store.inbox import INBOX_STATES, acknowledge, inbox_item
from gateway.store.messages import InvalidCursor, events_of, evidence_of, get_message, list_messages
from gateway.webhooks import delivery_summary

routes = web.RouteTableDef()
MAX_LIMIT = 200


def path_id(request: web.Request) -> str:
    """The {id} of the path in our spelling of a UUID (clients such as SQL Server give them in upper
    case); anything that is not a UUID is passed on as is and found nowhere."""
    raw = request.match_info["id"]
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        return raw


def query_value(request: web.Request, name: str, code: str) -> str | None:
    """One query parameter; given twice it is refused rather than silently taking the first."""
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise ApiError(400, code, f"{name} given {len(values)} times; give it once")
    return values[0] if values else None


def page_args(request: web.Request, states) -> tuple[str | None, int, str | None]:
    state = query_value(request, "state", "invalid-state") or None
    if state and state not in states:
        raise ApiError(400, "invalid-state", f"state must be one of {', '.join(states)}")
    raw = query_value(request, "limit", "invalid-limit") or "50"
    if not re.fullmatch(r"[0-9]{1,6}", raw):  # int() would also take " 5", "+5" and "1_0"
        raise ApiError(400, "invalid-limit", "limit must be an integer")
    limit = int(raw)
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, "invalid-limit", f"limit must be between 1 and {MAX_LIMIT}")
    return state, limit, query_value(request, "cursor", "invalid-cursor") or None


@routes.get("/api/v1/inbox")
async def inbox(request: web.Request) -> web.Response:
    svc, tenant = services(request.app), current_tenant(request)
    state, limit, cursor = page_args(request, INBOX_STATES)
    try:
        rows, nxt = await run_db(list_messages, svc.engine, tenant.id, state=state, limit=limit, cursor=cursor)
    except InvalidCursor:
        raise ApiError(400, "invalid-cursor", "cursor is not one this API returned") from None
    return web.json_response({"items": [inbox_item(r) for r in rows], "next": nxt})


def _details(engine, store, tenant_id: str, message_id: str):
    with engine.connect() as conn:
        row = get_message(conn, tenant_id, message_id)
        if row is None:
            return None
        item = inbox_item(row)
        item["conversation_id"] = row.conversation_id
        item["duplicate_of"] = row.duplicate_of
        item["acknowledged_at"] = row.acked_at.isoformat() if row.acked_at else None
        reports = evidence_of(conn, message_id, "validation-report")
        item["validation"] = json.loads(store.get(conn, reports[-1].payload_sha256)) if reports else None
        item["events"] = events_of(conn, message_id)
        item["webhooks"] = delivery_summary(conn, message_id)
        return item


@routes.get("/api/v1/inbox/{id}")
async def inbox_details(request: web.Request) -> web.Response:
    svc, tenant = services(request.app), current_tenant(request)
    item = await run_db(_details, svc.engine, svc.payloads, tenant.id, path_id(request))
    if item is None:
        raise ApiError(404, "not-found", "no such document in your inbox")
    item["links"] = {"document": f"/api/v1/inbox/{item['id']}/document", "ack": f"/api/v1/inbox/{item['id']}/ack"}
    return web.json_response(item)


def _document(engine, store, tenant_id: str, message_id: str) -> bytes | None:
    with engine.connect() as conn:
        row = get_message(conn, tenant_id, message_id)
        return None if row is None else store.get(conn, row.document_sha256)


@routes.get("/api/v1/inbox/{id}/document")
async def inbox_document(request: web.Request) -> web.Response:
    svc, tenant = services(request.app), current_tenant(request)
    data = await run_db(_document, svc.engine, svc.payloads, tenant.id, path_id(request))
    if data is None:
        raise ApiError(404, "not-found", "no such document in your inbox")
    return web.Response(body=data, content_type="application/xml")


@routes.post("/api/v1/inbox/{id}/ack")
async def inbox_ack(request: web.Request) -> web.Response:
    svc, tenant = services(request.app), current_tenant(request)
    row = await run_db(acknowledge, svc.engine, tenant.id, path_id(request))
    if row is None:
        raise ApiError(404, "not-found", "no such document in your inbox")
    return web.json_response(inbox_item(row))
