"""The outbox worker (corner 2): lease queued documents, find the receiver, send over AS4.

For each leased document: resolve the endpoint (a static `[routes]` entry, else SML/SMP
discovery), build the SBDH + AS4 message once and store it as evidence *before* the first POST
(every retry, also by another worker after a crash, re-sends exactly those bytes with the same
MessageId), POST it, verify the signed receipt (signature + NRI digests), store it, mark the
document delivered. Failures are classified:

- transient (connect error, timeout, HTTP 5xx/408/429 without a signal, DNS/SMP unavailable or a
  bad SMP answer, an unexpected internal error; an open circuit breaker only reschedules) →
  `retrying` with exponential backoff and jitter until the deadline, then `failed`;
- permanent (an ebMS error signal, an invalid receipt, another 4xx) → `failed` at once;
- not served (not registered in SML/SMP, or `EBMS:0004 PEPPOL:NOT_SERVICED`) → `undeliverable`,
  which is where the B2C fallback takes over.
"""

from __future__ import annotations

import asyncio
import codecs
import datetime as dt
import hashlib
import json
import logging
import random
import re
import ssl
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from gateway.as4 import EbmsError, SignedReference, build_user_message, verify_receipt
from gateway.discovery.errors import DiscoveryError, DiscoveryUnavailable, NotRegistered
from gateway.identifiers import DocumentTypeId, ParticipantId, ProcessId
from gateway.sbdh import build_sbd
from gateway.store.db import run_db
from gateway.store.messages import add_event, add_evidence, evidence_of
from gateway.store.outbox import (
    DELIVERED,
    FAILED,
    RETRYING,
    UNDELIVERABLE,
    add_evidence_many,
    claim,
    finish_attempt,
    set_state,
    start_attempt,
)
from gateway.routing import ROUTING, has_fallback
from gateway.webhooks import backoff, enqueue

log = logging.getLogger("sendgw.outbound")
MAX_RESPONSE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Route:
    url: str
    certificate: x509.Certificate
    seat_id: str
    source: str  # "static" or "smp"


@dataclass
class Outcome:
    kind: str  # delivered | transient | permanent | not-serviced
    reason: str
    http_status: int | None = None
    receipt: bytes | None = None
    signal: bytes | None = None


@dataclass
class Answer:
    """What the endpoint answered over HTTP, before its signal is verified."""

    status: int
    body: bytes
    content_type: str | None


class CircuitBreaker:
    """Per endpoint: after `threshold` consecutive transient failures, hold sends for `seconds`."""

    def __init__(self, threshold: int, seconds: float, clock: Callable[[], float] = time.monotonic):
        self.threshold, self.seconds, self.clock = threshold, seconds, clock
        self._failures: dict[str, int] = {}
        self._open_until: dict[str, float] = {}

    def open_for(self, url: str) -> float:
        """Seconds the breaker for `url` stays open (0 when closed)."""
        return max(0.0, self._open_until.get(url, 0.0) - self.clock())

    def record(self, url: str, ok: bool) -> None:
        if ok:
            self._failures.pop(url, None)
            self._open_until.pop(url, None)
            return
        n = self._failures.get(url, 0) + 1
        self._failures[url] = n
        if n >= self.threshold:
            self._open_until[url] = self.clock() + self.seconds


