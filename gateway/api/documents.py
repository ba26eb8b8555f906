"""Outbound documents: submit (validate, then queue durably) and follow their delivery."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from aiohttp import web

from gateway.api.auth import current_tenant
from gateway.api.body import read_upload
from gateway.api.errors import ApiError
from gateway.api.inbox import page_args, path_id, query_value
from gateway.api.validate import rules_option, run_validation
from gateway.identifiers import DocumentTypeId, IdentifierError, ParticipantId, ProcessId, identifiers_from_ubl
from gateway.services import services
from gateway.store.db import run_db
from gateway.store.messages import InvalidCursor, evidence_of, list_messages
from gateway.store.outbox import (
    OUT,
    EVIDENCE_KINDS,
    OUTBOX_STATES,
    QUEUED,
    ROUTING,
    IdempotencyConflict,
    Submission,
    document_details,
    document_summary,
    find_idempotent,
    get_document,
    submit,
)
from gateway.routing import RecipientHintError, parse_hints
from gateway.store.participants import find_participant

routes = web.RouteTableDef()

OPTION_KEYS = {"receiver", "document_type", "process", "recipient", "channel", "rules", "segment", "vipps"}
ROUTES = ("auto", "peppol", "b2c")  # options.channel: Peppol with fallback, Peppol only, straight to B2C


def _override(options: dict, key: str, parse):
    value = options.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(400, "invalid-options", f"options.{key} must be a string")
    try:
        return parse(value)
    except IdentifierError as exc:
        raise ApiError(400, "invalid-options", f"options.{key}: {exc}") from exc


def _lookup_sender(engine, participant: ParticipantId):
    with engine.connect() as conn:
        return find_participant(conn, participant)


def _idempotent(engine, tenant_id: str, key: str, sha: str):
    with engine.connect() as conn:
        return find_idempotent(conn, tenant_id, key, sha)


def _is_text(value: str) -> bool:
    """Printable and valid UTF-8: header bytes that are not arrive as surrogates the database refuses."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return value.isprintable()


def _accepted(row, status: int = 202) -> web.Response:
    body = {"id": row.id, "state": row.state, "links": document_summary(row)["links"]}
    return web.json_response(body, status=status, headers={"Location": body["links"]["self"]})


@routes.post("/api/v1/documents")
async def submit_document(request: web.Request) -> web.Response:
    svc, tenant = services(request.app), current_tenant(request)
    upload = await read_upload(request, svc.settings.validation.max_bytes)
    options = upload.options
    unknown = set(options) - OPTION_KEYS
    if unknown:
        raise ApiError(400, "invalid-options", f"unknown option(s): {', '.join(sorted(unknown))}")
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (1 <= len(key) <= 255 and _is_text(key)):
        raise ApiError(400, "invalid-idempotency-key", "Idempotency-Key must be 1-255 printable UTF-8 characters")
    sha = hashlib.sha256(upload.data + b"\0" + json.dumps(options, sort_keys=True).encode()).hexdigest()
    if key:
        try:
            row = await run_db(_idempotent, svc.engine, tenant.id, key, sha)
        except IdempotencyConflict as exc:
            raise ApiError(409, "idempotency-conflict", str(exc)) from exc
        if row is not None:
            return _accepted(row)

    report = await run_validation(svc, upload.data, rules_option(options))
    if not report["valid"]:
        raise ApiError(422, "invalid-document", f"the document has {len(report['errors'])} fatal error(s); "
                       "nothing was queued", details=report)
    if (report.get("document_type") or {}).get("sbdh"):
        raise ApiError(422, "unroutable-document", "send the business document itself, not a "
                       "StandardBusinessDocument: the gateway builds the SBDH from the document and options")
    try:
        ids = identifiers_from_ubl(upload.data)
    except IdentifierError as exc:
        raise ApiError(422, "unroutable-document", f"cannot derive routing identifiers: {exc}") from exc
    receiver = _override(options, "receiver", ParticipantId.parse) or ids.receiver
    doctype = _override(options, "document_type", DocumentTypeId.parse) or ids.document_type
    process = _override(options, "process", ProcessId.parse) or ids.process

    route = options.get("channel", "auto")
    if route not in ROUTES:
        raise ApiError(400, "invalid-options", f"options.channel must be one of {', '.join(ROUTES)}")
    if options.get("segment") not in (None, "b2c", "b2b", "b2g"):
        raise ApiError(400, "invalid-options", "options.segment must be b2c, b2b or b2g")
    if options.get("vipps") is not None and not isinstance(options["vipps"], bool):
        raise ApiError(400, "invalid-options", "options.vipps must be true or false")
    try:
        options = {**options, "recipient": parse_hints(options.get("recipient"))}
    except RecipientHintError as exc:
        raise ApiError(400, "invalid-recipient", str(exc)) from exc
    if route == "peppol":
        options["segment"] = "b2g"  # Peppol only: never hand over to a B2C channel
    hosted = await run_db(_lookup_sender, svc.engine, ids.sender)
    if hosted is None or hosted.tenant_id != tenant.id:
        raise ApiError(403, "sender-not-yours",
                       f"sender {ids.sender} is not a participant of your tenant (sendgw participant add)")
    sub = Submission(tenant_id=tenant.id, document=upload.data, sender=str(ids.sender), receiver=str(receiver),
                     document_type=str(doctype), process=str(process), report=report, options=options,
                     idempotency_key=key, request_sha256=sha,
                     deadline=dt.timedelta(hours=svc.settings.outbound.deadline_hours),
                     initial_state=ROUTING if route == "b2c" else QUEUED)
    try:
        row, _created = await run_db(submit, svc.engine, svc.payloads, sub,
                                     message_id_domain=svc.settings.ap.seat_id.lower() or "sendgw")
    except IdempotencyConflict as exc:
        raise ApiError(409, "idempotency-conflict", str(exc)) from exc
    worker = svc.extra.get("routing" if route == "b2c" else "outbound")
    if worker is not None:
        worker.wake()
    return _accepted(row)


