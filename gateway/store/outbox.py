"""Outbound documents: the durable queue an issuer's submission lives in until it is delivered.

A submission is committed (document, validation report, identifiers, the AS4 MessageId and SBDH
InstanceIdentifier it will carry) before the API answers 202, so nothing accepted is ever lost
and every retry re-sends the same MessageId. Workers lease due rows (see gateway.store.queue).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.store.messages import add_event, events_of, evidence_of
from gateway.store.payloads import PayloadStore
from gateway.store.queue import claim_due
from gateway.store.schema import attempts, channel_deliveries, evidence, messages

OUT = "out"
QUEUED, SENDING, RETRYING, DELIVERED, FAILED, UNDELIVERABLE = (
    "queued", "sending", "retrying", "delivered", "failed", "undeliverable")
ROUTING, OPENED, PAID = "routing", "opened", "paid"  # the B2C route (gateway/routing.py)
OUTBOX_STATES = (QUEUED, SENDING, RETRYING, DELIVERED, FAILED, UNDELIVERABLE, ROUTING, OPENED, PAID)
DUE_STATES = (QUEUED, SENDING, RETRYING)  # SENDING rows are due again only once their lease expired
# evidence kinds served by GET /api/v1/documents/{id}/evidence/{kind} (the latest item of that kind)
EVIDENCE_KINDS = ("receipt", "as4-request", "validation-report", "error-signal")


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before with a different body."""


@dataclass(frozen=True)
class Submission:
    tenant_id: str
    document: bytes
    sender: str
    receiver: str
    document_type: str
    process: str
    report: dict[str, Any]
    options: dict[str, Any]
    idempotency_key: str | None
    request_sha256: str
    deadline: dt.timedelta
    initial_state: str = QUEUED  # "routing" for documents submitted straight to the B2C route


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def find_idempotent(conn: Connection, tenant_id: str, key: str, request_sha256: str):
    row = conn.execute(select(messages).where(messages.c.tenant_id == tenant_id,
                                              messages.c.idempotency_key == key)).first()
    if row is not None and row.request_sha256 != request_sha256:
        raise IdempotencyConflict("Idempotency-Key was already used with a different request body")
    return row


def submit(engine: Engine, store: PayloadStore, sub: Submission, *, message_id_domain: str = "sendgw") -> tuple[Any, bool]:
    """Queue a document; returns (row, created). An idempotent repeat returns the first row."""
    if sub.idempotency_key:
        with engine.connect() as conn:
            row = find_idempotent(conn, sub.tenant_id, sub.idempotency_key, sub.request_sha256)
            if row is not None:
                return row, False
    now = _now()
    doc_id = str(uuid.uuid4())
    report = json.dumps(sub.report, ensure_ascii=False).encode()
    store.stage([sub.document, report])  # payload files fsynced before the transaction takes the write lock
    try:
        with engine.begin() as conn:
            sha, report_sha = store.put_many(conn, [sub.document, report])
            row = conn.execute(insert(messages).values(
                id=doc_id, tenant_id=sub.tenant_id, direction=OUT, state=sub.initial_state,
                as4_message_id=f"{uuid.uuid4()}@{message_id_domain}", conversation_id=str(uuid.uuid4()),
                instance_id=str(uuid.uuid4()), sender=sub.sender, receiver=sub.receiver,
                document_type=sub.document_type, process=sub.process, document_sha256=sha, valid=True,
                created_at=now, updated_at=now, idempotency_key=sub.idempotency_key,
                request_sha256=sub.request_sha256, options=sub.options or None, attempts=0,
                next_attempt_at=now, deadline_at=now + sub.deadline).returning(*messages.c)).first()
            conn.execute(insert(evidence).values(id=str(uuid.uuid4()), message_id=doc_id, kind="validation-report",
                                                 payload_sha256=report_sha, media_type="application/json",
                                                 created_at=now))
            add_event(conn, doc_id, sub.initial_state, {"receiver": sub.receiver}, now)
            return row, True
    except IntegrityError:
        if not sub.idempotency_key:
            raise
        with engine.connect() as conn:  # a concurrent request with the same key won the race
            row = find_idempotent(conn, sub.tenant_id, sub.idempotency_key, sub.request_sha256)
        if row is None:
            raise
        return row, False


def claim(engine: Engine, owner: str, lease: dt.timedelta, limit: int, now: dt.datetime | None = None) -> list[Any]:
    """Lease due outbound documents and mark them `sending`; returns their rows."""
    now = now or _now()
    with engine.begin() as conn:
        ids = claim_due(conn, messages, states=DUE_STATES, now=now, owner=owner, lease=lease, limit=limit,
                        extra_where=messages.c.direction == OUT)
        if not ids:
            return []
        stale = [r.id for r in conn.execute(select(messages.c.id).where(messages.c.id.in_(ids),
                                                                       messages.c.state == SENDING))]
        if stale:
            _close_interrupted(conn, stale, now)
        conn.execute(update(messages).where(messages.c.id.in_(ids)).values(state=SENDING, updated_at=now))
        return list(conn.execute(select(messages).where(messages.c.id.in_(ids))))


