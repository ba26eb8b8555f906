"""POST /as4: the receiving access point's HTTP edge.

Order of work: read the body (spilling large ones to a temporary file) → the AS4 core verifies,
decrypts and checks the message (off the event loop) → the sender's signing certificate path is
checked for revocation (CRL/OCSP fetches on the event loop, EBMS:0101 when revoked, [revocation]
soft_fail decides when its status is unknown) → the final recipient must be a participant
we host that accepts the document type (else EBMS:0004 PEPPOL:NOT_SERVICED) → the document, the
raw message and our signed receipt are committed together → only then is the receipt sent.
Every rejection is answered with a signed ebMS error signal and recorded in the event log only.
A re-sent MessageId gets the stored receipt when its signed digests are the same (a retry), else
EBMS:0004 DUPLICATE_MESSAGE_ID. An ebMS test message (test service/action) gets a receipt and is
neither stored nor delivered (ebMS 3 Core; memo §2.3).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiohttp import web

from certs.trust import CertificateError
from gateway.as4 import (
    SIGNAL_CONTENT_TYPE,
    Blob,
    EbmsError,
    Limits,
    ReceivedMessage,
    SignedReference,
    build_error_signal,
    build_receipt,
    duplicate,
    not_serviced,
    parse_signal,
    receive_user_message,
    same_message,
)
from gateway.as4.errors import failed_authentication
from gateway.identifiers import DocumentTypeId, IdentifierError, ParticipantId
from gateway.sbdh import SbdhError
from gateway.services import services
from gateway.store.db import run_db
from gateway.store.inbox import InboundDocument, Recorded, record_inbound, record_rejection, recorded_before
from gateway.store.participants import find_participant

log = logging.getLogger("sendgw.inbound")

_crypto_pool = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="sendgw-as4")
CHUNK = 1 << 16


def limits_from(settings) -> Limits:
    a = settings.as4
    return Limits(max_message_bytes=a.max_message_bytes, max_soap_bytes=a.max_soap_bytes, max_parts=a.max_parts,
                  max_decompressed_bytes=a.max_decompressed_bytes, spill_bytes=a.spill_bytes)


async def _read_body(request: web.Request, limits: Limits, tmp_dir: Path) -> bytes | Path:
    """The request body in memory, or in a temporary file once it passes `spill_bytes`."""
    if request.content_length is not None and request.content_length > limits.max_message_bytes:
        raise EbmsError("EBMS:0007", f"message larger than {limits.max_message_bytes} bytes", check="message-size",
                        http_status=413)
    buf = bytearray()
    fh = None
    path = None
    size = 0
    try:
        while chunk := await request.content.read(CHUNK):
            size += len(chunk)
            if size > limits.max_message_bytes:
                raise EbmsError("EBMS:0007", f"message larger than {limits.max_message_bytes} bytes",
                                check="message-size", http_status=413)
            if fh is None and len(buf) + len(chunk) > limits.spill_bytes:
                tmp_dir.mkdir(parents=True, exist_ok=True)
                fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="as4-in-")
                fh, path = os.fdopen(fd, "wb"), Path(name)
                fh.write(buf)
                buf.clear()
            if fh is not None:
                fh.write(chunk)
            else:
                buf += chunk
    except BaseException:
        if fh is not None:
            fh.close()
            path.unlink(missing_ok=True)
        raise
    if fh is not None:
        fh.close()
        return path
    return bytes(buf)


def _signal_response(svc, error: EbmsError, now: dt.datetime) -> web.Response:
    ap = svc.extra["ap"]
    body = build_error_signal(error, message_id=f"{uuid.uuid4()}@{ap.seat_id.lower()}", timestamp=now,
                              signing_key=ap.key, signing_cert=ap.certificate,
                              ref_to_message_id=error.ref_to_message_id)
    if error.http_status not in (200, None):
        status = error.http_status  # e.g. 413 for a message above the size cap
    elif error.is_not_serviced:
        status = svc.settings.as4.not_serviced_http_status
    else:
        status = svc.settings.as4.error_http_status
    return web.Response(status=status, body=body, headers={"Content-Type": SIGNAL_CONTENT_TYPE})


def _receipt_references(receipt: bytes) -> list[SignedReference]:
    """The sender's signed references acknowledged by a receipt we built (its NRI copies)."""
    return parse_signal(receipt, check_certificate=None).receipt_references


