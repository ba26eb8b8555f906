"""Invoice facts: the business content of a UBL Invoice or CreditNote as plain typed values.

Every B2C channel (PDF, e-mail, SMS, eFaktura, AvtaleGiro, Digipost) needs the same handful of facts
(amount, due date, KID, account, parties); parsing the UBL once here keeps them consistent across
channels. Amounts are `Decimal`, dates `datetime.date`, and the XML is parsed without DTDs, entities
or network access, because invoices come from untrusted senders.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Literal

from lxml import etree
from stdnum import iban as _iban
from stdnum.no import kontonr as _kontonr
from stdnum.no import orgnr as _orgnr

CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
INVOICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CREDIT_NOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
SBDH_NS = "http://www.unece.org/cefact/namespaces/StandardBusinessDocumentHeader"
NS = {"cbc": CBC, "cac": CAC}

#: Invoice type codes (UNCL1001) that mean "credit note" even inside an Invoice document.
CREDIT_TYPE_CODES = frozenset({"81", "83", "261", "262", "381", "396", "420", "458", "532"})

DocumentKind = Literal["invoice", "credit_note"]
AccountKind = Literal["bban", "iban", "other"]


class InvoiceError(ValueError):
    """Input that is not a usable UBL invoice or credit note. `code` is stable for API/CLI callers."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


# --------------------------------------------------------------------------- value types


@dataclass(frozen=True)
class Address:
    street: str | None = None
    additional_street: str | None = None
    address_line: str | None = None
    postal_zone: str | None = None
    city: str | None = None
    country_subentity: str | None = None
    country: str | None = None  # ISO 3166-1 alpha-2

    def lines(self, *, home_country: str = "NO") -> list[str]:
        """Postal lines as printed on an envelope (country only when foreign)."""
        out = [x for x in (self.street, self.additional_street, self.address_line) if x]
        place = " ".join(x for x in (self.postal_zone, self.city) if x)
        if place:
            out.append(place)
        if self.country and self.country.upper() != home_country:
            out.append(self.country.upper())
        return out

    @property
    def is_empty(self) -> bool:
        return not any((self.street, self.additional_street, self.address_line, self.postal_zone,
                        self.city))


@dataclass(frozen=True)
class Contact:
    name: str | None = None
    telephone: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class Party:
    """Seller, buyer or payee as far as a human-readable invoice and the channels need it."""

    name: str | None = None  # trading name (PartyName) or else the legal name
    legal_name: str | None = None  # PartyLegalEntity/RegistrationName
    orgnr: str | None = None  # valid Norwegian organisasjonsnummer, 9 digits, if any
    company_id: str | None = None  # PartyLegalEntity/CompanyID as given
    vat_id: str | None = None  # PartyTaxScheme[VAT]/CompanyID, e.g. NO123456785MVA
    tax_registration: str | None = None  # other PartyTaxScheme text, e.g. "Foretaksregisteret"
    endpoint_id: str | None = None
    endpoint_scheme: str | None = None
    identifiers: tuple[str, ...] = ()
    address: Address = field(default_factory=Address)
    contact: Contact = field(default_factory=Contact)

    @property
    def email(self) -> str | None:
        """Contact e-mail, else an e-mail endpoint (Peppol EAS `EM`)."""
        if self.contact.email:
            return self.contact.email
        if self.endpoint_scheme == "EM" and self.endpoint_id:
            return self.endpoint_id
        return None

    @property
    def phone(self) -> str | None:
        return self.contact.telephone


@dataclass(frozen=True)
class AllowanceCharge:
    is_charge: bool
    amount: Decimal
    reason: str | None = None
    reason_code: str | None = None
    vat_category: str | None = None
    vat_rate: Decimal | None = None


@dataclass(frozen=True)
class InvoiceLine:
    id: str
    name: str | None
    quantity: Decimal | None
    unit: str | None  # UN/ECE rec 20 code, e.g. EA, HUR, KWH
    price: Decimal | None  # net price per base quantity
    base_quantity: Decimal | None
    line_amount: Decimal
    vat_category: str | None
    vat_rate: Decimal | None
    description: str | None = None
    note: str | None = None
    sellers_item_id: str | None = None
    period_start: _dt.date | None = None
    period_end: _dt.date | None = None
    allowance_charges: tuple[AllowanceCharge, ...] = ()  # already included in line_amount


