"""Received documents: durable recording with duplicate detection, and the tenant's inbox queries.

`record_inbound` is the heart of "persist before you acknowledge": the business document, the
raw signed AS4 message and the receipt we are about to send are committed in one transaction,
and the receipt is only released to the caller after the commit. A message whose AS4 MessageId
was recorded before yields the stored receipt again (byte-identical) and records nothing new.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, and_, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.store.messages import add_event, get_message
from gateway.store.payloads import Payload, PayloadStore
from gateway.store.schema import events, evidence, messages

IN = "in"
STATE_RECEIVED = "received"
STATE_ACKNOWLEDGED = "acknowledged"
INBOX_STATES = (STATE_RECEIVED, STATE_ACKNOWLEDGED)


@dataclass(frozen=True)
class InboundDocument:
    """Everything the receiving pipeline knows about one verified, decrypted UserMessage."""

    tenant_id: str
    as4_message_id: str
    conversation_id: str | None
    instance_id: str | None
    sender: str
    receiver: str
    document_type: str
    process: str
    # bytes, or a file the caller keeps until record_inbound returns (large messages stay on disk)
    sbd: Payload  # the decrypted, decompressed payload (SBDH + business document)
    document: Payload  # the business document alone
    raw_message: Payload  # the signed AS4 message exactly as received (evidence)
    raw_content_type: str
    receipt: bytes  # the signed receipt we answer with


@dataclass(frozen=True)
class Recorded:
    message_id: str
    receipt: bytes
    duplicate_message: bool  # same AS4 MessageId seen before: nothing new was stored
    duplicate_of: str | None  # another message carried the same SBDH InstanceIdentifier


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def stored_receipt(conn: Connection, store: PayloadStore, as4_message_id: str) -> tuple[str, bytes] | None:
    """The message id and receipt bytes recorded for an inbound AS4 MessageId, if any."""
    row = conn.execute(
        select(messages.c.id, evidence.c.payload_sha256)
        .join(evidence, and_(evidence.c.message_id == messages.c.id, evidence.c.kind == "receipt"))
        .where(messages.c.direction == IN, messages.c.as4_message_id == as4_message_id)
    ).first()
    if row is None:
        return None
    return row.id, store.get(conn, row.payload_sha256)


def recorded_before(conn: Connection, store: PayloadStore, as4_message_id: str) -> Recorded | None:
    """The outcome for a MessageId already recorded (a re-sent message), else None."""
    seen = stored_receipt(conn, store, as4_message_id)
    return Recorded(seen[0], seen[1], True, None) if seen else None


def record_inbound(engine: Engine, store: PayloadStore, doc: InboundDocument) -> Recorded:
    """Commit the document, evidence and receipt; or return the receipt stored for a duplicate.

    The payload files are written and fsynced before the transaction opens (`PayloadStore.stage`),
    so the transaction itself is a handful of INSERTs. A duplicate MessageId is caught by the
    unique constraint (callers that want to skip the work for a plain re-send check
    `recorded_before` first), and answered with the receipt committed for it.
    """
    blobs = [doc.document, doc.sbd, doc.raw_message, doc.receipt]
    store.stage(blobs)
    try:
        with engine.begin() as conn:
            return _insert_inbound(conn, store, doc, blobs)
    except IntegrityError:
        # The same MessageId was committed before or concurrently: answer with its receipt.
        with engine.begin() as conn:
            seen = recorded_before(conn, store, doc.as4_message_id)
        if seen is None:
            raise
        return seen


def _insert_inbound(conn: Connection, store: PayloadStore, doc: InboundDocument, blobs: list[Payload]) -> Recorded:
    now = _now()
    message_id = str(uuid.uuid4())
    duplicate_of = None
    if doc.instance_id:
        duplicate_of = conn.execute(
            select(messages.c.id).where(messages.c.direction == IN, messages.c.instance_id == doc.instance_id,
                                        messages.c.tenant_id == doc.tenant_id)
            .order_by(messages.c.created_at).limit(1)
        ).scalar()
    document_sha, sbd_sha, raw_sha, receipt_sha = store.put_many(conn, blobs)
    conn.execute(insert(messages).values(
        id=message_id, tenant_id=doc.tenant_id, direction=IN, state=STATE_RECEIVED,
        as4_message_id=doc.as4_message_id, conversation_id=doc.conversation_id, instance_id=doc.instance_id,
        sender=doc.sender, receiver=doc.receiver, document_type=doc.document_type, process=doc.process,
        document_sha256=document_sha, valid=None, duplicate_of=duplicate_of, created_at=now, updated_at=now,
        attempts=0,
    ))
    conn.execute(insert(evidence), [
        {"id": str(uuid.uuid4()), "message_id": message_id, "kind": kind, "payload_sha256": sha,
         "media_type": media_type, "created_at": now}
        for kind, sha, media_type in (("sbd", sbd_sha, "application/xml"),
                                      ("as4-message", raw_sha, doc.raw_content_type),
                                      ("receipt", receipt_sha, "application/soap+xml"))])
    detail: dict[str, Any] = {"as4_message_id": doc.as4_message_id, "sender": doc.sender, "receiver": doc.receiver}
    if duplicate_of:
        detail["duplicate_of"] = duplicate_of
    new_events = [{"message_id": message_id, "at": now, "kind": "received", "detail": detail}]
    if duplicate_of:
        new_events.append({"message_id": message_id, "at": now, "kind": "duplicate-business-document",
                           "detail": {"instance_id": doc.instance_id, "first_message": duplicate_of}})
    conn.execute(insert(events), new_events)
    return Recorded(message_id, doc.receipt, False, duplicate_of)


def record_rejection(engine: Engine, detail: dict[str, Any]) -> None:
    """An inbound message we refused: only an event, no message, payload or evidence."""
    with engine.begin() as conn:
        add_event(conn, None, "inbound-rejected", detail)


# --- the tenant's inbox -----------------------------------------------------------------------


def inbox_item(row) -> dict[str, Any]:
    return {
        "id": row.id,
        "sender": row.sender,
        "receiver": row.receiver,
        "document_type": row.document_type,
        "process": row.process,
        "as4_message_id": row.as4_message_id,
        "instance_id": row.instance_id,
        "received_at": row.created_at.isoformat(),
        "state": row.state,
        "valid": row.valid,
    }


def acknowledge(engine: Engine, tenant_id: str, message_id: str) -> Any | None:
    """Mark a received document as taken over by the customer (idempotent)."""
    with engine.begin() as conn:
        row = get_message(conn, tenant_id, message_id)
        if row is None:
            return None
        if row.state != STATE_ACKNOWLEDGED:
            now = _now()
            conn.execute(update(messages).where(messages.c.id == message_id)
                         .values(state=STATE_ACKNOWLEDGED, acked_at=now, updated_at=now))
            add_event(conn, message_id, "acknowledged", None, now)
        return get_message(conn, tenant_id, message_id)
