"""Tenant A against tenant B's data: B's ids answer exactly like unknown ids, B's lists, webhook and
routing are never visible or changed, and B's Idempotency-Keys do not collide with A's."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid

import pytest
from sqlalchemy import select

from gateway.identifiers import ParticipantId
from gateway.store.inbox import InboundDocument, record_inbound
from gateway.store.participants import add_participant
from gateway.store.payloads import payload_store_from
from gateway.store.schema import messages
from gateway.store.tenants import create_tenant

SELLER = "0192:123456785"


@pytest.fixture
def invoice(shared_dir):
    return (shared_dir / "conformance/ehf-billing-3/examples/Norwegian-example-1.xml").read_bytes()


def _inbound(engine, settings, tenant_id: str, instance_id: str = "instance-1") -> str:
    body = b"<Invoice>" + uuid.uuid4().hex.encode() + b"</Invoice>"
    doc = InboundDocument(
        tenant_id=tenant_id, as4_message_id=f"{uuid.uuid4()}@sender", conversation_id="c1",
        instance_id=instance_id, sender="iso6523-actorid-upis::0192:810305062",
        receiver="iso6523-actorid-upis::0192:923609016", document_type="doc", process="proc",
        sbd=b"<StandardBusinessDocument>" + body + b"</StandardBusinessDocument>", document=body,
        raw_message=b"--mime--" + body, raw_content_type="multipart/related", receipt=b"<Receipt/>")
    return record_inbound(engine, payload_store_from(settings), doc).message_id


@pytest.fixture
async def two_tenants(client, tenant, engine, settings, invoice):
    """A (no data) and B (an inbox message, a queued document, a webhook, a routing)."""
    _, auth_a = tenant
    b, token_b = create_tenant(engine, "Other AS")
    auth_b = {"Authorization": f"Bearer {token_b}"}
    add_participant(engine, ParticipantId.parse(SELLER), b.name)
    inbox_id = _inbound(engine, settings, b.id)
    resp = await client.post("/api/v1/documents", data=invoice, headers={**auth_b, "Idempotency-Key": "shared-key"})
    assert resp.status == 202, await resp.text()
    doc_id = (await resp.json())["id"]
    resp = await client.put("/api/v1/webhook", json={"url": "https://b.example/hook"}, headers=auth_b)
    assert resp.status == 200
    routing = {"b2c": ["print"], "channels": {"print": {"cost_nok": "9.00", "settings": {
        "outgoing_dir": str(settings.base_dir / "out"), "incoming_dir": str(settings.base_dir / "in")}}}}
    resp = await client.put("/api/v1/routing", json=routing, headers=auth_b)
    assert resp.status == 200, await resp.text()
    return auth_a, auth_b, inbox_id, doc_id


async def _answer(resp) -> tuple[int, bytes, str | None]:
    return resp.status, await resp.read(), resp.headers.get("Content-Type")


async def test_other_tenants_ids_answer_like_unknown_ids(client, two_tenants):
    auth_a, auth_b, inbox_id, doc_id = two_tenants
    unknown = str(uuid.uuid4())
    probes = [("GET", "/api/v1/inbox/{}"), ("GET", "/api/v1/inbox/{}/document"), ("POST", "/api/v1/inbox/{}/ack"),
              ("GET", "/api/v1/documents/{}"), ("GET", "/api/v1/documents/{}/pdf"),
              ("GET", "/api/v1/documents/{}/evidence/validation-report"),
              ("GET", "/api/v1/documents/{}/evidence/receipt"), ("HEAD", "/api/v1/documents/{}")]
    for method, template in probes:
        theirs = inbox_id if "/inbox/" in template else doc_id
        mine = await client.request(method, template.format(theirs), headers=auth_a)
        none = await client.request(method, template.format(unknown), headers=auth_a)
        assert mine.status == 404, (method, template)
        assert await _answer(mine) == await _answer(none), (method, template)
        # and B itself does see them (the probe hit real ids)
        if method != "POST" and "receipt" not in template:
            assert (await client.request(method, template.format(theirs), headers=auth_b)).status == 200, template


async def test_ack_by_another_tenant_changes_nothing(client, engine, two_tenants):
    auth_a, auth_b, inbox_id, _ = two_tenants
    assert (await client.post(f"/api/v1/inbox/{inbox_id}/ack", headers=auth_a)).status == 404
    details = await (await client.get(f"/api/v1/inbox/{inbox_id}", headers=auth_b)).json()
    assert details["state"] == "received" and details["acknowledged_at"] is None
    assert all(e["kind"] != "acknowledged" for e in details["events"])


async def test_duplicate_of_never_names_another_tenants_message(client, engine, settings, tenant, two_tenants):
    auth_a, _, inbox_id, _ = two_tenants
    mine = _inbound(engine, settings, tenant[0].id)  # the same SBDH InstanceIdentifier as B's message
    details = await (await client.get(f"/api/v1/inbox/{mine}", headers=auth_a)).json()
    assert details["duplicate_of"] is None
    assert inbox_id not in json.dumps(details)


async def test_inbound_and_outbound_ids_do_not_cross(client, two_tenants):
    _, auth_b, inbox_id, doc_id = two_tenants
    assert (await client.get(f"/api/v1/inbox/{doc_id}", headers=auth_b)).status == 404
    assert (await client.post(f"/api/v1/inbox/{doc_id}/ack", headers=auth_b)).status == 404
    assert (await client.get(f"/api/v1/documents/{inbox_id}", headers=auth_b)).status == 404


async def test_lists_show_only_your_own(client, two_tenants):
    auth_a, auth_b, inbox_id, doc_id = two_tenants
    for query in ("", "?state=received", "?limit=200"):
        assert await (await client.get(f"/api/v1/inbox{query}", headers=auth_a)).json() == {"items": [], "next": None}
    for query in ("", "?state=queued", f"?sender={SELLER}", "?receiver=0192:987654325"):
        resp = await client.get(f"/api/v1/documents{query}", headers=auth_a)
        assert await resp.json() == {"items": [], "next": None}, query
    assert [i["id"] for i in (await (await client.get("/api/v1/inbox", headers=auth_b)).json())["items"]] == [inbox_id]
    assert [i["id"] for i in (await (await client.get("/api/v1/documents", headers=auth_b)).json())["items"]] == [doc_id]


async def test_a_cursor_pointing_into_another_tenant_shows_nothing_of_theirs(client, engine, two_tenants):
    auth_a, _, inbox_id, doc_id = two_tenants
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(messages))}
    for path, mid in (("/api/v1/inbox", inbox_id), ("/api/v1/documents", doc_id)):
        # just after B's row: a page that would start right at it if tenants were not separated
        at = rows[mid].created_at.replace(tzinfo=dt.timezone.utc) + dt.timedelta(days=1)
        cursor = base64.urlsafe_b64encode(json.dumps([at.isoformat(), mid]).encode()).decode().rstrip("=")
        resp = await client.get(f"{path}?cursor={cursor}", headers=auth_a)
        assert resp.status == 200 and await resp.json() == {"items": [], "next": None}


async def test_webhook_and_routing_are_per_tenant(client, two_tenants):
    auth_a, auth_b, _, _ = two_tenants
    assert (await (await client.get("/api/v1/webhook", headers=auth_a)).json())["url"] is None
    assert (await client.delete("/api/v1/webhook", headers=auth_a)).status == 200
    assert (await (await client.get("/api/v1/webhook", headers=auth_b)).json())["url"] == "https://b.example/hook"
    mine = await (await client.get("/api/v1/routing", headers=auth_a)).json()
    assert mine["b2c"] == [] and mine["channels"] == {}
    assert (await client.put("/api/v1/routing", json={"b2c": []}, headers=auth_a)).status == 200
    theirs = await (await client.get("/api/v1/routing", headers=auth_b)).json()
    assert theirs["b2c"] == ["print"] and theirs["channels"]["print"]["cost_nok"] == "9.0000"


async def test_idempotency_keys_are_per_tenant_and_senders_must_be_yours(client, engine, two_tenants, invoice):
    auth_a, _, _, doc_id = two_tenants
    # A sends B's participant's invoice with B's key: refused as not-yours, never B's document or a 409
    resp = await client.post("/api/v1/documents", data=invoice, headers={**auth_a, "Idempotency-Key": "shared-key"})
    body = await resp.json()
    assert resp.status == 403 and body["error"]["code"] == "sender-not-yours", body
    assert doc_id not in json.dumps(body)
    unknown_sender = invoice.replace(b"123456785", b"923609016")
    other = await client.post("/api/v1/documents", data=unknown_sender, headers={**auth_a, "Idempotency-Key": "k2"})
    # a sender nobody hosts answers exactly like another tenant's
    assert other.status == 403, await other.text()
    assert (await other.json())["error"]["message"].replace("923609016", "123456785") == body["error"]["message"]
    with engine.connect() as conn:
        assert len(conn.execute(select(messages.c.id).where(messages.c.direction == "out")).all()) == 1


async def test_ids_in_upper_case_or_without_hyphens_find_your_own_and_never_theirs(client, two_tenants):
    auth_a, auth_b, inbox_id, doc_id = two_tenants
    for spelling in (str.upper, lambda i: i.replace("-", ""), lambda i: "urn:uuid:" + i):
        for path in (f"/api/v1/inbox/{spelling(inbox_id)}", f"/api/v1/inbox/{spelling(inbox_id)}/document",
                     f"/api/v1/documents/{spelling(doc_id)}",
                     f"/api/v1/documents/{spelling(doc_id)}/evidence/validation-report"):
            assert (await client.get(path, headers=auth_b)).status == 200, path
            assert (await client.get(path, headers=auth_a)).status == 404, path
    resp = await client.post(f"/api/v1/inbox/{inbox_id.upper()}/ack", headers=auth_b)
    assert resp.status == 200 and (await resp.json())["state"] == "acknowledged"
    details = await (await client.get(f"/api/v1/inbox/{inbox_id}", headers=auth_b)).json()
    assert details["state"] == "acknowledged" and details["id"] == inbox_id
