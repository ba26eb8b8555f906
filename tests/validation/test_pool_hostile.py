"""Hostile documents through the worker pool: clear errors or reports, the worker survives, and
the pool's report is the engine's report."""

from __future__ import annotations

import time

import pytest

from validation.errors import HostileXmlError, NotXmlError
from validation.pool import ValidationPool


@pytest.fixture
async def pool(artefact_cache):
    p = ValidationPool(artefact_cache, workers=1, max_bytes=8 * 1024 * 1024, timeout=20)
    await p.start()
    yield p
    await p.close()


async def test_hostile_documents_do_not_take_the_worker_down(pool, validator, base_example):
    pid = pool.pids
    deep = base_example.replace(b"<cbc:ID>Snippet1</cbc:ID>",
                                b"<cbc:ID>Snippet1</cbc:ID>" + b"<a>" * 1_000_000 + b"</a>" * 1_000_000, 1)
    deep150 = deep.replace(b"<a>" * 1_000_000, b"<a>" * 150).replace(b"</a>" * 1_000_000, b"</a>" * 150)
    for data in (deep, deep150):
        with pytest.raises(NotXmlError):
            await pool.validate(data)
    with pytest.raises(HostileXmlError):
        await pool.validate(b'<?xml version="1.0" encoding="UTF-7"?>'
                            b"+ADwAIQ-DOCTYPE x SYSTEM +ACI-file:///etc/passwd+ACI-+AD4-<x/>")

    # a million-digit amount used to keep the worker busy until the timeout killed it
    huge = base_example.replace(b'<cbc:Amount currencyID="EUR">25</cbc:Amount>',
                                b'<cbc:Amount currencyID="EUR">' + b"9" * 1_000_000 + b"</cbc:Amount>", 1)
    start = time.monotonic()
    report = await pool.validate(huge)
    assert time.monotonic() - start < 10
    assert [(i["layer"], i["rule"]) for i in report["errors"]] == [("CEN", "DYNAMIC-ERROR"), ("PEPPOL", "DYNAMIC-ERROR")]

    utf16 = base_example.decode("utf-8").replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16-be")
    assert (await pool.validate(utf16))["valid"] is True

    two_codes = base_example.replace(b"<cbc:ID>Snippet1</cbc:ID>", b"<cbc:ID>Snippet1</cbc:ID>" * 2, 1)
    two_codes = two_codes.replace(b'unitCode="DAY">7<', b'unitCode="DAY">seven<', 1)
    for data in (two_codes, huge):
        assert await pool.validate(data) == validator.validate(data).to_dict()
    assert pool.pids == pid and pool.crashes == 0 and pool.timeouts == 0
