"""openapi.json against the running app: the same routes and methods both ways, every status a
handler answers is documented for its operation, and the JSON it returns has exactly the fields
the schemas name (a field added to a handler but not to the description fails here)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from gateway.api.openapi import document
from gateway.identifiers import ParticipantId
from gateway.store.inbox import InboundDocument, record_inbound
from gateway.store.participants import add_participant
from gateway.store.payloads import payload_store_from
from validation.errors import _CodedError

REPO = Path(__file__).resolve().parents[3]
SELLER = "0192:123456785"
JSON_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
              "integer": int, "number": (int, float)}


def _served(app) -> set[tuple[str, str]]:
    out = set()
    for route in app.router.routes():
        info = route.resource.get_info()
        path = info.get("path") or info.get("formatter")
        if route.method != "HEAD":
            out.add((path, route.method.lower()))
    return out


def test_described_routes_are_exactly_the_served_routes(client):
    doc = document()
    described = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    served = _served(client.app)
    assert served - described == set(), "served but not described"
    assert described - served == set(), "described but not served"


def test_operations_declare_auth_and_path_parameters():
    doc = document()
    public = {"/health", "/api/v1/openapi.json", "/as4", "/callbacks/sms/linkmobility"}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            where = f"{method.upper()} {path}"
            if path in public:
                assert op.get("security") == [], where
            else:
                assert "security" not in op and doc["security"] == [{"bearer": []}], where
                assert "401" in op["responses"], where
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == set(re.findall(r"{(\w+)}", path)), where
            for status, response in op["responses"].items():
                assert re.fullmatch(r"[1-5][0-9][0-9]", status) and response.get("description"), where


def test_every_error_code_raised_by_the_api_is_in_the_docs_table():
    raised = set()
    for source in (REPO / "gateway/api").glob("*.py"):
        raised |= {(int(s), c) for s, c in re.findall(r'ApiError\(\s*(\d{3}),\s*"([a-z0-9-]+)"', source.read_text())}
    raised |= {(404, "not-found"), (405, "method-not-allowed"), (413, "payload-too-large"),  # from aiohttp
               (500, "internal-error")}
    stack = list(_CodedError.__subclasses__())
    while stack:  # the validation service's errors, answered with their own code and status
        cls = stack.pop()
        stack += cls.__subclasses__()
        raised.add((cls.http_status, cls.code))
    table = {}
    for status, codes in re.findall(r"^\| (\d{3}) \| (.+) \|$", (REPO / "docs/api.md").read_text(), re.M):
        table[int(status)] = set(re.findall(r"`([a-z0-9-]+)`", codes))
    missing = sorted((s, c) for s, c in raised if c not in table.get(s, set()))
    assert not missing, f"error codes missing from the table in docs/api.md: {missing}"


def _resolve(doc: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def check(doc: dict, schema: dict, value, where: str = "$") -> None:
    """A strict subset of JSON Schema: types, enums, required fields, and no field the schema does
    not name (unless it allows additionalProperties)."""
    schema = _resolve(doc, schema)
    if "allOf" in schema:
        merged = {"type": "object", "properties": {}, "required": []}
        for part in schema["allOf"]:
            part = _resolve(doc, part)
            merged["properties"].update(part.get("properties", {}))
            merged["required"] += part.get("required", [])
        schema = merged
    types = schema.get("type")
    if types:
        types = types if isinstance(types, list) else [types]
        ok = any(isinstance(value, JSON_TYPES[t]) and not (t in ("integer", "number") and isinstance(value, bool))
                 for t in types)
        assert ok, f"{where}: {value!r} is not {types}"
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"
    if isinstance(value, dict) and "properties" in schema:
        props = schema["properties"]
        missing = set(schema.get("required", [])) - set(value)
        assert not missing, f"{where}: missing {sorted(missing)}"
        extra = set(value) - set(props)
        if schema.get("additionalProperties") is None:
            assert not extra, f"{where}: fields not in the schema: {sorted(extra)}"
        for key, item in value.items():
            sub = props.get(key, schema.get("additionalProperties"))
            if isinstance(sub, dict):
                check(doc, sub, item, f"{where}.{key}")
    elif isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        for key, item in value.items():
            check(doc, schema["additionalProperties"], item, f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            check(doc, schema["items"], item, f"{where}[{i}]")


@pytest.fixture
def invoice(shared_dir):
    return (shared_dir / "conformance/ehf-billing-3/examples/Norwegian-example-1.xml").read_bytes()


async def test_answers_match_the_documented_statuses_and_schemas(client, tenant, engine, settings, invoice):
    t, auth = tenant
    add_participant(engine, ParticipantId.parse(SELLER), t.name)
    body = b"<Invoice>received</Invoice>"
    inbox_id = record_inbound(engine, payload_store_from(settings), InboundDocument(
        tenant_id=t.id, as4_message_id=f"{uuid.uuid4()}@sender", conversation_id="c1", instance_id="i1",
        sender="iso6523-actorid-upis::0192:810305062", receiver="iso6523-actorid-upis::0192:923609016",
        document_type="doc", process="proc", sbd=b"<SBD>" + body + b"</SBD>", document=body,
        raw_message=b"--mime--", raw_content_type="multipart/related", receipt=b"<Receipt/>")).message_id
    doc = document()
    seen: set[tuple[str, str, int]] = set()

    async def call(method: str, template: str, path: str | None = None, *, headers=None, **kw):
        resp = await client.request(method, path or template, headers={**auth, **(headers or {})}, **kw)
        op = doc["paths"][template][method.lower()]
        documented = op["responses"].get(str(resp.status))
        assert documented is not None, f"{method} {template} answered {resp.status}, not documented"
        seen.add((method, template, resp.status))
        media = resp.headers.get("Content-Type", "").split(";")[0]
        content = documented.get("content", {})
        if media == "application/json":
            value = await resp.json()
            schema = content.get("application/json", {}).get("schema")
            assert schema is not None, f"{method} {template} {resp.status}: JSON answer without a documented schema"
            check(doc, schema, value, f"{method} {template} {resp.status}")
            return resp, value
        assert media in content, f"{method} {template} {resp.status}: {media} not documented"
        return resp, await resp.read()

    unknown = str(uuid.uuid4())
    await call("GET", "/health")
    await call("GET", "/api/v1/openapi.json")
    await call("POST", "/api/v1/validate", data=invoice)
    await call("POST", "/api/v1/validate", data=b"not xml")
    await call("POST", "/api/v1/validate", "/api/v1/validate?rules=nope", data=invoice)
    await call("POST", "/api/v1/validate", "/api/v1/validate?format=svrl", data=invoice)
    await call("POST", "/api/v1/validate", headers={"Authorization": "Bearer nope"}, data=invoice)
    too_large = b"<x>" + b"a" * settings.validation.max_bytes + b"</x>"
    await call("POST", "/api/v1/validate", data=too_large)

    _, accepted = await call("POST", "/api/v1/documents", data=invoice, headers={"Idempotency-Key": "k1"})
    doc_id = accepted["id"]
    await call("POST", "/api/v1/documents", data=invoice + b" ", headers={"Idempotency-Key": "k1"})
    await call("POST", "/api/v1/documents", data=invoice.replace(b"<cbc:IssueDate>", b"<cbc:IssueDate>x", 1))
    await call("POST", "/api/v1/documents", data=invoice.replace(b"123456785", b"923609016"))
    await call("POST", "/api/v1/documents", data=b"")
    await call("POST", "/api/v1/documents", data=too_large)
    await call("GET", "/api/v1/documents")
    await call("GET", "/api/v1/documents", "/api/v1/documents?limit=0")
    await call("GET", "/api/v1/documents/{id}", f"/api/v1/documents/{doc_id}")
    await call("GET", "/api/v1/documents/{id}", f"/api/v1/documents/{unknown}")
    kinds = "/api/v1/documents/{id}/evidence/{kind}"
    await call("GET", kinds, f"/api/v1/documents/{doc_id}/evidence/validation-report")
    await call("GET", kinds, f"/api/v1/documents/{doc_id}/evidence/receipt")
    await call("GET", "/api/v1/documents/{id}/pdf", f"/api/v1/documents/{doc_id}/pdf")
    await call("GET", "/api/v1/documents/{id}/pdf", f"/api/v1/documents/{unknown}/pdf")

    await call("GET", "/api/v1/inbox")
    await call("GET", "/api/v1/inbox", "/api/v1/inbox?state=nope")
    await call("GET", "/api/v1/inbox/{id}", f"/api/v1/inbox/{inbox_id}")
    await call("GET", "/api/v1/inbox/{id}", f"/api/v1/inbox/{unknown}")
    await call("GET", "/api/v1/inbox/{id}/document", f"/api/v1/inbox/{inbox_id}/document")
    await call("GET", "/api/v1/inbox/{id}/document", f"/api/v1/inbox/{unknown}/document")
    await call("POST", "/api/v1/inbox/{id}/ack", f"/api/v1/inbox/{inbox_id}/ack")
    await call("POST", "/api/v1/inbox/{id}/ack", f"/api/v1/inbox/{unknown}/ack")

    await call("PUT", "/api/v1/webhook", json={"url": "https://hook.example/x"})
    await call("PUT", "/api/v1/webhook", json={"url": "ftp://hook.example/x"})
    await call("GET", "/api/v1/webhook")
    await call("DELETE", "/api/v1/webhook")

    await call("GET", "/api/v1/routing")
    routing = {"b2c": ["print"], "channels": {"print": {"cost_nok": "9.00", "settings": {
        "outgoing_dir": str(settings.base_dir / "out"), "incoming_dir": str(settings.base_dir / "in")}}}}
    await call("PUT", "/api/v1/routing", json=routing)
    await call("PUT", "/api/v1/routing", json={"b2c": ["nope"]})
    await call("GET", "/api/v1/reports/channels")
    await call("GET", "/api/v1/reports/channels", "/api/v1/reports/channels?from=nope")

    await call("POST", "/as4", data=b"")
    await call("POST", "/callbacks/sms/linkmobility", json={})

    statuses = {(m, p): set() for m, p, _ in seen}
    for m, p, s in seen:
        statuses[(m, p)].add(s)
    assert {202, 400, 403, 409, 413, 422} <= statuses[("POST", "/api/v1/documents")]
    assert {200, 404} <= statuses[("GET", "/api/v1/inbox/{id}")]
