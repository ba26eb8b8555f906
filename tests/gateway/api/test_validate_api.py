"""POST /api/v1/validate: status codes and the report contract."""

import aiohttp
import pytest

NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"


@pytest.fixture(scope="module")
def base_example(shared_dir):
    return (shared_dir / "conformance/peppol-bis-billing-3/3.0.21/examples/base-example.xml").read_bytes()


async def test_valid_invoice(client, tenant, base_example):
    _, auth = tenant
    resp = await client.post("/api/v1/validate", data=base_example, headers=auth)
    assert resp.status == 200
    report = await resp.json()
    assert report["valid"] is True
    assert report["rules"].startswith("peppol-billing-invoice@")
    assert set(report) >= {"valid", "rules", "artefacts", "errors", "warnings"}
    assert all({"name", "version"} <= set(a) for a in report["artefacts"])
    assert report["errors"] == []


async def test_invalid_invoice_is_200_with_fatal_items(client, tenant, base_example):
    _, auth = tenant
    broken = base_example.replace(b"<cbc:DueDate>", b"<cbc:DueDate>not-a-date", 1)
    broken = broken.replace(b"<cbc:ID>Snippet1</cbc:ID>", b"", 1)
    resp = await client.post("/api/v1/validate", data=broken, headers=auth)
    assert resp.status == 200
    report = await resp.json()
    assert report["valid"] is False
    assert report["errors"]
    for item in report["errors"]:
        assert set(item) == {"rule", "severity", "message", "location", "line", "layer"}
        assert item["severity"] == "fatal"
    assert any(i["rule"] == "XSD" for i in report["errors"])


async def test_multipart_upload_and_svrl(client, tenant, base_example):
    _, auth = tenant
    form = aiohttp.FormData()
    form.add_field("file", base_example, filename="invoice.xml", content_type="application/xml")
    resp = await client.post("/api/v1/validate", data=form, headers=auth)
    assert resp.status == 200
    assert (await resp.json())["valid"] is True
    resp = await client.post("/api/v1/validate?format=svrl", data=base_example, headers=auth)
    assert resp.status == 200
    assert b"schematron-output" in await resp.read()


@pytest.mark.parametrize("body, status, code", [
    (b"this is not xml", 400, "not-xml"),
    (b"", 400, "empty-body"),
    (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>', 400, "forbidden-xml"),
    (b"<Unknown xmlns='urn:example'/>", 422, "unknown-document-type"),
])
async def test_unusable_input(client, tenant, body, status, code):
    _, auth = tenant
    resp = await client.post("/api/v1/validate", data=body, headers=auth)
    assert resp.status == status, await resp.text()
    assert (await resp.json())["error"]["code"] == code


async def test_unknown_rule_set(client, tenant, base_example):
    _, auth = tenant
    resp = await client.post("/api/v1/validate?rules=no-such-set", data=base_example, headers=auth)
    assert resp.status == 422
    assert (await resp.json())["error"]["code"] == "unknown-rule-set"


async def test_too_large(client, tenant, settings):
    _, auth = tenant
    big = b"<x>" + b"a" * (settings.validation.max_bytes + 10) + b"</x>"
    resp = await client.post("/api/v1/validate", data=big, headers=auth)
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "document-too-large"


async def test_bad_format_parameter(client, tenant, base_example):
    _, auth = tenant
    resp = await client.post("/api/v1/validate?format=pdf", data=base_example, headers=auth)
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "invalid-format"


@pytest.mark.parametrize("error, status, code", [
    ("WorkerCrashedError", 500, "validation-worker-crashed"),
    ("ValidationTimeoutError", 503, "validation-timeout"),
    ("ArtefactError", 503, "artefacts-unavailable"),
])
async def test_engine_failures_are_json_errors(settings, engine, tenant, base_example, error, status, code):
    """A validation service that fails (worker killed, timeout, artefacts gone) is a JSON error, not a 500 page."""
    from aiohttp.test_utils import TestClient, TestServer

    import validation.errors as errors
    from gateway.app import create_app

    class Failing:
        async def start(self):
            pass

        async def close(self):
            pass

        async def validate(self, data, rules=None, fmt="json", at=None):
            raise getattr(errors, error)("simulated failure")

    _, auth = tenant
    client = TestClient(TestServer(create_app(settings, engine=engine, validation=Failing(), run_workers=False)))
    await client.start_server()
    try:
        resp = await client.post("/api/v1/validate", data=base_example, headers=auth)
        assert resp.status == status
        assert (await resp.json())["error"]["code"] == code
    finally:
        await client.close()
