"""Reading an input document safely: size cap, no DTD, decoding per the XML declaration, SBDH.

Hostile input is refused before any entity could be expanded: a document whose prolog holds a
`<!DOCTYPE` (internal subset, entity declarations, external DTD) is a HostileXmlError, and lxml
parses with entity resolution, DTD loading and network access off. Because no document with a DTD
ever reaches Saxon, Saxon's own parser has nothing to resolve either.

The document is decoded once, as its XML declaration (or BOM) says, and the resulting text is what
Saxon parses, so a Latin-1 document is never read as UTF-8. A Peppol SBDH envelope is unwrapped:
the business document inside it is validated, line numbers still refer to the original input.
"""

from __future__ import annotations

import codecs
import re
import threading
from dataclasses import dataclass

from lxml import etree

from validation.errors import DocumentTooLargeError, HostileXmlError, NotXmlError, UnknownDocumentTypeError

SBDH_NS = "http://www.unece.org/cefact/namespaces/StandardBusinessDocumentHeader"
CBC_NS = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
_CUSTOMIZATION = f"{{{CBC_NS}}}CustomizationID"
_PROFILE = f"{{{CBC_NS}}}ProfileID"

# libxml2 refuses single text nodes (also CDATA sections, comments, PIs, attribute values) above
# 10 MB unless "huge" mode is on; base64 attachments in invoices can be that big, in CDATA too. We
# retry in huge mode only for well-formedness limits of that kind, and only ever after the prolog
# check below has ruled out a DTD.
_HUGE_HINTS = ("huge", "HUGE", "xmlSAX2Characters", "Excessive depth", "too long", "too big",
               "Memory allocation failed")


@dataclass
class Document:
    tree: etree._ElementTree  # the whole input (the SBDH envelope when there is one)
    root: etree._Element  # the business document's root element
    text: str  # the business document as text (for Saxon)
    encoding: str
    sbdh: bool
    namespace: str
    local: str
    customization_id: str | None
    profile_id: str | None
    digits: int | None = None  # at least as many as the digits in `text`; None: not counted (big input)

    @property
    def root_tag(self) -> str:
        return f"{{{self.namespace}}}{self.local}" if self.namespace else self.local


def _sniff_texts(data: bytes, size: int) -> list[str]:
    """The first `size` bytes decoded to inspect the prolog (BOM / UTF-16 aware). An ASCII-compatible
    start is also decoded as its declaration says: in UTF-7, `+ADwAIQ-DOCTYPE` is a `<!DOCTYPE`."""
    head = data[:size]
    for bom, enc in ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
                     (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                     (codecs.BOM_UTF16_BE, "utf-16-be")):
        if head.startswith(bom):
            return [head[len(bom):].decode(enc, errors="replace")]
    if head[:4] == b"\x00<\x00?" or head[:2] == b"\x00<":
        return [head.decode("utf-16-be", errors="replace")]
    if head[:4] == b"<\x00?\x00" or head[:2] == b"<\x00":
        return [head.decode("utf-16-le", errors="replace")]
    texts = [head.decode("latin-1")]  # ASCII-compatible: markup characters are all we need
    try:
        codec = codecs.lookup(declared_encoding(data)).name
        if codec not in _ASCII_MARKUP:
            texts.append(head.decode(codec, errors="replace"))
    except LookupError:
        pass  # an encoding Python does not know: libxml2 decides, and the tree is checked again
    return texts


# Encodings in which markup characters are the ASCII bytes, so the Latin-1 reading shows the prolog
_ASCII_MARKUP = frozenset(codecs.lookup(e).name for e in (
    "utf-8", "ascii", "latin-1", "iso-8859-15", "cp1252", "iso-8859-2", "cp1250"))


_PROLOG_SKIP = re.compile(r"\s+|<\?.*?\?>|<!--.*?-->", re.S)
_PROLOG_WINDOWS = (4096, 65536)  # bytes read; nearly every prolog ends within the first few hundred


def check_prolog(data: bytes) -> None:
    """Refuse a DOCTYPE (DTD, entity declarations) in the prolog, before any parser sees it."""
    for size in _PROLOG_WINDOWS:
        undecided = False
        for text in _sniff_texts(data, size):
            pos = 0
            while m := _PROLOG_SKIP.match(text, pos):
                pos = m.end()
            if text.startswith(("<!DOCTYPE", "<!ENTITY"), pos):
                raise HostileXmlError(
                    "documents with a DTD (<!DOCTYPE ...>) are refused: no DTDs, entity declarations or "
                    "external entities are processed"
                )
            # unless the root element's start tag begins here, the window ended inside the prolog
            # (in a comment, a PI or a cut-off `<!DOC`): read more
            undecided |= not (text.startswith("<", pos) and pos + 1 < len(text) and text[pos + 1] not in "!?")
        if not undecided or len(data) <= size:
            return


_local = threading.local()


