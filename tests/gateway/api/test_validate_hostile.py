"""POST /api/v1/validate with hostile and mutated documents: 200 with the engine's report, or a
4xx with a machine-readable code; never a 500."""

import codecs
import time

import pytest


@pytest.fixture(scope="module")
def base_example(shared_dir):
    return (shared_dir / "conformance/peppol-bis-billing-3/3.0.21/examples/base-example.xml").read_bytes()


def _reports(base: bytes) -> dict[str, bytes]:
    two_codes = base.replace(b"<cbc:ID>Snippet1</cbc:ID>", b"<cbc:ID>Snippet1</cbc:ID>" * 2, 1)
    text = base.decode("utf-8")
    return {
        "dynamic errors in two layers": two_codes.replace(b'unitCode="DAY">7<', b'unitCode="DAY">seven<', 1),
        "million-digit amount": base.replace(b'<cbc:Amount currencyID="EUR">25</cbc:Amount>',
                                             b'<cbc:Amount currencyID="EUR">' + b"9" * 1_000_000 + b"</cbc:Amount>", 1),
        "UTF-16BE without BOM": text.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16-be"),
        "UTF-16 with BOM": text.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16"),
        "NaN and negative zero": base.replace(b'unitCode="DAY">7<', b'unitCode="DAY">NaN<', 1)
                                     .replace(b'currencyID="EUR">25<', b'currencyID="EUR">-0<', 1),
        "xml-stylesheet and schemaLocation": base.replace(
            b"?>", b'?><?xml-stylesheet href="file:///etc/passwd"?>', 1).replace(
            b'xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"',
            b'xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2" '
            b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="file:///etc/passwd"'),
    }


async def test_mutated_and_hostile_documents_get_the_engines_report(client, tenant, validator, base_example):
    _, auth = tenant
    for what, data in _reports(base_example).items():
        start = time.monotonic()
        resp = await client.post("/api/v1/validate", data=data, headers=auth)
        assert resp.status == 200, (what, await resp.text())
        assert await resp.json() == validator.validate(data).to_dict(), what
        assert time.monotonic() - start < 10, what


@pytest.mark.parametrize("body, code", [
    (b'<?xml version="1.0" encoding="UTF-7"?>+ADwAIQ-DOCTYPE x +AFs-+ADwAIQ-ENTITY a +ACI-aaaa+ACI-+AD4-+AF0-+AD4-'
     b"<x>&a;</x>", "forbidden-xml"),
    (codecs.BOM_UTF16_LE + '<!DOCTYPE x SYSTEM "http://127.0.0.1:9/x.dtd"><x/>'.encode("utf-16-le"), "forbidden-xml"),
    (b"<a>" * 100_000 + b"</a>" * 100_000, "not-xml"),
    (b'<?xml version="1.0" encoding="X-NO-SUCH"?><x/>', "not-xml"),
    (b"<x>\xff\xfe</x>", "not-xml"),
])
async def test_unusable_input_is_a_coded_400(client, tenant, body, code):
    _, auth = tenant
    resp = await client.post("/api/v1/validate", data=body, headers=auth)
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["error"]["code"] == code
