"""Regenerate `schematron/manifest.json` from a mirror of the official artefacts.

    python -m schematron.build_manifest ../shared/artefacts

Run this only when adopting a new release: the manifest it writes is the committed source of truth
(`sendgw artefacts sync` installs exactly the files it pins and refuses anything else). It reads
the mirror's `manifest.json` (validation execution sets) and its `SOURCE.md` files (provenance),
adds every schema file an XSD layer includes or imports, and pins each file by SHA-256 together
with the official address it was published at (a raw GitHub URL at the pinned commit, so an
HTTPS sync fetches byte-identical files).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

from lxml import etree

HERE = Path(__file__).resolve().parent
OUT = HERE / "manifest.json"
XS = "http://www.w3.org/2001/XMLSchema"

PHIVE = "https://raw.githubusercontent.com/phax/phive-rules/432f0e9a8cff5c03d06625abe7a5fd8e7e346a64/"

# Local folder prefix -> (SOURCE.md holding the provenance, commit that SOURCE.md must mention,
# base URL the rest of the path is appended to, upstream description). The commits are copied
# from the SOURCE.md files; `check_sources` fails when a SOURCE.md no longer mentions them.
SOURCES: list[dict] = [
    {
        "prefix": "ubl-2.1/", "source_md": "ubl-2.1/SOURCE.md",
        "commit": "69d9f20189fe7fa551dcc59f17d8480e70cda970",
        "base_url": "https://raw.githubusercontent.com/kduvekot/ubl-release-package/"
                    "69d9f20189fe7fa551dcc59f17d8480e70cda970/",
        "upstream": "https://docs.oasis-open.org/ubl/os-UBL-2.1/UBL-2.1.zip",
        "title": "OASIS UBL 2.1 (OASIS Standard, 2013-11-04)",
        "license": "OASIS copyright; unmodified redistribution permitted",
    },
    {
        "prefix": "ubl-2.2/", "source_md": "ubl-2.2/SOURCE.md",
        "commit": "de9dc72dbff019516c78c5bc43cb3f742bd289c5",
        "base_url": "https://raw.githubusercontent.com/kduvekot/ubl-release-package/"
                    "de9dc72dbff019516c78c5bc43cb3f742bd289c5/",
        "upstream": "https://docs.oasis-open.org/ubl/os-UBL-2.2/UBL-2.2.zip",
        "title": "OASIS UBL 2.2 (OASIS Standard, 2018-07-09)",
        "license": "OASIS copyright; unmodified redistribution permitted",
    },
    {
        "prefix": "ubl-2.3/", "source_md": "ubl-2.3/SOURCE.md",
        "commit": "6d2a358b72ab311c49b88a851e5674f850cbb399",
        "base_url": "https://raw.githubusercontent.com/kduvekot/ubl-release-package/"
                    "6d2a358b72ab311c49b88a851e5674f850cbb399/",
        "upstream": "https://docs.oasis-open.org/ubl/os-UBL-2.3/UBL-2.3.zip",
        "title": "OASIS UBL 2.3 (OASIS Standard, 2021-06-15)",
        "license": "OASIS copyright; unmodified redistribution permitted",
    },
    {
        "prefix": "peppol-bis-billing-3/3.0.21/xslt/", "source_md": "peppol-bis-billing-3/3.0.21/SOURCE.md",
        "commit": "432f0e9a8cff5c03d06625abe7a5fd8e7e346a64",
        "base_url": PHIVE + "phive-rules-peppol/src/main/resources/external/schematron/openpeppol/2026.5/xslt/",
        "upstream": "OpenPeppol BIS Billing 3.0.21 release (2026-05-20), as redistributed unchanged by phax/phive-rules",
        "title": "Peppol BIS Billing 3.0.21 compiled Schematron",
        "license": "OpenPeppol AISBL; CEN part EUPL 1.2",
    },
    {
        "prefix": "peppol-bis-billing-3/3.0.19/xslt/", "source_md": "peppol-bis-billing-3/3.0.19/SOURCE.md",
        "commit": "432f0e9a8cff5c03d06625abe7a5fd8e7e346a64",
        "base_url": PHIVE + "phive-rules-peppol-legacy/src/main/resources/external/schematron/openpeppol/2025.5/xslt/",
        "upstream": "OpenPeppol BIS Billing 3.0.19 release (tag v3.0.19 of OpenPEPPOL/peppol-bis-invoice-3)",
        "title": "Peppol BIS Billing 3.0.19 compiled Schematron",
        "license": "OpenPeppol AISBL; CEN part EUPL 1.2",
    },
    {
        "prefix": "en16931-ubl/1.3.16/", "source_md": "en16931-ubl/SOURCE.md",
        "commit": "b6c9e06a59812fb1a83585da40923b3678a649ad",
        "base_url": "https://raw.githubusercontent.com/ConnectingEurope/eInvoicing-EN16931/"
                    "b6c9e06a59812fb1a83585da40923b3678a649ad/ubl/",
        "upstream": "https://github.com/ConnectingEurope/eInvoicing-EN16931/releases/tag/validation-1.3.16",
        "title": "CEN EN 16931 UBL validation artefacts 1.3.16",
        "license": "EUPL 1.2",
    },
    {
        "prefix": "peppol-poacc-3/3.0.17/xslt/", "source_md": "peppol-poacc-3/SOURCE.md",
        "commit": "432f0e9a8cff5c03d06625abe7a5fd8e7e346a64",
        "base_url": PHIVE + "phive-rules-peppol/src/main/resources/external/schematron/openpeppol/2026.5/xslt/",
        "upstream": "OpenPeppol POACC upgrade 3.0.17 release (May 2026), as redistributed unchanged by phax/phive-rules",
        "title": "Peppol BIS post-award 3.0.17 compiled Schematron",
        "license": "OpenPeppol AISBL",
    },
    {
        "prefix": "peppol-poacc-3/3.0.15/xslt/", "source_md": "peppol-poacc-3/SOURCE.md",
        "commit": "0e7e5c790f786350fafb6384c46ca40d3db0b777",
        "base_url": PHIVE + "phive-rules-peppol-legacy/src/main/resources/external/schematron/openpeppol/2025.5/xslt/",
        "upstream": "OpenPeppol POACC upgrade 3.0.15 release (tag v3.0.15 of OpenPEPPOL/poacc-upgrade-3)",
        "title": "Peppol BIS post-award 3.0.15 compiled Schematron",
        "license": "OpenPeppol AISBL",
    },
    {
        "prefix": "ehf-postaward-g3/2023-02-16/xslt/", "source_md": "ehf-postaward-g3/SOURCE.md",
        "commit": "432f0e9a8cff5c03d06625abe7a5fd8e7e346a64",
        "base_url": PHIVE + "phive-rules-ehf/src/main/resources/external/schematron/2023-02/xslt/",
        "upstream": "DFØ EHF Post-Award G3 release 2023-02-16 (anskaffelser/ehf-postaward-g3), as redistributed by phax/phive-rules",
        "title": "EHF Post-Award G3 2023-02-16 compiled Schematron",
        "license": "DFØ, public-sector specification",
    },
]

# Artefact versions of layers that are not the set's own version (the CEN rules inside Peppol).
CEN_VERSION = {
    "peppol-bis-billing-3/3.0.21/": "1.3.16",
    "peppol-bis-billing-3/3.0.19/": "1.3.14.1",
}

UBL_VERSION = {"ubl-2.1/": "2.1", "ubl-2.2/": "2.2", "ubl-2.3/": "2.3"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_sources(mirror: Path) -> None:
    for src in SOURCES:
        text = (mirror / src["source_md"]).read_text(encoding="utf-8")
        if src["commit"] not in text:
            raise SystemExit(f"{src['source_md']} no longer mentions commit {src['commit']}: update SOURCES")


def source_for(rel: str) -> dict:
    for src in SOURCES:
        if rel.startswith(src["prefix"]):
            return src
    raise SystemExit(f"no official source known for {rel}: add it to SOURCES in {__file__}")


def url_for(rel: str) -> str:
    src = source_for(rel)
    return src["base_url"] + rel[len(src["prefix"]):]


def schema_closure(mirror: Path, rel: str) -> list[str]:
    """The XSD at `rel` plus every schema it includes or imports, transitively (relative paths)."""
    seen: list[str] = []
    todo = [rel]
    root = mirror.resolve()
    while todo:
        cur = todo.pop()
        if cur in seen:
            continue
        seen.append(cur)
        tree = etree.parse(str(mirror / cur), etree.XMLParser(resolve_entities=False, no_network=True))
        for el in tree.iter(f"{{{XS}}}import", f"{{{XS}}}include", f"{{{XS}}}redefine"):
            loc = el.get("schemaLocation")
            if not loc:
                continue
            if re.match(r"^[a-z]+:", loc):
                raise SystemExit(f"{cur}: imports {loc} from the network; pin a local copy instead")
            target = (mirror / cur).parent.joinpath(loc).resolve()
            todo.append(target.relative_to(root).as_posix())
    return sorted(seen)


def layer_name(xslt_rel: str) -> str:
    """Short layer label used in report items, e.g. CEN, PEPPOL, PEPPOL-SB, PEPPOLBIS-T01, EHF-ORDER-3.0."""
    stem = Path(xslt_rel).stem
    return {
        "CEN-EN16931-UBL": "CEN",
        "PEPPOL-EN16931-UBL": "PEPPOL",
        "PEPPOL-EN16931-UBL-SB": "PEPPOL-SB",
        "EN16931-UBL-validation": "EN16931",
        "FORWARD-BILLING-CEN-EN16931-UBL": "CEN (EHF forward billing)",
        "FORWARD-BILLING-PEPPOL-EN16931-UBL": "PEPPOL (EHF forward billing)",
        "REMINDER-CEN-EN16931-UBL": "CEN (EHF reminder)",
        "REMINDER-PEPPOL-EN16931-UBL": "PEPPOL (EHF reminder)",
    }.get(stem, stem)


def match_mode(s: dict) -> str:
    """"exact" or "prefix" comparison of cbc:CustomizationID.

    Peppol post-award identifiers must match exactly (a trailing extension is a national CIUS such
    as EHF, says the mirror's manifest), and so must the bare EN 16931 identifier (a CIUS of it
    needs its own rules; validating it with the core rules only would be a silent partial pass).
    Billing identifiers are prefixes: a CIUS that extends Peppol BIS Billing must still satisfy it.
    """
    if "must match exactly" in (s.get("notes") or "") or s["id"].startswith("en16931-ubl"):
        return "exact"
    return "prefix"


def build(mirror: Path) -> dict:
    check_sources(mirror)
    src_manifest = json.loads((mirror / "manifest.json").read_text(encoding="utf-8"))
    files: dict[str, dict] = {}

    def pin(rel: str, role: str) -> None:
        if rel in files:
            return
        path = mirror / rel
        if not path.is_file():
            raise SystemExit(f"{path}: listed by the mirror's manifest but missing")
        files[rel] = {"path": rel, "role": role, "size": path.stat().st_size,
                      "sha256": sha256(path), "source": url_for(rel)}

    sets = []
    for s in src_manifest["sets"]:
        family, _, _ = s["id"].partition("@")
        layers = []
        for layer in s["layers"]:
            if layer["kind"] == "xsd":
                rel = layer["path"]
                ubl = next(v for k, v in UBL_VERSION.items() if rel.startswith(k))
                for dep in schema_closure(mirror, rel):
                    pin(dep, "xsd")
                layers.append({"kind": "xsd", "name": "XSD", "title": f"UBL {ubl} schema",
                               "artefact": Path(rel).name, "version": ubl, "path": rel,
                               "files": schema_closure(mirror, rel)})
            elif layer["kind"] == "schematron-xslt":
                rel = layer["xslt"]
                pin(rel, "xslt")
                if layer.get("xslt_sha256") and layer["xslt_sha256"] != files[rel]["sha256"]:
                    raise SystemExit(f"{rel}: mirror file does not match the mirror manifest's hash")
                version = next((v for k, v in CEN_VERSION.items() if rel.startswith(k) and "CEN-" in rel),
                               s["version"])
                layers.append({"kind": "schematron", "name": layer_name(rel), "title": layer["name"],
                               "artefact": Path(rel).name, "version": version, "path": rel})
            else:
                raise SystemExit(f"{s['id']}: unknown layer kind {layer['kind']!r}")
        status = "current" if s["status"].startswith("current") or s["status"].startswith("newest") else "superseded"
        sets.append({
            "id": s["id"],
            "family": family,
            "title": s["title"],
            "version": s["version"],
            "valid_from": s["valid_from"],
            "status": status,
            "match": {**s["match"], "customization_id_match": match_mode(s)},
            "layers": layers,
            "phive_vesid": s.get("phive_vesid"),
            "notes": "; ".join(x for x in (s["status"] if status != s["status"] else None, s.get("notes")) if x) or None,
        })

    return {
        "description": (
            "Pinned official validation artefacts for SEND gateway. Each set is one validation "
            "execution set: an XSD layer then Schematron (compiled XSLT) layers in order, and the "
            "rules that match a document to it (root element + CustomizationID prefix, optionally "
            "ProfileID). Every file any set needs is pinned by SHA-256 with the official address it "
            "is published at; `sendgw artefacts sync` installs exactly these files into the cache. "
            "Generated by schematron/build_manifest.py from the artefact mirror; edit only by "
            "regenerating."
        ),
        "manifest_version": 1,
        "sources": [{k: v for k, v in src.items() if k != "source_md"} for src in SOURCES],
        "sets": sets,
        "files": sorted(files.values(), key=lambda f: f["path"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mirror", type=Path, help="artefact mirror folder (e.g. ../shared/artefacts)")
    parser.add_argument("-o", "--output", type=Path, default=OUT)
    args = parser.parse_args(argv)
    manifest = build(args.mirror)
    args.output.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.output}: {len(manifest['sets'])} sets, {len(manifest['files'])} files", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
