"""The validation engine: selection, layers, reports and every error path."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from lxml import etree

from validation import samples, svrl
from validation.engine import Validator
from validation.errors import (
    ArtefactError,
    DocumentTooLargeError,
    HostileXmlError,
    NotXmlError,
    UnknownDocumentTypeError,
    UnknownRuleSetError,
    ValidationInputError,
)

ITEM_KEYS = {"rule", "severity", "message", "location", "line", "layer"}
BAD_QUANTITY = (b'<cbc:InvoicedQuantity unitCode="DAY">7</cbc:InvoicedQuantity>',
                b'<cbc:InvoicedQuantity unitCode="DAY">seven</cbc:InvoicedQuantity>')


def _line_of(data: bytes, needle: bytes) -> int:
    return data[: data.index(needle)].count(b"\n") + 1


# -- the report contract --------------------------------------------------------------------------
def test_valid_document_report_contract(validator, base_example):
    report = validator.validate(base_example)
    d = report.to_dict()
    assert d["valid"] is True and report.valid
    assert d["rules"] == "peppol-billing-invoice@3.0.21"
    assert d["artefacts"] == [
        {"name": "UBL-Invoice-2.1.xsd", "version": "2.1"},
        {"name": "CEN-EN16931-UBL.xslt", "version": "1.3.16"},
        {"name": "PEPPOL-EN16931-UBL.xslt", "version": "3.0.21"},
    ]
    assert d["errors"] == [] and d["warnings"] == []
    assert {"valid", "rules", "artefacts", "errors", "warnings"} <= set(d)
    assert d["schematron_skipped"] is False
    assert [lay["status"] for lay in d["layers"]] == ["passed", "passed", "passed"]
    json.dumps(d)  # serialisable as is


def test_invalid_document_items(validator, base_example):
    data = base_example.replace(b"<cbc:Name>SupplierTradingName Ltd.</cbc:Name>", b"<cbc:Name></cbc:Name>", 1)
    report = validator.validate(data)
    d = report.to_dict()
    assert d["valid"] is False
    assert all(set(item) == ITEM_KEYS for item in d["errors"] + d["warnings"])
    r008 = [i for i in d["errors"] if i["rule"] == "PEPPOL-EN16931-R008"]
    assert r008, d["errors"]
    item = r008[0]
    assert item["severity"] == "fatal"
    assert item["layer"] == "PEPPOL"
    assert item["message"] == "Document MUST not contain empty elements."  # no "[ID]-" prefix
    assert item["location"].startswith("/*:Invoice[namespace-uri()=")
    assert item["location"].endswith("/*:Name[namespace-uri()='urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2'][1]")
    assert item["line"] == _line_of(data, b"<cbc:Name></cbc:Name>")


def test_warnings_do_not_make_a_document_invalid(validator, conformance):
    data = (conformance / "ehf-billing-3/examples/Norwegian-example-1.xml").read_bytes()
    report = validator.validate(data)
    assert report.valid
    assert [i.rule for i in report.warnings] == ["UBL-CR-679"]
    assert report.warnings[0].severity == "warning"
    assert report.warnings[0].line is not None


def test_text_and_svrl_renderings(validator, base_example):
    data = base_example.replace(b"<cbc:Name>SupplierTradingName Ltd.</cbc:Name>", b"<cbc:Name></cbc:Name>", 1)
    report = validator.validate(data)
    text = report.to_text("x.xml")
    assert text.startswith("x.xml: INVALID")
    assert "PEPPOL-EN16931-R008" in text and "peppol-billing-invoice@3.0.21" in text
    doc = etree.fromstring(report.to_svrl())
    ns = {"svrl": svrl.SVRL_NS, "s": "urn:sendgw:validation:1"}
    assert doc.get("rules") == "peppol-billing-invoice@3.0.21" and doc.get("valid") == "false"
    assert len(doc.findall("s:layer", ns)) == 3
    assert len(doc.findall("s:layer/svrl:schematron-output", ns)) == 3
    ids = [fa.get("id") for fa in doc.iterfind(".//svrl:failed-assert", ns)]
    assert "PEPPOL-EN16931-R008" in ids


def _svrl_cases(conformance: Path, base_example: bytes) -> dict[str, bytes]:
    return {
        "valid": base_example,
        "fatal": base_example.replace(b"<cbc:Name>SupplierTradingName Ltd.</cbc:Name>", b"<cbc:Name></cbc:Name>", 1),
        "warning": (conformance / "ehf-billing-3/examples/Norwegian-example-1.xml").read_bytes(),
        "dynamic": base_example.replace(*BAD_QUANTITY),
        "xsd and rules": (conformance / "peppol-bis-billing-3/3.0.19/national-examples/GR"
                          / "GR-base-example-TaxRepresentative.xml").read_bytes(),
    }


def test_report_without_svrl_is_the_same_report(validator, conformance, base_example):
    """`svrl=False` (the API's and `--format json`'s path) keeps the SVRL as Saxon trees and
    serialises only those with findings: every item must be the same as from the text."""
    cases = _svrl_cases(conformance, base_example)
    for name, data in cases.items():
        kept, lean = validator.validate(data), validator.validate(data, svrl=False)
        assert lean.to_dict() == kept.to_dict(), name
        assert [i.test for i in lean.errors + lean.warnings] == [i.test for i in kept.errors + kept.warnings]
        assert all(lay.svrl is None for lay in lean.layers), name
        assert all(lay.svrl is not None for lay in kept.layers if lay.kind == "schematron" and lay.status != "error")
    assert not validator.validate(cases["fatal"], svrl=False).valid


def test_svrl_rendering_needs_the_kept_svrl(validator, base_example):
    with pytest.raises(ValueError, match="svrl=True"):
        validator.validate(base_example, svrl=False).to_svrl()


# -- selection --------------------------------------------------------------------------------------
@pytest.mark.parametrize("at, expected", [
    (dt.date(2025, 9, 1), "peppol-billing-invoice@3.0.19"),
    (dt.date(2026, 8, 23), "peppol-billing-invoice@3.0.19"),
    (dt.date(2026, 8, 24), "peppol-billing-invoice@3.0.21"),
    (None, "peppol-billing-invoice@3.0.21"),
])
def test_release_chosen_by_date(validator, base_example, at, expected):
    assert validator.validate(base_example, at=at).rules == expected


def test_no_release_in_force_on_an_early_date(validator, base_example):
    with pytest.raises(UnknownRuleSetError, match="in force on 2020-01-01"):
        validator.validate(base_example, at=dt.date(2020, 1, 1))


def test_caller_names_the_rule_set(validator, base_example):
    assert validator.validate(base_example, rules="peppol-billing-invoice@3.0.19").rules == "peppol-billing-invoice@3.0.19"
    # a family name means "the release in force" (on `at`)
    assert validator.validate(base_example, rules="peppol-billing-invoice").rules == "peppol-billing-invoice@3.0.21"
    assert validator.validate(base_example, rules="peppol-billing-invoice",
                              at=dt.date(2025, 12, 1)).rules == "peppol-billing-invoice@3.0.19"
    report = validator.validate(base_example, rules="en16931-ubl-invoice@1.3.16")
    assert [a["name"] for a in report.artefacts] == ["UBL-Invoice-2.1.xsd", "EN16931-UBL-validation.xslt"]


def test_unknown_rule_set(validator, base_example):
    with pytest.raises(UnknownRuleSetError) as err:
        validator.validate(base_example, rules="peppol-billing-invoice@9.9.9")
    assert err.value.code == "unknown-rule-set" and err.value.http_status == 422 and err.value.exit_code == 2


def test_most_specific_customization_id_wins(validator, conformance):
    reminder = next((conformance / "ehf-postaward-g3/2023-02-16/examples/reminder-3.0").glob("*.xml")).read_bytes()
    assert validator.validate(reminder).rules == "ehf-reminder@2023-02-16"  # not Peppol billing
    folder = conformance / "ehf-postaward-g3/2023-02-16/examples"
    adv = (folder / "advanced-ordering-3.0/Advanced_Order_Example.xml").read_bytes()
    assert validator.validate(adv).rules == "ehf-advanced-order-initiation@2023-02-16"  # ProfileID :g3:09:
    order = next((folder / "ordering-3.0").glob("*rder*.xml")).read_bytes()
    assert validator.validate(order).rules in ("ehf-order@2023-02-16", "ehf-order-response@2023-02-16")


def test_post_award_identifiers_match_exactly(validator, conformance):
    order = next((conformance / "peppol-poacc-3/3.0.17/examples").rglob("*rder*.xml"))
    data = order.read_bytes()
    cid = etree.fromstring(data).findtext("{urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2}CustomizationID")
    assert validator.validate(data).rules.startswith("peppol-")
    extended = data.replace(cid.encode(), cid.encode() + b":extended:urn:example:unknown-cius", 1)
    with pytest.raises(UnknownDocumentTypeError):
        validator.validate(extended)


def test_unknown_document_type(validator, base_example, conformance):
    waybill = (conformance / "ehf-postaward-g3/2026-08-13/waybill-1.1/example/Waybill_Example_usecase1.xml").read_bytes()
    with pytest.raises(UnknownDocumentTypeError) as err:
        validator.validate(waybill)
    assert err.value.code == "unknown-document-type" and err.value.http_status == 422
    assert "logistics" in str(err.value)
    with pytest.raises(UnknownDocumentTypeError, match="without cbc:CustomizationID"):
        validator.validate(b"<Invoice xmlns='urn:oasis:names:specification:ubl:schema:xsd:Invoice-2'/>")
    with pytest.raises(UnknownDocumentTypeError):
        validator.validate(b"<hello>world</hello>")


# -- input handling -------------------------------------------------------------------------------
@pytest.mark.parametrize("data", [b"", b"   ", b"not xml at all", b"<Invoice>", b"\x00\x01\x02", b"<a></b>"])
def test_not_xml(validator, data):
    with pytest.raises(NotXmlError) as err:
        validator.validate(data)
    assert (err.value.code, err.value.http_status, err.value.exit_code) == ("not-xml", 400, 2)


def test_document_too_large(artefact_cache, base_example):
    v = Validator(artefact_cache, max_bytes=len(base_example) - 1)
    with pytest.raises(DocumentTooLargeError) as err:
        v.validate(base_example)
    assert (err.value.code, err.value.http_status) == ("document-too-large", 413)


def test_latin1_documents_are_decoded_by_their_declaration(validator, conformance, base_example):
    latin1 = next((conformance / "peppol-poacc-3/3.0.17/examples").rglob("catalogue-wo-response-use-case-1.xml"))
    data = latin1.read_bytes()
    assert b"ISO-8859-1" in data[:100]
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    report = validator.validate(data)
    assert report.valid, report.to_dict()["errors"]
    assert report.document_type["encoding"].upper() == "ISO-8859-1"

    # the base example re-encoded as Latin-1 with a Norwegian name that only decodes correctly that way
    text = base_example.decode("utf-8").replace('encoding="UTF-8"', 'encoding="ISO-8859-1"')
    text = text.replace("SupplierTradingName Ltd.", "Blåbær og Ørret AS")
    ok = validator.validate(text.encode("latin-1"))
    assert ok.valid
    svrl_text = ok.to_svrl().decode("utf-8")
    assert "schematron-output" in svrl_text
    # same bytes, wrongly declared as UTF-8: not decodable, not XML
    with pytest.raises(NotXmlError):
        validator.validate(text.replace('encoding="ISO-8859-1"', 'encoding="UTF-8"').encode("latin-1"))


def test_utf16_and_bom(validator, base_example):
    text = base_example.decode("utf-8")
    assert validator.validate(b"\xef\xbb\xbf" + base_example).valid
    utf16 = text.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    assert validator.validate(utf16).valid


SBDH = """<?xml version="1.0" encoding="UTF-8"?>
<StandardBusinessDocument xmlns="http://www.unece.org/cefact/namespaces/StandardBusinessDocumentHeader">
  <StandardBusinessDocumentHeader>
    <HeaderVersion>1.0</HeaderVersion>
    <Sender><Identifier Authority="iso6523-actorid-upis">0088:7315458756324</Identifier></Sender>
    <Receiver><Identifier Authority="iso6523-actorid-upis">0192:987654325</Identifier></Receiver>
    <DocumentIdentification>
      <Standard>urn:oasis:names:specification:ubl:schema:xsd:Invoice-2</Standard>
      <TypeVersion>2.1</TypeVersion>
      <InstanceIdentifier>1b8a3d4c-0000-4000-8000-000000000001</InstanceIdentifier>
      <Type>Invoice</Type>
      <CreationDateAndTime>2026-11-30T10:00:00Z</CreationDateAndTime>
    </DocumentIdentification>
  </StandardBusinessDocumentHeader>