@dataclass(frozen=True)
class VatBreakdown:
    category: str | None  # UNCL5305: S, Z, E, AE, K, G, O, L, M
    rate: Decimal | None
    taxable_amount: Decimal
    tax_amount: Decimal
    exemption_reason: str | None = None


@dataclass(frozen=True)
class PaymentMeans:
    code: str | None  # UNCL4461: 30 credit transfer, 58 SEPA CT, 59 SEPA DD, 31 debit transfer ...
    kid: str | None  # PaymentID; the KID when it is a Norwegian payment reference
    account: str | None  # compact account id (spaces and dots removed)
    account_kind: AccountKind | None
    account_name: str | None = None
    bic: str | None = None
    due_date: _dt.date | None = None
    mandate_id: str | None = None

    @property
    def kontonummer(self) -> str | None:
        """The 11-digit Norwegian account (BBAN), also when given as a Norwegian IBAN."""
        if self.account_kind == "bban":
            return self.account
        if self.account_kind == "iban" and self.account and self.account.startswith("NO"):
            bban = self.account[4:]
            return bban if _kontonr.is_valid(bban) else None
        return None


@dataclass(frozen=True)
class InvoiceFacts:
    """Everything a channel shows or transmits about one invoice or credit note."""

    kind: DocumentKind
    type_code: str | None
    number: str
    issue_date: _dt.date
    due_date: _dt.date | None
    currency: str
    payable_amount: Decimal
    tax_exclusive_amount: Decimal | None
    tax_inclusive_amount: Decimal | None
    line_extension_amount: Decimal | None
    vat_total: Decimal | None
    seller: Party
    buyer: Party
    lines: tuple[InvoiceLine, ...] = ()
    vat_breakdown: tuple[VatBreakdown, ...] = ()
    allowance_charges: tuple[AllowanceCharge, ...] = ()
    allowance_total: Decimal | None = None
    charge_total: Decimal | None = None
    prepaid_amount: Decimal | None = None
    rounding_amount: Decimal | None = None
    tax_currency: str | None = None
    vat_total_tax_currency: Decimal | None = None
    payment_means: tuple[PaymentMeans, ...] = ()
    payment_terms: str | None = None
    payee: Party | None = None
    customization_id: str | None = None
    profile_id: str | None = None
    order_reference: str | None = None
    buyer_reference: str | None = None
    contract_reference: str | None = None
    billing_references: tuple[str, ...] = ()  # invoices a credit note corrects
    accounting_cost: str | None = None
    notes: tuple[str, ...] = ()
    tax_point_date: _dt.date | None = None
    period_start: _dt.date | None = None
    period_end: _dt.date | None = None
    delivery_date: _dt.date | None = None
    delivery_address: Address | None = None

    # -- conveniences the channels share -------------------------------------------------

    @property
    def is_credit_note(self) -> bool:
        return self.kind == "credit_note"

    @property
    def is_reminder(self) -> bool:
        """EHF Reminder 3.0 (purring) travels as an Invoice with its own customization."""
        return bool(self.customization_id and ":ehf:reminder:" in self.customization_id)

    @property
    def is_self_billing(self) -> bool:
        return bool(self.customization_id and "selfbilling" in self.customization_id.lower())

    @property
    def _payment(self) -> PaymentMeans | None:
        """The first means with an account, else the first means."""
        for means in self.payment_means:
            if means.account:
                return means
        return self.payment_means[0] if self.payment_means else None

    @property
    def kid(self) -> str | None:
        for means in self.payment_means:
            if means.kid:
                return means.kid
        return None

    @property
    def account(self) -> str | None:
        means = self._payment
        return means.account if means else None

    @property
    def account_kind(self) -> AccountKind | None:
        means = self._payment
        return means.account_kind if means else None

    @property
    def kontonummer(self) -> str | None:
        means = self._payment
        return means.kontonummer if means else None

    @property
    def bic(self) -> str | None:
        means = self._payment
        return means.bic if means else None

    @property
    def payment_means_code(self) -> str | None:
        means = self._payment
        return means.code if means else None

    @property
    def requests_payment(self) -> bool:
        """True when the payer is asked to pay something (not a credit note, amount > 0)."""
        return not self.is_credit_note and self.payable_amount > 0

    def to_json(self) -> dict:
        """JSON-ready dict (amounts as strings, dates ISO) for API responses and decision records."""
        return _jsonable(dataclasses.asdict(self)) | {
            "kid": self.kid, "account": self.account, "account_kind": self.account_kind,
            "kontonummer": self.kontonummer, "payment_means_code": self.payment_means_code,
            "requests_payment": self.requests_payment,
        }


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, _dt.date):
        return value.isoformat()
    return value


