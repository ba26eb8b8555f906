"""The eFaktura SOAP message structure we send and the simulator enforces, as an XSD.

Re-derived from MPS' public WSDL documentation of `EfakturaNetsSubmitterService` ("issuer via MPS",
https://www.efaktura.no/developer/documentation/efaktura-nets-submitter-v1) and `submitter-service`
(https://www.efaktura.no/developer/documentation/submitter-service). What those pages publish is kept
exactly: the target namespace, document/literal style, `auditInformation/messageIdentifier`
(string 5-50), `serviceProvider` (optional, `[0-9]{9}`), `consignmentId` (1-40 characters in the
current version, `[0-9]{11}` in an older one), `invoices/invoice/invoiceNumber` (1-100) followed by a
choice of `efakturaReference` / `efakturaIdentifier` / `socialSecurityNumber` (error 5003 when none).

The element names of the payment-claim fields, of the identifier lookup, of the blocked-consumer list
and of the status responses are not visible in our copies of the WSDL pages; they are named here from
the field descriptions (efaktura.no "how does it work", third-party lookup wrappers) and marked
*(verify with MPS)* in docs/channels-efaktura.md. Keep this file the single place to change them.

The XSD lets the simulator reject structure errors (order, names, lengths, patterns, xs:date,
xs:decimal with two decimals) the way a schema-validating JAX-WS endpoint does; business rules
(check digits, agreements, duplicates, consent) are checked in Python on top.
"""

from __future__ import annotations

from functools import lru_cache

from lxml import etree

NAMESPACE = "https://efaktura-services.nets.no/invoicing-nets-submitter/v1/"

