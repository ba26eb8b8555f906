"""Install and verify the pinned official validation artefacts.

`schematron/manifest.json` pins every file a validation set needs (UBL XSDs with everything they
include or import, compiled Schematron XSLTs) by path, SHA-256 and official source address. The
artefacts themselves are not committed: `sync()` installs them into the local cache
(`[artefacts] cache`, default `var/artefacts`) either from a mirror folder laid out like the
manifest paths (`--from DIR`, `[artefacts] mirror`, `SENDGW_ARTEFACTS_MIRROR`) or, without a
mirror, by downloading each file from its official address over HTTPS.

Every file is verified against its pinned hash before anything is installed; a missing or
tampered file is an `ArtefactError` naming the file, and then the cache is left as it was. Files
are written to a staging folder first and moved into place with `os.replace`, so a reader never
sees a half-written file.

    python -m schematron.sync --from ../shared/artefacts --cache var/artefacts
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from validation.errors import ArtefactError

MANIFEST = Path(__file__).with_name("manifest.json")
STAMP = ".sendgw-artefacts.json"  # written last by sync(): which manifest the cache holds
DOWNLOAD_TIMEOUT = 60.0

Fetcher = Callable[[str, int], bytes]


def load_manifest(path: Path = MANIFEST) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtefactError(f"{path}: cannot read the artefact manifest: {exc}") from exc


def manifest_digest(path: Path = MANIFEST) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _safe_rel(rel: str) -> str:
    p = Path(rel)
    if p.is_absolute() or ".." in p.parts:
        raise ArtefactError(f"manifest path {rel!r} is not a plain relative path")
    return p.as_posix()


def https_fetch(url: str, max_bytes: int) -> bytes:
    """Download one official artefact (HTTPS only, bounded size)."""
    if not url.startswith("https://"):
        raise ArtefactError(f"refusing to download {url}: only https:// sources are allowed")
    req = urllib.request.Request(url, headers={"User-Agent": "sendgw-artefacts-sync"})
    try:
        with urllib.request.urlopen(req, timeout=DOWNLOAD_TIMEOUT) as resp:
            data = resp.read(max_bytes + 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ArtefactError(f"cannot download {url}: {reason}") from exc
    if len(data) > max_bytes:
        raise ArtefactError(f"{url}: larger than the pinned size")
    return data


@dataclass
class SyncResult:
    cache: Path
    installed: list[str] = field(default_factory=list)  # newly written or repaired
    unchanged: list[str] = field(default_factory=list)  # already present with the right hash
    source: str = ""

    @property
    def total(self) -> int:
        return len(self.installed) + len(self.unchanged)


def sync(
    cache_dir: Path,
    source: Path | None = None,
    *,
    manifest_path: Path = MANIFEST,
    fetch: Fetcher | None = None,
    progress: Callable[[str], None] | None = None,
) -> SyncResult:
    """Install every pinned file into `cache_dir`, from the mirror folder `source` or over HTTPS.

    All files are fetched and verified before any is installed. Raises ArtefactError naming the
    first file that is missing or whose SHA-256 differs from the manifest.
    """
    manifest = load_manifest(manifest_path)
    cache_dir = Path(cache_dir)
    result = SyncResult(cache=cache_dir, source=str(source) if source else "official sources (HTTPS)")
    if source is not None and not Path(source).is_dir():
        raise ArtefactError(f"artefact mirror {source} is not a folder")
    fetch = fetch or https_fetch

    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=cache_dir))
    try:
        staged: list[tuple[Path, Path, str]] = []
        for entry in manifest["files"]:
            rel = _safe_rel(entry["path"])
            target = cache_dir / rel
            if target.is_file() and target.stat().st_size == entry["size"] and sha256_file(target) == entry["sha256"]:
                result.unchanged.append(rel)
                continue
            if source is not None:
                src = Path(source) / rel
                if not src.is_file():
                    raise ArtefactError(f"{src}: missing from the artefact mirror (pinned in schematron/manifest.json)")
                data = src.read_bytes()
                origin = str(src)
            else:
                if progress:
                    progress(f"downloading {entry['source']}")
                data = fetch(entry["source"], entry["size"])
                origin = entry["source"]
            digest = hashlib.sha256(data).hexdigest()
            if digest != entry["sha256"]:
                raise ArtefactError(
                    f"{origin}: SHA-256 {digest} does not match the pinned {entry['sha256']} "
                    f"for {rel} (tampered or a different release); nothing was installed"
                )
            tmp = staging / rel
            tmp.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(data)
            staged.append((tmp, target, rel))
        for tmp, target, rel in staged:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
            result.installed.append(rel)
        stamp = {"manifest_sha256": manifest_digest(manifest_path), "files": len(manifest["files"]),
                 "source": result.source}
        tmp_stamp = staging / STAMP
        tmp_stamp.write_text(json.dumps(stamp, indent=1), encoding="utf-8")
        os.replace(tmp_stamp, cache_dir / STAMP)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return result


def verify(cache_dir: Path, paths: list[str] | None = None, *, manifest_path: Path = MANIFEST) -> int:
    """Check that the cache holds every pinned file (or just `paths`) with its pinned hash.

    Returns the number of files checked; raises ArtefactError naming the first bad file.
    """
    manifest = load_manifest(manifest_path)
    pins = {e["path"]: e for e in manifest["files"]}
    wanted = paths if paths is not None else list(pins)
    for rel in wanted:
        entry = pins.get(rel)
        if entry is None:
            raise ArtefactError(f"{rel}: not pinned in schematron/manifest.json")
        check_file(Path(cache_dir), entry)
    return len(wanted)


def check_file(cache_dir: Path, entry: dict) -> bytes:
    """Read one cached file and verify it against its pin; returns the verified bytes."""
    path = cache_dir / entry["path"]
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ArtefactError(
            f"{path}: missing from the artefact cache; run `sendgw artefacts sync` to install it"
        ) from None
    except OSError as exc:
        raise ArtefactError(f"{path}: cannot read: {exc}") from exc
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise ArtefactError(
            f"{path}: SHA-256 does not match schematron/manifest.json (tampered or corrupt); "
            f"run `sendgw artefacts sync` to reinstall it"
        )
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Install the pinned official validation artefacts.")
    parser.add_argument("--from", dest="source", type=Path, help="mirror folder (default: download over HTTPS)")
    parser.add_argument("--cache", type=Path, default=Path("var/artefacts"))
    args = parser.parse_args(argv)
    try:
        res = sync(args.cache, args.source)
    except ArtefactError as exc:
        print(f"artefacts sync: {exc}", file=sys.stderr)
        return 1
    print(f"{res.total} files in {res.cache} ({len(res.installed)} installed, {len(res.unchanged)} unchanged)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