@routes.get("/api/v1/documents")
async def list_documents(request: web.Request) -> web.Response:
    svc, tenant = services(request.app), current_tenant(request)
    state, limit, cursor = page_args(request, OUTBOX_STATES)
    parties = {}
    for name in ("sender", "receiver"):
        if value := query_value(request, name, "invalid-filter"):
            try:
                parties[name] = str(ParticipantId.parse(value))
            except IdentifierError as exc:
                raise ApiError(400, "invalid-filter", f"{name}: {exc}") from exc
    try:
        rows, nxt = await run_db(list_messages, svc.engine, tenant.id, state=state, limit=limit, cursor=cursor,
                                 direction=OUT, **parties)
    except InvalidCursor:
        raise ApiError(400, "invalid-cursor", "cursor is not one this API returned") from None
    return web.json_response({"items": [document_summary(r) for r in rows], "next": nxt})


def _details(engine, tenant_id: str, doc_id: str):
    with engine.connect() as conn:
        row = get_document(conn, tenant_id, doc_id)
        return None if row is None else document_details(conn, row)


@routes.get("/api/v1/documents/{id}")
async def document(request: web.Request) -> web.Response:
    svc, tenant = services(request.app), current_tenant(request)
    details = await run_db(_details, svc.engine, tenant.id, path_id(request))
    if details is None:
        raise ApiError(404, "not-found", "no such document")
    return web.json_response(details)


def _evidence(engine, store, tenant_id: str, doc_id: str, kind: str):
    with engine.connect() as conn:
        row = get_document(conn, tenant_id, doc_id)
        if row is None:
            return None, None
        found = evidence_of(conn, doc_id, kind)
        if not found:
            return row, None
        return row, (store.get(conn, found[-1].payload_sha256), found[-1].media_type)


@routes.get("/api/v1/documents/{id}/evidence/{kind}")
async def document_evidence(request: web.Request) -> web.Response:
    svc, tenant = services(request.app), current_tenant(request)
    kind = request.match_info["kind"]
    if kind not in EVIDENCE_KINDS:
        raise ApiError(404, "not-found", f"evidence kinds: {', '.join(EVIDENCE_KINDS)}")
    row, found = await run_db(_evidence, svc.engine, svc.payloads, tenant.id, path_id(request), kind)
    if row is None:
        raise ApiError(404, "not-found", "no such document")
    if found is None:
        raise ApiError(404, "no-evidence", f"no {kind} stored for this document (state {row.state})")
    data, media_type = found
    return web.Response(body=data, headers={"Content-Type": media_type})


def _document_bytes(engine, store, tenant_id: str, doc_id: str) -> bytes | None:
    with engine.connect() as conn:
        row = get_document(conn, tenant_id, doc_id)
        return None if row is None else store.get(conn, row.document_sha256)


@routes.get("/api/v1/documents/{id}/pdf")
async def document_pdf(request: web.Request) -> web.Response:
    """The invoice as a Norwegian PDF/A-3 (UBL embedded), the same renderer as the B2C channels."""
    from gateway.invoice import InvoiceError
    from gateway.render import render_pdf_async

    svc, tenant = services(request.app), current_tenant(request)
    data = await run_db(_document_bytes, svc.engine, svc.payloads, tenant.id, path_id(request))
    if data is None:
        raise ApiError(404, "not-found", "no such document")
    try:
        pdf = await render_pdf_async(data)
    except InvoiceError as exc:
        raise ApiError(422, "not-renderable", f"cannot render this document as an invoice PDF: {exc}") from exc
    return web.Response(body=pdf, content_type="application/pdf",
                        headers={"Content-Disposition": f'inline; filename="{path_id(request)}.pdf"'})