# --------------------------------------------------------------------------- parsing

_PARSER_OPTS = dict(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                    huge_tree=False, remove_comments=False)
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)


def parse_xml(xml: bytes) -> etree._Element:
    """Parse untrusted XML: no DTD, no entities, no network; any DOCTYPE is refused."""
    if not isinstance(xml, (bytes, bytearray)):
        raise InvoiceError("not-xml", "expected the document as bytes")
    if _DOCTYPE.search(xml[:4096]) or b"<!ENTITY" in xml:
        raise InvoiceError("doctype-forbidden", "documents with a DOCTYPE or entity declarations are refused")
    try:
        tree = etree.fromstring(bytes(xml), etree.XMLParser(**_PARSER_OPTS)).getroottree()
    except etree.XMLSyntaxError as exc:
        raise InvoiceError("not-xml", f"not well-formed XML: {exc}") from None
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise InvoiceError("doctype-forbidden", "documents with a DOCTYPE are refused")
    return tree.getroot()


def ubl_root(root: etree._Element) -> etree._Element:
    """The Invoice/CreditNote element, unwrapping a Peppol SBDH envelope."""
    if root.tag == f"{{{SBDH_NS}}}StandardBusinessDocument":
        payload = [c for c in root if isinstance(c.tag, str)
                   and c.tag != f"{{{SBDH_NS}}}StandardBusinessDocumentHeader"]
        if not payload:
            raise InvoiceError("not-ubl", "SBDH envelope carries no business document")
        root = payload[0]
    if root.tag not in (f"{{{INVOICE_NS}}}Invoice", f"{{{CREDIT_NOTE_NS}}}CreditNote"):
        name = etree.QName(root).localname if isinstance(root.tag, str) else "?"
        raise InvoiceError("not-ubl", f"root element {name!r} is not a UBL 2.1 Invoice or CreditNote")
    return root


def _clean(text: str | None) -> str | None:
    if text is None:
        return None
    text = " ".join(text.split())
    return text or None


def _text(el: etree._Element | None, path: str) -> str | None:
    if el is None:
        return None
    found = el.find(path, NS)
    return _clean(found.text) if found is not None else None


def _texts(el: etree._Element, path: str) -> tuple[str, ...]:
    return tuple(t for t in (_clean(x.text) for x in el.findall(path, NS)) if t)


def _decimal(el: etree._Element | None, path: str) -> Decimal | None:
    raw = _text(el, path)
    if raw is None:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise InvoiceError("bad-amount", f"{path.split('/')[-1]} is not a number: {raw!r}") from None
    if not value.is_finite():
        raise InvoiceError("bad-amount", f"{path.split('/')[-1]} is not a finite number: {raw!r}")
    return value


def _date(el: etree._Element | None, path: str) -> _dt.date | None:
    raw = _text(el, path)
    if raw is None:
        return None
    try:
        return _dt.date.fromisoformat(raw[:10])
    except ValueError:
        raise InvoiceError("bad-date", f"{path.split('/')[-1]} is not a date (YYYY-MM-DD): {raw!r}") from None


def _address(el: etree._Element | None) -> Address:
    if el is None:
        return Address()
    return Address(
        street=_text(el, "cbc:StreetName"),
        additional_street=_text(el, "cbc:AdditionalStreetName"),
        address_line=_text(el, "cac:AddressLine/cbc:Line"),
        postal_zone=_text(el, "cbc:PostalZone"),
        city=_text(el, "cbc:CityName"),
        country_subentity=_text(el, "cbc:CountrySubentity"),
        country=_text(el, "cac:Country/cbc:IdentificationCode"),
    )


