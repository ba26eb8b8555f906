"""SBDH (Peppol Business Message Envelope 2.0.x): shared samples, build, rule checks, unwrapping."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
from lxml import etree

from gateway.sbdh import SbdhError, build_sbd, read_sbdh, unwrap_business_document

UTC = dt.timezone.utc
DOC = ("urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##urn:cen.eu:en16931:2017#compliant"
       "#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1")
PROC = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
INVOICE = (b'<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2" '
           b'xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"><cbc:ID>1</cbc:ID>'
           b'</Invoice>')


@pytest.mark.parametrize("name,warn", [
    ("sbdh-good-bis3-full.xml", True),
    ("sbdh-good-bis3-with-mls-to.xml", True),
    ("sbdh-good-bis3-with-mls-type.xml", False),
])
def test_good_samples(shared_dir, name, warn):
    s = read_sbdh((shared_dir / "interop/peppol-commons" / name).read_bytes())
    assert (s.sender, s.receiver) == ("0088:7315458756324", "0088:4562458856624")
    assert s.document_id == DOC and s.process_id == PROC and s.country_c1 == "AT"
    assert s.instance_identifier == "a593a0aa-6ff7-48b0-8906-5534fa5212e0"
    assert bool(s.warnings) == warn
    if "full" in name:
        assert (s.mls_to, s.mls_type) == ("9915:test", "ALWAYS_SEND")


@pytest.mark.parametrize("name,code", [
    ("sbdh-bad-no-country-c1.xml", "invalid-scope-count"),
    ("sbdh-bad-too-few-scopes.xml", "invalid-scope-count"),
    ("sbdh-bad-mls-to-invalid-value.xml", "invalid-mls-to"),
])
def test_bad_samples(shared_dir, name, code):
    with pytest.raises(SbdhError) as e:
        read_sbdh((shared_dir / "interop/peppol-commons" / name).read_bytes())
    assert e.value.code == code


def test_phase4_sample_and_large_mode_agree(shared_dir):
    data = (shared_dir / "interop/phase4/sbd-bis3-invoice-base.xml").read_bytes()
    assert read_sbdh(data) == read_sbdh(data, full_parse_limit=100)
    assert read_sbdh(data).action == "busdox-docid-qns::" + read_sbdh(data).document_id


def sbd(**kw) -> bytes:
    args = dict(sender="0192:991825827", receiver="0192:987654325", document_id=DOC, process_id=PROC,
                country_c1="NO", creation_date_time=dt.datetime(2026, 11, 30, 12, tzinfo=UTC))
    args.update(kw)
    return build_sbd(INVOICE, **args)


def test_build_round_trip():
    inst = str(uuid.uuid4())
    data = sbd(instance_identifier=inst, mls_to="0242:000123", mls_type="FAILURE_ONLY")
    s = read_sbdh(data)
    assert (s.instance_identifier, s.mls_to, s.mls_type, s.warnings) == (inst, "0242:000123", "FAILURE_ONLY", ())
    assert (s.standard, s.document_type, s.type_version) == (
        "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2", "Invoice", "2.1")
    assert s.creation_date_time == "2026-11-30T12:00:00.000Z"
    assert uuid.UUID(read_sbdh(sbd()).instance_identifier)


@pytest.mark.parametrize("kw,code", [
    (dict(instance_identifier="INV-1"), "invalid-instance-identifier"),
    (dict(creation_date_time=dt.datetime(2026, 1, 1)), "invalid-creation-date-time"),
    (dict(country_c1="nor"), "invalid-country-c1"),
    (dict(mls_to="0242:12"), "invalid-mls-to"),
    (dict(mls_type="SOMETIMES"), "invalid-mls-type"),
    (dict(sender="991825827"), "invalid-sender-value"),
    (dict(document_id=DOC.replace("Invoice-2::Invoice", "CreditNote-2::CreditNote")),
     "invalid-document-type-identifier"),
])
def test_build_refuses_invalid(kw, code):
    with pytest.raises(SbdhError) as e:
        sbd(**kw)
    assert e.value.code == code


def mutate(pattern: str, repl: str) -> bytes:
    data = sbd().decode()
    out = re.sub(pattern, repl, data, count=1)
    assert out != data, pattern
    return out.encode()


@pytest.mark.parametrize("pattern,repl,code", [
    (r"<HeaderVersion>1.0<", "<HeaderVersion>2.0<", "invalid-header-version"),
    (r'Authority="iso6523-actorid-upis">0192:9918', 'Authority="other">0192:9918', "invalid-sender-authority"),
    (r"</Receiver>", "</Receiver><Receiver><Identifier Authority=\"iso6523-actorid-upis\">0192:1</Identifier></Receiver>",
     "invalid-receiver-count"),
    (r"<Standard>[^<]*<", "<Standard>urn:other<", "invalid-standard"),
    (r"<Type>Invoice<", "<Type>CreditNote<", "invalid-type"),
    (r"<TypeVersion>2.1<", "<TypeVersion>2.2<", "invalid-type-version"),
    (r"<CreationDateAndTime>[^<]*<", "<CreationDateAndTime>2026-11-30T12:00:00<", "invalid-creation-date-time"),
    (r"<InstanceIdentifier>[0-9a-f-]{36}<", "<InstanceIdentifier><", "invalid-instance-identifier"),
    (r"<BusinessScope>.*</BusinessScope>", "", "business-scope-missing"),
    (r"<Scope><Type>PROCESSID</Type>", "<Scope><Type>DOCUMENTID</Type>", "invalid-scope-count"),
    (r"</Invoice>", "</Invoice><Invoice xmlns='urn:x'/>", "invalid-business-message"),
    (r"<Invoice .*</Invoice>", "", "invalid-business-message"),
    (r"<StandardBusinessDocumentHeader>", "<X/><StandardBusinessDocumentHeader>", "sbdh-missing"),
    (r"<\?xml[^>]*\?>", '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>', "invalid-xml"),
])
def test_rule_violations(pattern, repl, code):
    data = mutate(pattern, repl)
    with pytest.raises(SbdhError) as e:
        read_sbdh(data)
    assert e.value.code == code
    if "Invoice xmlns='urn:x'" not in repl:  # a 2nd business document is only seen by a full parse
        with pytest.raises(SbdhError) as e:
            read_sbdh(data, full_parse_limit=0)  # head/tail mode used for large payloads
        assert e.value.code in (code, "invalid-xml", "sbdh-missing")


def test_large_mode_detects_truncation_and_missing_header():
    data = sbd()
    with pytest.raises(SbdhError) as e:
        read_sbdh(data[:-40], full_parse_limit=0)
    assert e.value.code == "invalid-xml"
    no_header = re.sub(rb"<StandardBusinessDocumentHeader>.*</StandardBusinessDocumentHeader>", b"", data, flags=re.S)
    with pytest.raises(SbdhError) as e:
        read_sbdh(no_header, full_parse_limit=0)
    assert e.value.code == "sbdh-missing"
    assert read_sbdh(data, full_parse_limit=0) == read_sbdh(data)


def test_nested_envelope_rejected():
    inner = sbd()
    with pytest.raises(SbdhError) as e:
        build_sbd(inner.split(b"?>", 1)[1], sender="0192:991825827", receiver="0192:987654325",
                  document_id="busdox-docid-qns-x", process_id=PROC, country_c1="NO",
                  creation_date_time=dt.datetime(2026, 1, 1, tzinfo=UTC), document_id_scheme="peppol-doctype-wildcard")
    assert e.value.code in ("nested-envelope", "invalid-standard", "invalid-type")


def test_unwrap_keeps_inherited_namespaces():
    data = (b'<?xml version="1.0" encoding="UTF-8"?><sh:StandardBusinessDocument '
            b'xmlns:sh="http://www.unece.org/cefact/namespaces/StandardBusinessDocumentHeader" '
            b'xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">'
            + sbd().split(b"<StandardBusinessDocumentHeader>", 1)[1].split(b"<Invoice", 1)[0]
            .replace(b"<", b"<sh:").replace(b"<sh:/", b"</sh:")
            .join([b"<sh:StandardBusinessDocumentHeader>", b""])
            + b'<!-- c --><Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"><cbc:ID>7</cbc:ID>'
              b'</Invoice></sh:StandardBusinessDocument>\n')
    s = read_sbdh(data)
    assert s.document_type == "Invoice"
    doc = unwrap_business_document(data).read_bytes()
    root = etree.fromstring(doc)
    assert root.findtext("{urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2}ID") == "7"
    assert b"StandardBusinessDocument" not in doc


HEADER_END = b"</StandardBusinessDocumentHeader>"


@pytest.mark.parametrize("mutate", [
    pytest.param(lambda d: d.replace(HEADER_END, HEADER_END + b"<?pi data?>\n"), id="pi-before-root"),
    pytest.param(lambda d: d + b"<!-- trailing comment -->\n", id="trailing-comment"),
    pytest.param(lambda d: d + b"<?trailing pi?>", id="trailing-pi"),
    pytest.param(lambda d: d.replace(b"<HeaderVersion>", b"<!-- " + HEADER_END + b"<Evil xmlns='urn:evil'/> -->"
                                     b"<HeaderVersion>"), id="end-tag-in-a-header-comment"),
    pytest.param(lambda d: d.replace(b"<HeaderVersion>1.0", b"<HeaderVersion><![CDATA[1.0]]><?x " + HEADER_END
                                     + b"?>"), id="end-tag-in-a-header-pi"),
])
@pytest.mark.parametrize("large", [False, True])
def test_unwrap_agrees_with_the_parser_on_legal_xml_variants(mutate, large):
    """Whatever read_sbdh accepts, unwrap cuts out the same business document (it used to raise on
    PIs and trailing Misc, and to start at an end tag quoted in a header comment)."""
    data = sbd()
    variant = mutate(data)
    assert read_sbdh(variant, full_parse_limit=0 if large else 1 << 30) == read_sbdh(data)
    assert unwrap_business_document(variant).read_bytes() == unwrap_business_document(data).read_bytes()


def test_header_end_scan_is_linear_on_hostile_heads():
    import time

    from gateway.sbdh import _header_end
    start = time.monotonic()
    for head in (b"<!--" + b"<!--x" * 200_000, b"<?" * 400_000, b"<a" * 400_000, b"<![CDATA[" * 100_000):
        assert _header_end(head) is None
    assert time.monotonic() - start < 5
