"""The pinned manifest: complete, consistent with the mirror, reproducible by build_manifest.py."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from schematron import build_manifest
from schematron.sync import MANIFEST, load_manifest


def test_every_set_is_complete():
    m = load_manifest()
    pinned = {f["path"] for f in m["files"]}
    assert len(m["sets"]) == 47
    ids = [s["id"] for s in m["sets"]]
    assert len(set(ids)) == len(ids)
    for s in m["sets"]:
        assert s["id"].startswith(s["family"] + "@")
        assert s["valid_from"] and s["status"] in ("current", "superseded")
        assert s["match"]["root_namespace"] and s["match"]["root_element"]
        assert s["match"]["customization_id_match"] in ("exact", "prefix")
        kinds = [lay["kind"] for lay in s["layers"]]
        assert kinds[0] == "xsd" and set(kinds[1:]) == {"schematron"}
        for lay in s["layers"]:
            assert lay["path"] in pinned and lay["artefact"] and lay["version"]
            for f in lay.get("files", []):
                assert f in pinned
        # an XSD layer pins its whole include/import closure
        xsd = s["layers"][0]
        assert xsd["path"] in xsd["files"] and any("CommonBasicComponents" in f for f in xsd["files"])


def test_every_file_has_an_official_https_source_and_a_hash():
    m = load_manifest()
    for f in m["files"]:
        assert f["source"].startswith("https://raw.githubusercontent.com/")
        assert len(f["sha256"]) == 64 and f["size"] > 0
        # the address is pinned to a commit, so the bytes behind it cannot change
        assert any(len(part) == 40 for part in f["source"].split("/"))
    assert {s["prefix"] for s in m["sources"]} >= {"ubl-2.1/", "ubl-2.2/", "ubl-2.3/"}


def test_manifest_matches_the_mirror(shared_dir: Path):
    mirror = shared_dir / "artefacts"
    for f in load_manifest()["files"]:
        assert hashlib.sha256((mirror / f["path"]).read_bytes()).hexdigest() == f["sha256"], f["path"]


def test_build_manifest_reproduces_the_committed_manifest(shared_dir: Path, tmp_path: Path):
    out = tmp_path / "manifest.json"
    assert build_manifest.main([str(shared_dir / "artefacts"), "-o", str(out)]) == 0
    assert json.loads(out.read_text()) == json.loads(MANIFEST.read_text())


def test_selection_rules_follow_the_mirror_notes():
    sets = {s["id"]: s for s in load_manifest()["sets"]}
    assert sets["peppol-order@3.0.17"]["match"]["customization_id_match"] == "exact"
    assert sets["en16931-ubl-invoice@1.3.16"]["match"]["customization_id_match"] == "exact"
    assert sets["peppol-billing-invoice@3.0.21"]["match"]["customization_id_match"] == "prefix"
    assert sets["ehf-advanced-order-initiation@2023-02-16"]["match"]["profile_id_contains"] == ":g3:09:"
