"""The HTTP edge: authentication, the error shape, health, OpenAPI."""

import pytest

from gateway.api.openapi import document
from gateway.store.tenants import create_tenant, revoke_tokens


async def error_of(resp, status, code):
    assert resp.status == status, await resp.text()
    body = await resp.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body


async def test_health_needs_no_token(client):
    resp = await client.get("/health")
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "ok" and body["database"] == "ok"


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer ", "Basic abc", "Bearer sgw_wrong", "Bearer x" * 300])
async def test_api_needs_a_valid_token(client, tenant, header):
    headers = {"Authorization": header} if header else {}
    for method, path in (("POST", "/api/v1/validate"), ("GET", "/api/v1/inbox"), ("GET", "/api/v1/documents")):
        resp = await client.request(method, path, headers=headers, data=b"<x/>")
        await error_of(resp, 401, "unauthorized")
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_revoked_token_is_refused(client, engine):
    _, token = create_tenant(engine, "Short-lived AS")
    revoke_tokens(engine, "Short-lived AS")
    resp = await client.get("/api/v1/inbox", headers={"Authorization": f"Bearer {token}"})
    await error_of(resp, 401, "unauthorized")


async def test_unknown_path_and_method_are_json_errors(client, tenant):
    _, auth = tenant
    await error_of(await client.get("/api/v1/nope", headers=auth), 404, "not-found")
    await error_of(await client.get("/api/v1/validate", headers=auth), 405, "method-not-allowed")
    await error_of(await client.get("/nope"), 404, "not-found")


async def test_openapi_is_public_and_describes_every_route(client):
    resp = await client.get("/api/v1/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.")
    described = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    served = set()
    for route in client.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if route.method in ("HEAD", "OPTIONS") or path is None:
            continue
        served.add((path, route.method))
    missing = served - described
    assert not missing, f"routes missing from openapi.json: {sorted(missing)}"
    assert ("/as4", "POST") in served
    assert doc == document()
