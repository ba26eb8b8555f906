"""Print preflight: would a print house accept this PDF for a window envelope?

Checks what print providers state as hard requirements (Digipost print rules; MPS/PostNord
print-house practice, see docs/channels-print.md): A4 portrait on every page, at most
`max_pages` pages, PDF version ≤ 1.7, not encrypted, every font embedded (Type 3 fonts carry their
glyphs), nothing printed in the left barcode zone the inserter needs (text only — vector art is
not inspected), and the recipient's name and postcode/city visible inside the address window of
page 1. Structure is read with pikepdf, text positions with pypdf.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

MM = 72 / 25.4  # PDF points per millimetre
A4_MM = (210.0, 297.0)


@dataclass(frozen=True)
class Window:
    """Address window position on page 1, in mm from the left/top page edge (C5/DL, DIN 5008 B)."""

    left: float = 20.0
    top: float = 45.0
    width: float = 85.0
    height: float = 45.0

    def contains(self, x_mm: float, y_mm: float) -> bool:
        return self.left - 1 <= x_mm <= self.left + self.width and self.top <= y_mm <= self.top + self.height


@dataclass(frozen=True)
class PreflightRules:
    max_pages: int = 12
    max_version: str = "1.7"
    size_tolerance_mm: float = 1.0
    barcode_margin_mm: float = 15.0  # left zone kept free for inserter barcodes (Digipost 0-15 mm)
    window: Window = field(default_factory=Window)


@dataclass(frozen=True)
class ExpectedAddress:
    name: str
    postcode: str
    city: str


@dataclass(frozen=True)
class PreflightResult:
    problems: tuple[str, ...]
    pages: int
    version: str | None

    @property
    def ok(self) -> bool:
        return not self.problems


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:2])


def _fonts(resources, seen: set) -> list[tuple[str, object]]:
    """(name, font) for every font reachable from a resource dictionary (incl. form XObjects)."""
    out = []
    if resources is None:
        return out
    fonts = resources.get("/Font")
    if fonts is not None:
        for name, font in fonts.items():
            out.append((str(name), font))
    xobjects = resources.get("/XObject")
    if xobjects is not None:
        for xobj in xobjects.values():
            key = xobj.objgen
            if key in seen or xobj.get("/Subtype") != "/Form":
                continue
            seen.add(key)
            out.extend(_fonts(xobj.get("/Resources"), seen))
    return out


def _font_embedded(font) -> bool:
    subtype = font.get("/Subtype")
    if subtype == "/Type3":
        return True
    if subtype == "/Type0":
        descendants = font.get("/DescendantFonts")
        if not descendants:
            return False
        font = descendants[0]
    descriptor = font.get("/FontDescriptor")
    if descriptor is None:
        return False
    return any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3"))


def text_runs(pdf: bytes, page_index: int) -> list[tuple[str, float, float]]:
    """(text, x mm from left, y mm from top) for each text run on a page (baseline origin)."""
    import pypdf

    reader = pypdf.PdfReader(io.BytesIO(pdf))
    page = reader.pages[page_index]
    height = float(page.mediabox.height)
    runs: list[tuple[str, float, float]] = []

    def visit(text, cm, tm, font_dict, font_size):
        if not text or not text.strip():
            return
        x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
        y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
        runs.append((text, x / MM, (height - y) / MM))

    page.extract_text(visitor_text=visit)
    return runs


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def preflight_pdf(pdf: bytes, rules: PreflightRules = PreflightRules(),
                  address: ExpectedAddress | None = None) -> PreflightResult:
    import pikepdf

    problems: list[str] = []
    try:
        doc = pikepdf.open(io.BytesIO(pdf))
    except pikepdf.PasswordError:
        return PreflightResult(("PDF is encrypted (password required)",), 0, None)
    except pikepdf.PdfError as exc:
        return PreflightResult((f"not a readable PDF: {exc}",), 0, None)
    with doc:
        version = str(doc.pdf_version)
        if doc.is_encrypted:
            problems.append("PDF is encrypted")
        if _version_tuple(version) > _version_tuple(rules.max_version):
            problems.append(f"PDF version {version} is above {rules.max_version}")
        pages = len(doc.pages)
        if pages == 0:
            problems.append("PDF has no pages")
        if pages > rules.max_pages:
            problems.append(f"{pages} pages exceed the envelope limit of {rules.max_pages}")
        missing: set[str] = set()
        for number, page in enumerate(doc.pages, start=1):
            box = [float(v) for v in page.mediabox]
            width, height = (box[2] - box[0]) / MM, (box[3] - box[1]) / MM
            rotate = int(page.obj.get("/Rotate", 0)) % 180
            if rotate:
                width, height = height, width
            if abs(width - A4_MM[0]) > rules.size_tolerance_mm or abs(height - A4_MM[1]) > rules.size_tolerance_mm:
                problems.append(f"page {number} is {width:.0f} x {height:.0f} mm, not A4 portrait")
            for name, font in _fonts(page.obj.get("/Resources"), set()):
                if not _font_embedded(font):
                    missing.add(str(font.get("/BaseFont", name)).lstrip("/"))
        if missing:
            problems.append("fonts not embedded: " + ", ".join(sorted(missing)))
    if problems:  # positions are meaningless on a wrong page size / unreadable text
        return PreflightResult(tuple(problems), pages, version)
    for index in range(pages):
        runs = text_runs(pdf, index)
        intruders = [t for t, x, _ in runs if x < rules.barcode_margin_mm]
        if intruders:
            problems.append(f"page {index + 1}: text inside the {rules.barcode_margin_mm:g} mm barcode margin "
                            f"({intruders[0].strip()[:30]!r})")
        if index == 0 and address is not None:
            window_text = _norm(" ".join(t for t, x, y in runs if rules.window.contains(x, y)))
            wanted = [address.name, f"{address.postcode} {address.city}"]
            absent = [w for w in wanted if _norm(w) not in window_text]
            if absent:
                problems.append("recipient address not visible in the envelope window: missing "
                                + ", ".join(repr(a) for a in absent))
    return PreflightResult(tuple(problems), pages, version)