"""


def _wrap(doc: bytes) -> bytes:
    body = doc.split(b"?>", 1)[1] if doc.startswith(b"<?xml") else doc
    return SBDH.encode() + body + b"\n</StandardBusinessDocument>\n"


def test_sbdh_envelope_is_unwrapped(validator, base_example):
    wrapped = _wrap(base_example)
    report = validator.validate(wrapped)
    assert report.valid and report.rules == "peppol-billing-invoice@3.0.21"
    assert report.document_type["sbdh"] is True and report.document_type["root"] == "Invoice"

    bad = _wrap(base_example.replace(b"<cbc:Name>SupplierTradingName Ltd.</cbc:Name>", b"<cbc:Name/>", 1))
    report = validator.validate(bad)
    r008 = [i for i in report.errors if i.rule == "PEPPOL-EN16931-R008"]
    assert r008 and r008[0].line == _line_of(bad, b"<cbc:Name/>")  # lines refer to the envelope file
    xsd_bad = _wrap(base_example.replace(*BAD_QUANTITY))
    xsd_items = [i for i in validator.validate(xsd_bad).errors if i.rule == "XSD"]
    assert xsd_items and xsd_items[0].line == _line_of(xsd_bad, b">seven<")


def test_sbdh_without_payload(validator):
    with pytest.raises(UnknownDocumentTypeError, match="SBDH"):
        validator.validate(SBDH.encode() + b"</StandardBusinessDocument>")


# -- XSD failures and dynamic errors in the official rules -----------------------------------------
def test_non_numeric_quantity_is_a_fatal_item_of_the_peppol_layer(validator, base_example):
    data = base_example.replace(*BAD_QUANTITY)
    report = validator.validate(data)  # must not raise
    d = report.to_dict()
    assert d["valid"] is False
    xsd = [i for i in d["errors"] if i["rule"] == "XSD"]
    assert len(xsd) == 1 and "seven" in xsd[0]["message"] and xsd[0]["layer"] == "XSD"
    assert xsd[0]["line"] == _line_of(data, b">seven<")
    dyn = [i for i in d["errors"] if i["layer"] == "PEPPOL"]
    assert len(dyn) == 1
    assert dyn[0]["rule"] == "DYNAMIC-ERROR" and dyn[0]["severity"] == "fatal"
    assert "seven" in dyn[0]["message"] and "xs:decimal" in dyn[0]["message"]
    statuses = {lay["name"]: lay["status"] for lay in d["layers"]}
    assert statuses == {"XSD": "failed", "CEN": "passed", "PEPPOL": "error"}
    assert d["schematron_skipped"] is False
    assert "schematron-output" in report.to_svrl().decode()


def test_schematron_can_be_skipped_after_an_xsd_error(artefact_cache, base_example):
    v = Validator(artefact_cache, schematron_after_xsd_error=False)
    report = v.validate(base_example.replace(*BAD_QUANTITY))
    d = report.to_dict()
    assert d["schematron_skipped"] is True and d["valid"] is False
    assert [i["rule"] for i in d["errors"]] == ["XSD"]
    assert [lay["status"] for lay in d["layers"]] == ["failed", "skipped", "skipped"]
    assert "skipped" in report.to_text()
    # a schema-valid document still gets every layer
    assert [lay["status"] for lay in v.validate(base_example).to_dict()["layers"]] == ["passed"] * 3


# -- hostile input ------------------------------------------------------------------------------------
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2">&lol9;</Invoice>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE Invoice [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2">&xxe;</Invoice>"""