def _valid_orgnr(value: str | None) -> str | None:
    if not value:
        return None
    digits = re.sub(r"[\s.]", "", value)
    if digits.upper().startswith("NO"):
        digits = digits[2:]
    if digits.upper().endswith("MVA"):
        digits = digits[:-3]
    return digits if len(digits) == 9 and _orgnr.is_valid(digits) else None


def _party(party: etree._Element | None) -> Party:
    if party is None:
        return Party()
    vat_id = tax_text = None
    for scheme in party.findall("cac:PartyTaxScheme", NS):
        company = _text(scheme, "cbc:CompanyID")
        if _text(scheme, "cac:TaxScheme/cbc:ID") == "VAT":
            vat_id = vat_id or company
        else:
            tax_text = tax_text or company
    legal = party.find("cac:PartyLegalEntity", NS)
    legal_name = _text(legal, "cbc:RegistrationName")
    company_id = _text(legal, "cbc:CompanyID")
    endpoint = party.find("cbc:EndpointID", NS)
    endpoint_id = _clean(endpoint.text) if endpoint is not None else None
    endpoint_scheme = endpoint.get("schemeID") if endpoint is not None else None
    identifiers = _texts(party, "cac:PartyIdentification/cbc:ID")
    legal_scheme = legal.find("cbc:CompanyID", NS).get("schemeID") if (
        legal is not None and legal.find("cbc:CompanyID", NS) is not None) else None
    orgnr = None
    if legal_scheme in (None, "0192", "NO:ORGNR"):
        orgnr = _valid_orgnr(company_id)
    if orgnr is None and vat_id and vat_id.upper().startswith("NO"):
        orgnr = _valid_orgnr(vat_id)
    if orgnr is None and endpoint_scheme == "0192":
        orgnr = _valid_orgnr(endpoint_id)
    contact = party.find("cac:Contact", NS)
    return Party(
        name=_text(party, "cac:PartyName/cbc:Name") or legal_name,
        legal_name=legal_name,
        orgnr=orgnr,
        company_id=company_id,
        vat_id=vat_id,
        tax_registration=tax_text,
        endpoint_id=endpoint_id,
        endpoint_scheme=endpoint_scheme,
        identifiers=identifiers,
        address=_address(party.find("cac:PostalAddress", NS)),
        contact=Contact(
            name=_text(contact, "cbc:Name"),
            telephone=_text(contact, "cbc:Telephone"),
            email=_text(contact, "cbc:ElectronicMail"),
        ),
    )


def classify_account(raw: str | None) -> tuple[str | None, AccountKind | None]:
    """Compact an account id and say whether it is a valid Norwegian BBAN, a valid IBAN, or other."""
    if not raw:
        return None, None
    compact = re.sub(r"[\s.\-]", "", raw).upper()
    if compact.isdigit() and _kontonr.is_valid(compact) and len(compact) == 11:
        return compact, "bban"
    if _iban.is_valid(compact):
        return compact, "iban"
    return raw.strip(), "other"


def _payment_means(el: etree._Element) -> PaymentMeans:
    account_el = el.find("cac:PayeeFinancialAccount", NS)
    account, kind = classify_account(_text(account_el, "cbc:ID"))
    return PaymentMeans(
        code=_text(el, "cbc:PaymentMeansCode"),
        kid=_text(el, "cbc:PaymentID"),
        account=account,
        account_kind=kind,
        account_name=_text(account_el, "cbc:Name"),
        bic=_text(account_el, "cac:FinancialInstitutionBranch/cbc:ID"),
        due_date=_date(el, "cbc:PaymentDueDate"),
        mandate_id=_text(el, "cac:PaymentMandate/cbc:ID"),
    )


def _tax_category(el: etree._Element | None) -> tuple[str | None, Decimal | None]:
    if el is None:
        return None, None
    return _text(el, "cbc:ID"), _decimal(el, "cbc:Percent")