_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
         (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_XML_DECLARATION = re.compile(r"^<\?xml[^>]*\?>")
_ENCODING_IN_DECLARATION = re.compile(rb"""^<\?xml\s[^>]*?encoding\s*=\s*["']([A-Za-z][A-Za-z0-9._-]*)["']""")
_DECLARED_ENCODING = re.compile(r"""(\sencoding\s*=\s*)(["'])[^"']*\2""")


def utf8_document(document: bytes) -> bytes:
    """The business document as UTF-8 without a byte order mark.

    The SBD around it (and so the Peppol payload) is UTF-8, while the validator accepts a BOM and
    any declared encoding. A UTF-8 document without a BOM (the usual case) is returned unchanged;
    otherwise the text is re-encoded and the declaration's encoding set to UTF-8."""
    for bom, encoding in _BOMS:
        if document.startswith(bom):
            text = document[len(bom):].decode(encoding)
            break
    else:
        declared = _ENCODING_IN_DECLARATION.match(document[:2048])
        encoding = declared.group(1).decode("ascii") if declared else "utf-8"
        if codecs.lookup(encoding).name == "utf-8":
            return document
        text = document.decode(encoding)
    declaration = _XML_DECLARATION.match(text)
    if declaration:
        fixed = _DECLARED_ENCODING.sub(r'\1"UTF-8"', declaration.group(0), count=1)
        text = fixed + text[declaration.end():]
    return text.encode("utf-8")


def _fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def _refs_to_json(refs: list[SignedReference]) -> list[dict[str, Any]]:
    return [{"uri": r.uri, "digest_method": r.digest_method, "digest_value": r.digest_value,
             "transforms": list(r.transforms)} for r in refs]


def _refs_from_json(items: list[dict[str, Any]]) -> list[SignedReference]:
    return [SignedReference(i["uri"], i["digest_method"], i["digest_value"], tuple(i["transforms"])) for i in items]


class OutboundWorker:
    def __init__(self, engine, payloads, settings, identity, discovery=None, *,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
                 rng: random.Random | None = None):
        self.engine, self.payloads, self.settings = engine, payloads, settings
        self.cfg = settings.outbound
        self.identity, self.discovery = identity, discovery
        self.clock, self.rng = clock, rng or random.Random()
        self.owner = f"outbound-{uuid.uuid4().hex[:12]}"
        self.breaker = CircuitBreaker(self.cfg.breaker_failures, self.cfg.breaker_seconds)
        self._endpoint_slots: dict[str, asyncio.Semaphore] = {}
        self._inflight: set[asyncio.Task] = set()
        self._wake = asyncio.Event()
        self._stopping = False
        self._session: aiohttp.ClientSession | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def _ssl(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.cfg.tls_ca_file:
            ctx.load_verify_locations(self.settings.path(self.cfg.tls_ca_file))
        return ctx

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(ssl=self._ssl(), limit=self.cfg.concurrency * 2)
        async with aiohttp.ClientSession(connector=connector) as session:
            self._session = session
            try:
                while True:
                    try:
                        started = 0 if self._stopping else await self.run_once()
                    except Exception:
                        log.exception("outbound worker iteration failed")
                        started = 0
                    if started == 0:
                        self._wake.clear()
                        try:
                            await asyncio.wait_for(self._wake.wait(), 0.5)
                        except asyncio.TimeoutError:
                            pass
            finally:
                for task in list(self._inflight):
                    task.cancel()
                await asyncio.gather(*self._inflight, return_exceptions=True)

    async def run_once(self) -> int:
        """Lease as many due documents as there is room for and start sending them."""
        room = self.cfg.concurrency - len(self._inflight)
        # claim in batches: with documents in flight, wait until a quarter of the slots are free
        if room <= 0 or (self._inflight and room < max(1, self.cfg.concurrency // 4)):
            return 0
        rows = await run_db(claim, self.engine, self.owner, dt.timedelta(seconds=self.cfg.lease_seconds), room,
                            self.clock())
        documents: dict[str, bytes] = {}
        fresh = [r for r in rows if r.attempts == 0]  # documents tried before may re-send stored bytes
        if fresh:
            try:
                documents = await run_db(self._load_documents, fresh)
            except Exception:  # e.g. a missing payload file: each document then fails on its own
                log.exception("loading a batch of %d documents failed", len(fresh))
        for row in rows:
            task = asyncio.create_task(self._guarded(row, documents.get(row.document_sha256)))
            self._inflight.add(task)
            task.add_done_callback(self._finished)
        return len(rows)

    def _finished(self, task: asyncio.Task) -> None:
        """A document is done: free its slot and let the loop lease more at once (not at the next poll)."""
        self._inflight.discard(task)
        self._wake.set()

    async def stop_claiming(self, grace_seconds: float) -> None:
        """Graceful shutdown: lease nothing new and wait up to `grace_seconds` for the documents in
        flight; whatever is still in flight then keeps its lease and is resumed after it expires."""
        self._stopping = True
        self.wake()
        try:
            await asyncio.wait_for(self.drain(), grace_seconds)
        except asyncio.TimeoutError:
            log.warning("%d document(s) still in flight at shutdown; resumed after their lease expires",
                        len(self._inflight))

    async def drain(self) -> None:
        """Wait for the documents in flight (tests, graceful shutdown)."""
        while self._inflight:
            await asyncio.gather(*list(self._inflight), return_exceptions=True)

    async def _guarded(self, row, document: bytes | None = None) -> None:
        try:
            await self.process(row, document)
        except asyncio.CancelledError:
            raise
        except Exception:  # the lease expires and another attempt follows
            log.exception("sending %s failed unexpectedly", row.id)

    # -- one document ----------------------------------------------------------------------------

    async def resolve(self, row) -> Route:
        """Where to send: a static `[routes]` entry or SML/SMP discovery (both in Discovery)."""
        if self.discovery is None:
            raise DiscoveryUnavailable("no-discovery", "SML/SMP discovery is not configured")
        ep = await self.discovery.lookup(ParticipantId.parse(row.receiver), DocumentTypeId.parse(row.document_type),
                                         ProcessId.parse(row.process))
        return Route(ep.url, ep.certificate, ep.seat_id, "static" if ep.smp_signer is None else "smp")

    def _load_documents(self, rows) -> dict[str, bytes]:
        """The business documents of a claimed batch, read over one connection."""
        with self.engine.connect() as conn:
            return {sha: self.payloads.get(conn, sha) for sha in {r.document_sha256 for r in rows}}

    def _prepare_attempt(self, row, route: Route, number: int,
                         document: bytes | None = None) -> tuple[bytes, str, list[SignedReference], int]:
        """The AS4 request for this document and receiver certificate, built once and stored as
        evidence, and the attempt row, in one transaction (fewer round trips per document).

        Only a document tried before (attempts > 0, interrupted attempts included) can have a stored
        request; then those exact bytes are re-sent. Payload files are written and fsynced before the
        transaction, so no fsync holds the database's write lock."""
        fp = _fingerprint(route.certificate)
        now = self.clock()
        if row.attempts > 0:
            with self.engine.begin() as conn:
                for meta_ev in reversed(evidence_of(conn, row.id, "as4-request-meta")):
                    meta = json.loads(self.payloads.get(conn, meta_ev.payload_sha256))
                    if meta["receiver_certificate_sha256"] == fp:
                        body = self.payloads.get(conn, meta["body_sha256"])
                        attempt_id = start_attempt(conn, row.id, number, route.url, now)
                        return body, meta["content_type"], _refs_from_json(meta["signed_references"]), attempt_id
        if document is None:
            document = self._load_documents([row])[row.document_sha256]
        process = ProcessId.parse(row.process)
        doctype = DocumentTypeId.parse(row.document_type)
        # the SBDH names the same schemes as eb:Action / eb:Service@type (receivers cross-check them)
        sbd = build_sbd(utf8_document(document), sender=ParticipantId.parse(row.sender).value,
                        receiver=ParticipantId.parse(row.receiver).value,
                        document_id=doctype.value, document_id_scheme=doctype.scheme,
                        process_id=process.value, process_scheme=process.scheme, country_c1="NO",
                        instance_identifier=row.instance_id, creation_date_time=now)
        out = build_user_message(
            sbd, message_id=row.as4_message_id, timestamp=now, from_party=self.identity.seat_id,
            to_party=route.seat_id, service=process.value, service_type=process.scheme,
            action=str(doctype),
            original_sender=ParticipantId.parse(row.sender).value,
            final_recipient=ParticipantId.parse(row.receiver).value,
            signing_key=self.identity.key, signing_cert=self.identity.certificate,
            receiver_cert=route.certificate, conversation_id=row.conversation_id,
            tmp_dir=self.settings.path(self.settings.as4.tmp_dir))
        try:
            body = out.read_bytes()
        finally:
            out.body.close()
        body_sha = hashlib.sha256(body).hexdigest()
        meta = json.dumps({"content_type": out.content_type, "body_sha256": body_sha, "endpoint_url": route.url,
                           "receiver_certificate_sha256": fp,
                           "signed_references": _refs_to_json(out.signed_references)}).encode()
        items = [("as4-request", body, out.content_type), ("as4-request-meta", meta, "application/json")]
        self.payloads.stage([body, meta])
        with self.engine.begin() as conn:
            add_evidence_many(conn, self.payloads, row.id, items, now)
            attempt_id = start_attempt(conn, row.id, number, route.url, now)
        return body, out.content_type, list(out.signed_references), attempt_id

    async def _post(self, route: Route, body: bytes, content_type: str) -> Outcome | Answer:
        """POST the stored request; an HTTP answer is judged later (off the event loop)."""
        if not route.url.startswith("https://") and not (self.cfg.allow_http and route.url.startswith("http://")):
            return Outcome("permanent", f"endpoint URL {route.url!r} is not https (set [outbound] allow_http for tests)")
        assert self._session is not None
        try:
            async with self._session.post(route.url, data=body, headers={"Content-Type": content_type},
                                          allow_redirects=False,
                                          timeout=aiohttp.ClientTimeout(total=self.cfg.http_timeout_seconds)) as resp:
                status = resp.status
                answer = await resp.content.read(MAX_RESPONSE_BYTES + 1)
                answer_type = resp.headers.get("Content-Type")
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return Outcome("transient", f"{type(exc).__name__}: {exc}"[:500])
        if len(answer) > MAX_RESPONSE_BYTES:
            return Outcome("permanent", "response larger than 4 MiB", status)
        return Answer(status, answer, answer_type)

    def _judge(self, status: int, answer: bytes, answer_type: str | None, route: Route, message_id: str,
               refs: list[SignedReference]) -> Outcome:
        try:
            verify_receipt(answer, route.certificate, message_id, refs, content_type=answer_type)
            if status >= 300:
                return Outcome("permanent", f"receipt with HTTP status {status}", status, receipt=answer)
            return Outcome("delivered", "receipt verified", status, receipt=answer)
        except EbmsError as exc:
            if exc.peer:
                # An error signal is final whether or not it was signed (it came over TLS from the
                # endpoint the signed SMP data named); the reason says when it was not signed.
                unsigned = "" if exc.authenticated else " (unsigned error signal)"
                if exc.is_not_serviced:
                    return Outcome("not-serviced", f"{exc.code} {exc.detail}{unsigned}", status, signal=answer)
                if "duplicate" in f"{exc.reason} {exc.detail} {exc.short_description}".lower():
                    return Outcome("delivered", f"receiver reports a duplicate ({exc.code}): it already has the "
                                                f"message{unsigned}", status, signal=answer)
                return Outcome("permanent", f"error signal {exc.code}: {exc.reason}{unsigned}", status, signal=answer)
            if status >= 500 or status in (408, 429):
                return Outcome("transient", f"HTTP {status} without a valid signal", status)
            if status >= 300:
                return Outcome("permanent", f"HTTP {status} without a valid signal", status)
            return Outcome("permanent", f"invalid receipt: {exc.code} {exc.reason}", status, signal=answer)

    async def process(self, row, document: bytes | None = None) -> None:
        number = row.attempts + 1
        now = self.clock()
        try:
            route = await self.resolve(row)
        except NotRegistered as exc:
            await run_db(self._record, row, number, None, Outcome("not-serviced", f"{exc.code}: {exc}"))
            return
        except (DiscoveryUnavailable, DiscoveryError) as exc:
            await run_db(self._record, row, number, None, Outcome("transient", f"{exc.code}: {exc}"))
            return
        except Exception as exc:
            await self._unexpected(row, number, None, None, exc)
            return
        wait = self.breaker.open_for(route.url)
        if wait > 0:
            await run_db(self._reschedule, row, now + dt.timedelta(seconds=wait),
                         f"circuit breaker open for {route.url}")
            return
        attempt_id: int | None = None
        try:
            body, content_type, refs, attempt_id = await run_db(self._prepare_attempt, row, route, number, document)
            slots = self._endpoint_slots.setdefault(route.url, asyncio.Semaphore(self.cfg.per_endpoint_concurrency))
            async with slots:
                answer = await self._post(route, body, content_type)
            # verifying the answer (CPU) and recording the outcome (database) share one trip to a thread
            outcome = await run_db(self._judge_and_record, row, number, route, answer, attempt_id, refs)
        except Exception as exc:
            await self._unexpected(row, number, route, attempt_id, exc)
            return
        self.breaker.record(route.url, outcome.kind != "transient")

    async def _unexpected(self, row, number: int, route: Route | None, attempt_id: int | None,
                          exc: Exception) -> None:
        """A bug or an unusable input (e.g. a receiver certificate the AS4 core cannot encrypt to): record
        it as a transient attempt with its reason, so backoff and the deadline apply instead of the
        document sitting in `sending` until its lease expires, again and again. If even recording
        fails (database down), the lease expiry is the fallback."""
        log.exception("sending %s failed unexpectedly", row.id)
        reason = f"internal error: {type(exc).__name__}: {exc}"[:500]
        await run_db(self._record, row, number, route, Outcome("transient", reason), attempt_id)

    # -- bookkeeping (database) --------------------------------------------------------------

    def _judge_and_record(self, row, number: int, route: Route, answer: Outcome | Answer, attempt_id: int,
                          refs: list[SignedReference]) -> Outcome:
        outcome = answer if isinstance(answer, Outcome) else self._judge(
            answer.status, answer.body, answer.content_type, route, row.as4_message_id, refs)
        self._record(row, number, route, outcome, attempt_id)
        return outcome

    def _reschedule(self, row, when: dt.datetime, reason: str) -> None:
        with self.engine.begin() as conn:
            set_state(conn, row.id, RETRYING, owner=self.owner, next_attempt_at=when)
            add_event(conn, row.id, "held", {"reason": reason})

    def _record(self, row, number: int, route: Route | None, outcome: Outcome, attempt_id: int | None = None) -> None:
        now = self.clock()
        self.payloads.stage([b for b in (outcome.receipt, outcome.signal) if b])  # fsync before the transaction
        with self.engine.begin() as conn:
            if attempt_id is None:
                attempt_id = start_attempt(conn, row.id, number, route.url if route else None, now)
            finish_attempt(conn, attempt_id, outcome.kind, http_status=outcome.http_status,
                           error=None if outcome.kind == "delivered" else outcome.reason, now=now)
            if outcome.receipt:
                add_evidence(conn, self.payloads, row.id, "receipt", outcome.receipt, "application/soap+xml", now)
            if outcome.signal:
                add_evidence(conn, self.payloads, row.id, "error-signal", outcome.signal, "application/soap+xml", now)
            common = {"attempts": number, "endpoint_url": route.url if route else row.endpoint_url}
            if outcome.kind == "delivered":
                state, values = DELIVERED, {"last_error": None, "next_attempt_at": None}
            elif outcome.kind == "not-serviced":
                # hand over to the B2C fallback when the tenant has one (gateway/routing.py)
                if has_fallback(conn, row.tenant_id, row.options):
                    state, values = ROUTING, {"last_error": outcome.reason, "next_attempt_at": now}
                else:
                    state, values = UNDELIVERABLE, {"last_error": outcome.reason, "next_attempt_at": None}
            elif outcome.kind == "permanent":
                state, values = FAILED, {"last_error": outcome.reason, "next_attempt_at": None}
            else:
                delay = backoff(number, self.cfg.first_retry_seconds, self.cfg.max_retry_seconds, self.rng)
                when = now + dt.timedelta(seconds=delay)
                if row.deadline_at is not None and when > row.deadline_at:
                    state, values = FAILED, {"last_error": f"deadline passed; last error: {outcome.reason}",
                                             "next_attempt_at": None}
                else:
                    state, values = RETRYING, {"last_error": outcome.reason, "next_attempt_at": when}
            if not set_state(conn, row.id, state, owner=self.owner, now=now, **common, **values):
                log.warning("lost the lease on %s before recording %s", row.id, outcome.kind)
                return
            add_event(conn, row.id, state, {"attempt": number, "reason": outcome.reason,
                                            "endpoint": common["endpoint_url"], "worker": self.owner}, now)
            if state != RETRYING or number == 1:
                enqueue(conn, row.tenant_id, "document.status",
                        {"id": row.id, "state": state, "receiver": row.receiver,
                         "as4_message_id": row.as4_message_id, "reason": values.get("last_error"),
                         "updated_at": now.isoformat()}, row.id, now)