def _parser(huge: bool, compact: bool = False) -> etree.XMLParser:
    """A hardened parser, one per thread (lxml parsers are reusable but not thread-safe)."""
    key = f"p{int(huge)}{int(compact)}"
    parser = getattr(_local, key, None)
    if parser is None:
        parser = _new_parser(huge, compact)
        setattr(_local, key, parser)
    return parser


class _NoExternal(etree.Resolver):
    """Every external resource libxml2 asks for is empty text: even with load_dtd=False it opens a
    DOCTYPE's external subset and parameter entities (`file:///dev/zero`, a FIFO, any local file)
    when a DOCTYPE gets past check_prolog, e.g. in an encoding only libxml2 knows (CSUNICODE11UTF7)."""

    def resolve(self, url, pubid, context):
        return self.resolve_string("", context)


def _new_parser(huge: bool, compact: bool) -> etree.XMLParser:
    # `compact` drops whitespace-only text between elements (libxml2 keeps it inside otherwise
    # empty elements). The lxml tree only serves the XSD layer (which ignores such whitespace in
    # element content), source lines and SBDH detection, so this changes no result; it makes the
    # tree about half the size. Saxon always parses the document text as received.
    parser = etree.XMLParser(
        resolve_entities=False, load_dtd=False, dtd_validation=False, no_network=True,
        huge_tree=huge, collect_ids=False, remove_comments=False, remove_pis=False,
        remove_blank_text=compact,
    )
    parser.resolvers.add(_NoExternal())
    return parser


def _parse_tree(data: bytes, compact: bool) -> etree._ElementTree:
    try:
        return etree.ElementTree(etree.fromstring(data, _parser(False, compact)))
    except etree.XMLSyntaxError as exc:
        msg = _syntax_message(exc)
        if not any(h in msg for h in _HUGE_HINTS):
            raise NotXmlError(f"not well-formed XML: {msg}") from None
        try:
            return etree.ElementTree(etree.fromstring(data, _parser(True, compact)))
        except etree.XMLSyntaxError as exc2:
            raise NotXmlError(f"not well-formed XML: {_syntax_message(exc2)}") from None
    except ValueError as exc:  # e.g. unknown encoding
        raise NotXmlError(f"not XML: {exc}") from None


def _syntax_message(exc: etree.XMLSyntaxError) -> str:
    """libxml2's message on one line (some carry a newline before ", line N, column M")."""
    msg = " ".join(str(exc.msg if getattr(exc, "msg", None) else exc).split()).replace(" ,", ",")
    return msg or "not well-formed"


def parse(data: bytes, max_bytes: int, text: str | None = None) -> Document:
    """Parse and check one input. `text` is the input already decoded by `early_text` (used when
    libxml2 agrees about the encoding, instead of decoding again)."""
    if len(data) > max_bytes:
        raise DocumentTooLargeError(
            f"document is {len(data):,} bytes; the limit is {max_bytes:,} bytes"
        )
    if not data or data.isspace():
        raise NotXmlError("empty document")
    check_prolog(data)
    # An SBDH payload is serialised from the tree for Saxon, so that tree keeps every text node.
    compact = b"StandardBusinessDocument" not in data[:2048]
    tree = _parse_tree(data, compact)
    if compact and etree.QName(tree.getroot()).localname == "StandardBusinessDocument":
        tree = _parse_tree(data, False)  # an envelope the byte sniff missed (e.g. UTF-16)
    info = tree.docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise HostileXmlError("documents with a DTD are refused")
    root = tree.getroot()
    if root.tag is etree.Entity or not isinstance(root.tag, str):
        raise NotXmlError("no root element")

    encoding = info.encoding or "UTF-8"
    sbdh = etree.QName(root).namespace == SBDH_NS and etree.QName(root).localname == "StandardBusinessDocument"
    if sbdh:
        payloads = [el for el in root.iterchildren(tag=etree.Element) if etree.QName(el).namespace != SBDH_NS]
        if not payloads:
            raise UnknownDocumentTypeError("SBDH envelope without a business document inside")
        if len(payloads) > 1:  # only the first would be validated; Peppol receivers refuse it (gateway.sbdh)
            raise UnknownDocumentTypeError(
                f"SBDH envelope with {len(payloads)} business documents: a Peppol envelope carries exactly one")
        payload = payloads[0]
        text = etree.tostring(payload, encoding="unicode", with_tail=False)
        root = payload
    elif text is None or not same_codec(encoding, declared_encoding(data)):
        text = _decode(data, encoding, tree)
    q = etree.QName(root)
    cust = root.find(_CUSTOMIZATION)
    prof = root.find(_PROFILE)
    return Document(
        tree=tree, root=root, text=text, encoding=encoding, sbdh=sbdh,
        namespace=q.namespace or "", local=q.localname,
        customization_id=_value(cust), profile_id=_value(prof),
        digits=_digits(data, encoding, text) if len(data) < _COUNT_DIGITS_BELOW else None,
    )


