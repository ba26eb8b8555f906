"""`sendgw validate` on hostile and mutated documents: exit 0/1 with the engine's report, or exit 2
with one coded line on stderr; never a traceback."""

from __future__ import annotations

import json

import pytest

from tests.gateway.commands.test_validate_cli import cli  # noqa: F401 - the validate CLI fixture


@pytest.fixture
def base_example(shared_dir):
    return (shared_dir / "conformance/peppol-bis-billing-3/3.0.21/examples/base-example.xml").read_bytes()


def test_reports_match_the_engine(cli, validator, base_example, tmp_path, capsys):
    two_codes = base_example.replace(b"<cbc:ID>Snippet1</cbc:ID>", b"<cbc:ID>Snippet1</cbc:ID>" * 2, 1)
    docs = {
        "two-codes.xml": (two_codes.replace(b'unitCode="DAY">7<', b'unitCode="DAY">seven<', 1), 1),
        "huge-amount.xml": (base_example.replace(b'currencyID="EUR">25<',
                                                 b'currencyID="EUR">' + b"9" * 500_000 + b"<", 1), 1),
        "utf16be.xml": (base_example.decode().replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16-be"), 0),
    }
    for name, (data, status) in docs.items():
        (tmp_path / name).write_bytes(data)
        assert cli("validate", tmp_path / name, "--format", "json") == status, name
        assert json.loads(capsys.readouterr().out) == validator.validate(data).to_dict(), name


@pytest.mark.parametrize("data, code", [
    (b'<?xml version="1.0" encoding="UTF-7"?>+ADwAIQ-DOCTYPE x SYSTEM +ACI-file:///etc/passwd+ACI-+AD4-<x/>',
     "forbidden-xml"),
    (b"<a>" * 1_000_000 + b"</a>" * 1_000_000, "not-xml"),
    (b"<x>\x00</x>", "not-xml"),  # libxml2 says "...range\n, line 1, column 4": was two lines
    ('<?xml version="1.0" encoding="cp500"?><x/>'.encode("cp500"), "not-xml"),
])
def test_unusable_input_exits_2_with_one_coded_line(cli, tmp_path, capsys, data, code):
    (tmp_path / "doc.xml").write_bytes(data)
    assert cli("validate", tmp_path / "doc.xml") == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and f": {code}: " in err and "Traceback" not in err