def _check_same_message(recorded: Recorded, refs: list[SignedReference], message_id: str) -> Recorded:
    """A recorded MessageId answers with its stored receipt only for a retry of the same message
    (same signed digests); a conflicting reuse of the MessageId is refused (EBMS:0004)."""
    if not same_message(_receipt_references(recorded.receipt), refs):
        raise duplicate(message_id)
    return recorded


# Longest values the messages table stores (String(255) columns; PostgreSQL enforces the length).
_MAX_STORED = 255


def _stored_length(value: str | None, what: str, code: str, check: str, message_id: str) -> None:
    if value is not None and len(value) > _MAX_STORED:
        raise EbmsError(code, f"{what} is {len(value)} characters long; this access point accepts at most "
                        f"{_MAX_STORED}", check=check, ref_to_message_id=message_id)


def _payload(blob: Blob) -> bytes | Path:
    """A blob for the payload store: its temp file when it has one (large payloads are never read
    into memory here), else its bytes."""
    return blob.path if blob.path is not None else blob.read_bytes()


def _receive(svc, body: bytes | Path, content_type: str, now: dt.datetime,
             keep: list) -> tuple[ReceivedMessage, list]:
    """CPU-bound, run in a thread: verify and decrypt the message; returns it (appended to `keep`,
    which the caller closes) with the sender certificate's trust path for the revocation check."""
    ap = svc.extra["ap"]
    settings = svc.settings
    received = receive_user_message(body, content_type, our_key=ap.key, our_cert=ap.certificate, trust=ap.ap_trust,
                                    now=now, limits=limits_from(settings),
                                    tmp_dir=settings.path(settings.as4.tmp_dir))
    keep.append(received)
    return received, ap.ap_trust.verify(received.signer_certificate, at=now)


async def _check_revocation(svc, received: ReceivedMessage, path: list, now: dt.datetime) -> None:
    """A revoked sender certificate (or, with hard fail, one of unknown status) is EBMS:0101."""
    checker = svc.extra.get("revocation")
    if checker is None:
        return
    try:
        await checker(path, now)
    except CertificateError as exc:
        raise failed_authentication(f"signing certificate rejected: {exc}",
                                    f"certificate-{exc.code}").with_ref(received.message_id) from exc


def _process(svc, received: ReceivedMessage, body: bytes | Path, content_type: str, now: dt.datetime,
             keep: list) -> InboundDocument | Recorded | bytes:
    """CPU-bound part, run in a thread: check hosting, build the receipt. A verified re-send of a
    recorded MessageId yields its stored outcome instead; an ebMS test message yields just a
    receipt (bytes): it is acknowledged but not delivered. Temp files the returned document refers
    to are appended to `keep`; the caller closes them once recorded."""
    ap = svc.extra["ap"]
    settings = svc.settings
    hdr, sb = received.header, received.sbdh
    if received.is_test_message:  # ebMS 3 Core test service/action: receipt, no delivery
        return build_receipt(hdr.message_id, received.reference_xml,
                             message_id=f"{uuid.uuid4()}@{ap.seat_id.lower()}", timestamp=now,
                             signing_key=ap.key, signing_cert=ap.certificate)
    _stored_length(hdr.message_id, "eb:MessageId", "EBMS:0009", "message-id", hdr.message_id)
    _stored_length(hdr.conversation_id, "eb:ConversationId", "EBMS:0009", "conversation-id", hdr.message_id)
    sender = f"{sb.sender_authority}::{sb.sender}" if sb else (hdr.original_sender or "")
    _stored_length(sender, "the SBDH sender identifier", "EBMS:0003", "identifiers", hdr.message_id)
    try:
        receiver = ParticipantId.parse(f"{sb.receiver_authority}::{sb.receiver}" if sb else hdr.final_recipient)
        doctype = DocumentTypeId.parse(hdr.action)
    except IdentifierError as exc:
        raise EbmsError("EBMS:0003", f"unusable receiver or document type: {exc}", check="identifiers",
                        ref_to_message_id=hdr.message_id) from exc
    with svc.engine.connect() as conn:
        before = recorded_before(conn, svc.payloads, hdr.message_id)
        if before is not None:  # a re-sent message: the same receipt again, nothing new stored
            return _check_same_message(before, received.signed_references, hdr.message_id)
        hosted = find_participant(conn, receiver)
    if hosted is None:
        raise not_serviced(f"participant {receiver} is not served by this access point", hdr.message_id)
    if not hosted.accepts(doctype):
        raise not_serviced(f"participant {receiver} does not accept document type {doctype} here",
                           hdr.message_id)
    try:
        document = received.business_document(settings.path(settings.as4.tmp_dir))
    except SbdhError as exc:  # checked by the core, but the cut-out is byte-based (e.g. UTF-16 SBD)
        raise EbmsError("EBMS:0004", f"invalid SBDH: {exc.message}", check=f"sbdh-{exc.code}",
                        ref_to_message_id=hdr.message_id) from exc
    keep.append(document)
    receipt = build_receipt(hdr.message_id, received.reference_xml,
                            message_id=f"{uuid.uuid4()}@{ap.seat_id.lower()}", timestamp=now,
                            signing_key=ap.key, signing_cert=ap.certificate)
    return InboundDocument(
        tenant_id=hosted.tenant_id, as4_message_id=hdr.message_id, conversation_id=hdr.conversation_id,
        instance_id=sb.instance_identifier if sb else None, sender=sender.lower(), receiver=str(receiver),
        document_type=str(doctype), process=f"{hdr.service_type}::{hdr.service}" if hdr.service_type else hdr.service,
        sbd=_payload(received.payload), document=_payload(document), raw_message=body,
        raw_content_type=content_type, receipt=receipt)