def _digits(data: bytes, encoding: str, text: str) -> int:
    """Digits in the input, or more: in UTF-8 and the single-byte encodings a digit byte is a digit,
    UTF-16/32 digits each hold one (other characters may add some), and an SBDH envelope only adds.
    One pass over the bytes costs a quarter of ten passes over the text, which other encodings need."""
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        codec = ""
    if codec in _ASCII_MARKUP or codec.startswith(("utf-16", "utf-32")):
        return len(data) - len(data.translate(None, b"0123456789"))
    return sum(map(text.count, "0123456789"))


def _value(el: etree._Element | None) -> str | None:
    """The element's string value as the rules see it: a comment or PI inside does not cut it short
    (`.text` stops at the first one, and the set chosen would not be the rules' reading)."""
    if el is None:
        return None
    return (el.text or "").strip() if len(el) == 0 else el.xpath("string()").strip()


# UBL names numeric elements by their representation term (CCTS): cbc:TaxAmount, cbc:InvoicedQuantity,
# cbc:Percent ... The official rules do decimal arithmetic on them, and Saxon's decimal conversions
# take time quadratic in the number of digits (100,000 digits: 0.6 s; 1,000,000: a minute per
# rule). No real value comes near this length, so longer numbers are not handed to the rules.
MAX_NUMBER_CHARS = 1000
_NUMERIC_TERMS = ("Amount", "Quantity", "Percent", "Measure", "Numeric", "Rate")
# The attachment's base64 (megabytes) is the one big cbc value that is never a number: the cheap
# name test comes first, so its string value is not measured.
_LONG_VALUE = etree.XPath(
    f".//cbc:*[not(self::cbc:EmbeddedDocumentBinaryObject)][string-length() > {MAX_NUMBER_CHARS}]",
    namespaces={"cbc": CBC_NS})
_NUMBER = re.compile(r"\s*[-+]?[0-9]*\.?[0-9]*\s*")
_COUNT_DIGITS_BELOW = 64 * 1024


def overlong_number(doc: Document) -> etree._Element | None:
    """The first numeric UBL element whose value is a number longer than MAX_NUMBER_CHARS."""
    # Such a number has at least MAX_NUMBER_CHARS - 1 digits, and every digit is in the input as a
    # digit (a character reference to one contains one too): most invoices have a few hundred, and
    # counting is cheaper than the search below for them (not for megabytes: those are not counted).
    if doc.digits is not None and doc.digits < MAX_NUMBER_CHARS - 1:
        return None
    for el in _LONG_VALUE(doc.root):
        if not etree.QName(el).localname.endswith(_NUMERIC_TERMS):
            continue
        text = el.xpath("string()")  # the value the rules see (comments do not split it)
        if len(text.strip()) > MAX_NUMBER_CHARS and _NUMBER.fullmatch(text):
            return el
    return None


_DECLARED = re.compile(r"""^<\?xml\s[^>]*?encoding\s*=\s*["']([A-Za-z][A-Za-z0-9._-]*)["']""")


def early_text(data: bytes, max_bytes: int) -> str | None:
    """The document text for Saxon before lxml has parsed it (size and DTD checks included), or
    None when that is not safe to guess: an SBDH envelope, a BOM or non-ASCII-compatible encoding,
    or bytes that do not decode. `parse()` afterwards gives the authoritative answer."""
    if len(data) > max_bytes:
        raise DocumentTooLargeError(f"document is {len(data):,} bytes; the limit is {max_bytes:,} bytes")
    check_prolog(data)
    head = data[:2048]
    if b"StandardBusinessDocument" in head or not head.startswith(b"<"):
        return None
    encoding = declared_encoding(data)
    if encoding.lower().replace("_", "-") not in ("utf-8", "utf8", "iso-8859-1", "latin-1", "latin1",
                                                    "us-ascii", "ascii", "windows-1252", "cp1252"):
        return None
    try:
        return data.decode(encoding)
    except (LookupError, UnicodeDecodeError):
        return None


def same_codec(a: str, b: str) -> bool:
    try:
        return codecs.lookup(a).name == codecs.lookup(b).name
    except LookupError:
        return False


def declared_encoding(data: bytes) -> str:
    m = _DECLARED.match(data[:2048].decode("latin-1"))
    return m.group(1) if m else "utf-8"


def _byte_order(encoding: str, data: bytes) -> str:
    """UTF-16/32 without a BOM in the byte order libxml2 detected from the first `<` (Python's
    codec would assume the machine's order and turn big-endian text into garbage)."""
    name = codecs.lookup(encoding).name
    if name not in ("utf-16", "utf-32") or data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE,
                                                             codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return encoding
    return name + ("-be" if data[:1] == b"\x00" else "-le")


def _decode(data: bytes, encoding: str, tree: etree._ElementTree) -> str:
    """The input decoded per its declaration; lxml already proved that decoding well-formed."""
    try:
        text = data.decode(_byte_order(encoding, data))
    except (LookupError, UnicodeDecodeError):
        # An encoding Python does not know by that name: let libxml2's decoding stand (from a
        # tree that kept every text node).
        return etree.tostring(_parse_tree(data, False), encoding="unicode")
    return text[1:] if text.startswith("\ufeff") else text
