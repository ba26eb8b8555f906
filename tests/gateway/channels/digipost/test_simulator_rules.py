"""The simulator rejects what Digipost rejects: multipart layout, message structure, invoice fields, print."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from gateway.channels.base import ChannelError
from gateway.channels.digipost import schema
from gateway.channels.digipost.client import DigipostClient, DocumentPart, build_multipart
from gateway.channels.digipost.simulator import new_uuid

from .conftest import BROKER, FNR_IDENTIFIED, FNR_MAILBOX, a4_pdf

PDF = a4_pdf()
RETURN = schema.PrintRecipient("Firma AS", ("Postboks 1",), "0101", "Oslo")


@pytest.fixture
async def client(sim, sender_key, clock):
    c = DigipostClient(base_url=sim.base_url, broker_id=BROKER, private_key=sender_key, clock=clock,
                       digipost_public_key=None)  # takes Digipost's certificate from GET /
    yield c
    await c.close()


def invoice(**over) -> schema.InvoiceData:
    base = dict(due_date=dt.datetime(2026, 12, 20, tzinfo=dt.timezone(dt.timedelta(hours=1))),
                sum=Decimal("802.00"), creditor_account="86011117947", kid="0003434323213239")
    base.update(over)
    return schema.InvoiceData(**base)


def message(fnr=FNR_MAILBOX, *, inv=None, print_details=None, recipient=True, uuid=None, subject="Faktura 1",
            **over) -> schema.MessageSpec:
    return schema.MessageSpec(
        message_id=new_uuid(),
        recipient=schema.RecipientId("personal-identification-number", fnr) if recipient else None,
        print_details=print_details,
        primary=schema.DocumentSpec(uuid or new_uuid(), subject, invoice=inv), **over)


async def send(client, msg=None, *, xml=None, parts=None, content_type=None):
    msg = msg or message()
    xml = xml if xml is not None else schema.build_message(msg)
    parts = parts if parts is not None else [DocumentPart(msg.primary.uuid, "application/pdf", PDF)]
    ctype, body = build_multipart(xml, parts, "bnd-1")
    return await client.send_message(content_type or ctype, body)


async def rejected(client, **kw) -> ChannelError:
    with pytest.raises(ChannelError) as err:
        await send(client, **kw)
    return err.value


async def test_valid_message_is_delivered_and_response_verified_with_entrypoint_key(client, sim):
    result = await send(client, message(inv=invoice()))
    assert result.delivery.delivery_method == "DIGIPOST" and result.delivery.status == "DELIVERED"
    assert any(r.path == "/" for r in sim.requests)  # certificate fetched from the entrypoint


@pytest.mark.parametrize("inv, code, words", [
    (invoice(creditor_account="86011117948"), "VALIDATION_FAILED", "MOD11"),
    (invoice(creditor_account="8601111794"), "VALIDATION_FAILED", "11 digits"),
    (invoice(sum=Decimal("0")), "INVALID_MONETARY_AMOUNT", "> 0"),
    (invoice(sum=Decimal("10.005")), "INVALID_MONETARY_AMOUNT", "decimals"),
    (invoice(kid="1" * 26), "VALIDATION_FAILED", "25"),
    (invoice(kid="0003434323213231"), "VALIDATION_FAILED", "check digit"),
    (invoice(due_date=dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)), "VALIDATION_FAILED", "past"),
])
async def test_invoice_field_rules(client, inv, code, words):
    err = await rejected(client, msg=message(inv=inv))
    assert err.code == "invalid-data" and err.api_error.code == code and words in err.api_error.message


async def test_due_date_must_be_a_date_time(client):
    msg = message(inv=invoice())
    xml = schema.build_message(msg).replace(b"2026-12-20T00:00:00+01:00", b"2026-12-20")
    err = await rejected(client, msg=msg, xml=xml)
    assert err.api_error.code == "VALIDATION_FAILED" and "date-time" in err.api_error.message


@pytest.mark.parametrize("mutate, code", [
    (lambda x: x.replace(b"<subject>Faktura 1</subject>", b"<subject>" + b"x" * 256 + b"</subject>"),
     "SCHEMA_VALIDATION_ERROR"),
    (lambda x: x.replace(b"<subject>Faktura 1</subject>", b"<subject> </subject>"), "MISSING_SUBJECT"),
    (lambda x: x.replace(b"<subject>Faktura 1</subject><file-type>pdf</file-type>",
                         b"<file-type>pdf</file-type><subject>Faktura 1</subject>"), "SCHEMA_VALIDATION_ERROR"),
    (lambda x: x.replace(b"<authentication-level>PASSWORD", b"<authentication-level>NONE"), "SCHEMA_VALIDATION_ERROR"),
    (lambda x: x.replace(b"http://api.digipost.no/schema/v8", b"http://api.digipost.no/schema/v7"),
     "SCHEMA_VALIDATION_ERROR"),
    (lambda x: x.replace(b"</primary-document>", b"</primary-document><primary-document/>"), "SCHEMA_VALIDATION_ERROR"),
    (lambda x: x.replace(b"<message-id>", b"<message-id>x").replace(b"<recipient>", b"<recipient><digipost-address>a#1</digipost-address>"),
     "SCHEMA_VALIDATION_ERROR"),
])
async def test_message_structure_rules(client, mutate, code):
    msg = message()
    err = await rejected(client, msg=msg, xml=mutate(schema.build_message(msg)))
    assert err.code == "invalid-data" and err.api_error.code == code


async def test_uuid_must_be_lower_case_pattern(client):
    u = new_uuid().upper()
    err = await rejected(client, msg=message(uuid=u))
    assert err.api_error.code == "SCHEMA_VALIDATION_ERROR" and "uuid" in err.api_error.message


async def test_parts_must_match_documents(client):
    msg = message()
    err = await rejected(client, msg=msg, parts=[DocumentPart(new_uuid(), "application/pdf", PDF)])
    assert err.api_error.code == "DOCUMENTS_AND_FILES_MISMATCH"
    err = await rejected(client, msg=msg, parts=[])
    assert err.api_error.code == "DOCUMENTS_AND_FILES_MISMATCH"
    err = await rejected(client, msg=msg, parts=[DocumentPart(msg.primary.uuid, "application/pdf", b"hello")])
    assert err.api_error.code == "INVALID_PDF_CONTENT"


async def test_wrong_media_types(client):
    err = await rejected(client, content_type='multipart/mixed; boundary="bnd-1"')
    assert err.status == 415 and err.code == "invalid-data"


async def test_first_part_must_be_the_message(client):
    msg = message()
    xml = schema.build_message(msg)
    ctype, body = build_multipart(xml, [DocumentPart(msg.primary.uuid, "application/pdf", PDF)], "bnd-1")
    body = body.replace(b'filename="message"', b'filename="msg"', 1)
    with pytest.raises(ChannelError) as err:
        await client.send_message(ctype, body)
    assert err.value.api_error.code == "MISSING_BODYPART_CONTENT_DISPOSITION"


async def test_duplicate_message_and_document(client, sim):
    msg = message()
    assert (await send(client, msg)).delivery is not None
    dup = await send(client, msg)
    assert dup.duplicate and dup.delivery is None
    other = message(uuid=msg.primary.uuid)  # new message-id, reused document UUID
    dup2 = await send(client, other)
    assert dup2.duplicate and "DUPLICATE_DOCUMENT_ID" in dup2.detail
    assert len(sim.messages) == 1


async def test_print_only_and_print_rules(client, sim):
    pd = schema.PrintDetails(schema.PrintRecipient("Ola Nordmann", ("Vei 1",), "5003", "Bergen"), RETURN)
    result = await send(client, message(recipient=False, print_details=pd))
    assert result.delivery.delivery_method == "PRINT" and result.delivery.status == "DELIVERED_TO_PRINT"

    err = await rejected(client, msg=message(recipient=False))
    assert err.api_error.code == "MISSING_RECIPIENT"
    bad_zip = schema.PrintDetails(schema.PrintRecipient("Ola", ("Vei 1",), "50030", "Bergen"), RETURN)
    err = await rejected(client, msg=message(FNR_IDENTIFIED, print_details=bad_zip))
    assert err.api_error.code == "INVALID_RECIPIENT_PRINT_ADDRESS"
    bad_return = schema.PrintDetails(pd.recipient, schema.PrintRecipient("", ("x",), "0101", "Oslo"))
    err = await rejected(client, msg=message(FNR_IDENTIFIED, print_details=bad_return))
    assert err.api_error.code == "INVALID_RETURN_ADDRESS"
    msg = message(FNR_IDENTIFIED, print_details=pd)
    err = await rejected(client, msg=msg, parts=[DocumentPart(msg.primary.uuid, "application/pdf",
                                                               a4_pdf().replace(b"%PDF-1.3", b"%PDF-2.0", 1))])
    assert err.api_error.code == "INVALID_PDF_CONTENT" and "1.7" in err.api_error.message

    sim.senders[BROKER].print_approved = False
    err = await rejected(client, msg=message(FNR_IDENTIFIED, print_details=pd))
    assert err.code == "configuration" and err.api_error.code == "NOT_APPROVED_FOR_PRINT"


async def test_non_user_without_print_is_404(client):
    err = await rejected(client, msg=message(FNR_IDENTIFIED))
    assert err.status == 404 and err.code == "not-reachable" and err.api_error.code == "UNKNOWN_RECIPIENT"


async def test_print_if_unread_must_be_in_the_future(client, clock):
    pd = schema.PrintDetails(schema.PrintRecipient("Kari", ("Storgata 1",), "0155", "Oslo"), RETURN)
    err = await rejected(client, msg=message(print_if_unread_after=clock.now - dt.timedelta(hours=1),
                                             print_if_unread_details=pd))
    assert err.api_error.code == "VALIDATION_FAILED"


async def test_events_window_paging_and_sender_isolation(client, sim, clock):
    msg = message()
    await send(client, msg)
    uuid = msg.primary.uuid
    for minutes in range(5):
        sim.emit_event(uuid, "OPENED", at=clock.now + dt.timedelta(minutes=minutes))
    sim.register_sender("222222")
    sim.documents["foreign"] = type(sim.documents[uuid])(**{**sim.documents[uuid].__dict__, "uuid": "foreign",
                                                             "sender_id": "222222"})
    sim.emit_event("foreign", "OPENED", at=clock.now)
    start, end = clock.now - dt.timedelta(hours=1), clock.now + dt.timedelta(hours=1)
    page1 = await client.document_events(start, end, offset=0, max_results=3)
    page2 = await client.document_events(start, end, offset=3, max_results=3)
    assert len(page1) == 3 and len(page2) == 2 and {e.uuid for e in page1 + page2} == {uuid}
    assert len(await client.all_document_events(start, end, page_size=2)) == 5
    narrow = await client.document_events(clock.now + dt.timedelta(minutes=1), clock.now + dt.timedelta(minutes=3))
    assert len(narrow) == 2
    with pytest.raises(ChannelError) as err:
        await client.document_events(end, start)
    assert err.value.api_error.code == "INVALID_DATE_RANGE"


async def test_foreign_print_address_is_accepted(client):
    pd = schema.PrintDetails(schema.PrintRecipient("Sven Svensson", ("Storgatan 1",), "11122", "Stockholm", "SE"),
                             RETURN)
    msg = message(FNR_IDENTIFIED, print_details=pd)
    xml = schema.build_message(msg)
    assert b"<foreign-address><addressline1>Storgatan 1</addressline1><addressline2>11122 Stockholm" in xml
    assert b"<country-code>SE</country-code>" in xml
    result = await send(client, msg, xml=xml)
    assert result.delivery.delivery_method == "PRINT"


async def test_seeded_events_are_served(sim, sender_key, clock):
    from gateway.channels.digipost.simulator import DigipostSimulator

    ev = schema.DocumentEvent(new_uuid(), "SHREDDED", clock.now, clock.now)
    async with DigipostSimulator(clock=clock, events=[ev]) as seeded:
        seeded.register_sender(BROKER, sender_key.public_key())
        c = DigipostClient(base_url=seeded.base_url, broker_id=BROKER, private_key=sender_key, clock=clock)
        got = await c.document_events(clock.now - dt.timedelta(days=1), clock.now + dt.timedelta(days=1))
        assert got == [ev]
        await c.close()
