"""Find every official Norwegian invoice/credit note in the shared conformance data.

"Norwegian" = a UBL Invoice/CreditNote (not a unit-test fragment) whose seller is in Norway, whose
CustomizationID is an EHF one (anskaffelser.no), or that ships in an EHF or Peppol-NO example folder.
Resolved at collection time so each example is its own test id; an absent shared/ gives no params.
"""

from __future__ import annotations

import os
from pathlib import Path

from lxml import etree

REPO = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get("SENDGW_SHARED_DIR") or REPO.parent / "shared").resolve()
CONFORMANCE = SHARED / "conformance"

CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
NS = {"cbc": CBC, "cac": CAC}
ROOTS = {
    "{urn:oasis:names:specification:ubl:schema:xsd:Invoice-2}Invoice",
    "{urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2}CreditNote",
}
NORWEGIAN_FOLDERS = ("ehf-billing-3", "ehf-postaward-g3", "national-examples/NO")


def norwegian_examples() -> list[Path]:
    if not CONFORMANCE.is_dir():
        return []
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    found = []
    for path in sorted(CONFORMANCE.rglob("*.xml")):
        try:
            root = etree.parse(str(path), parser).getroot()
        except etree.XMLSyntaxError:
            continue
        if root.tag not in ROOTS:
            continue
        country = root.findtext(
            "cac:AccountingSupplierParty/cac:Party/cac:PostalAddress/cac:Country/cbc:IdentificationCode",
            namespaces=NS)
        customization = root.findtext("cbc:CustomizationID", namespaces=NS) or ""
        rel = path.relative_to(CONFORMANCE).as_posix()
        if (country or "").strip() == "NO" or "anskaffelser.no" in customization or any(
                f in rel for f in NORWEGIAN_FOLDERS):
            found.append(path)
    return found


def example_id(path: Path) -> str:
    return path.relative_to(CONFORMANCE).as_posix()
