"""A print house for tests: consumes our drop directory like a provider's pick-up job would.

For every manifest (`*.json`, dot-files ignored) it checks, independently of our adapter (pypdf
here, pikepdf there): manifest format and fields (name, 1-4 address lines, Norwegian 4-digit
postcode, ISO country, postage A/B), the PDF exists and matches the manifest's sha256 and page
count, and print rules — not encrypted, PDF ≤ 1.7, every page A4 portrait, fonts embedded, page
count within the envelope limit, recipient name and "postcode city" inside the address window.
It then moves both files out of the drop (as a real pick-up does) and writes status files into
the incoming directory: `printed`, then `postmarked` (next working day 08:00, simulated clock), and
`returned` for seeded undeliverable recipients — or `failed` with the reason.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from gateway.channels.print.dropdir import MANIFEST_FORMAT, STATUS_FORMAT
from gateway.channels.print.preflight import MM, Window, text_runs


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def next_working_day(at: dt.datetime) -> dt.datetime:
    day = at + dt.timedelta(days=1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day.replace(hour=8, minute=0, second=0, microsecond=0)


@dataclass
class PrintHouseSimulator:
    outgoing: Path
    incoming: Path
    archive: Path | None = None
    max_pages: int = 12
    window: Window = field(default_factory=Window)
    undeliverable: set[str] = field(default_factory=set)  # recipient names whose letters come back
    clock: Callable[[], dt.datetime] = _utcnow

    def __post_init__(self) -> None:
        self.outgoing, self.incoming = Path(self.outgoing), Path(self.incoming)
        self.archive = Path(self.archive) if self.archive else self.outgoing.parent / "print-archive"
        self.printed: list[dict] = []  # manifests of letters sent
        self.failed: list[tuple[str, str]] = []  # (delivery id, reason)
        self._task: asyncio.Task | None = None

    # ------------------------------------------------------------------ polling

    async def start(self, interval: float = 0.05) -> None:
        async def loop():
            while True:
                await asyncio.to_thread(self.process)
                await asyncio.sleep(interval)

        self._task = asyncio.create_task(loop())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    # ------------------------------------------------------------------ one pick-up run

    def process(self) -> int:
        """Consume every complete job in the drop; returns how many manifests were handled."""
        if not self.outgoing.is_dir():
            return 0
        handled = 0
        for manifest_path in sorted(self.outgoing.glob("*.json")):
            if manifest_path.name.startswith("."):
                continue
            handled += 1
            stem = manifest_path.stem
            try:
                manifest = json.loads(manifest_path.read_bytes())
            except ValueError:
                manifest = {}
            delivery_id = manifest.get("delivery_id") or stem
            pdf_path = self.outgoing / str(manifest.get("document") or f"{stem}.pdf")
            pdf = pdf_path.read_bytes() if pdf_path.is_file() else None
            reason = self._check_manifest(manifest, stem) or self._check_pdf(pdf, manifest)
            self._archive(manifest_path, pdf_path)
            now = self.clock()
            if reason:
                self.failed.append((delivery_id, reason))
                self._status(stem, delivery_id, "failed", now, reason)
                continue
            self.printed.append(manifest)
            self._status(stem, delivery_id, "printed", now)
            postmark = next_working_day(now)
            self._status(stem, delivery_id, "postmarked", postmark)
            if manifest["recipient"]["name"] in self.undeliverable:
                self._status(stem, delivery_id, "returned", postmark + dt.timedelta(days=3),
                             "RETURN_TO_SENDER: addressee unknown")
        return handled

    def _check_manifest(self, m: dict, stem: str) -> str | None:
        if m.get("format") != MANIFEST_FORMAT:
            return "manifest: unknown or missing format"
        if m.get("document") != f"{stem}.pdf":
            return "manifest: document name does not match the manifest name"
        r = m.get("recipient")
        if not isinstance(r, dict) or not str(r.get("name") or "").strip():
            return "manifest: recipient name missing"
        lines = r.get("address_lines")
        if not isinstance(lines, list) or not 1 <= len(lines) <= 4 or not all(isinstance(x, str) and x.strip() for x in lines):
            return "manifest: 1-4 address lines required"
        country = str(r.get("country") or "")
        if not re.fullmatch(r"[A-Z]{2}", country):
            return "manifest: country must be ISO 3166 alpha-2"
        if country == "NO" and not re.fullmatch(r"[0-9]{4}", str(r.get("postcode") or "")):
            return "manifest: Norwegian postcode must be 4 digits"
        if not str(r.get("city") or "").strip():
            return "manifest: city missing"
        options = m.get("print") or {}
        if options.get("postage") not in ("A", "B"):
            return "manifest: postage must be A or B"
        return None

    def _check_pdf(self, pdf: bytes | None, m: dict) -> str | None:
        import pypdf

        if pdf is None:
            return "PDF missing"
        if hashlib.sha256(pdf).hexdigest() != m.get("sha256"):
            return "PDF does not match the manifest checksum"
        try:
            reader = pypdf.PdfReader(io.BytesIO(pdf))
        except Exception as exc:  # noqa: BLE001 - anything unreadable is a failed job
            return f"PDF unreadable: {exc}"
        if reader.is_encrypted:
            return "PDF is encrypted"
        header = reader.pdf_header.lstrip("%PDF-")
        version = tuple(int(x) for x in header.split(".")[:2])
        catalog_version = reader.trailer["/Root"].get("/Version")
        if catalog_version:
            version = max(version, tuple(int(x) for x in str(catalog_version).lstrip("/").split(".")[:2]))
        if version > (1, 7):
            return f"PDF version {'.'.join(map(str, version))} not accepted (max 1.7)"
        pages = len(reader.pages)
        if pages != m.get("pages"):
            return f"manifest says {m.get('pages')} pages, PDF has {pages}"
        if pages > self.max_pages:
            return f"{pages} pages do not fit the envelope (max {self.max_pages})"
        for number, page in enumerate(reader.pages, start=1):
            w, h = float(page.mediabox.width) / MM, float(page.mediabox.height) / MM
            if (page.get("/Rotate") or 0) % 180:
                w, h = h, w
            if abs(w - 210) > 1 or abs(h - 297) > 1:
                return f"page {number} is not A4 portrait ({w:.0f} x {h:.0f} mm)"
            fonts = (page.get("/Resources") or {}).get("/Font") or {}
            for name, ref in fonts.items():
                font = ref.get_object()
                if font.get("/Subtype") == "/Type3":
                    continue
                if font.get("/Subtype") == "/Type0":
                    font = font["/DescendantFonts"][0].get_object()
                descriptor = font.get("/FontDescriptor")
                descriptor = descriptor.get_object() if descriptor is not None else None
                if descriptor is None or not any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3")):
                    return f"font {font.get('/BaseFont', name)} is not embedded"
        r = m["recipient"]
        window = " ".join(t for t, x, y in text_runs(pdf, 0) if self.window.contains(x, y))
        window = re.sub(r"\s+", " ", window).casefold()
        for wanted in (r["name"], f"{r['postcode']} {r['city']}"):
            if re.sub(r"\s+", " ", wanted).casefold() not in window:
                return f"address window does not show {wanted!r}"
        return None

    def _archive(self, *paths: Path) -> None:
        assert self.archive is not None
        self.archive.mkdir(parents=True, exist_ok=True)
        for path in paths:
            if path.exists():
                shutil.move(str(path), self.archive / path.name)

    def _status(self, stem: str, delivery_id: str, state: str, at: dt.datetime, reason: str | None = None) -> None:
        self.incoming.mkdir(parents=True, exist_ok=True)
        doc = {"format": STATUS_FORMAT, "delivery_id": delivery_id, "state": state,
               "at": at.isoformat().replace("+00:00", "Z")}
        if reason:
            doc["reason"] = reason
        tmp = self.incoming / f".{stem}.{state}.tmp"
        tmp.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        tmp.replace(self.incoming / f"{stem}.{state}.status.json")
