"""POST /api/v1/documents and GET /api/v1/documents/{id}: contracts of issue 6 probed from outside
(no worker runs here, so nothing is ever sent)."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import FormData

from gateway.identifiers import ParticipantId
from gateway.store.participants import add_participant

SELLER = "0192:123456785"


@pytest.fixture
def invoice(shared_dir):
    return (shared_dir / "conformance/ehf-billing-3/examples/Norwegian-example-1.xml").read_bytes()


@pytest.fixture
async def api(client, tenant, engine):
    t, auth = tenant
    add_participant(engine, ParticipantId.parse(SELLER), t.name)
    return client, auth


async def _listing(client, auth):
    return (await (await client.get("/api/v1/documents", headers=auth)).json())["items"]


def _multipart(document: bytes, options: dict | None = None) -> FormData:
    form = FormData()
    form.add_field("file", document, filename="invoice.xml", content_type="application/xml")
    if options is not None:
        form.add_field("options", json.dumps(options), content_type="application/json")
    return form


async def test_invalid_document_is_422_with_the_report_and_nothing_is_queued(api, invoice):
    client, auth = api
    broken = invoice.replace(b"<cbc:IssueDate>", b"<cbc:IssueDate>x", 1)
    resp = await client.post("/api/v1/documents", data=broken, headers={**auth, "Idempotency-Key": "bad-1"})
    body = await resp.json()
    assert resp.status == 422, body
    assert body["error"]["code"] == "invalid-document"
    report = body["error"]["details"]
    assert report["valid"] is False and report["errors"]
    assert all({"rule", "severity", "message"} <= set(e) for e in report["errors"])
    assert await _listing(client, auth) == []
    # the key was not consumed by the rejected submission: the corrected document goes through
    resp = await client.post("/api/v1/documents", data=invoice, headers={**auth, "Idempotency-Key": "bad-1"})
    assert resp.status == 202, await resp.text()


async def test_status_document_fields_and_evidence_links(api, invoice):
    client, auth = api
    resp = await client.post("/api/v1/documents", data=invoice, headers=auth)
    accepted = await resp.json()
    assert resp.status == 202 and set(accepted) == {"id", "state", "links"}
    assert accepted["state"] == "queued"
    assert resp.headers["Location"] == accepted["links"]["self"]
    details = await (await client.get(accepted["links"]["self"], headers=auth)).json()
    for key in ("state", "receiver", "endpoint", "attempt_count", "attempts", "as4_message_id", "evidence", "links",
                "last_error", "events"):
        assert key in details, key
    assert details["receiver"] == "iso6523-actorid-upis::0192:987654325"
    assert details["state"] == "queued" and details["attempts"] == [] and details["endpoint"] is None
    report = [e for e in details["evidence"] if e["kind"] == "validation-report"]
    assert len(report) == 1
    link = report[0]["url"]
    assert link == f"/api/v1/documents/{accepted['id']}/evidence/validation-report"
    got = await client.get(link, headers=auth)
    assert got.status == 200 and (await got.json())["valid"] is True
    missing = await client.get(accepted["links"]["receipt"], headers=auth)
    assert missing.status == 404 and (await missing.json())["error"]["code"] == "no-evidence"


async def test_idempotent_raw_and_multipart_are_the_same_request(api, invoice):
    client, auth = api
    headers = {**auth, "Idempotency-Key": "same-1"}
    first = await (await client.post("/api/v1/documents", data=invoice, headers=headers)).json()
    resp = await client.post("/api/v1/documents", data=_multipart(invoice), headers=headers)
    assert resp.status == 202 and (await resp.json())["id"] == first["id"]
    resp = await client.post("/api/v1/documents", data=_multipart(invoice, {"receiver": "0192:974760673"}),
                             headers=headers)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "idempotency-conflict"
    assert [d["id"] for d in await _listing(client, auth)] == [first["id"]]


async def test_concurrent_submissions_with_one_key_make_one_document(api, invoice):
    client, auth = api
    headers = {**auth, "Idempotency-Key": "race-1"}
    responses = await asyncio.gather(*(client.post("/api/v1/documents", data=invoice, headers=headers)
                                       for _ in range(4)))
    bodies = [await r.json() for r in responses]
    assert [r.status for r in responses] == [202] * 4, bodies
    assert len({b["id"] for b in bodies}) == 1
    assert len(await _listing(client, auth)) == 1


async def test_keys_are_per_tenant(api, invoice, engine):
    from gateway.store.tenants import create_tenant

    client, auth = api
    other, token = create_tenant(engine, "Other AS")
    add_participant(engine, ParticipantId.parse("0192:974760673"), other.name)
    theirs = invoice.replace(b'schemeID="0192">123456785<', b'schemeID="0192">974760673<', 1)
    a = await (await client.post("/api/v1/documents", data=invoice, headers={**auth, "Idempotency-Key": "k"})).json()
    resp = await client.post("/api/v1/documents", data=theirs,
                             headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "k"})
    assert resp.status == 202, await resp.text()
    assert (await resp.json())["id"] != a["id"]


@pytest.mark.parametrize("options, code", [
    ({"receiver": "0192:923609017"}, "invalid-options"),  # MOD11
    ({"receiver": "9908:923609016"}, "invalid-options"),  # removed ICD
    ({"process": 17}, "invalid-options"),
    ({"no_such_option": 1}, "invalid-options"),
])
async def test_bad_overrides_are_400(api, invoice, options, code):
    client, auth = api
    resp = await client.post("/api/v1/documents", data=_multipart(invoice, options), headers=auth)
    assert resp.status == 400 and (await resp.json())["error"]["code"] == code
    assert await _listing(client, auth) == []


async def test_overrides_are_kept_exactly(api, invoice):
    client, auth = api
    options = {"receiver": "ISO6523-ACTORID-UPIS::0192:923609016",
               "document_type": "busdox-docid-qns::urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##"
                                "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1",
               "process": "cenbii-procid-ubl::urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"}
    resp = await client.post("/api/v1/documents", data=_multipart(invoice, options), headers=auth)
    assert resp.status == 202, await resp.text()
    details = await (await client.get((await resp.json())["links"]["self"], headers=auth)).json()
    assert details["receiver"] == "iso6523-actorid-upis::0192:923609016"
    assert details["document_type"] == options["document_type"]
    assert details["process"] == options["process"]


async def test_idempotency_key_length(api, invoice):
    client, auth = api
    resp = await client.post("/api/v1/documents", data=invoice, headers={**auth, "Idempotency-Key": "x" * 256})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid-idempotency-key"


async def test_listing_filters_and_cursor(api, invoice):
    client, auth = api
    ids = {}
    for receiver in ("0192:923609016", "0192:974760673", "0192:923609016"):
        resp = await client.post("/api/v1/documents", data=_multipart(invoice, {"receiver": receiver}), headers=auth)
        ids.setdefault(receiver, []).append((await resp.json())["id"])
    got = await (await client.get("/api/v1/documents?receiver=iso6523-actorid-upis::0192:923609016",
                                  headers=auth)).json()
    assert [d["id"] for d in got["items"]] == ids["0192:923609016"][::-1]
    got = await (await client.get("/api/v1/documents?receiver=0192:974760673&state=queued", headers=auth)).json()
    assert [d["id"] for d in got["items"]] == ids["0192:974760673"]
    got = await (await client.get("/api/v1/documents?sender=0192:123456785&limit=2", headers=auth)).json()
    assert len(got["items"]) == 2 and got["next"]
    rest = await (await client.get(f"/api/v1/documents?sender=0192:123456785&limit=2&cursor={got['next']}",
                                   headers=auth)).json()
    assert len(rest["items"]) == 1 and rest["next"] is None
    assert (await (await client.get("/api/v1/documents?sender=0192:974760673", headers=auth)).json())["items"] == []
    resp = await client.get("/api/v1/documents?receiver=0192:923609017", headers=auth)
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid-filter"


async def test_a_standard_business_document_is_refused_at_submission(api, invoice):
    """The gateway builds the SBDH itself; an SBD-wrapped invoice validates (the validator unwraps it)
    but would be wrapped a second time by the outbox worker and could never be sent."""
    import datetime as dt

    from gateway.sbdh import build_sbd

    client, auth = api
    sbd = build_sbd(invoice, sender="0192:123456785", receiver="0192:987654325",
                    document_id="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##urn:cen.eu:en16931:"
                                "2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1",
                    process_id="urn:fdc:peppol.eu:2017:poacc:billing:01:1.0", country_c1="NO",
                    creation_date_time=dt.datetime.now(dt.timezone.utc))
    resp = await client.post("/api/v1/documents", data=sbd, headers=auth)
    body = await resp.json()
    assert resp.status == 422, body
    assert body["error"]["code"] == "unroutable-document" and "StandardBusinessDocument" in body["error"]["message"]
    assert await _listing(client, auth) == []