async def as4_endpoint(request: web.Request) -> web.StreamResponse:
    svc = services(request.app)
    if svc.extra.get("ap") is None:
        raise web.HTTPServiceUnavailable(reason="AS4 is not configured on this gateway ([ap] section)")
    now = dt.datetime.now(dt.timezone.utc)
    loop = asyncio.get_running_loop()
    limits = limits_from(svc.settings)
    body: bytes | Path = b""
    keep: list = []  # the received message and its temp files, closed once it is recorded
    try:
        body = await _read_body(request, limits, svc.settings.path(svc.settings.as4.tmp_dir))
        content_type = request.headers.get("Content-Type", "")
        received, path = await loop.run_in_executor(_crypto_pool, _receive, svc, body, content_type, now, keep)
        await _check_revocation(svc, received, path, now)
        doc = await loop.run_in_executor(_crypto_pool, _process, svc, received, body, content_type, now, keep)
        if isinstance(doc, bytes):
            log.info("ebMS test message acknowledged, not delivered")
            return web.Response(status=200, body=doc, headers={"Content-Type": SIGNAL_CONTENT_TYPE})
        # record_inbound writes and fsyncs the payload files first, then commits the rows
        recorded = doc if isinstance(doc, Recorded) else await run_db(record_inbound, svc.engine, svc.payloads, doc)
        if recorded.duplicate_message and isinstance(doc, InboundDocument):
            # the same MessageId was committed concurrently: only a retry of the same message gets its receipt
            _check_same_message(recorded, _receipt_references(doc.receipt), doc.as4_message_id)
    except EbmsError as error:
        log.info("rejected inbound AS4 message %s: %s", error.ref_to_message_id, error)
        await run_db(record_rejection, svc.engine, {
            "as4_message_id": error.ref_to_message_id, "code": error.code, "check": error.check,
            "reason": error.reason, "remote": request.remote})
        return _signal_response(svc, error, now)
    finally:
        for item in keep:
            item.close()
        if isinstance(body, Path):
            body.unlink(missing_ok=True)
    if recorded.duplicate_message:
        log.info("re-sent AS4 message: answered with the receipt stored for message %s", recorded.message_id)
    else:
        log.info("received AS4 message %s from %s for %s: stored as message %s%s", doc.as4_message_id, doc.sender,
                 doc.receiver, recorded.message_id,
                 f" (duplicate business document of {recorded.duplicate_of})" if recorded.duplicate_of else "")
        processor = svc.extra.get("inbound")
        if processor is not None:
            processor.wake()
    return web.Response(status=200, body=recorded.receipt, headers={"Content-Type": SIGNAL_CONTENT_TYPE})
