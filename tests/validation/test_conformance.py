"""The complete official conformance suite in ../shared/conformance, run through the engine.

- every unit test (vefa testSet format, 2,260 tests in 573 files) must reproduce its expected rule
  ids exactly, with the semantics described in conformance/README.md (only the Schematron layers
  run on the embedded fragment);
- every example document with a mirrored rule set must give the outcome recorded in
  expected-results.json (XSD verdict, fatal and warning rule ids) — all clean except the two Greek
  national examples of Billing 3.0.19, which are XSD-invalid;
- the examples without mirrored rules (Peppol Logistics) must be refused as unknown document types.

Rule sets are chosen the way a user would: the engine picks the set from the document, with the
reference date set to when the matching release was in force (3.0.19 / 3.0.15 examples are
validated "as of" 2025-09-01); only the EN 16931 examples, which carry Peppol CustomizationIDs,
name their set explicitly.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path

import pytest
from lxml import etree

from tests.validation import vefa
from validation.errors import UnknownDocumentTypeError

pytestmark = pytest.mark.slow

MAY_2025 = dt.date(2025, 9, 1)  # Billing 3.0.19 / POACC 3.0.15 in force


def test_all_official_unit_tests_reproduce_their_expected_rule_ids(validator, conformance: Path):
    files = vefa.discover(conformance)
    tests = [t for f in files for t in vefa.load(f)]
    assert len(files) == 573
    outcome: Counter = Counter()
    failures = []
    per_suite: Counter = Counter()
    for t in tests:
        set_id = vefa.rule_set_for(t.configuration, t.root, validator.catalogue.sets)
        if set_id is None:  # ehf-common-base-3.0: rules not published as a separate artefact
            outcome["skipped"] += 1
            continue
        report = validator.validate(t.document, rules=set_id, xsd=False, svrl=False)  # the API's path
        fired = [(i.rule, i.severity) for i in report.errors + report.warnings]
        problems = vefa.check(t, fired)
        if problems:
            failures.append(f"{t.file.relative_to(conformance)} test #{t.index + 1}: {problems}")
            outcome["failed"] += 1
        else:
            outcome["passed"] += 1
            per_suite[set_id.split("@")[1]] += 1
    assert failures == [], "\n".join(failures[:20])
    assert outcome == Counter(passed=2260, skipped=2)
    # EN 16931 1.3.16: 1,131; Billing 3.0.19: 543; POACC 3.0.15: 586
    assert per_suite == Counter({"1.3.16": 1131, "3.0.19": 543, "3.0.15": 586})


def test_unit_test_harness_detects_rule_changes(validator, conformance: Path):
    """The 3.0.19 Danish tests against the 3.0.21 rules: DK-R-003 became fatal there."""
    tests = [t for f in vefa.discover(conformance / "peppol-bis-billing-3/3.0.19/unit-UBL-DK") for t in vefa.load(f)]
    failing = 0
    for t in tests:
        set_id = vefa.rule_set_for(t.configuration, t.root, validator.catalogue.sets).replace("3.0.19", "3.0.21")
        report = validator.validate(t.document, rules=set_id, xsd=False)
        if vefa.check(t, [(i.rule, i.severity) for i in report.errors + report.warnings]):
            failing += 1
    assert failing > 0


def _root_local(data: bytes) -> str:
    for _, el in etree.iterparse(__import__("io").BytesIO(data), events=("start",)):
        return etree.QName(el).localname
    raise AssertionError


def test_all_official_examples_validate_as_expected(validator, conformance: Path):
    expected = json.loads((conformance / "expected-results.json").read_text(encoding="utf-8"))["examples"]
    assert len(expected) == 249
    counts: Counter = Counter()
    mismatches = []
    for e in expected:
        data = (conformance / e["file"]).read_bytes()
        label = e["rules"]
        if label.startswith("Peppol Logistics"):
            with pytest.raises(UnknownDocumentTypeError):
                validator.validate(data)
            counts["no-rules"] += 1
            continue
        at = MAY_2025 if ("3.0.19" in label or "3.0.15" in label) else None
        rules = None
        if label.startswith("EN16931"):
            rules = "en16931-ubl-creditnote" if _root_local(data) == "CreditNote" else "en16931-ubl-invoice"
        report = validator.validate(data, rules=rules, at=at)
        version = label.split()[-1]
        assert report.rules.endswith("@" + {"2023-02": "2023-02-16"}.get(version, version)), (e["file"], report.rules)
        xsd_valid = not any(i.rule == "XSD" for i in report.errors)
        fatal = sorted({i.rule for i in report.errors if i.rule != "XSD"})
        warnings = sorted({i.rule for i in report.warnings})
        if (xsd_valid, fatal, warnings) != (e["xsd_valid"], sorted(e["fatal_ids"]), sorted(e["warning_ids"])):
            mismatches.append((e["file"], report.rules, xsd_valid, fatal, warnings))
        counts["valid" if report.valid else "invalid"] += 1
    assert mismatches == []
    assert counts == Counter({"valid": 238, "invalid": 2, "no-rules": 9})


def test_the_greek_examples_are_the_invalid_ones(validator, conformance: Path):
    folder = conformance / "peppol-bis-billing-3/3.0.19/national-examples/GR"
    for path in sorted(folder.glob("*.xml")):
        report = validator.validate(path.read_bytes(), at=MAY_2025)
        assert report.rules == "peppol-billing-invoice@3.0.19"
        assert not report.valid
        assert any(i.rule == "XSD" and "AdditionalDocumentReference" in i.message for i in report.errors)
