"""Rows every message has, inbound or outbound: evidence, the event log, listing with cursors.

The direction-specific parts live beside it: `inbox.py` (received documents) and `outbox.py`
(submitted documents).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from typing import Any

from sqlalchemy import Connection, Engine, and_, insert, or_, select

from gateway.store.payloads import PayloadStore
from gateway.store.schema import events, evidence, messages


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def add_evidence(conn: Connection, store: PayloadStore, message_id: str, kind: str, data: bytes,
                 media_type: str, now: dt.datetime | None = None) -> str:
    sha = store.put(conn, data)
    conn.execute(insert(evidence).values(id=str(uuid.uuid4()), message_id=message_id, kind=kind,
                                         payload_sha256=sha, media_type=media_type, created_at=now or _now()))
    return sha


def add_event(conn: Connection, message_id: str | None, kind: str, detail: dict[str, Any] | None = None,
              now: dt.datetime | None = None) -> None:
    conn.execute(insert(events).values(message_id=message_id, at=now or _now(), kind=kind, detail=detail))


class InvalidCursor(ValueError):
    pass


def _encode_cursor(created_at: dt.datetime, message_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), message_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    """Only what `_encode_cursor` makes: a zoned timestamp and a message UUID (a hand-made cursor
    with a naive time or a NUL in the id would otherwise reach the database and fail there)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, mid = json.loads(raw)
        if not isinstance(at, str) or not isinstance(mid, str):
            raise TypeError("cursor fields must be strings")
        created_at = dt.datetime.fromisoformat(at)
        if created_at.tzinfo is None:
            raise ValueError("cursor time without a zone")
        return created_at, str(uuid.UUID(mid))
    except (ValueError, TypeError, RecursionError) as exc:  # RecursionError: [[[[… nested too deep
        raise InvalidCursor("invalid cursor") from exc


def list_messages(engine: Engine, tenant_id: str, *, state: str | None = None, limit: int = 50,
               cursor: str | None = None, direction: str = "in", sender: str | None = None,
               receiver: str | None = None) -> tuple[list[Any], str | None]:
    """Newest first; `cursor` continues after the last item of the previous page. `sender` and
    `receiver` are exact (normalised `scheme::value`) participant filters."""
    c = messages.c
    query = select(messages).where(c.tenant_id == tenant_id, c.direction == direction)
    if state:
        query = query.where(c.state == state)
    if sender:
        query = query.where(c.sender == sender)
    if receiver:
        query = query.where(c.receiver == receiver)
    if cursor:
        at, mid = _decode_cursor(cursor)
        query = query.where(or_(c.created_at < at, and_(c.created_at == at, c.id < mid)))
    query = query.order_by(c.created_at.desc(), c.id.desc()).limit(limit + 1)
    with engine.connect() as conn:
        rows = list(conn.execute(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (_encode_cursor(rows[-1].created_at, rows[-1].id) if more and rows else None)


def get_message(conn: Connection, tenant_id: str, message_id: str, direction: str = "in"):
    """The tenant's message row, or None (also for another tenant's message: no existence leak)."""
    try:
        uuid.UUID(message_id)
    except ValueError:
        return None
    return conn.execute(select(messages).where(messages.c.id == message_id, messages.c.tenant_id == tenant_id,
                                               messages.c.direction == direction)).first()


def evidence_of(conn: Connection, message_id: str, kind: str | None = None) -> list[Any]:
    query = select(evidence).where(evidence.c.message_id == message_id).order_by(evidence.c.created_at)
    if kind:
        query = query.where(evidence.c.kind == kind)
    return list(conn.execute(query))


def events_of(conn: Connection, message_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(select(events).where(events.c.message_id == message_id).order_by(events.c.id))
    return [{"at": r.at.isoformat(), "kind": r.kind, "detail": r.detail} for r in rows]
