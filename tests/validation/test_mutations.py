"""Systematically mutated official examples: every one gets a report (never a crash), and a
Schematron layer that stops carries exactly one fatal DYNAMIC-ERROR item of its own."""

from __future__ import annotations

import copy
import json
import time

import pytest
from lxml import etree

from validation.errors import UnknownDocumentTypeError

EXAMPLES = "peppol-bis-billing-3/3.0.21/examples"
VALUES = ["", "NaN", "-0", "1e400", "9" * 400, " 1,5 ", "2017-02-30", "\u0661\u0662"]
_CUSTOMIZATION = "{urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2}CustomizationID"


def _check(report, what: str) -> list[str]:
    """Contract violations of one report (empty when it is consistent)."""
    d = report.to_dict()
    problems = []
    if d["valid"] is not (not d["errors"]):
        problems.append("valid does not match the fatal items")
    for lay in d["layers"]:
        dyn = [i for i in d["errors"] if i["layer"] == lay["name"] and i["rule"] == "DYNAMIC-ERROR"]
        if (lay["status"] == "error") != (len(dyn) == 1):
            problems.append(f"layer {lay['name']} status {lay['status']} with {len(dyn)} DYNAMIC-ERROR items")
        items = [i for i in d["errors"] + d["warnings"] if i["layer"] == lay["name"]]
        if lay["fatal"] + lay["warnings"] != len(items):
            problems.append(f"layer {lay['name']} counts do not match its items")
    json.dumps(d)
    etree.fromstring(report.to_svrl())
    report.to_text("x")
    return [f"{what}: {p}" for p in problems]


def _mutants(raw: bytes, values: list[str], structural: bool):
    """(description, bytes) for value mutations of every leaf, and with `structural` for deleting,
    duplicating, moving and renaming (other namespace) every element."""
    tree = etree.fromstring(raw)
    count = len(list(tree.iter(etree.Element)))
    for i in range(1, count):
        def mutant(change):
            t = etree.fromstring(raw)
            el = list(t.iter(etree.Element))[i]
            change(el)
            return etree.tostring(t, xml_declaration=True, encoding="UTF-8")

        el = list(tree.iter(etree.Element))[i]
        path = tree.getroottree().getpath(el)
        if len(el) == 0:
            for value in values:
                yield f"{path}={value!r}", mutant(lambda e, v=value: setattr(e, "text", v))
        if not structural:
            continue
        yield f"{path} deleted", mutant(lambda e: e.getparent().remove(e))
        yield f"{path} duplicated", mutant(lambda e: e.addnext(copy.deepcopy(e)))
        yield f"{path} moved last", mutant(lambda e: e.getparent().append(e))
        yield f"{path} other namespace", mutant(lambda e: setattr(e, "tag", "{urn:x}" + etree.QName(e).localname))


@pytest.mark.parametrize("name, values, structural", [
    ("base-example.xml", VALUES[:4], True),
    ("base-creditnote-correction.xml", VALUES[3:], False),
])
def test_mutated_examples_always_get_a_consistent_report(validator, conformance, name, values, structural):
    raw = (conformance / EXAMPLES / name).read_bytes()
    problems, dynamic = [], 0
    for what, data in _mutants(raw, values, structural):
        try:
            report = validator.validate(data)
        except UnknownDocumentTypeError:
            # only a missing or changed CustomizationID may leave the document without rules
            root = etree.fromstring(data)
            cust = root.find(_CUSTOMIZATION)
            assert cust is None or (cust.text or "").strip() != _customization(raw), what
            continue
        dynamic += any(lay.status == "error" for lay in report.layers)
        problems += _check(report, what)
    assert not problems, problems[:10]
    assert dynamic > 20  # the mutations do reach the rules' dynamic errors


def _customization(raw: bytes) -> str:
    return etree.fromstring(raw).find(_CUSTOMIZATION).text.strip()


def test_each_layer_reports_its_own_dynamic_error_code(validator, base_example):
    """Two layers stopping with different XPath errors: each message names its own code (the
    second used to get the first layer's code, read from the shared engine output)."""
    data = base_example.replace(b"<cbc:ID>Snippet1</cbc:ID>", b"<cbc:ID>Snippet1</cbc:ID>" * 2, 1)
    data = data.replace(b'unitCode="DAY">7<', b'unitCode="DAY">seven<', 1)
    dyn = {i.layer: i.message for i in validator.validate(data).errors if i.rule == "DYNAMIC-ERROR"}
    assert set(dyn) == {"CEN", "PEPPOL"}
    assert "XPTY0004" in dyn["CEN"] and "more than one item" in dyn["CEN"]
    assert "FORG0001" in dyn["PEPPOL"] and "XPTY0004" not in dyn["PEPPOL"] and "seven" in dyn["PEPPOL"]

    profile = b"<cbc:ProfileID>urn:fdc:peppol.eu:2017:poacc:billing:01:1.0</cbc:ProfileID>"
    swapped = base_example.replace(b"<cbc:ChargeIndicator>true", b"<cbc:ChargeIndicator>NaN", 1)
    swapped = swapped.replace(profile, profile * 2, 1)
    dyn = {i.layer: i.message for i in validator.validate(swapped).errors if i.rule == "DYNAMIC-ERROR"}
    assert "FORG0001" in dyn["CEN"] and "boolean" in dyn["CEN"]
    assert "XPTY0004" in dyn["PEPPOL"] and "FORG0001" not in dyn["PEPPOL"]