_XSD = """<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"
           xmlns:tns="{ns}" targetNamespace="{ns}" elementFormDefault="qualified">

  <xs:simpleType name="MessageIdentifierType">
    <xs:restriction base="xs:string"><xs:minLength value="5"/><xs:maxLength value="50"/></xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="OrganizationNumberType">
    <xs:restriction base="xs:string"><xs:pattern value="[0-9]{{9}}"/></xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="ConsignmentIdType">
    <xs:restriction base="xs:string"><xs:minLength value="1"/><xs:maxLength value="40"/></xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="InvoiceNumberType">
    <xs:restriction base="xs:string"><xs:minLength value="1"/><xs:maxLength value="100"/></xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="SocialSecurityNumberType">
    <xs:restriction base="xs:string"><xs:pattern value="[0-9]{{11}}"/></xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="EfakturaIdentifierType">
    <xs:restriction base="xs:string"><xs:minLength value="1"/><xs:maxLength value="50"/></xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="KidType">
    <xs:restriction base="xs:string"><xs:pattern value="[0-9]{{1,24}}[0-9\\-]"/></xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="AmountType">
    <xs:restriction base="xs:decimal">
      <xs:minExclusive value="0"/><xs:totalDigits value="13"/><xs:fractionDigits value="2"/>
      <xs:pattern value="[0-9]+\\.[0-9]{{2}}"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="AccountNumberType">
    <xs:restriction base="xs:string"><xs:pattern value="[0-9]{{11}}"/></xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="Text35Type">
    <xs:restriction base="xs:string"><xs:minLength value="1"/><xs:maxLength value="35"/></xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="Text100Type">
    <xs:restriction base="xs:string"><xs:minLength value="1"/><xs:maxLength value="100"/></xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="PostalCodeType">
    <xs:restriction base="xs:string"><xs:pattern value="[0-9A-Za-z \\-]{{2,10}}"/></xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="CountryCodeType">
    <xs:restriction base="xs:string"><xs:pattern value="[A-Z]{{2}}"/></xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="PhoneNumberType">
    <xs:restriction base="xs:string"><xs:pattern value="\\+?[0-9]{{5,15}}"/></xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="MimeTypeType">
    <xs:restriction base="xs:string"><xs:enumeration value="application/pdf"/></xs:restriction>
  </xs:simpleType>

  <xs:complexType name="AuditInformationType">
    <xs:sequence><xs:element name="messageIdentifier" type="tns:MessageIdentifierType"/></xs:sequence>
  </xs:complexType>

  <!-- addInvoices -->
  <xs:complexType name="PresentationType">
    <xs:sequence>
      <xs:element name="mimeType" type="tns:MimeTypeType"/>
      <xs:element name="content" type="xs:base64Binary"/>
    </xs:sequence>
  </xs:complexType>
  <xs:complexType name="InvoiceType">
    <xs:sequence>
      <xs:element name="invoiceNumber" type="tns:InvoiceNumberType"/>
      <xs:choice minOccurs="0">
        <xs:element name="efakturaReference" type="tns:EfakturaIdentifierType"/>
        <xs:element name="efakturaIdentifier" type="tns:EfakturaIdentifierType"/>
        <xs:element name="socialSecurityNumber" type="tns:SocialSecurityNumberType"/>
      </xs:choice>
      <xs:element name="issuerOrganizationNumber" type="tns:OrganizationNumberType"/>
      <xs:element name="issuerName" type="tns:Text100Type" minOccurs="0"/>
      <xs:element name="kid" type="tns:KidType"/>
      <xs:element name="amount" type="tns:AmountType"/>
      <xs:element name="dueDate" type="xs:date"/>
      <xs:element name="issueDate" type="xs:date" minOccurs="0"/>
      <xs:element name="accountNumber" type="tns:AccountNumberType"/>
      <xs:element name="presentation" type="tns:PresentationType"/>
    </xs:sequence>
  </xs:complexType>
  <xs:complexType name="InvoicesType">
    <xs:sequence><xs:element name="invoice" type="tns:InvoiceType" maxOccurs="1000"/></xs:sequence>
  </xs:complexType>
  <xs:element name="addInvoices">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="auditInformation" type="tns:AuditInformationType"/>
        <xs:element name="serviceProvider" type="tns:OrganizationNumberType" minOccurs="0"/>
        <xs:element name="consignmentId" type="tns:ConsignmentIdType"/>
        <xs:element name="invoices" type="tns:InvoicesType"/>
      </xs:sequence>
    </xs:complexType>
  </xs:element>

  <!-- getEfakturaIdentifiers -->
  <xs:complexType name="ConsumerNameType">
    <xs:sequence>
      <xs:element name="firstName" type="tns:Text35Type"/>
      <xs:element name="lastName" type="tns:Text35Type"/>
    </xs:sequence>
  </xs:complexType>
  <xs:complexType name="ConsumerAddressType">
    <xs:sequence>
      <xs:element name="streetAddress" type="tns:Text100Type"/>
      <xs:element name="postalCode" type="tns:PostalCodeType"/>
      <xs:element name="postalPlace" type="tns:Text35Type" minOccurs="0"/>
      <xs:element name="countryCode" type="tns:CountryCodeType" minOccurs="0"/>
    </xs:sequence>
  </xs:complexType>
  <xs:complexType name="IdentifierRequestType">
    <xs:choice>
      <xs:element name="socialSecurityNumber" type="tns:SocialSecurityNumberType"/>
      <xs:sequence>
        <xs:element name="name" type="tns:ConsumerNameType"/>
        <xs:element name="address" type="tns:ConsumerAddressType"/>
        <xs:element name="email" type="tns:Text100Type" minOccurs="0"/>
        <xs:element name="phoneNumber" type="tns:PhoneNumberType" minOccurs="0"/>
        <xs:element name="dateOfBirth" type="xs:date" minOccurs="0"/>
      </xs:sequence>
    </xs:choice>
  </xs:complexType>
  <xs:element name="getEfakturaIdentifiers">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="auditInformation" type="tns:AuditInformationType"/>
        <xs:element name="serviceProvider" type="tns:OrganizationNumberType" minOccurs="0"/>
        <xs:element name="issuerOrganizationNumber" type="tns:OrganizationNumberType"/>
        <xs:element name="requests">
          <xs:complexType><xs:sequence>
            <xs:element name="request" type="tns:IdentifierRequestType" maxOccurs="100"/>
          </xs:sequence></xs:complexType>
        </xs:element>
      </xs:sequence>
    </xs:complexType>
  </xs:element>

  <!-- getBlackList -->
  <xs:element name="getBlackList">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="auditInformation" type="tns:AuditInformationType"/>
        <xs:element name="serviceProvider" type="tns:OrganizationNumberType" minOccurs="0"/>
        <xs:element name="issuerOrganizationNumber" type="tns:OrganizationNumberType"/>
      </xs:sequence>
    </xs:complexType>
  </xs:element>

  <!-- status -->
  <xs:element name="getConsignmentStatus">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="auditInformation" type="tns:AuditInformationType"/>
        <xs:element name="serviceProvider" type="tns:OrganizationNumberType" minOccurs="0"/>
        <xs:element name="consignmentId" type="tns:ConsignmentIdType"/>
      </xs:sequence>
    </xs:complexType>
  </xs:element>
  <xs:element name="getInvoiceStatus">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="auditInformation" type="tns:AuditInformationType"/>
        <xs:element name="serviceProvider" type="tns:OrganizationNumberType" minOccurs="0"/>
        <xs:element name="consignmentId" type="tns:ConsignmentIdType"/>
        <xs:element name="invoiceNumber" type="tns:InvoiceNumberType" minOccurs="0"/>
      </xs:sequence>
    </xs:complexType>
  </xs:element>
</xs:schema>
"""

#: Operations the simulator serves; the first four are on `EfakturaNetsSubmitterService`,
#: `getBlackList` is on `submitter-service` / the Combo API (configurable endpoint).
OPERATIONS = ("addInvoices", "getEfakturaIdentifiers", "getBlackList", "getConsignmentStatus",
              "getInvoiceStatus")


@lru_cache(maxsize=8)
def request_schema(namespace: str = NAMESPACE) -> etree.XMLSchema:
    """The compiled request schema for `namespace` (the namespace is configurable)."""
    doc = etree.fromstring(_XSD.format(ns=namespace).encode(),
                           etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))
    return etree.XMLSchema(doc)