def _allowance_charges(parent: etree._Element) -> tuple[AllowanceCharge, ...]:
    out = []
    for ac in parent.findall("cac:AllowanceCharge", NS):
        category, rate = _tax_category(ac.find("cac:TaxCategory", NS))
        out.append(AllowanceCharge(
            is_charge=(_text(ac, "cbc:ChargeIndicator") or "").lower() == "true",
            amount=_decimal(ac, "cbc:Amount") or Decimal(0),
            reason=_text(ac, "cbc:AllowanceChargeReason"),
            reason_code=_text(ac, "cbc:AllowanceChargeReasonCode"),
            vat_category=category,
            vat_rate=rate,
        ))
    return tuple(out)


def _line(el: etree._Element, qty_tag: str) -> InvoiceLine:
    item = el.find("cac:Item", NS)
    category, rate = _tax_category(item.find("cac:ClassifiedTaxCategory", NS) if item is not None else None)
    qty_el = el.find(f"cbc:{qty_tag}", NS)
    price_el = el.find("cac:Price", NS)
    base_el = price_el.find("cbc:BaseQuantity", NS) if price_el is not None else None
    amount = _decimal(el, "cbc:LineExtensionAmount")
    return InvoiceLine(
        id=_text(el, "cbc:ID") or "",
        name=_text(item, "cbc:Name"),
        description=_text(item, "cbc:Description"),
        quantity=_decimal(el, f"cbc:{qty_tag}"),
        unit=qty_el.get("unitCode") if qty_el is not None else None,
        price=_decimal(price_el, "cbc:PriceAmount"),
        base_quantity=_decimal(price_el, "cbc:BaseQuantity") if base_el is not None else None,
        line_amount=amount if amount is not None else Decimal(0),
        vat_category=category,
        vat_rate=rate,
        note=_text(el, "cbc:Note"),
        sellers_item_id=_text(item, "cac:SellersItemIdentification/cbc:ID"),
        period_start=_date(el, "cac:InvoicePeriod/cbc:StartDate"),
        period_end=_date(el, "cac:InvoicePeriod/cbc:EndDate"),
        allowance_charges=_allowance_charges(el),
    )


def _pick_tax_total(doc: etree._Element, currency: str) -> tuple[etree._Element | None, etree._Element | None]:
    """(TaxTotal in document currency, TaxTotal in another currency) — BR-53 allows both."""
    main = other = None
    for total in doc.findall("cac:TaxTotal", NS):
        amount = total.find("cbc:TaxAmount", NS)
        cur = amount.get("currencyID") if amount is not None else None
        if cur in (None, currency) and main is None:
            main = total
        elif other is None:
            other = total
    return main, other


