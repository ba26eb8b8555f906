"""SVRL scanning (rule ids, flags, messages) and SVRL locations to source lines."""

from __future__ import annotations

from lxml import etree

from validation.report import friendly_location
from validation.svrl import LineFinder, findings, severity

SVRL = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<svrl:schematron-output xmlns:svrl="http://purl.oclc.org/dsdl/svrl" xmlns:cbc="urn:cbc" title="t">
   <svrl:active-pattern document="" id="p"/>
   <svrl:fired-rule context="/x"/>
   <svrl:failed-assert test="a &gt; b" id="R-1" flag="fatal" location="/*:Invoice[namespace-uri()='urn:i'][1]">
      <svrl:text>[R-1]-First   message
         spanning lines</svrl:text>
   </svrl:failed-assert>
   <svrl:failed-assert test="x" flag="warning" location="/*:Invoice[namespace-uri()='urn:i'][1]">
      <svrl:text>[FALLBACK-7]-Id only in the text</svrl:text>
   </svrl:failed-assert>
   <svrl:failed-assert test="y" id="NOFLAG" location="/">
      <svrl:text>No flag at all</svrl:text>
   </svrl:failed-assert>
   <svrl:successful-report test="z" id="REP-1" flag="warning" location="/">
      <svrl:text>A report &amp; an ampersand</svrl:text>
   </svrl:successful-report>
</svrl:schematron-output>"""


def test_findings():
    found = findings(SVRL)
    assert [(f.kind, f.rule, f.flag) for f in found] == [
        ("failed-assert", "R-1", "fatal"),
        ("failed-assert", "FALLBACK-7", "warning"),
        ("failed-assert", "NOFLAG", None),
        ("successful-report", "REP-1", "warning"),
    ]
    assert found[0].message == "First message spanning lines"
    assert found[0].test == "a > b"
    assert found[1].message == "Id only in the text"
    assert found[3].message == "A report & an ampersand"


def test_findings_fast_path_and_other_prefix():
    assert findings('<svrl:schematron-output xmlns:svrl="http://purl.oclc.org/dsdl/svrl"/>') == []
    other = SVRL.replace("svrl:", "s:").replace("xmlns:svrl", "xmlns:s")
    assert [f.rule for f in findings(other)] == ["R-1", "FALLBACK-7", "NOFLAG", "REP-1"]
    default_ns = (
        '<schematron-output xmlns="http://purl.oclc.org/dsdl/svrl"><failed-assert id="A" location="/">'
        "<text>t</text></failed-assert></schematron-output>"
    )
    assert [f.rule for f in findings(default_ns)] == ["A"]


def test_severity_mapping():
    # a failed assert without @flag counts as fatal (vefa: error); warnings stay warnings
    assert [severity(f.flag) for f in findings(SVRL)] == ["fatal", "warning", "fatal", "warning"]
    assert severity("error") == "fatal" and severity("information") == "warning"


DOC = b"""<Invoice xmlns="urn:i" xmlns:cac="urn:cac" xmlns:cbc="urn:cbc">
  <cbc:ID>1</cbc:ID>
  <cac:Line>
    <cbc:ID>a</cbc:ID>
  </cac:Line>
  <cac:Line>
    <cbc:ID currency="EUR">b</cbc:ID>
    <cbc:Note xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:Sig/></cbc:Note>
  </cac:Line>
</Invoice>"""


def test_line_finder():
    root = etree.fromstring(DOC)
    f = LineFinder(root)
    inv = "/*:Invoice[namespace-uri()='urn:i'][1]"
    line2 = inv + "/*:Line[namespace-uri()='urn:cac'][2]"
    assert f.line(inv) == 1
    assert f.line(inv + "/*:ID[namespace-uri()='urn:cbc'][1]") == 2
    assert f.line(line2) == 6
    assert f.line(line2 + "/*:ID[namespace-uri()='urn:cbc'][1]/@currency") == 7
    sig = line2 + "/*:Note[namespace-uri()='urn:cbc'][1]/*:Sig[namespace-uri()='http://www.w3.org/2000/09/xmldsig#'][1]"
    assert f.line(sig) == 8
    assert f.line(inv + "/*:Line[namespace-uri()='urn:cac'][3]") is None
    assert f.line("/") == 1
    assert f.line("") is None
    # generic XPath fallback
    assert f.line("/*[local-name()='Invoice']/*[local-name()='Line'][2]") == 6


def test_line_finder_on_an_sbdh_payload():
    env = b"<SBD xmlns='urn:sbdh'>\n<Header/>\n" + DOC + b"\n</SBD>"
    payload = etree.fromstring(env)[1]
    f = LineFinder(payload)
    assert f.line("/*:Invoice[namespace-uri()='urn:i'][1]/*:Line[namespace-uri()='urn:cac'][2]") == 8


def test_friendly_location():
    loc = ("/*:Invoice[namespace-uri()='urn:oasis:names:specification:ubl:schema:xsd:Invoice-2'][1]"
           "/*:InvoiceLine[namespace-uri()='urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2'][2]"
           "/*:ID[namespace-uri()='urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2'][1]")
    assert friendly_location(loc) == "/Invoice/cac:InvoiceLine[2]/cbc:ID"
