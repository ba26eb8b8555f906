"""After the receipt: validate each received document, store the report, notify the tenant.

Runs in the background so that the AS4 receipt is never held up by Schematron; the receipt is
about transport, and an invalid document is still received (flagged `valid: false`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import uuid

from sqlalchemy import and_, select, update

from gateway.polling import Waker, poll_forever
from gateway.store.db import run_db
from gateway.store.inbox import IN, inbox_item
from gateway.store.messages import add_event, add_evidence
from gateway.store.queue import claim_due
from gateway.store.schema import messages
from gateway.webhooks import enqueue
from validation.errors import ValidationEngineError, ValidationInputError

log = logging.getLogger("sendgw.inbound")
MAX_ENGINE_FAILURES = 3  # a document that keeps crashing or timing out a validation worker is flagged


def _report_of_failure(code: str, message: str, layer: str) -> dict:
    return {"valid": False, "rules": None, "artefacts": [], "warnings": [],
            "errors": [{"rule": code, "severity": "fatal", "message": message, "location": "/", "line": None,
                        "layer": layer}]}


class InboundProcessor:
    def __init__(self, engine, payloads, validation, *, batch: int = 16, poll_seconds: float = 0.5,
                 on_notify=None):
        self.engine, self.payloads, self.validation = engine, payloads, validation
        self.batch, self.poll = batch, poll_seconds
        self.owner = f"inbound-{uuid.uuid4().hex[:8]}"
        self.on_notify = on_notify
        self._waker = Waker()

    def wake(self) -> None:
        self._waker.wake()

    def _claim(self):
        now = dt.datetime.now(dt.timezone.utc)
        with self.engine.begin() as conn:
            ids = claim_due(conn, messages, states=["received", "acknowledged"], now=now, owner=self.owner,
                            lease=dt.timedelta(minutes=5), limit=self.batch,
                            extra_where=and_(messages.c.direction == IN, messages.c.valid.is_(None)))
            rows = list(conn.execute(select(messages.c.id, messages.c.document_sha256).where(messages.c.id.in_(ids))))
            return [(r.id, self.payloads.get(conn, r.document_sha256)) for r in rows]

    def _finish(self, message_id: str, report: dict) -> None:
        now = dt.datetime.now(dt.timezone.utc)
        with self.engine.begin() as conn:
            add_evidence(conn, self.payloads, message_id, "validation-report",
                         json.dumps(report, ensure_ascii=False).encode(), "application/json", now)
            conn.execute(update(messages).where(messages.c.id == message_id).values(
                valid=bool(report["valid"]), updated_at=now, lease_owner=None, lease_expires_at=None))
            add_event(conn, message_id, "validated",
                      {"valid": report["valid"], "rules": report.get("rules"), "errors": len(report["errors"])}, now)
            row = conn.execute(select(messages).where(messages.c.id == message_id)).first()
            enqueue(conn, row.tenant_id, "inbox.received", inbox_item(row), message_id, now)

    def _count_failure(self, message_id: str) -> int:
        """Count an engine failure on this document (in `attempts`); returns the count so far."""
        with self.engine.begin() as conn:
            conn.execute(update(messages).where(messages.c.id == message_id)
                         .values(attempts=messages.c.attempts + 1))
            return conn.execute(select(messages.c.attempts).where(messages.c.id == message_id)).scalar()

    async def _validate(self, document: bytes) -> dict:
        try:
            return await self.validation.validate(document)
        except ValidationInputError as exc:
            # Not a document type we have rules for, or not XML: received all the same, flagged.
            return _report_of_failure(exc.code, str(exc), "input")

    async def run_once(self) -> int:
        due = await run_db(self._claim)
        reports = await asyncio.gather(*(self._validate(doc) for _, doc in due), return_exceptions=True)
        for (message_id, _), report in zip(due, reports):
            if isinstance(report, ValidationEngineError):
                # a worker crashed or timed out on it: try again later, then flag it for good
                if await run_db(self._count_failure, message_id) < MAX_ENGINE_FAILURES:
                    log.error("validation of %s failed (will retry): %s", message_id, report)
                    continue
                report = _report_of_failure(report.code, str(report), "engine")
            elif isinstance(report, BaseException):
                # e.g. ArtefactError: the lease expires and the document is validated later
                log.error("validation of %s failed: %s", message_id, report)
                continue
            await run_db(self._finish, message_id, report)
        if due and self.on_notify:
            self.on_notify()
        return len(due)

    async def run(self) -> None:
        await poll_forever(self.run_once, self._waker, self.poll, log, "inbound processor")
