"""Rule sets from the pinned manifest, verified reads from the artefact cache, and rule selection.

A rule set (a "validation execution set") is one release of the rules for one document type: an
XSD layer, then one or more Schematron layers (compiled XSLT) in order. Its id is
`<family>@<version>`, e.g. `peppol-billing-invoice@3.0.21`; several releases of one family live
side by side and differ by `valid_from`.

Selection for a document: candidates are the sets whose root element (namespace + local name)
equals the document's and whose CustomizationID rule matches (exact, or prefix for billing
identifiers that CIUSes extend) and, where the set asks for it, whose ProfileID contains a marker.
The most specific family wins (longest CustomizationID, then a ProfileID condition), which puts
EHF before Peppol since EHF identifiers extend Peppol ones. Within the family the newest release
whose `valid_from` has passed on the reference date (today, or `at`) is used.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from pathlib import Path

from schematron.sync import MANIFEST, check_file, load_manifest
from validation.errors import ArtefactError, UnknownDocumentTypeError, UnknownRuleSetError


@dataclass(frozen=True)
class Layer:
    kind: str  # "xsd" or "schematron"
    name: str  # short label used in report items: XSD, CEN, PEPPOL, PEPPOLBIS-T01 ...
    title: str
    artefact: str  # file name, reported as the artefact name
    version: str
    path: str  # relative to the cache
    files: tuple[str, ...]  # every pinned file this layer reads (XSD: all includes/imports)


@dataclass(frozen=True)
class RuleSet:
    id: str
    family: str
    title: str
    version: str
    valid_from: dt.date
    status: str  # "current" or "superseded" as pinned; see status_on() for the dated status
    root_namespace: str
    root_element: str
    customization_id: str
    customization_match: str  # "exact" or "prefix"
    profile_id_contains: str | None
    layers: tuple[Layer, ...]
    phive_vesid: str | None = None
    notes: str | None = None

    @property
    def xsd(self) -> Layer | None:
        return next((lay for lay in self.layers if lay.kind == "xsd"), None)

    @property
    def schematron(self) -> tuple[Layer, ...]:
        return tuple(lay for lay in self.layers if lay.kind == "schematron")

    def matches(self, ns: str, local: str, customization: str | None, profile: str | None) -> bool:
        if ns != self.root_namespace or local != self.root_element or customization is None:
            return False
        if self.customization_match == "exact":
            if customization != self.customization_id:
                return False
        elif not customization.startswith(self.customization_id):
            return False
        if self.profile_id_contains and (profile is None or self.profile_id_contains not in profile):
            return False
        return True

    @property
    def specificity(self) -> tuple[int, int]:
        return (len(self.customization_id), 1 if self.profile_id_contains else 0)


def _version_key(version: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in version.replace("-", ".").split("."))


class Catalogue:
    """All rule sets of the manifest plus verified access to their files in the cache."""

    def __init__(self, cache_dir: Path, manifest_path: Path = MANIFEST):
        self.cache_dir = Path(cache_dir)
        self.manifest_path = manifest_path
        manifest = load_manifest(manifest_path)
        self._pins = {e["path"]: e for e in manifest["files"]}
        self.sets: dict[str, RuleSet] = {}
        for s in manifest["sets"]:
            layers = []
            for lay in s["layers"]:
                files = tuple(lay.get("files") or (lay["path"],))
                for f in files:
                    if f not in self._pins:
                        raise ArtefactError(f"manifest: {s['id']} needs {f}, which is not pinned")
                layers.append(Layer(lay["kind"], lay["name"], lay.get("title", lay["name"]), lay["artefact"],
                                    lay["version"], lay["path"], files))
            m = s["match"]
            self.sets[s["id"]] = RuleSet(
                id=s["id"], family=s["family"], title=s["title"], version=s["version"],
                valid_from=dt.date.fromisoformat(s["valid_from"]), status=s["status"],
                root_namespace=m["root_namespace"], root_element=m["root_element"],
                customization_id=m["customization_id_prefix"],
                customization_match=m.get("customization_id_match", "prefix"),
                profile_id_contains=m.get("profile_id_contains"), layers=tuple(layers),
                phive_vesid=s.get("phive_vesid"), notes=s.get("notes"),
            )
        self.families: dict[str, list[RuleSet]] = {}
        for rs in self.sets.values():
            self.families.setdefault(rs.family, []).append(rs)
        for members in self.families.values():
            members.sort(key=lambda r: (r.valid_from, _version_key(r.version)))
        self._verified: set[str] = set()
        self._lock = threading.Lock()

    # -- verified file access (hash checked once per process) -------------------------------
    def read(self, rel: str) -> bytes:
        """The bytes of a pinned file, verified against its SHA-256 as they are read."""
        data = check_file(self.cache_dir, self._pins[rel])
        with self._lock:
            self._verified.add(rel)
        return data

    def verify_layer(self, layer: Layer) -> Path:
        """Verify every file of a layer (once per process); returns the path of its entry file."""
        for rel in layer.files:
            if rel not in self._verified:
                check_file(self.cache_dir, self._pins[rel])
                with self._lock:
                    self._verified.add(rel)
        return self.cache_dir / layer.path

    def sha256(self, rel: str) -> str:
        return self._pins[rel]["sha256"]

    # -- selection ---------------------------------------------------------------------------
    def in_force(self, family: str, on: dt.date, *, strict: bool) -> RuleSet:
        """The newest release of `family` whose valid_from is on or before `on`.

        When none is in force yet: with `strict` (a date the caller asked for) that is an
        UnknownRuleSetError; otherwise (today) the earliest release is used.
        """
        members = self.families[family]
        valid = [r for r in members if r.valid_from <= on]
        if valid:
            return valid[-1]
        if strict:
            first = members[0]
            raise UnknownRuleSetError(
                f"no release of {family} was in force on {on.isoformat()}: the earliest available, "
                f"{first.id}, applies from {first.valid_from.isoformat()}"
            )
        return members[0]

    def by_name(self, name: str, on: dt.date, *, strict: bool) -> RuleSet:
        """A set named by the caller: an exact id (`family@version`) or a family (dated)."""
        if name in self.sets:
            return self.sets[name]
        if name in self.families:
            return self.in_force(name, on, strict=strict)
        known = ", ".join(sorted(self.families))
        raise UnknownRuleSetError(
            f"unknown rule set {name!r}: give a set id such as peppol-billing-invoice@3.0.21 "
            f"(see `sendgw artefacts list`) or a family name ({known})"
        )

    def select(self, ns: str, local: str, customization: str | None, profile: str | None,
               on: dt.date, *, strict: bool) -> RuleSet:
        """Choose the rule set for a document (see the module docstring)."""
        candidates = [r for r in self.sets.values() if r.matches(ns, local, customization, profile)]
        if not candidates:
            what = f"{{{ns}}}{local}" if ns else local
            if customization is None:
                raise UnknownDocumentTypeError(
                    f"{what} document without cbc:CustomizationID: cannot choose a rule set"
                )
            prof = f" and ProfileID {profile!r}" if profile else ""
            raise UnknownDocumentTypeError(
                f"no rule set for a {local} document with CustomizationID {customization!r}{prof} "
                f"(root namespace {ns or 'none'})"
            )
        best = max(r.specificity for r in candidates)
        family = sorted({r.family for r in candidates if r.specificity == best})[0]
        return self.in_force(family, on, strict=strict)

    def status_on(self, rs: RuleSet, on: dt.date) -> str:
        """"active" (the release in force), "upcoming" (valid_from ahead) or "superseded"."""
        if rs.valid_from > on:
            return "upcoming"
        return "active" if self.in_force(rs.family, on, strict=False) is rs else "superseded"
