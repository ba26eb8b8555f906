"""The API as a hostile client sees it: every route's authentication, and bad input of every kind
answered with a 4xx JSON error (never a 500), with nothing stored after a refused request."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid

import pytest
from sqlalchemy import func, select

from gateway.store.schema import messages, tenants
from gateway.store.tenants import create_tenant, revoke_tokens

MULTIPART = "multipart/form-data; boundary=zz"
DEEP = b"[" * 100_000 + b"]" * 100_000  # under every size cap, too deep for the JSON parser


def _concrete(path: str) -> str:
    return path.replace("{id}", str(uuid.uuid4())).replace("{kind}", "receipt")


def _api_routes(app) -> list[tuple[str, str]]:
    out = []
    for route in app.router.routes():
        info = route.resource.get_info()
        path = info.get("path") or info.get("formatter")
        if path.startswith("/api/v1/") and path != "/api/v1/openapi.json":
            out.append((route.method, path))
    return sorted(out)


async def error_of(resp, status: int, code: str | None = None) -> dict:
    text = await resp.text()
    assert resp.status == status, text
    assert resp.content_type == "application/json", text
    body = json.loads(text)
    assert set(body) == {"error"} and isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, text
    return body


async def test_every_api_route_refuses_requests_without_a_valid_token(client, engine):
    _, revoked = create_tenant(engine, "Gone AS")
    revoke_tokens(engine, "Gone AS")
    routes = _api_routes(client.app)
    assert len(routes) >= 20
    bad = [{}, {"Authorization": ""}, {"Authorization": "Bearer"}, {"Authorization": "Bearer    "},
           {"Authorization": "Basic dXNlcjpwdw=="}, {"Authorization": "Token sgw_x"},
           {"Authorization": "Bearer sgw_garbage"}, {"Authorization": f"Bearer {revoked}"}]
    for method, path in routes:
        for headers in bad:
            resp = await client.request(method, _concrete(path), headers=headers, data=b"<x/>")
            if method == "HEAD":  # no body, but the same status and challenge
                assert resp.status == 401 and resp.content_type == "application/json"
            else:
                await error_of(resp, 401, "unauthorized")
            assert resp.headers["WWW-Authenticate"].startswith("Bearer"), (method, path)


@pytest.mark.parametrize("query", [
    "limit=0", "limit=-1", "limit=201", "limit=1.5", "limit=abc", "limit=%201", "limit=1_0",
    "limit=%2B5", "limit=" + "9" * 5000, "limit=5&limit=500",
    "state=bogus", "state=received&state=acknowledged",
    "cursor=abc", "cursor=%C3%A9", "cursor=W10", "cursor=a&cursor=b",
])
async def test_bad_page_arguments_are_400(client, tenant, query):
    _, auth = tenant
    for path in ("/api/v1/inbox", "/api/v1/documents"):
        resp = await client.get(f"{path}?{query}", headers=auth)
        body = await error_of(resp, 400)
        assert body["error"]["code"] in ("invalid-limit", "invalid-state", "invalid-cursor"), body


def _cursor(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize("value", [
    ["2020-01-01T00:00:00", str(uuid.uuid4())],  # no zone: the database refused the comparison
    ["2020-01-01T00:00:00+00:00", "a\u0000b"],
    ["2020-01-01T00:00:00+00:00", {"id": 1}],
    ["2020-01-01T00:00:00+00:00", "not-an-id"],
    [20200101, str(uuid.uuid4())],
    ["2020-01-01T00:00:00+00:00"],
    {"at": "2020-01-01T00:00:00+00:00", "id": str(uuid.uuid4())},
])
async def test_hand_made_cursors_are_400_not_500(client, tenant, value):
    _, auth = tenant
    for path in ("/api/v1/inbox", "/api/v1/documents"):
        resp = await client.get(f"{path}?cursor={_cursor(value)}", headers=auth)
        await error_of(resp, 400, "invalid-cursor")


async def test_a_cursor_nested_too_deep_for_the_json_parser_is_400(client, tenant):
    _, auth = tenant
    cursor = base64.urlsafe_b64encode(b"[" * 2000 + b"]" * 2000).decode()
    await error_of(await client.get(f"/api/v1/inbox?cursor={cursor}", headers=auth), 400, "invalid-cursor")


@pytest.mark.parametrize("query", ["receiver=garbage", "sender=::", "receiver=%00",
                                   "receiver=0192:" + "9" * 500,
                                   "sender=0192:923609016&sender=0192:810305062"])
async def test_bad_document_filters_are_400(client, tenant, query):
    _, auth = tenant
    await error_of(await client.get(f"/api/v1/documents?{query}", headers=auth), 400, "invalid-filter")


@pytest.mark.parametrize("query", ["to=9999-12-31", "to=0001-01-01", "from=garbage", "to=2020-13-01",
                                   "from=2021-01-01&to=2020-01-01", "from=2020-01-01&from=2020-02-01"])
async def test_bad_report_periods_are_400(client, tenant, query):
    _, auth = tenant
    await error_of(await client.get(f"/api/v1/reports/channels?{query}", headers=auth), 400, "invalid-period")


@pytest.mark.parametrize("path", [
    "/api/v1/documents/not-a-uuid", "/api/v1/documents/" + "a" * 3000, "/api/v1/documents/..%2F..%2Fetc%2Fpasswd",
    "/api/v1/documents/%2e%2e", "/api/v1/documents/{00000000-0000-0000-0000-000000000000}",
    "/api/v1/documents/%00", "/api/v1/documents/{uuid}", "/api/v1/documents/{uuid}/evidence/receipt",
    "/api/v1/documents/{uuid}/evidence/..%2Fpasswd", "/api/v1/documents/{uuid}/pdf",
    "/api/v1/inbox/not-a-uuid", "/api/v1/inbox/{uuid}", "/api/v1/inbox/{uuid}/document",
    "/api/v1/inbox/%252e%252e/document", "/api/v1/inbox/", "/api/v1/nope", "/api/v1", "/api/v1/",
])
async def test_unknown_ids_and_paths_are_404_json(client, tenant, path):
    _, auth = tenant
    await error_of(await client.get(path.replace("{uuid}", str(uuid.uuid4())), headers=auth), 404, "not-found")


async def test_ack_of_unknown_id_is_404(client, tenant):
    _, auth = tenant
    for mid in ("x", str(uuid.uuid4()), "%00"):
        await error_of(await client.post(f"/api/v1/inbox/{mid}/ack", headers=auth), 404, "not-found")


async def test_unsupported_methods_are_405_json_with_allow(client, tenant):
    _, auth = tenant
    for method, path, allowed in (("PATCH", "/api/v1/documents", {"GET", "HEAD", "POST"}),
                                  ("DELETE", "/api/v1/inbox", {"GET", "HEAD"}),
                                  ("POST", "/api/v1/routing", {"GET", "HEAD", "PUT"}),
                                  ("GET", "/api/v1/validate", {"POST"}),
                                  ("PUT", "/api/v1/inbox/x/ack", {"POST"})):
        resp = await client.request(method, path, headers=auth)
        await error_of(resp, 405, "method-not-allowed")
        assert set(resp.headers["Allow"].split(",")) == allowed


@pytest.mark.parametrize("body", [
    b"", b"{", b"\xff\xfe", b"[]", b"null", b"5", b'"https://hook.example/"', b'{"url": 5}', b'{"url": null}',
    b'{"url": ["https://hook.example/"]}', b'{"url": "ftp://hook.example/"}', b'{"url": "https://"}',
    b'{"url": "https://[::1/x"}', b'{"url": "https://hook.example:99999/"}',
    b'{"url": "https://hook.example/a\\u0000b"}', b'{"url": "https://hook.example/a b"}',
    b'{"url": "https://hook.example/\\r\\nX: y"}',
    json.dumps({"url": "https://hook.example/" + "a" * 3000}).encode(),
    b'{"url": "https://hook.example/", "secret": "my-own"}', b'{"url": "https://hook.example/", "URL": "x"}',
    DEEP,
])
async def test_bad_webhook_bodies_are_400_and_store_nothing(client, tenant, engine, body):
    _, auth = tenant
    resp = await client.put("/api/v1/webhook", data=body, headers={**auth, "Content-Type": "application/json"})
    assert (await error_of(resp, 400))["error"]["code"] in ("invalid-json", "invalid-webhook")
    with engine.connect() as conn:
        assert conn.execute(select(tenants.c.webhook_url)).scalars().all() == [None]


@pytest.mark.parametrize("body", [
    b"", b"{", b"[]", b"null", b"5", b'{"unknown": 1}', b'{"b2c": "email"}', b'{"b2c": [5]}',
    b'{"b2c": ["bogus"]}', b'{"b2g": 5}', b'{"b2g": null}', b'{"b2g": ["email"]}', b'{"channels": [1]}',
    b'{"channels": "abc"}', b'{"channels": {"email": 5}}', b'{"channels": {"email": {"settings": []}}}',
    DEEP, b'{"channels": ' + DEEP + b"}", b'{"print_cost_nok": "Infinity"}', b'{"print_cost_nok": "NaN"}', b'{"print_cost_nok": "sNaN"}',
    b'{"print_cost_nok": "1e30"}', b'{"print_cost_nok": 1e400}', b'{"print_cost_nok": "-1"}',
    b'{"print_cost_nok": null}', b'{"print_cost_nok": [1]}',
    b'{"channels": {"email": {"settings": {"host": "h", "from_address": 5}}}}',
    b'{"channels": {"email": {"settings": {"host": "h", "from_address": "a@b.no", "port": 1e400}}}}',
    b'{"channels": {"sms": {"settings": {"base_url": "https://l.example", "platform_id": "P", '
    b'"platform_partner_id": "1", "sender": 5, "username": "u", "password": "p"}}}}',
    b'{"channels": {"print": {"cost_nok": "Infinity", "settings": {"outgoing_dir": "o", "incoming_dir": "i"}}}}',
])
async def test_bad_routing_bodies_are_400_and_keep_the_stored_routing(client, tenant, body):
    _, auth = tenant
    before = await (await client.get("/api/v1/routing", headers=auth)).json()
    resp = await client.put("/api/v1/routing", data=body, headers={**auth, "Content-Type": "application/json"})
    assert (await error_of(resp, 400))["error"]["code"] in ("invalid-json", "invalid-routing")
    assert await (await client.get("/api/v1/routing", headers=auth)).json() == before


@pytest.mark.parametrize("method,path", [("PUT", "/api/v1/webhook"), ("PUT", "/api/v1/routing")])
async def test_json_bodies_above_1_mb_are_413(client, tenant, method, path):
    _, auth = tenant
    body = json.dumps({"url": "https://hook.example/", "pad": "a" * (1 << 20)}).encode()
    headers = {**auth, "Content-Type": "application/json"}
    await error_of(await client.request(method, path, data=body, headers=headers), 413, "payload-too-large")

    async def chunked():  # no Content-Length: the cap holds while reading
        yield body

    await error_of(await client.request(method, path, data=chunked(), headers=headers), 413, "payload-too-large")


def _multipart(*parts: bytes) -> bytes:
    return b"".join(b"--zz\r\n" + p + b"\r\n" for p in parts) + b"--zz--\r\n"


FILE_PART = b'Content-Disposition: form-data; name="file"; filename="x.xml"\r\n\r\n<x/>'


@pytest.mark.parametrize("body,content_type,code", [
    (b"", None, "empty-body"),
    (b"not xml", "application/xml", "not-xml"),
    (b"<x/>", "multipart/form-data", "invalid-multipart"),
    (b"<x/>", MULTIPART, "invalid-multipart"),
    (_multipart(b'Content-Disposition: form-data; name="other"\r\n\r\nx'), MULTIPART, "missing-file"),
    (_multipart(b"Content-Type: multipart/mixed; boundary=yy\r\n\r\n--yy\r\n\r\nx\r\n--yy--"), MULTIPART,
     "invalid-multipart"),
    (_multipart(FILE_PART, FILE_PART), MULTIPART, "invalid-multipart"),
    (_multipart(b"X-Long: " + b"a" * 20_000 + b"\r\n" + FILE_PART), MULTIPART, "invalid-multipart"),
    (b'--zz\r\nContent-Disposition: form-data; name="file"\r\n\r\n<x/>', MULTIPART, "invalid-multipart"),
    (_multipart(b'Content-Disposition: form-data; name="options"\r\n\r\n[1]', FILE_PART), MULTIPART,
     "invalid-options"),
    (_multipart(b'Content-Disposition: form-data; name="options"\r\n\r\n{', FILE_PART), MULTIPART,
     "invalid-options"),
    (_multipart(b'Content-Disposition: form-data; name="options"\r\n\r\n{"rules": ["x"]}', FILE_PART), MULTIPART,
     "invalid-options"),
    (_multipart(b'Content-Disposition: form-data; name="options"\r\n\r\n{"rules": 5}', FILE_PART), MULTIPART,
     "invalid-options"),
    (_multipart(b'Content-Disposition: form-data; name="options"\r\n\r\n' + DEEP, FILE_PART), MULTIPART,
     "invalid-options"),
])
async def test_bad_uploads_are_400_and_queue_nothing(client, tenant, engine, body, content_type, code):
    _, auth = tenant
    headers = {**auth, **({"Content-Type": content_type} if content_type else {})}
    for path in ("/api/v1/validate", "/api/v1/documents"):
        resp = await client.post(path, data=body, headers=headers, skip_auto_headers=["Content-Type"])
        await error_of(resp, 400, code)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(messages)).scalar() == 0


async def test_options_part_above_1_mb_is_413(client, tenant):
    _, auth = tenant
    big = _multipart(b'Content-Disposition: form-data; name="options"\r\n\r\n{"x": "' + b"a" * (1 << 20) + b'"}',
                     FILE_PART)
    resp = await client.post("/api/v1/documents", data=big, headers={**auth, "Content-Type": MULTIPART})
    await error_of(resp, 413, "options-too-large")


async def test_document_above_the_limit_is_413(client, tenant, settings):
    _, auth = tenant
    limit = settings.validation.max_bytes
    resp = await client.post("/api/v1/validate", data=b"<x>" + b"a" * limit + b"</x>", headers=auth)
    await error_of(resp, 413, "document-too-large")


async def test_idempotency_key_too_long_is_400(client, tenant):
    _, auth = tenant
    resp = await client.post("/api/v1/documents", data=b"<x/>", headers={**auth, "Idempotency-Key": "k" * 256})
    await error_of(resp, 400, "invalid-idempotency-key")


async def test_head_and_json_content_type(client, tenant):
    _, auth = tenant
    for path in ("/api/v1/inbox", "/api/v1/documents", "/api/v1/webhook", "/api/v1/routing", "/health",
                 "/api/v1/openapi.json"):
        get = await client.get(path, headers=auth)
        assert get.status == 200 and get.headers["Content-Type"] == "application/json; charset=utf-8", path
        head = await client.head(path, headers=auth)
        assert head.status == 200 and await head.read() == b"", path
        assert head.headers["Content-Type"] == get.headers["Content-Type"]


async def _raw(client, head: bytes, body: bytes = b"") -> tuple[int, dict]:
    """A request written byte by byte (header bytes no HTTP client library would send)."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(head + b"Host: x\r\nConnection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
                 + body)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])


