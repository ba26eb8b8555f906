"""Hardened XML parsing for untrusted discovery data (SMP responses, UBL documents).

No DTDs, no entity expansion, no network access, no huge-tree mode; a DOCTYPE is refused outright
so entity tricks cannot even be declared.
"""

from __future__ import annotations

from lxml import etree

from gateway.discovery.errors import DiscoveryError


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
        huge_tree=False, remove_blank_text=False, remove_comments=False,
    )


def parse_xml(data: bytes, error: type[Exception] = DiscoveryError) -> etree._ElementTree:
    """Parse bytes into a tree or raise `error("not-xml", ...)` (DiscoveryError by default)."""
    if not isinstance(data, (bytes, bytearray)):
        raise error("not-xml", "XML input must be bytes")
    try:
        tree = etree.ElementTree(etree.fromstring(bytes(data), _parser()))
    except etree.XMLSyntaxError as exc:
        raise error("not-xml", f"not well-formed XML: {exc}") from exc
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise error("not-xml", "XML with a DOCTYPE is refused")
    return tree
