"""Persist before acknowledge, under fire: a real `sendgw serve` (two server processes) is SIGKILLed
at random points while an independent AS4 sender (the PyPI `as4` library) pushes 200 messages and
retries every message that has no verified receipt yet. After the final restart, every message that
got a receipt is in the store exactly once, with its document, and the receipt we handed out is the
one stored as evidence: no receipt was ever given for a document that is not stored."""

from __future__ import annotations

import asyncio
import collections
import random
import time
import uuid

import aiohttp
import pytest
from lxml import etree
from sqlalchemy import and_, func, select

from gateway.identifiers import ParticipantId
from gateway.store.participants import add_participant
from gateway.store.payloads import PayloadStore
from gateway.store.schema import evidence, messages
from gateway.store.tenants import create_tenant
from tests.gateway.server_process import ServerProcess, free_port, gateway_config, write_pki

as4 = pytest.importorskip("as4")
from as4 import AS4LocalPrivateKey  # noqa: E402
from as4.peppol import (  # noqa: E402
    BusdoxDocidQnsDocumentIdentifier,
    PeppolAS4MessageBuilderArgs,
    PeppolSendingExchange,
    create_peppol_external_party,
    create_peppol_internal_party,
)
from as4.profiles.peppol.profile import PeppolAS4Profile  # noqa: E402

DOC = ("urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##urn:cen.eu:en16931:2017#compliant"
       "#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1")
PROC = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
SENDER, HOSTED = "0192:810305062", "0192:923609016"
MESSAGES, CONCURRENCY, KILLS = 200, 8, 4

pytestmark = pytest.mark.slow


def c14n(xml: bytes) -> bytes:
    return etree.tostring(etree.fromstring(xml), method="c14n")


def build_messages(pki, invoice: bytes, n: int):
    local = create_peppol_internal_party("POP000099", pki.peer.cert, AS4LocalPrivateKey(pki.peer.key))
    remote = create_peppol_external_party("PNO000001", pki.us.cert)
    out = []
    for i in range(n):
        document = invoice.replace(b"<cbc:ID>Snippet1</cbc:ID>", b"<cbc:ID>CRASH-%04d</cbc:ID>" % i, 1)
        ex = PeppolSendingExchange(profile=PeppolAS4Profile, local_party=local, remote_party=remote)
        args = PeppolAS4MessageBuilderArgs(
            sender=SENDER, recipient=HOSTED,
            document_type_identifier=BusdoxDocidQnsDocumentIdentifier.from_identifier_value(DOC),
            document_identification_instance_identifier=str(uuid.uuid4()), process_identifier=PROC,
            c1_country_id="NO")
        headers, body = ex.build(document, args)
        out.append((ex, headers["Content-Type"], body, document))
    return out