async def test_header_bytes_that_are_not_utf8_are_4xx(client, tenant, engine):
    _, auth = tenant
    status, body = await _raw(client, b"GET /api/v1/inbox HTTP/1.1\r\nAuthorization: Bearer sgw_\xff\xfe\r\n")
    assert (status, body["error"]["code"]) == (401, "unauthorized")
    head = (b"POST /api/v1/documents HTTP/1.1\r\nAuthorization: " + auth["Authorization"].encode()
            + b"\r\nIdempotency-Key: k\xff\xfe\r\n")
    status, body = await _raw(client, head, b"<x/>")
    assert (status, body["error"]["code"]) == (400, "invalid-idempotency-key")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(messages)).scalar() == 0


@pytest.mark.parametrize("body", [
    b"\xff\xfe", b"[]", b'{"resultCode": 1001}', b'{"id": "abc", "resultCode": 1e400}',
    b'{"id": "abc", "resultCode": "x"}', b'{"id": "abc", "resultCode": 1001, "refId": ["x"]}',
    b'{"id": "abc", "resultCode": 1001, "refId": {"a": 1}}', b'{"id": "a\\u0000b", "resultCode": 1001}',
    b'{"id": "abc", "resultCode": 1001, "refId": "a\\u0000b"}', DEEP,
])
async def test_malformed_sms_delivery_reports_are_400_not_500(client, body):
    """LINK Common retries a 5xx for ever: a report we cannot read must be refused with 400."""
    resp = await client.post("/callbacks/sms/linkmobility", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 400, await resp.text()