def extract_invoice_facts(xml: bytes) -> InvoiceFacts:
    """Parse a UBL 2.1 Invoice or CreditNote (bare or SBDH-wrapped) into `InvoiceFacts`.

    Raises `InvoiceError` when the bytes are not such a document or lack the facts nobody can do
    without (number, issue date, payable amount).
    """
    doc = ubl_root(parse_xml(xml))
    is_credit_doc = doc.tag == f"{{{CREDIT_NOTE_NS}}}CreditNote"
    type_code = _text(doc, "cbc:CreditNoteTypeCode" if is_credit_doc else "cbc:InvoiceTypeCode")
    kind: DocumentKind = "credit_note" if is_credit_doc or type_code in CREDIT_TYPE_CODES else "invoice"

    number = _text(doc, "cbc:ID")
    if not number:
        raise InvoiceError("missing-field", "the document has no number (cbc:ID)")
    issue_date = _date(doc, "cbc:IssueDate")
    if issue_date is None:
        raise InvoiceError("missing-field", "the document has no issue date (cbc:IssueDate)")
    totals = doc.find("cac:LegalMonetaryTotal", NS)
    payable = _decimal(totals, "cbc:PayableAmount")
    if payable is None:
        raise InvoiceError("missing-field", "the document has no payable amount "
                                            "(cac:LegalMonetaryTotal/cbc:PayableAmount)")
    currency = _text(doc, "cbc:DocumentCurrencyCode")
    if not currency:
        payable_el = totals.find("cbc:PayableAmount", NS)
        currency = payable_el.get("currencyID") or "NOK"
    currency = currency.upper()

    means = tuple(_payment_means(m) for m in doc.findall("cac:PaymentMeans", NS))
    terms = doc.findall("cac:PaymentTerms", NS)
    due_date = _date(doc, "cbc:DueDate")
    if due_date is None:
        due_date = next((m.due_date for m in means if m.due_date), None)
    if due_date is None:
        due_date = next((d for d in (_date(t, "cbc:PaymentDueDate") for t in terms) if d), None)
    terms_note = "; ".join(n for t in terms for n in _texts(t, "cbc:Note")) or None

    tax_main, tax_other = _pick_tax_total(doc, currency)
    breakdown = []
    if tax_main is not None:
        for sub in tax_main.findall("cac:TaxSubtotal", NS):
            cat_el = sub.find("cac:TaxCategory", NS)
            category, rate = _tax_category(cat_el)
            breakdown.append(VatBreakdown(
                category=category,
                rate=rate,
                taxable_amount=_decimal(sub, "cbc:TaxableAmount") or Decimal(0),
                tax_amount=_decimal(sub, "cbc:TaxAmount") or Decimal(0),
                exemption_reason=_text(cat_el, "cbc:TaxExemptionReason"),
            ))
    tax_other_amount = tax_other.find("cbc:TaxAmount", NS) if tax_other is not None else None

    charges = _allowance_charges(doc)

    line_tag, qty_tag = ("cac:CreditNoteLine", "CreditedQuantity") if is_credit_doc else (
        "cac:InvoiceLine", "InvoicedQuantity")
    payee_el = doc.find("cac:PayeeParty", NS)
    delivery = doc.find("cac:Delivery", NS)
    delivery_addr_el = delivery.find("cac:DeliveryLocation/cac:Address", NS) if delivery is not None else None

    return InvoiceFacts(
        kind=kind,
        type_code=type_code,
        number=number,
        issue_date=issue_date,
        due_date=due_date,
        currency=currency,
        payable_amount=payable,
        tax_exclusive_amount=_decimal(totals, "cbc:TaxExclusiveAmount"),
        tax_inclusive_amount=_decimal(totals, "cbc:TaxInclusiveAmount"),
        line_extension_amount=_decimal(totals, "cbc:LineExtensionAmount"),
        vat_total=_decimal(tax_main, "cbc:TaxAmount"),
        seller=_party(doc.find("cac:AccountingSupplierParty/cac:Party", NS)),
        buyer=_party(doc.find("cac:AccountingCustomerParty/cac:Party", NS)),
        lines=tuple(_line(el, qty_tag) for el in doc.findall(line_tag, NS)),
        vat_breakdown=tuple(breakdown),
        allowance_charges=charges,
        allowance_total=_decimal(totals, "cbc:AllowanceTotalAmount"),
        charge_total=_decimal(totals, "cbc:ChargeTotalAmount"),
        prepaid_amount=_decimal(totals, "cbc:PrepaidAmount"),
        rounding_amount=_decimal(totals, "cbc:PayableRoundingAmount"),
        tax_currency=(_text(doc, "cbc:TaxCurrencyCode") or "").upper() or None,
        vat_total_tax_currency=_decimal(tax_other, "cbc:TaxAmount") if tax_other_amount is not None else None,
        payment_means=means,
        payment_terms=terms_note,
        payee=_party(payee_el) if payee_el is not None else None,
        customization_id=_text(doc, "cbc:CustomizationID"),
        profile_id=_text(doc, "cbc:ProfileID"),
        order_reference=_text(doc, "cac:OrderReference/cbc:ID"),
        buyer_reference=_text(doc, "cbc:BuyerReference"),
        contract_reference=_text(doc, "cac:ContractDocumentReference/cbc:ID"),
        billing_references=_texts(doc, "cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID"),
        accounting_cost=_text(doc, "cbc:AccountingCost"),
        notes=_texts(doc, "cbc:Note"),
        tax_point_date=_date(doc, "cbc:TaxPointDate"),
        period_start=_date(doc, "cac:InvoicePeriod/cbc:StartDate"),
        period_end=_date(doc, "cac:InvoicePeriod/cbc:EndDate"),
        delivery_date=_date(delivery, "cbc:ActualDeliveryDate"),
        delivery_address=_address(delivery_addr_el) if delivery_addr_el is not None else None,
    )
