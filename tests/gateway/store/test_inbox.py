import concurrent.futures
import uuid

import pytest
from sqlalchemy import func, select

from gateway.store.inbox import InboundDocument, acknowledge, record_inbound, record_rejection
from gateway.store.messages import InvalidCursor, list_messages
from gateway.store.payloads import PayloadStore
from gateway.store.schema import events, evidence, messages
from gateway.store.tenants import create_tenant


@pytest.fixture
def store(tmp_path):
    return PayloadStore("file", tmp_path / "payloads")


def doc(tenant_id, msg_id=None, instance_id=None, body=b"<Invoice/>"):
    return InboundDocument(
        tenant_id=tenant_id, as4_message_id=msg_id or f"{uuid.uuid4()}@sender", conversation_id="c1",
        instance_id=instance_id or str(uuid.uuid4()), sender="iso6523-actorid-upis::0192:810305062",
        receiver="iso6523-actorid-upis::0192:923609016", document_type="doc", process="proc",
        sbd=b"<StandardBusinessDocument>" + body + b"</StandardBusinessDocument>", document=body,
        raw_message=b"--mime--" + body, raw_content_type="multipart/related", receipt=b"<Receipt>" + body + b"</Receipt>")


def count(engine, table):
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def test_record_then_duplicate_returns_same_receipt(engine, store):
    tenant, _ = create_tenant(engine, "T")
    d = doc(tenant.id)
    first = record_inbound(engine, store, d)
    assert not first.duplicate_message and first.duplicate_of is None
    again = record_inbound(engine, store, doc(tenant.id, msg_id=d.as4_message_id, body=b"<Other/>"))
    assert again.duplicate_message
    assert again.message_id == first.message_id
    assert again.receipt == first.receipt == d.receipt
    assert count(engine, messages) == 1
    assert count(engine, evidence) == 3  # sbd, raw message, receipt


def test_concurrent_duplicates_store_once(engine, store):
    tenant, _ = create_tenant(engine, "T")
    d = doc(tenant.id)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: record_inbound(engine, store, d), range(8)))
    assert len({r.message_id for r in results}) == 1
    assert sum(not r.duplicate_message for r in results) == 1
    assert {r.receipt for r in results} == {d.receipt}
    assert count(engine, messages) == 1


def test_same_instance_identifier_is_flagged(engine, store):
    tenant, _ = create_tenant(engine, "T")
    first = record_inbound(engine, store, doc(tenant.id, instance_id="abc"))
    second = record_inbound(engine, store, doc(tenant.id, instance_id="abc"))
    assert not second.duplicate_message
    assert second.duplicate_of == first.message_id
    with engine.connect() as conn:
        kinds = [r.kind for r in conn.execute(select(events.c.kind).where(events.c.message_id == second.message_id))]
    assert "duplicate-business-document" in kinds


def test_inbox_pages_newest_first_and_isolated(engine, store):
    a, _ = create_tenant(engine, "A")
    b, _ = create_tenant(engine, "B")
    ids = [record_inbound(engine, store, doc(a.id)).message_id for _ in range(5)]
    record_inbound(engine, store, doc(b.id))
    seen, cursor = [], None
    while True:
        rows, cursor = list_messages(engine, a.id, limit=2, cursor=cursor)
        seen += [r.id for r in rows]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    assert len(list_messages(engine, b.id)[0]) == 1
    with pytest.raises(InvalidCursor):
        list_messages(engine, a.id, cursor="garbage!")


def test_acknowledge_is_idempotent_and_tenant_scoped(engine, store):
    a, _ = create_tenant(engine, "A")
    b, _ = create_tenant(engine, "B")
    mid = record_inbound(engine, store, doc(a.id)).message_id
    assert acknowledge(engine, b.id, mid) is None
    assert acknowledge(engine, a.id, mid).state == "acknowledged"
    assert acknowledge(engine, a.id, mid).state == "acknowledged"
    assert [r.id for r in list_messages(engine, a.id, state="acknowledged")[0]] == [mid]
    assert list_messages(engine, a.id, state="received")[0] == []
    assert acknowledge(engine, a.id, "not-a-uuid") is None


def test_rejection_leaves_only_an_event(engine):
    record_rejection(engine, {"as4_message_id": "x", "code": "EBMS:0004"})
    assert count(engine, messages) == 0
    assert count(engine, events) == 1
