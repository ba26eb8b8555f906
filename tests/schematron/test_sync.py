"""`schematron.sync`: install from a mirror or over HTTPS, verifying every hash, atomically."""

from __future__ import annotations

import json
import shutil
import urllib.error
from pathlib import Path

import pytest

from schematron import sync as sync_mod
from schematron.sync import STAMP, load_manifest, sync, verify
from validation.errors import ArtefactError

VICTIM = "peppol-bis-billing-3/3.0.21/xslt/PEPPOL-EN16931-UBL.xslt"


@pytest.fixture
def mirror_copy(shared_dir: Path, tmp_path: Path) -> Path:
    """A private copy of just the pinned files of the mirror (so tests can damage it)."""
    src = shared_dir / "artefacts"
    dst = tmp_path / "mirror"
    for f in load_manifest()["files"]:
        target = dst / f["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / f["path"], target)
    return dst


def test_sync_from_mirror_then_idempotent(shared_dir: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    first = sync(cache, shared_dir / "artefacts")
    n = len(load_manifest()["files"])
    assert len(first.installed) == n and first.unchanged == []
    assert verify(cache) == n
    stamp = json.loads((cache / STAMP).read_text())
    assert stamp["files"] == n and len(stamp["manifest_sha256"]) == 64
    second = sync(cache, shared_dir / "artefacts")
    assert second.installed == [] and len(second.unchanged) == n
    assert not list(cache.glob(".staging-*"))


def test_tampered_mirror_file_is_named_and_nothing_is_installed(mirror_copy: Path, tmp_path: Path):
    victim = mirror_copy / VICTIM
    victim.write_bytes(victim.read_bytes() + b"\n<!-- evil -->")
    cache = tmp_path / "cache"
    with pytest.raises(ArtefactError) as err:
        sync(cache, mirror_copy)
    assert "PEPPOL-EN16931-UBL.xslt" in str(err.value) and "SHA-256" in str(err.value)
    assert not any(p.is_file() for p in cache.rglob("*"))  # all or nothing


def test_missing_mirror_file_is_named(mirror_copy: Path, tmp_path: Path):
    (mirror_copy / "ubl-2.2/xsd/common/UBL-CommonBasicComponents-2.2.xsd").unlink()
    with pytest.raises(ArtefactError, match=r"UBL-CommonBasicComponents-2\.2\.xsd: missing"):
        sync(tmp_path / "cache", mirror_copy)


def test_sync_repairs_a_damaged_cache(shared_dir: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    sync(cache, shared_dir / "artefacts")
    (cache / VICTIM).write_bytes(b"broken")
    with pytest.raises(ArtefactError, match="PEPPOL-EN16931-UBL.xslt"):
        verify(cache)
    result = sync(cache, shared_dir / "artefacts")
    assert result.installed == [VICTIM]
    verify(cache)


def test_mirror_must_be_a_folder(tmp_path: Path):
    with pytest.raises(ArtefactError, match="not a folder"):
        sync(tmp_path / "cache", tmp_path / "nowhere")


def test_https_sync_verifies_downloads(shared_dir: Path, tmp_path: Path):
    mirror = shared_dir / "artefacts"
    by_url = {f["source"]: mirror / f["path"] for f in load_manifest()["files"]}
    fetched = []

    def fake_fetch(url: str, max_bytes: int) -> bytes:
        fetched.append(url)
        return by_url[url].read_bytes()

    cache = tmp_path / "cache"
    result = sync(cache, None, fetch=fake_fetch)
    assert len(result.installed) == len(by_url) == len(fetched)
    assert result.source.startswith("official sources")
    verify(cache)

    def evil_fetch(url: str, max_bytes: int) -> bytes:
        return b"<xsl:stylesheet/>"

    with pytest.raises(ArtefactError, match="does not match the pinned"):
        sync(tmp_path / "cache2", None, fetch=evil_fetch)


def test_https_download_failure_is_a_clear_error(tmp_path: Path, monkeypatch):
    def no_network(req, timeout):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(sync_mod.urllib.request, "urlopen", no_network)
    with pytest.raises(ArtefactError) as err:
        sync(tmp_path / "cache", None)
    msg = str(err.value)
    assert msg.startswith("cannot download https://raw.githubusercontent.com/") and "name resolution" in msg


def test_only_https_sources_are_fetched():
    with pytest.raises(ArtefactError, match="only https"):
        sync_mod.https_fetch("http://example.com/x.xsd", 10)