HOSTILE = {
    "billion-laughs": BILLION_LAUGHS,
    "xxe-file": XXE,
    "xxe-network": XXE.replace(b"file:///etc/passwd", b"http://127.0.0.1:9/x"),
    "external-dtd": b'<?xml version="1.0"?><!DOCTYPE Invoice SYSTEM "http://127.0.0.1:9/x.dtd"><Invoice/>',
    "parameter-entity": b'<!DOCTYPE x [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><x/>',
    "doctype-after-comment": b"<?xml version='1.0'?>\n<!-- hi -->\n<?pi x?>\n<!DOCTYPE x><x/>",
    "utf16-doctype": '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'.encode("utf-16"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_xml_is_refused(validator, name):
    with pytest.raises(HostileXmlError) as err:
        validator.validate(HOSTILE[name])
    assert (err.value.code, err.value.http_status, err.value.exit_code) == ("forbidden-xml", 400, 2)
    assert "DTD" in err.value.message


def test_billion_laughs_memory_is_bounded(tmp_path):
    """In a fresh process: refusing the bomb must not grow the process by more than a few MB."""
    import subprocess
    import sys

    script = tmp_path / "bomb.py"
    bomb = tmp_path / "bomb.xml"
    bomb.write_bytes(BILLION_LAUGHS)
    script.write_text(
        "import resource, sys\n"
        "from validation import xmlinput\n"
        "from validation.errors import HostileXmlError\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        f"data = open({str(bomb)!r}, 'rb').read()\n"
        "try:\n    xmlinput.parse(data, 10**8)\nexcept HostileXmlError:\n    pass\nelse:\n    sys.exit(3)\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(after - before)\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]))
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) < 20_000  # KiB


def test_entity_reference_without_dtd_is_not_xml(validator):
    with pytest.raises(NotXmlError):
        validator.validate(b"<Invoice xmlns='urn:oasis:names:specification:ubl:schema:xsd:Invoice-2'>&xxe;</Invoice>")


def test_xinclude_is_not_processed(validator, base_example):
    data = base_example.replace(
        b"<cbc:BuyerReference>0150abc</cbc:BuyerReference>",
        b'<cbc:BuyerReference>0150abc</cbc:BuyerReference><xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="/etc/passwd" parse="text"/>',
        1,
    )
    report = validator.validate(data)
    assert not report.valid  # the xi:include element is simply not allowed by the schema
    assert "root:" not in json.dumps(report.to_dict()) and b"root:" not in report.to_svrl()


def test_stylesheets_cannot_read_files_or_the_network():
    from validation.engine import saxon_processor

    proc = saxon_processor()
    xslt = proc.new_xslt30_processor()
    for expr in ("unparsed-text('file:///etc/hostname')", "count(doc('file:///etc/hostname'))",
                 "unparsed-text('http://127.0.0.1:9/')"):
        ex = xslt.compile_stylesheet(stylesheet_text=(
            '<xsl:stylesheet xmlns:xsl="http://www.w3.org/1999/XSL/Transform" version="3.0">'
            f'<xsl:template match="/"><r><xsl:value-of select="{expr}"/></r></xsl:template></xsl:stylesheet>'))
        with pytest.raises(Exception) as err:
            ex.transform_to_string(xdm_node=proc.parse_xml(xml_text="<a/>"))
        assert "prohibited" in str(err.value) or "not allowed" in str(err.value), str(err.value)


# -- artefacts --------------------------------------------------------------------------------------
def _private_cache(artefact_cache, tmp_path):
    import shutil

    target = tmp_path / "cache"
    shutil.copytree(artefact_cache, target)
    return target


def test_tampered_artefact_is_refused_at_load_time(artefact_cache, tmp_path, base_example):
    cache = _private_cache(artefact_cache, tmp_path)
    victim = cache / "peppol-bis-billing-3/3.0.21/xslt/PEPPOL-EN16931-UBL.xslt"
    victim.write_bytes(victim.read_bytes().replace(b"PEPPOL-EN16931-R008", b"PEPPOL-EN16931-X008", 1))
    v = Validator(cache)
    with pytest.raises(ArtefactError) as err:
        v.validate(base_example)
    assert "PEPPOL-EN16931-UBL.xslt" in str(err.value) and "SHA-256" in str(err.value)
    assert err.value.code == "artefacts-unavailable"


def test_tampered_schema_is_refused(artefact_cache, tmp_path, base_example):
    cache = _private_cache(artefact_cache, tmp_path)
    victim = cache / "ubl-2.1/xsd/common/UBL-CommonBasicComponents-2.1.xsd"
    victim.write_bytes(victim.read_bytes() + b"<!-- changed -->")
    with pytest.raises(ArtefactError, match="UBL-CommonBasicComponents-2.1.xsd"):
        Validator(cache).validate(base_example)


def test_missing_artefact_is_named(artefact_cache, tmp_path, base_example):
    cache = _private_cache(artefact_cache, tmp_path)
    (cache / "peppol-bis-billing-3/3.0.21/xslt/CEN-EN16931-UBL.xslt").unlink()
    with pytest.raises(ArtefactError, match="CEN-EN16931-UBL.xslt.*missing.*artefacts sync"):
        Validator(cache).validate(base_example)


def test_empty_cache(tmp_path, base_example):
    with pytest.raises(ArtefactError, match="missing"):
        Validator(tmp_path).validate(base_example)


def test_stylesheets_compile_once_and_are_reused(validator, base_example):
    validator.validate(base_example)
    compiled = dict(validator._xslt)
    for _ in range(3):
        validator.validate(base_example)
    assert validator._xslt == compiled and all(validator._xslt[k] is compiled[k] for k in compiled)


def test_rule_sets_listing(validator):
    sets = validator.rule_sets(dt.date(2026, 11, 30))
    assert len(sets) == 47
    by_id = {s["id"]: s for s in sets}
    assert by_id["peppol-billing-invoice@3.0.21"]["status"] == "active"
    assert by_id["peppol-billing-invoice@3.0.19"]["status"] == "superseded"
    assert by_id["peppol-billing-invoice@3.0.21"]["valid_from"] == "2026-08-24"
    early = {s["id"]: s["status"] for s in validator.rule_sets(dt.date(2026, 6, 1))}
    assert early["peppol-billing-invoice@3.0.21"] == "upcoming"
    assert early["peppol-billing-invoice@3.0.19"] == "active"


def test_warm_up_accepts_families_and_ids(artefact_cache):
    v = Validator(artefact_cache)
    assert v.warm_up(["peppol-order", "peppol-mlr@3.0.15"]) == ["peppol-order@3.0.17", "peppol-mlr@3.0.15"]
    assert len(v._xslt) == 2


def test_all_input_errors_share_the_base_class():
    for cls in (NotXmlError, UnknownDocumentTypeError, UnknownRuleSetError, DocumentTooLargeError, HostileXmlError):
        assert issubclass(cls, ValidationInputError)
        assert cls("x").to_dict() == {"error": {"code": cls.code, "message": "x"}}


def test_large_documents(validator, base_example):
    big = samples.with_attachment(base_example, 3 * 1024 * 1024)
    assert len(big) > 3_000_000
    assert validator.validate(big).valid
    lines = samples.many_lines(base_example, 200)
    report = validator.validate(lines)
    assert report.valid, report.to_dict()["errors"][:3]


# -- big documents: lxml work overlapped with Saxon's (same results as the sequential path) -------
def _big(base_example: bytes) -> bytes:
    return samples.with_attachment(base_example, 400 * 1024)


@pytest.mark.parametrize("mutation", ["valid", "xsd", "schematron", "dynamic"])
def test_overlapped_path_gives_the_sequential_results(validator, base_example, monkeypatch, mutation):
    from validation import engine

    data = _big(base_example)
    assert len(data) >= engine.OVERLAP_MIN_BYTES
    if mutation == "xsd":
        data = data.replace(b"<cbc:IssueDate>2017-11-13</cbc:IssueDate>", b"<cbc:IssueDate>13.11.2017</cbc:IssueDate>")
    elif mutation == "schematron":
        data = data.replace(b"<cbc:Name>SupplierTradingName Ltd.</cbc:Name>", b"<cbc:Name/>", 1)
    elif mutation == "dynamic":
        data = data.replace(*BAD_QUANTITY)
    overlapped = validator.validate(data).to_dict()
    monkeypatch.setattr(engine, "OVERLAP_MIN_BYTES", 10**12)
    sequential = validator.validate(data).to_dict()
    assert overlapped == sequential
    assert overlapped["valid"] is (mutation == "valid")
    if mutation == "xsd":
        assert overlapped["errors"][0]["rule"] == "XSD"
        assert overlapped["errors"][0]["line"] == _line_of(data, b"13.11.2017")


def test_overlapped_path_input_errors(validator, base_example):
    big = _big(base_example)
    with pytest.raises(NotXmlError):
        validator.validate(big[:-20])  # truncated
    with pytest.raises(HostileXmlError):
        validator.validate(b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]>' + big.split(b"?>", 1)[1])
    with pytest.raises(UnknownDocumentTypeError):
        validator.validate(big.replace(b"poacc:billing:3.0", b"poacc:unknown:9.9", 1))


def test_overlapped_path_latin1_and_sbdh(validator, base_example):
    text = _big(base_example).decode("utf-8").replace('encoding="UTF-8"', 'encoding="ISO-8859-1"')
    report = validator.validate(text.replace("SupplierTradingName Ltd.", "Blåbær AS").encode("latin-1"))
    assert report.valid and report.document_type["encoding"].upper() == "ISO-8859-1"
    wrapped = _wrap(_big(base_example).replace(b"<cbc:Name>SupplierTradingName Ltd.</cbc:Name>", b"<cbc:Name/>", 1))
    report = validator.validate(wrapped)
    assert report.document_type["sbdh"] is True
    r008 = [i for i in report.errors if i.rule == "PEPPOL-EN16931-R008"]
    assert r008 and r008[0].line == _line_of(wrapped, b"<cbc:Name/>")


def test_overlapped_path_without_schematron_after_xsd_error(artefact_cache, base_example):
    v = Validator(artefact_cache, schematron_after_xsd_error=False)
    report = v.validate(_big(base_example).replace(*BAD_QUANTITY))
    assert report.schematron_skipped and [i.rule for i in report.errors] == ["XSD"]
