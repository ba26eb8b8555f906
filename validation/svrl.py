"""SVRL handling: failed asserts and successful reports out of the official XSLTs' output, and
source lines for their XPath locations.

The official compiled rules emit every `svrl:fired-rule` (13,000 of them for a 1,000-line
invoice), so the SVRL is scanned for the few elements that matter instead of being parsed whole:
the `failed-assert` / `successful-report` elements are cut out with one regular-expression pass
and only those are parsed (with the root element's namespace declarations around them). When the
scan finds nothing there is nothing to parse at all, which is the common case for valid documents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

SVRL_NS = "http://purl.oclc.org/dsdl/svrl"
_ROOT = re.compile(r"<(?:([A-Za-z_][\w.\-]*):)?schematron-output\b[^>]*>")
_ID_PREFIX = re.compile(r"^\s*\[([^\]\s]+)\]\s*-\s*")


@dataclass(frozen=True)
class Finding:
    kind: str  # "failed-assert" or "successful-report"
    rule: str
    flag: str | None
    message: str
    location: str
    test: str


def severity(flag: str | None) -> str:
    """Report severity of an SVRL flag: "warning" (and "information") stay warnings; "fatal",
    "error", anything else and no flag at all are fatal (vefa: a failed assert without flag is an
    error)."""
    return "warning" if (flag or "").strip().lower() in ("warning", "information", "info") else "fatal"


def _finding(el: etree._Element) -> Finding:
    kind = etree.QName(el).localname
    text_el = el.find(f"{{{SVRL_NS}}}text")
    raw = " ".join("".join(text_el.itertext()).split()) if text_el is not None else ""
    rule = el.get("id") or ""
    m = _ID_PREFIX.match(raw)
    if m:
        if not rule:
            rule = m.group(1)
        raw = raw[m.end():]
    return Finding(kind=kind, rule=rule, flag=el.get("flag"), message=raw,
                   location=el.get("location") or "", test=el.get("test") or "")


def findings(svrl: str) -> list[Finding]:
    """Every failed assert and successful report of one SVRL document, in document order."""
    if "failed-assert" not in svrl and "successful-report" not in svrl:
        return []
    root = _ROOT.search(svrl)
    if root is not None:
        p = root.group(1) + ":" if root.group(1) else ""
        chunk = re.compile(
            rf"<{re.escape(p)}(failed-assert|successful-report)\b(?:[^<>]*/>|.*?</{re.escape(p)}\1\s*>)", re.S
        )
        parts = [m.group(0) for m in chunk.finditer(svrl)]
        close = f"</{p}schematron-output>"
        try:
            wrapper = etree.fromstring(root.group(0) + "".join(parts) + close)
            found = [_finding(el) for el in wrapper
                     if isinstance(el.tag, str) and etree.QName(el).namespace == SVRL_NS]
            if len(found) == len(parts):
                return found
        except etree.XMLSyntaxError:
            pass
    # Unexpected layout: parse the whole document (slower, always right).
    doc = etree.fromstring(svrl.encode("utf-8"), etree.XMLParser(huge_tree=True, resolve_entities=False))
    return [_finding(el) for el in doc.iter(f"{{{SVRL_NS}}}failed-assert", f"{{{SVRL_NS}}}successful-report")]


# -- locations -> source lines ------------------------------------------------------------------
_STEP = re.compile(
    r"/(?:\*:([^\[/]+)\[namespace-uri\(\)='([^']*)'\]|([A-Za-z_][\w.\-]*))(?:\[(\d+)\])?"
)
_ATTR = re.compile(r"/@.*$|/text\(\)(?:\[\d+\])?$|/comment\(\)(?:\[\d+\])?$")


class LineFinder:
    """Finds the source line of SVRL locations on the lxml tree of the validated document.

    Locations look like `/*:Invoice[namespace-uri()='urn:...'][1]/*:InvoiceLine[namespace-uri()=
    '...'][2]/@unitCode`. They are walked step by step from the document root with a cache of
    resolved prefixes; anything else falls back to XPath 1.0 on the tree.
    """

    def __init__(self, root: etree._Element):
        self.root = root
        self._cache: dict[str, etree._Element | None] = {}
        # children of one tag per resolved parent path: the n-th InvoiceLine is a list lookup, not a
        # walk over n siblings (thousands of findings on a long invoice were quadratic)
        self._children: dict[tuple[str, str], list[etree._Element]] = {}

    def line(self, location: str) -> int | None:
        el = self.element(location)
        if el is None:
            return None
        return el.sourceline

    def element(self, location: str) -> etree._Element | None:
        if not location or not location.startswith("/"):
            return None
        path = _ATTR.sub("", location) or "/"
        if path in self._cache:
            return self._cache[path]
        el = self._walk(path)
        if el is None:
            el = self._xpath(path)
        self._cache[path] = el
        return el

    def _walk(self, path: str) -> etree._Element | None:
        if path == "/":
            return self.root
        steps = []
        pos = 0
        for m in _STEP.finditer(path):
            if m.start() != pos:
                return None
            pos = m.end()
            steps.append(m)
        if pos != len(path) or not steps:
            return None
        el: etree._Element | None = None
        for n, m in enumerate(steps):
            prefix = path[: m.end()]
            cached = self._cache.get(prefix, False)
            if cached is not False:
                el = cached
                if el is None:
                    return None
                continue
            local = m.group(1) or m.group(3)
            ns = m.group(2) if m.group(1) else None
            index = int(m.group(4) or 1)
            if ns is None and ":" in local:
                return None  # a prefixed name: leave it to XPath
            tag = f"{{{ns}}}{local}" if ns else local
            if n == 0:
                el = self.root if (self.root.tag == tag and index == 1) else None
            else:
                key = (path[: m.start()], tag)
                children = self._children.get(key)
                if children is None:
                    children = self._children[key] = list(el.iterchildren(tag=tag))
                el = children[index - 1] if 0 < index <= len(children) else None
            self._cache[prefix] = el
            if el is None:
                return None
        return el

    def _xpath(self, path: str) -> etree._Element | None:
        expr = re.sub(r"\*:([^\[/]+)\[namespace-uri\(\)='([^']*)'\]",
                      r"*[local-name()='\1' and namespace-uri()='\2']", path)
        try:
            tree = self.root.getroottree()
            if tree.getroot() is not self.root:  # the business document inside an SBDH envelope
                expr = "." + expr[expr.find("/", 1):] if expr.count("/") > 1 else "."
                result = self.root.xpath(expr)
            else:
                result = tree.xpath(expr)
        except (etree.XPathError, ValueError):
            return None
        if isinstance(result, list) and result and isinstance(result[0], etree._Element):
            return result[0]
        return None