@pytest.mark.parametrize("element", [
    b'<cbc:Amount currencyID="EUR">25</cbc:Amount>',
    b'<cbc:InvoicedQuantity unitCode="DAY">7</cbc:InvoicedQuantity>',
    b"<cbc:Percent>25.0</cbc:Percent>",
])
def test_a_number_of_absurd_length_is_not_handed_to_the_rules(validator, base_example, element):
    """Saxon's decimal conversions are quadratic in the number of digits: 300,000 digits in one
    amount kept the CEN layer busy for several seconds, 1,000,000 for a minute (the API's worker
    timed out, the CLI sat there). Such a value is now a DYNAMIC-ERROR of every Schematron layer
    with its line, and the report comes back at once."""
    assert element in base_example
    digits = b"9" * 300_000
    value = element.split(b">")[1].split(b"<")[0]
    data = base_example.replace(element, element.replace(b">" + value + b"<", b"><!-- -->" + digits + b"<"), 1)
    start = time.monotonic()
    report = validator.validate(data)
    assert time.monotonic() - start < 3
    d = report.to_dict()
    assert d["valid"] is False
    assert {lay["name"]: lay["status"] for lay in d["layers"]} == {"XSD": "passed", "CEN": "error", "PEPPOL": "error"}
    line = data[:data.index(digits)].count(b"\n") + 1
    dyn = [i for i in d["errors"] if i["rule"] == "DYNAMIC-ERROR"]
    assert [i["layer"] for i in dyn] == ["CEN", "PEPPOL"]
    assert all(i["line"] == line and "300,000 characters" in i["message"] for i in dyn)


def test_long_numbers_below_the_limit_are_still_evaluated(validator, base_example):
    from validation.xmlinput import MAX_NUMBER_CHARS

    number = b"1" + b"0" * (MAX_NUMBER_CHARS - 4) + b".00"
    data = base_example.replace(b'<cbc:Amount currencyID="EUR">25</cbc:Amount>',
                                b'<cbc:Amount currencyID="EUR">' + number + b"</cbc:Amount>", 1)
    report = validator.validate(data)
    assert {lay.name: lay.status for lay in report.layers} == {"XSD": "passed", "CEN": "failed", "PEPPOL": "passed"}
    assert "BR-CO-12" in {i.rule for i in report.errors}
    long_id = base_example.replace(b"<cbc:ID>Snippet1</cbc:ID>", b"<cbc:ID>" + b"7" * 5000 + b"</cbc:ID>", 1)
    assert validator.validate(long_id).valid  # only numeric elements are limited


@pytest.mark.parametrize("encode", ["char-refs", "split-by-comments", "utf-16", "utf-7"])
def test_a_number_just_over_the_limit_is_caught_however_it_is_written(validator, base_example, encode):
    """The digit count that lets ordinary invoices skip the search must not let a long number
    through: written as character references or cut up by comments, it is still caught."""
    from validation.xmlinput import MAX_NUMBER_CHARS

    n = MAX_NUMBER_CHARS + 1
    if encode == "char-refs":
        value = b"&#49;" * n
    elif encode == "split-by-comments":
        value = b"<!---->".join(b"1" * 10 for _ in range(n // 10)) + b"1" * (n % 10)
    else:
        value = b"1" * n
    element = b'<cbc:Amount currencyID="EUR">25</cbc:Amount>'
    data = base_example.replace(element, b'<cbc:Amount currencyID="EUR">' + value + b"</cbc:Amount>", 1)
    if encode in ("utf-16", "utf-7"):  # digits counted from the bytes, or from the text
        declared = data.decode("utf-8").replace('encoding="UTF-8"', f'encoding="{encode.upper()}"', 1)
        assert declared != data.decode("utf-8")
        data = declared.encode(encode)
    d = validator.validate(data).to_dict()
    assert {lay["name"]: lay["status"] for lay in d["layers"]} == {"XSD": "passed", "CEN": "error", "PEPPOL": "error"}
    assert f"{n:,} characters" in next(i["message"] for i in d["errors"] if i["rule"] == "DYNAMIC-ERROR")
