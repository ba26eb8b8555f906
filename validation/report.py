"""The validation report and its three renderings (JSON object, text, SVRL).

The JSON object is the public contract shared by `sendgw validate --format json` and the body of
`POST /api/v1/validate`:

    {"valid": bool, "rules": "<set id>", "artefacts": [{"name": str, "version": str}],
     "errors": [ITEM], "warnings": [ITEM], ...extra keys}
    ITEM = {"rule": str, "severity": "fatal"|"warning", "message": str, "location": str,
            "line": int|null, "layer": str}

`valid` is false iff there is any fatal item; XSD errors are fatal items with rule "XSD". Extra
keys (never replacing the ones above): "document_type", "schematron_skipped" and "layers" (one
entry per layer with its status and the artefact's SHA-256).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from xml.sax.saxutils import escape, quoteattr

Severity = Literal["fatal", "warning"]
LayerStatus = Literal["passed", "failed", "skipped", "error", "not-run"]


@dataclass(frozen=True)
class Item:
    rule: str
    severity: Severity
    message: str
    location: str
    line: int | None
    layer: str
    test: str = ""  # the failed XPath test (SVRL rendering only; not part of the JSON item)

    def to_dict(self) -> dict:
        return {"rule": self.rule, "severity": self.severity, "message": self.message,
                "location": self.location, "line": self.line, "layer": self.layer}


@dataclass
class LayerResult:
    name: str
    kind: str  # "xsd" or "schematron"
    artefact: str
    version: str
    sha256: str
    status: LayerStatus = "not-run"
    fatal: int = 0
    warnings: int = 0
    svrl: str | None = None  # raw SVRL as the official stylesheet produced it

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "artefact": self.artefact, "version": self.version,
                "sha256": self.sha256, "status": self.status, "fatal": self.fatal, "warnings": self.warnings}


@dataclass
class Report:
    rules: str
    title: str = ""
    layers: list[LayerResult] = field(default_factory=list)
    errors: list[Item] = field(default_factory=list)
    warnings: list[Item] = field(default_factory=list)
    schematron_skipped: bool = False
    document_type: dict = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return not self.errors

    @property
    def artefacts(self) -> list[dict]:
        return [{"name": lay.artefact, "version": lay.version} for lay in self.layers]

    def add(self, item: Item) -> None:
        (self.errors if item.severity == "fatal" else self.warnings).append(item)

    def to_dict(self) -> dict:
        return {
            "valid": self.valid,
            "rules": self.rules,
            "artefacts": self.artefacts,
            "errors": [i.to_dict() for i in self.errors],
            "warnings": [i.to_dict() for i in self.warnings],
            "document_type": self.document_type,
            "schematron_skipped": self.schematron_skipped,
            "layers": [lay.to_dict() for lay in self.layers],
        }

    # -- text --------------------------------------------------------------------------------
    def to_text(self, name: str | None = None) -> str:
        head = f"{name}: " if name else ""
        verdict = "valid" if self.valid else "INVALID"
        counts = f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)"
        lines = [f"{head}{verdict} — {counts}", f"  rules: {self.rules}" + (f" ({self.title})" if self.title else "")]
        lines.append("  layers: " + ", ".join(f"{lay.name} {lay.artefact} {lay.version} [{lay.status}]"
                                            for lay in self.layers))
        if self.schematron_skipped:
            lines.append("  note: the document is not schema-valid, so the Schematron layers were skipped")
        elif any(lay.kind == "xsd" and lay.status == "failed" for lay in self.layers):
            lines.append("  note: the document is not schema-valid; Schematron results may be incomplete")
        for item in self.errors + self.warnings:
            where = f"line {item.line}" if item.line else "line ?"
            lines.append(f"  {item.severity:<7} {item.rule} [{item.layer}] {where}: {item.message}")
            if item.location:
                lines.append(f"          at {friendly_location(item.location)}")
        return "\n".join(lines) + "\n"

    # -- SVRL --------------------------------------------------------------------------------
    def to_svrl(self) -> bytes:
        """All layers as one XML document: each layer's SVRL as the official rules produced it
        (the XSD layer's errors as synthesised failed asserts), wrapped in `sendgw:report`.
        Needs a report validated with `svrl=True` (the default)."""
        if any(lay.kind == "schematron" and lay.status in ("passed", "failed") and lay.svrl is None
               for lay in self.layers):
            raise ValueError("the layers' SVRL was not kept: validate with svrl=True to render SVRL")
        out = ['<?xml version="1.0" encoding="UTF-8"?>\n',
               f'<sendgw:report xmlns:sendgw="urn:sendgw:validation:1" xmlns:svrl="http://purl.oclc.org/dsdl/svrl"'
               f' rules={quoteattr(self.rules)} valid="{str(self.valid).lower()}"'
               f' schematron-skipped="{str(self.schematron_skipped).lower()}">\n']
        for lay in self.layers:
            out.append(f'<sendgw:layer name={quoteattr(lay.name)} artefact={quoteattr(lay.artefact)}'
                       f' version={quoteattr(lay.version)} sha256="{lay.sha256}" status="{lay.status}">\n')
            if lay.svrl is not None:
                out.append(_strip_declaration(lay.svrl))
            elif lay.kind == "xsd" or lay.status == "error":
                out.append(f'<svrl:schematron-output title={quoteattr(lay.artefact)}>\n')
                for item in self.errors + self.warnings:
                    if item.layer != lay.name:
                        continue
                    out.append(
                        f'<svrl:failed-assert id={quoteattr(item.rule)} flag="{item.severity}"'
                        f' location={quoteattr(item.location)}'
                        + (f' test={quoteattr(item.test)}' if item.test else "")
                        + (f' sendgw:line="{item.line}"' if item.line else "")
                        + f'><svrl:text>{escape(item.message)}</svrl:text></svrl:failed-assert>\n'
                    )
                out.append("</svrl:schematron-output>\n")
            out.append("</sendgw:layer>\n")
        out.append("</sendgw:report>\n")
        return "".join(out).encode("utf-8")


def _strip_declaration(svrl: str) -> str:
    s = svrl.lstrip("\ufeff")
    if s.startswith("<?xml"):
        s = s[s.index("?>") + 2:]
    return s.strip() + "\n"


_PREFIXES = {
    "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2": "cbc",
    "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2": "cac",
    "urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2": "ext",
}


def friendly_location(location: str) -> str:
    """`/*:Invoice[namespace-uri()='...'][1]/*:InvoiceLine[namespace-uri()='...cac...'][2]` ->
    `/Invoice/cac:InvoiceLine[2]` (for reading; the report keeps the exact XPath)."""
    import re

    def step(m: re.Match) -> str:
        local, ns, idx = m.group(1), m.group(2), m.group(3)
        prefix = _PREFIXES.get(ns)
        name = f"{prefix}:{local}" if prefix else local
        return name + (f"[{idx}]" if idx and idx != "1" else "")

    return re.sub(r"\*:([^\[/]+)\[namespace-uri\(\)='([^']*)'\](?:\[(\d+)\])?", step, location)
