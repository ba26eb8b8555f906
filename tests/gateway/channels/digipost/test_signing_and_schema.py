"""Pure parts: canonical strings (byte-exact to Digipost's docs), multipart layout, v8 XML shapes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from lxml import etree

from gateway.channels.digipost import schema, signing
from gateway.channels.digipost.client import DigipostClient, DocumentPart, boundary_for, build_multipart
from gateway.channels.digipost.simulator import new_rsa_key, parse_multipart

DOC_EXAMPLE = (
    "POST\n"
    "/messages\n"
    "date: Wed, 29 Jun 2011 14:58:11 GMT\n"
    "x-content-sha256: q1MKE+RZFJgrefm34/uplM/R8/si9xzqGvvwK0YMbR0=\n"
    "x-digipost-userid: 9999\n"
    "parameter1=58&parameter2=test\n"
)


def test_canonical_request_matches_the_documented_example():
    headers = {"X-Digipost-UserId": "9999", "Date": "Wed, 29 Jun 2011 14:58:11 GMT",
               "X-Content-SHA256": "q1MKE+RZFJgrefm34/uplM/R8/si9xzqGvvwK0YMbR0=",
               "Content-Type": "application/vnd.digipost-v8+xml", "Accept": "x"}
    assert signing.canonical_request("post", "/Messages", headers, "Parameter1=58&parameter2=TEST") == DOC_EXAMPLE


def test_canonical_request_without_body_or_query_keeps_the_empty_line():
    headers = {"date": "Wed, 29 Jun 2011 14:58:11 GMT", "X-Digipost-UserId": "9999"}
    assert signing.canonical_request("GET", "/9999/inbox", headers) == (
        "GET\n/9999/inbox\ndate: Wed, 29 Jun 2011 14:58:11 GMT\nx-digipost-userid: 9999\n\n")


def test_canonical_response():
    headers = {"Date": "Wed, 29 Jun 2011 14:58:11 GMT", "X-Content-SHA256": "abc=", "Content-Type": "x",
               "X-Digipost-Signature": "ignored"}
    assert signing.canonical_response(201, "/Messages?x=1", headers) == (
        "201\n/messages\ndate: Wed, 29 Jun 2011 14:58:11 GMT\nx-content-sha256: abc=\n")


def test_sign_verify_and_hash():
    key = new_rsa_key()
    sig = signing.sign(key, DOC_EXAMPLE)
    assert signing.verify(key.public_key(), DOC_EXAMPLE, sig)
    assert not signing.verify(key.public_key(), DOC_EXAMPLE.replace("9999", "9998"), sig)
    assert not signing.verify(key.public_key(), DOC_EXAMPLE, "not base64!")
    assert signing.content_sha256(b"") == "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    assert signing.http_date(dt.datetime(2011, 6, 29, 16, 58, 11, tzinfo=dt.timezone(dt.timedelta(hours=2)))) == \
        "Wed, 29 Jun 2011 14:58:11 GMT"
    now = dt.datetime(2011, 6, 29, 14, 58, 11, tzinfo=dt.timezone.utc)
    assert signing.date_within_window("Wed, 29 Jun 2011 15:03:11 GMT", now)
    assert not signing.date_within_window("Wed, 29 Jun 2011 15:03:12 GMT", now)
    assert not signing.date_within_window("yesterday", now)


def test_client_headers_are_signed_over_the_canonical_string():
    key = new_rsa_key()
    client = DigipostClient(base_url="http://x", broker_id="704412", private_key=key)
    now = dt.datetime(2026, 11, 30, 10, 0, tzinfo=dt.timezone.utc)
    headers = client.request_headers("GET", "/documents/events", "from=a&to=b", None, None, now)
    assert signing.H_CONTENT_SHA256 not in headers and headers["Date"] == "Mon, 30 Nov 2026 10:00:00 GMT"
    canonical = ("GET\n/documents/events\ndate: Mon, 30 Nov 2026 10:00:00 GMT\n"
                 "x-digipost-userid: 704412\nfrom=a&to=b\n")
    assert signing.verify(key.public_key(), canonical, headers[signing.H_SIGNATURE])
    assert headers["Accept"] == "application/vnd.digipost-v8+xml"


def test_multipart_layout():
    ctype, body = build_multipart(b"<message/>", [DocumentPart("11111111-2222-3333-4444-555555555555",
                                                               "application/pdf", b"%PDF-1.4 x")], "b0")
    assert ctype == 'multipart/vnd.digipost-v8+xml; boundary="b0"'
    assert body == (
        b"--b0\r\nContent-Type: application/vnd.digipost-v8+xml; charset=UTF-8\r\n"
        b'Content-Disposition: attachment; filename="message"\r\n\r\n<message/>\r\n'
        b"--b0\r\nContent-Type: application/pdf\r\n"
        b'Content-Disposition: attachment; filename="11111111-2222-3333-4444-555555555555"\r\n\r\n'
        b"%PDF-1.4 x\r\n--b0--\r\n")
    parts = parse_multipart(ctype, body)
    assert [p.filename for p in parts] == ["message", "11111111-2222-3333-4444-555555555555"]
    assert parts[1].body == b"%PDF-1.4 x"
    assert boundary_for("d1") == boundary_for("d1") != boundary_for("d2")


def _names(el):
    return [etree.QName(c).localname for c in el if isinstance(c.tag, str)]


def test_message_xml_follows_the_v8_schema_order():
    pd = schema.PrintDetails(schema.PrintRecipient("Ola", ("Vei 1",), "5003", "Bergen"),
                             schema.PrintRecipient("Firma AS", ("Postboks 1",), "0101", "Oslo"))
    inv = schema.InvoiceData(dt.datetime(2026, 12, 20, tzinfo=dt.timezone(dt.timedelta(hours=1))),
                             Decimal("802.00"), "86011117947", "0003434323213232")
    msg = schema.MessageSpec(
        message_id="m-1", recipient=schema.RecipientId("personal-identification-number", "01018512345"),
        print_details=pd, invoice_reference="INV-1", sender_id="123",
        primary=schema.DocumentSpec("6d99008e-2672-4b55-9b09-996b09a06e47", "Faktura 1", invoice=inv),
        print_if_unread_after=dt.datetime(2026, 12, 14, tzinfo=dt.timezone.utc), print_if_unread_details=pd)
    root = etree.fromstring(schema.build_message(msg))
    assert root.tag == "{http://api.digipost.no/schema/v8}message"
    assert _names(root) == ["message-id", "sender-id", "recipient", "invoice-reference", "primary-document",
                            "print-if-unread"]
    assert _names(root.find(schema.q("recipient"))) == ["personal-identification-number", "print-details"]
    doc = root.find(schema.q("primary-document"))
    assert _names(doc) == ["uuid", "subject", "file-type", "authentication-level", "sensitivity-level",
                           "data-type"]
    invoice = doc.find(schema.q("data-type"))[0]
    assert invoice.tag == "{http://api.digipost.no/schema/datatypes}invoice"
    assert _names(invoice) == ["due-date", "sum", "creditor-account", "kid"]
    assert [c.text for c in invoice] == ["2026-12-20T00:00:00+01:00", "802.00", "86011117947", "0003434323213232"]
    pdx = root.find(schema.q("recipient")).find(schema.q("print-details"))
    assert _names(pdx) == ["recipient", "return-address", "color", "nondeliverable-handling"]
    assert _names(pdx.find(schema.q("recipient"))) == ["name", "norwegian-address"]
    assert _names(pdx.find(schema.q("recipient"))[1]) == ["addressline1", "zip-code", "city"]
    assert schema.parse_message(schema.build_message(msg)) == msg


def test_identification_round_trips():
    rid = schema.RecipientId("name-and-address", schema.NameAndAddress(
        "Per Hansen", "Kirkegata 3", "7010", "Trondheim", phone_number="+4791234567", email_address="p@x.no",
        birth_date=dt.date(1985, 5, 15)))
    xml = schema.build_identification(rid)
    assert _names(etree.fromstring(xml)[0]) == ["fullname", "addressline1", "postalcode", "city", "birth-date",
                                                "phone-number", "email-address"]
    assert schema.parse_identification(xml) == rid
    for res in (schema.IdentificationResult("DIGIPOST", digipost_address="per#1"),
                schema.IdentificationResult("IDENTIFIED", person_alias="abc"),
                schema.IdentificationResult("UNIDENTIFIED", reason="MULTIPLE_MATCHES"),
                schema.IdentificationResult("INVALID", reason="INVALID_PERSONAL_IDENTIFICATION_NUMBER")):
        assert schema.parse_identification_result(schema.build_identification_result(res)) == res


def test_document_events_with_typed_metadata():
    at = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.timezone.utc)
    events = [schema.DocumentEvent("6d99008e-2672-4b55-9b09-996b09a06e47", "POSTMARKED", at, at,
                                   "postmarked-metadata", {"postmarked-date": "2026-12-01T09:00:00+00:00"})]
    xml = schema.build_document_events(events)
    assert b'xsi:type="postmarked-metadata"' in xml
    assert schema.parse_document_events(xml) == events


def test_entrypoint_links_and_no_dtd():
    xml = schema.build_entrypoint(schema.EntryPoint("PEM", {"create_message": "https://h/messages"}), "https://h")
    ep = schema.parse_entrypoint(xml)
    assert ep.certificate == "PEM" and ep.links == {"create_message": "https://h/messages"}
    evil = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><error>&e;</error>'
    assert schema.parse_error(evil) is None
