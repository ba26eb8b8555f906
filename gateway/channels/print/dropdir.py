"""The directory-drop protocol between us and the print provider (our own, documented format).

Outgoing (we write, the provider consumes): for each delivery `<stem>.pdf` then `<stem>.json`
(the manifest, format `sendgw-print-manifest/1`). Both are written atomically (temporary
dot-file in the same directory, fsync, rename, fsync of the directory) and the manifest *last*,
so a provider that picks up `*.json` never sees a manifest without its complete PDF. Providers
must ignore names starting with '.'. Re-submitting a delivery never produces a second letter:
once the manifest exists (or the hand-over was recorded in the ledger), submit is a no-op.

Incoming (the provider writes, we read): `<stem>.status.json` or `<stem>.<anything>.status.json`,
each one event `{"format": "sendgw-print-status/1", "delivery_id", "state", "at", "reason"?}` with
state printed | postmarked | returned | failed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.channels.base import PostalAddress, TrackEvent, TrackState

MANIFEST_FORMAT = "sendgw-print-manifest/1"
STATUS_FORMAT = "sendgw-print-status/1"
STATUS_STATES: dict[str, TrackState] = {
    "printed": "accepted",  # printed and enveloped, not yet with the postal operator
    "postmarked": "delivered",  # handed to Posten/Bring: the channel's "delivered"
    "returned": "returned",  # came back (unknown address, refused)
    "failed": "failed",  # the provider could not print/send it
}
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_NO_POSTCODE = re.compile(r"^[0-9]{4}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


def file_stem(delivery_id: str) -> str:
    """The delivery id when filename-safe, else a stable hash of it."""
    if _SAFE.match(delivery_id) and not delivery_id.endswith((".json", ".pdf", ".tmp")):
        return delivery_id
    return "d-" + hashlib.sha256(delivery_id.encode()).hexdigest()[:40]


def address_problems(name: str | None, address: PostalAddress | None) -> list[str]:
    """Why a letter to this address cannot be printed and posted (empty list = complete)."""
    if address is None:
        return ["no postal address"]
    problems = []
    if not name or not name.strip():
        problems.append("no recipient name")
    lines = [line for line in address.lines if line and line.strip()]
    if not lines:
        problems.append("no street/postbox line")
    if len(lines) > 4:
        problems.append("more than 4 address lines")
    if any(len(line) > 60 for line in lines):
        problems.append("address line longer than 60 characters")
    country = (address.country or "").upper()
    if not _COUNTRY.match(country):
        problems.append(f"country {address.country!r} is not an ISO 3166 alpha-2 code")
    if country == "NO" and not _NO_POSTCODE.match(address.postcode or ""):
        problems.append(f"Norwegian postcode {address.postcode!r} must be 4 digits")
    if not (address.city or "").strip():
        problems.append("no city (poststed)")
    return problems


def build_manifest(*, delivery_id: str, stem: str, pdf: bytes, pages: int, recipient_name: str,
                   address: PostalAddress, sender: dict[str, Any], options: dict[str, Any],
                   invoice: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": MANIFEST_FORMAT,
        "delivery_id": delivery_id,
        "document": f"{stem}.pdf",
        "sha256": hashlib.sha256(pdf).hexdigest(),
        "bytes": len(pdf),
        "pages": pages,
        "recipient": {
            "name": recipient_name,
            "address_lines": [line for line in address.lines if line and line.strip()],
            "postcode": address.postcode,
            "city": address.city,
            "country": address.country.upper(),
        },
        "sender": sender,
        "print": options,  # colour, duplex, postage (A/B), envelope
        "invoice": invoice,
    }


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Write `data` to `path` so readers see either nothing or the whole file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        if fsync:
            os.fsync(fh.fileno())
    os.replace(tmp, path)
    if fsync:
        _fsync_dir(path.parent)


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8") + b"\n"


@dataclass(frozen=True)
class StatusEvent:
    delivery_id: str
    state: str
    event: TrackEvent
    source: str  # file name


def parse_status(data: bytes, *, source: str = "") -> StatusEvent:
    """One status file from the provider; ValueError when it does not follow the format."""
    try:
        doc = json.loads(data)
    except ValueError:
        raise ValueError(f"{source}: not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != STATUS_FORMAT:
        raise ValueError(f"{source}: not a {STATUS_FORMAT} document")
    state = doc.get("state")
    if state not in STATUS_STATES:
        raise ValueError(f"{source}: unknown state {state!r}")
    delivery_id = doc.get("delivery_id")
    if not isinstance(delivery_id, str) or not delivery_id:
        raise ValueError(f"{source}: no delivery_id")
    try:
        at = dt.datetime.fromisoformat(str(doc.get("at")).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{source}: 'at' is not an ISO 8601 timestamp") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.timezone.utc)
    detail = f"print provider: {state}" + (f" ({doc['reason']})" if doc.get("reason") else "")
    return StatusEvent(delivery_id, state, TrackEvent(STATUS_STATES[state], at, detail), source)


def read_statuses(incoming: Path, stem: str, delivery_id: str | None = None) -> list[StatusEvent]:
    """All status events for one delivery, oldest first; unreadable files are skipped."""
    events = []
    if not incoming.is_dir():
        return events
    for path in incoming.iterdir():
        name = path.name
        if name.startswith(".") or not name.endswith(".status.json"):
            continue
        if name != f"{stem}.status.json" and not name.startswith(f"{stem}."):
            continue
        try:
            status = parse_status(path.read_bytes(), source=name)
        except (ValueError, OSError):
            continue
        if delivery_id is None or status.delivery_id == delivery_id:
            events.append(status)
    events.sort(key=lambda e: e.event.at)
    return events