async def test_sigkill_at_random_points_never_loses_an_acknowledged_message(
        tmp_path, db_url, engine, pki_dir, artefact_cache, trust_dir, shared_dir):
    pki = write_pki(pki_dir)
    tenant, token = create_tenant(engine, "Acme AS")
    add_participant(engine, ParticipantId.parse(HOSTED), tenant.name)
    invoice = (shared_dir / "conformance/peppol-bis-billing-3/3.0.21/examples/base-example.xml").read_bytes()
    assert b"<cbc:ID>Snippet1</cbc:ID>" in invoice
    outgoing = build_messages(pki, invoice, MESSAGES)

    port = free_port()
    config = gateway_config(tmp_path, db_url=db_url, pki=pki, port=port, artefact_cache=artefact_cache,
                            trust_dir=trust_dir, processes=2, run_worker=False)
    server = ServerProcess(config, port)
    await asyncio.to_thread(server.start)

    rng = random.Random()
    receipts: dict[int, bytes] = {}
    attempts = collections.Counter()
    failures = collections.Counter()
    pending: asyncio.Queue[int] = asyncio.Queue()
    for i in range(MESSAGES):
        pending.put_nowait(i)
    thresholds = sorted(rng.sample(range(15, MESSAGES - 15), KILLS))
    kills: list[int] = []

    async def sender(session: aiohttp.ClientSession):
        while len(receipts) < MESSAGES:
            try:
                i = pending.get_nowait()
            except asyncio.QueueEmpty:
                await asyncio.sleep(0.02)
                continue
            ex, content_type, body, _ = outgoing[i]
            attempts[i] += 1
            try:
                async with session.post(server.url + "/as4", data=body,
                                        headers={"Content-Type": content_type}) as resp:
                    status, answer = resp.status, await resp.read()
            except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as exc:
                failures[type(exc).__name__] += 1
                await asyncio.sleep(0.1)  # the server is down or restarting
                pending.put_nowait(i)
                continue
            if status == 200:
                ex.receive_signal(answer)  # raises unless the receipt is signed and proves our message
                assert ex.state == "acknowledged"
                receipts[i] = answer
            else:  # e.g. a request that reached a process while its database was going away
                failures[f"http-{status}"] += 1
                pending.put_nowait(i)

    async def killer():
        for threshold in thresholds:
            while len(receipts) < threshold:
                await asyncio.sleep(0.005)
            await asyncio.sleep(rng.uniform(0, 0.05))  # somewhere inside the next requests
            kills.append(len(receipts))
            server.kill()
            await asyncio.sleep(rng.uniform(0, 0.3))  # the sender sees refused connections meanwhile
            await asyncio.to_thread(server.start)

    started = time.monotonic()
    timeout = aiohttp.ClientTimeout(total=20)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        kill_task = asyncio.create_task(killer())
        await asyncio.wait_for(asyncio.gather(*(sender(session) for _ in range(CONCURRENCY))), 120)
        await kill_task
    elapsed = time.monotonic() - started

    # the final crash and restart: what is stored now is what survived every SIGKILL
    server.kill()
    await asyncio.to_thread(server.start)
    try:
        assert len(kills) == KILLS
        assert sum(failures.values()) > 0, "the kills must have hit requests in flight"
        store = PayloadStore("file", tmp_path / "payloads")
        with engine.connect() as conn:
            per_message = dict(conn.execute(
                select(messages.c.as4_message_id, func.count()).where(messages.c.direction == "in")
                .group_by(messages.c.as4_message_id)).all())
            stored = {row.as4_message_id: row for row in conn.execute(
                select(messages.c.as4_message_id, messages.c.document_sha256, evidence.c.payload_sha256)
                .join(evidence, and_(evidence.c.message_id == messages.c.id, evidence.c.kind == "receipt"))
                .where(messages.c.direction == "in"))}
            assert len(receipts) == MESSAGES
            for i, receipt in receipts.items():
                ex, _, _, document = outgoing[i]
                assert per_message.get(ex.message_id) == 1, f"message {i} stored {per_message.get(ex.message_id)} times"
                row = stored[ex.message_id]
                assert store.get(conn, row.payload_sha256) == receipt, "the receipt handed out is the stored one"
                assert c14n(store.get(conn, row.document_sha256)) == c14n(document)
            assert sum(per_message.values()) == MESSAGES  # nothing stored that nobody sent

        # and the tenant sees each document exactly once in the inbox, through the restarted server
        seen: list[str] = []
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as api:
            url = f"{server.url}/api/v1/inbox?limit=100"
            while url:
                async with api.get(url) as resp:
                    assert resp.status == 200
                    page = await resp.json()
                seen += [item["as4_message_id"] for item in page["items"]]
                url = page["next"] and f"{server.url}/api/v1/inbox?limit=100&cursor={page['next']}"
        assert sorted(seen) == sorted(outgoing[i][0].message_id for i in range(MESSAGES))
    finally:
        assert server.stop() == 0
    retried = sum(1 for n in attempts.values() if n > 1)
    stored_before = server.output().count("re-sent AS4 message")  # committed, but the receipt was lost
    print(f"\n{MESSAGES} messages in {elapsed:.1f} s, {len(kills)} SIGKILLs at {kills} receipts, "
          f"{retried} messages re-sent ({stored_before} had been stored before their receipt was lost), "
          f"failed attempts: {dict(failures)}")


@pytest.fixture
def pki_dir(tmp_path):
    return tmp_path / "pki"
