"""Hardened XML parsing and exclusive C14N for the SOAP part and signals.

No DTDs, no entities, no network; a DOCTYPE anywhere is rejected outright (XXE / billion laughs).
Signed parts are canonicalised exactly as parsed: never re-serialise before digesting (the Holodeck
prefix-rewrite vector shows why).
"""

from __future__ import annotations

import threading

from lxml import etree

from .constants import WSU_ID


class UnsafeXmlError(ValueError):
    """The document is not well-formed or uses a forbidden construct (DOCTYPE, entities)."""


_local = threading.local()


def _parser(huge: bool = False) -> etree.XMLParser:
    """One hardened parser per thread (lxml parsers are reusable but not thread-safe)."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = _new_parser(huge)
    return parser


def _new_parser(huge: bool = False) -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
        huge_tree=huge, remove_comments=False, remove_pis=False, collect_ids=False,
    )


def parse_xml(data: bytes, *, what: str = "XML") -> etree._Element:
    """Parse `data` into an element tree, refusing DOCTYPEs and entity declarations."""
    try:
        tree = etree.fromstring(data, parser=_parser()).getroottree()
    except etree.XMLSyntaxError as exc:
        raise UnsafeXmlError(f"{what} is not well-formed: {exc}") from exc
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None or tree.docinfo.externalDTD is not None:
        raise UnsafeXmlError(f"{what} carries a DOCTYPE, which is not allowed")
    root = tree.getroot()
    for node in root.iter(etree.Entity):  # unresolved entity references survive as nodes
        raise UnsafeXmlError(f"{what} references an entity ({node.text!r}), which is not allowed")
    return root


def c14n(element: etree._Element, prefixes: list[str] | None = None) -> bytes:
    """Exclusive XML canonicalisation 1.0 (no comments) of `element` as it sits in its document."""
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False,
                          inclusive_ns_prefixes=prefixes or None)


ID_LOCAL_NAMES = ("Id", "ID", "id")


def element_ids(root: etree._Element) -> list[tuple[str, etree._Element]]:
    """Every (id value, element) from wsu:Id, Id, ID, id and xml:id attributes, in document order."""
    out = []
    for el in root.iter(etree.Element):
        for key, value in el.attrib.items():
            local = key.rsplit("}", 1)[-1]
            if local in ID_LOCAL_NAMES:
                out.append((value, el))
    return out


def get_wsu_id(el: etree._Element) -> str | None:
    return el.get(WSU_ID)


def text(el: etree._Element | None) -> str:
    """The element's string value, stripped: all its text, without comments and PIs. Never just
    `el.text`: exclusive C14N drops comments, so `a<!---->b` is signed as "ab" and must read as "ab"
    (else a comment slipped into a signed value truncates it without breaking the signature)."""
    return "".join(el.itertext()).strip() if el is not None else ""
