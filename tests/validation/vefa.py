"""Runner for the official unit tests in vefa-validator "testSet" format (see
../shared/conformance/README.md for the exact expectation semantics reproduced here)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

VEFA = "http://difi.no/xsd/vefa/validator/1.0"
V = f"{{{VEFA}}}"


@dataclass
class Expectation:
    scope: list[str] = field(default_factory=list)
    success: set[str] = field(default_factory=set)
    expected: Counter = field(default_factory=Counter)  # (rule id, "fatal"|"warning") -> count

    def merged(self, other: "Expectation") -> "Expectation":
        return Expectation(self.scope + other.scope, self.success | other.success, self.expected + other.expected)


@dataclass
class UnitTest:
    file: Path
    index: int
    configuration: str
    description: str
    document: bytes
    root: str  # local name of the embedded document's root
    expectation: Expectation


def _expectation(assert_el: etree._Element | None) -> Expectation:
    exp = Expectation()
    if assert_el is None:
        return exp
    for el in assert_el:
        if not isinstance(el.tag, str):
            continue
        tag = etree.QName(el).localname
        rule = (el.text or "").strip()
        if tag == "scope":
            exp.scope.append(rule)
        elif tag == "success":
            exp.success.add(rule)
        elif tag in ("error", "warning", "fatal"):
            flag = "warning" if tag == "warning" else "fatal"  # vefa: SVRL fatal -> "error"
            exp.expected[(rule, flag)] += int(el.get("number") or 1)
    return exp


def load(path: Path) -> list[UnitTest]:
    tree = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True))
    root = tree.getroot()
    if root.tag != f"{V}testSet":
        return []
    base = _expectation(root.find(f"{V}assert"))
    tests = []
    for i, test in enumerate(root.findall(f"{V}test")):
        exp = base.merged(_expectation(test.find(f"{V}assert")))
        doc = next((el for el in test if isinstance(el.tag, str) and etree.QName(el).namespace != VEFA), None)
        if doc is None:
            continue
        desc_el = test.find(f"{V}assert/{V}description")
        tests.append(UnitTest(
            file=path, index=i, configuration=root.get("configuration", ""),
            description=(desc_el.text or "").strip() if desc_el is not None else "",
            document=etree.tostring(doc, encoding="UTF-8", xml_declaration=True),
            root=etree.QName(doc).localname, expectation=exp,
        ))
    return tests


def discover(folder: Path) -> list[Path]:
    """Only `.xml` files count, as in the official runner (PEPPOL-COMMON-R048.xm is disabled)."""
    return sorted(p for p in folder.rglob("*.xml") if b"testSet" in p.read_bytes()[:4096])


def check(test: UnitTest, fired: list[tuple[str, str]]) -> list[str]:
    """Problems of one test given the (rule id, severity) pairs that fired; [] means it passes."""
    exp = test.expectation
    scope = set(exp.scope)
    in_scope = [f for f in fired if not scope or f[0] in scope]
    problems = []
    remaining = Counter(exp.expected)
    for rule, flag in in_scope:
        if rule in exp.success:
            problems.append(f"{rule} fired ({flag}) but the test expects success")
        elif remaining[(rule, flag)] > 0:
            remaining[(rule, flag)] -= 1
        else:
            problems.append(f"unexpected {rule} ({flag})")
    for (rule, flag), n in remaining.items():
        if n > 0:
            problems.append(f"expected {rule} ({flag}) {n} more time(s)")
    return problems


_TNN = re.compile(r"peppolbis-(t\d+)-base-3\.0")


def rule_set_for(configuration: str, root: str, sets: dict) -> str | None:
    """The mirrored rule set a vefa configuration name stands for (None: not mirrored, skip)."""
    if configuration.startswith("peppolbis-en16931-"):
        return f"peppol-billing-{'creditnote' if root == 'CreditNote' else 'invoice'}@3.0.19"
    if configuration == "tc434-ubl":
        return f"en16931-ubl-{'creditnote' if root == 'CreditNote' else 'invoice'}@1.3.16"
    m = _TNN.fullmatch(configuration)
    if m:
        artefact = f"PEPPOLBIS-{m.group(1).upper()}.xslt"
        for rs in sets.values():
            if rs.version == "3.0.15" and any(lay.artefact == artefact for lay in rs.schematron):
                return rs.id
    return None