def _close_interrupted(conn: Connection, ids: list[str], now: dt.datetime) -> None:
    """Rows still `sending` whose lease expired: the worker died mid-attempt. Close that attempt as
    `interrupted` and count it, so the attempt log stays truthful and numbers never repeat."""
    conn.execute(update(attempts).where(attempts.c.message_id.in_(ids), attempts.c.finished_at.is_(None)).values(
        finished_at=now, outcome="interrupted", error="the worker sending it stopped; its lease expired"))
    counted = (select(func.count()).select_from(attempts).where(attempts.c.message_id == messages.c.id)
               .scalar_subquery())
    conn.execute(update(messages).where(messages.c.id.in_(ids)).values(attempts=counted))


def add_evidence_many(conn: Connection, store: PayloadStore, doc_id: str, items: list[tuple[str, bytes, str]],
                      now: dt.datetime) -> list[str]:
    """Several (kind, bytes, media type) evidence items with one payload INSERT and one evidence
    INSERT (the outbox worker stores the request and its metadata together); returns the SHA-256s."""
    shas = store.put_many(conn, [data for _, data, _ in items])
    conn.execute(insert(evidence), [{"id": str(uuid.uuid4()), "message_id": doc_id, "kind": kind,
                                     "payload_sha256": sha, "media_type": media_type, "created_at": now}
                                    for (kind, _, media_type), sha in zip(items, shas)])
    return shas


def start_attempt(conn: Connection, message_id: str, number: int, endpoint_url: str | None,
                  now: dt.datetime) -> int:
    result = conn.execute(insert(attempts).values(message_id=message_id, number=number, started_at=now,
                                                  endpoint_url=endpoint_url))
    return result.inserted_primary_key[0]


def finish_attempt(conn: Connection, attempt_id: int, outcome: str, *, http_status: int | None = None,
                   error: str | None = None, now: dt.datetime | None = None) -> None:
    conn.execute(update(attempts).where(attempts.c.id == attempt_id).values(
        finished_at=now or _now(), outcome=outcome, http_status=http_status, error=error))


def set_state(conn: Connection, message_id: str, state: str, *, owner: str | None = None,
              now: dt.datetime | None = None, **values: Any) -> bool:
    """Move a document to `state` and release its lease. With `owner`, only if we still hold it."""
    now = now or _now()
    query = update(messages).where(messages.c.id == message_id)
    if owner is not None:
        query = query.where(messages.c.lease_owner == owner)
    result = conn.execute(query.values(state=state, updated_at=now, lease_owner=None, lease_expires_at=None,
                                       **values))
    return result.rowcount == 1


def get_document(conn: Connection, tenant_id: str, doc_id: str):
    try:
        uuid.UUID(doc_id)
    except ValueError:
        return None
    return conn.execute(select(messages).where(messages.c.id == doc_id, messages.c.tenant_id == tenant_id,
                                               messages.c.direction == OUT)).first()


def attempts_of(conn: Connection, doc_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(select(attempts).where(attempts.c.message_id == doc_id).order_by(attempts.c.number,
                                                                                         attempts.c.id))
    return [{"number": r.number, "started_at": r.started_at.isoformat(),
             "finished_at": r.finished_at.isoformat() if r.finished_at else None, "outcome": r.outcome,
             "endpoint_url": r.endpoint_url, "http_status": r.http_status, "error": r.error} for r in rows]


def document_summary(row) -> dict[str, Any]:
    return {
        "id": row.id,
        "state": row.state,
        "sender": row.sender,
        "receiver": row.receiver,
        "document_type": row.document_type,
        "process": row.process,
        "as4_message_id": row.as4_message_id,
        "instance_id": row.instance_id,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        "endpoint": row.endpoint_url,
        "attempt_count": row.attempts,
        "last_error": row.last_error,
        "links": {"self": f"/api/v1/documents/{row.id}",
                  "receipt": f"/api/v1/documents/{row.id}/evidence/receipt",
                  "pdf": f"/api/v1/documents/{row.id}/pdf"},
    }


def decisions_of(conn: Connection, message_id: str) -> list[dict[str, Any]]:
    """The routing decisions for a document: each channel tried or skipped, why, and the result."""
    rows = conn.execute(select(channel_deliveries).where(channel_deliveries.c.message_id == message_id)
                        .order_by(channel_deliveries.c.position, channel_deliveries.c.created_at))
    return [{"channel": r.channel, "position": r.position, "state": r.state, "reason": r.reason,
             "detail": r.detail, "channel_ref": r.channel_ref, "cost_nok": r.cost_nok, "attempts": r.attempts,
             "summary": r.summary, "at": r.updated_at.isoformat()} for r in rows]


def document_details(conn: Connection, row) -> dict[str, Any]:
    out = document_summary(row)
    out["attempts"] = attempts_of(conn, row.id)
    out["events"] = events_of(conn, row.id)
    out["decisions"] = decisions_of(conn, row.id)
    out["evidence"] = [{"kind": e.kind, "media_type": e.media_type, "sha256": e.payload_sha256,
                        "created_at": e.created_at.isoformat(),
                        "url": f"/api/v1/documents/{row.id}/evidence/{e.kind}" if e.kind in EVIDENCE_KINDS else None}
                       for e in evidence_of(conn, row.id)]
    return out
