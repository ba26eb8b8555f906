"""Adapter pieces without the network: config, identifier choice, pure render, invoice data, event mapping."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.channels.base import ChannelError, PostalAddress, Reachability, Recipient
from gateway.channels.digipost import schema
from gateway.channels.digipost.adapter import (
    EVENT_STATES,
    DigipostAdapter,
    DigipostConfig,
    recipient_identifier,
)
from gateway.channels.digipost.simulator import key_pem, parse_multipart

from .conftest import BROKER, FNR_IDENTIFIED, RETURN_ADDRESS, Clock, delivery, recipient


@pytest.fixture
def adapter(sender_key):
    cfg = DigipostConfig.from_dict({"broker_id": 704412, "private_key_pem": key_pem(sender_key).decode(),
                                    "base_url": "http://127.0.0.1:9", "return_address": RETURN_ADDRESS,
                                    "print_fallback": True})
    return DigipostAdapter(cfg, clock=Clock())


def test_config_from_dict_checks_keys_and_modes(sender_key):
    with pytest.raises(ValueError, match="unknown"):
        DigipostConfig.from_dict({"broker_id": "1", "private_key_pem": "x", "colour": "red"})
    with pytest.raises(ValueError, match="broker_id"):
        DigipostConfig.from_dict({"private_key_pem": "x"})
    with pytest.raises(ValueError, match="signature mode"):
        DigipostConfig.from_dict({"broker_id": "1"})
    with pytest.raises(ValueError, match="bearer mode"):
        DigipostConfig.from_dict({"broker_id": "1", "auth_mode": "bearer"})
    with pytest.raises(ValueError, match="return_address"):
        DigipostConfig.from_dict({"broker_id": "1", "private_key_pem": "x", "print_fallback": True})
    cfg = DigipostConfig.from_dict({"broker_id": 1, "auth_mode": "bearer", "token_url": "https://t/oauth2/token",
                                    "client_id": "c"})
    assert cfg.broker_id == "1" and cfg.base_url == "https://api.digipost.no" and cfg.reachability_ttl_seconds > 0


def test_identifier_priority():
    full = Recipient(name="Per Hansen", fodselsnummer="15058545640", orgnr=None, phone="+4791234567",
                     address=PostalAddress(("Kirkegata 3", "Leil. 2"), "7010", "Trondheim"))
    assert recipient_identifier(full).kind == "personal-identification-number"
    org = dataclasses.replace(full, fodselsnummer=None, orgnr="987654325")
    assert recipient_identifier(org) == schema.RecipientId("organisation-number", "987654325")
    by_name = recipient_identifier(dataclasses.replace(full, fodselsnummer=None))
    assert by_name.kind == "name-and-address"
    assert by_name.value.addressline2 == "Leil. 2" and by_name.value.phone_number == "+4791234567"
    assert recipient_identifier(Recipient(name="X", email="x@y.no")) is None


def test_render_is_pure_and_carries_the_invoice(adapter, facts):
    rcpt = recipient("identified")
    reach = Reachability(True, "ok", "", "print:abc")
    one = adapter.render(delivery(facts, rcpt, reach, "dlv-42"))
    two = adapter.render(delivery(facts, rcpt, reach, "dlv-42"))
    other = adapter.render(delivery(facts, rcpt, reach, "dlv-43"))
    assert one.payload == two.payload and one.payload.message_id != other.payload.message_id
    assert one.channel == "digipost" and one.summary["print_fallback"] is True
    assert one.summary["amount"] == "802.00" and one.summary["account"] == "86011117947"
    msg = schema.parse_message(parse_multipart(one.payload.content_type, one.payload.body)[0].body)
    assert msg.recipient.value == FNR_IDENTIFIED and msg.print_details.recipient.city == "Bergen"
    assert msg.invoice_reference == facts[0].number


def test_render_uses_the_found_digipost_address_for_name_lookups(adapter, facts):
    rendered = adapter.render(delivery(facts, recipient("name"), Reachability.ok(reference="per.hansen#77")))
    msg = schema.parse_message(parse_multipart(rendered.payload.content_type, rendered.payload.body)[0].body)
    assert msg.recipient == schema.RecipientId("digipost-address", "per.hansen#77")


def test_invoice_data_only_for_payable_nok_invoices(adapter, facts):
    inv, _ = facts
    reach = Reachability.ok(reference="kari#1")
    assert adapter.invoice_data(delivery(facts, recipient("mailbox"), reach)).sum == Decimal("802.00")
    for changed in (dataclasses.replace(inv, currency="EUR"), dataclasses.replace(inv, kind="credit_note"),
                    dataclasses.replace(inv, due_date=None), dataclasses.replace(inv, payable_amount=Decimal("0"))):
        assert adapter.invoice_data(delivery(facts, recipient("mailbox"), reach, invoice=changed)) is None


def test_render_refuses_missing_pdf_and_unprintable_recipient(adapter, facts, sender_key):
    with pytest.raises(ChannelError) as err:
        adapter.render(delivery(facts, recipient("mailbox"), Reachability.ok(), pdf=b"<html>"))
    assert err.value.code == "invalid-data"
    no_print = DigipostAdapter(DigipostConfig.from_dict({"broker_id": BROKER, "private_key_pem": key_pem(sender_key).decode()}))
    with pytest.raises(ChannelError) as err:
        no_print.render(delivery(facts, recipient("identified"), Reachability(True, "ok", "", "print:x")))
    assert err.value.code == "not-reachable"


def test_event_mapping_covers_every_v8_event_type():
    assert set(EVENT_STATES) == set(schema.EVENT_TYPES)
    assert EVENT_STATES["OPENED"] == "opened" and EVENT_STATES["POSTMARKED"] == "delivered"
    assert EVENT_STATES["PRINT_FAILED"] == "failed"


async def test_real_rendered_pdf_passes_print_preflight(sim, sender_key, clock, facts, shared_dir: Path):
    from gateway.render import render_pdf

    from .conftest import signature_config

    pdf = render_pdf(facts[1], print_ready=True)
    adapter = DigipostAdapter(signature_config(sim, sender_key, print_fallback=True), clock=clock)
    rcpt = recipient("identified")
    reach = await adapter.reachability(rcpt)
    result = await adapter.submit(adapter.render(delivery(facts, rcpt, reach, pdf=pdf)))
    assert result.state == "accepted" and sim.documents[result.channel_ref].channel == "PRINT"
    await adapter.close()


async def test_resource_paths_come_from_the_entrypoint_links(sim, sender_key, clock, facts):
    from .conftest import signature_config

    cfg = signature_config(sim, sender_key, identification_path="/nowhere", messages_path="/nowhere",
                           events_path="/nowhere", digipost_certificate_pem=None)
    adapter = DigipostAdapter(cfg, clock=clock)  # also takes Digipost's certificate from GET /
    reach = await adapter.reachability(recipient("mailbox"))
    result = await adapter.submit(adapter.render(delivery(facts, recipient("mailbox"), reach)))
    assert result.state == "delivered" and await adapter.track(result.channel_ref) == []
    assert not any(r.path == "/nowhere" for r in sim.requests)
    assert [r.path for r in sim.requests].count("/") == 1
    await adapter.close()


@pytest.mark.parametrize("links", [True, False])
async def test_api_under_a_path_prefix_signs_the_full_path(sender_key, clock, facts, links):
    from gateway.channels.digipost.simulator import DigipostSimulator

    from .conftest import seed, signature_config

    async with DigipostSimulator(clock=clock, prefix="/api") as prefixed:
        prefixed.register_sender(BROKER, sender_key.public_key())
        seed(prefixed)
        cfg = signature_config(prefixed, sender_key, base_url=prefixed.base_url + "/api", use_entrypoint_links=links)
        adapter = DigipostAdapter(cfg, clock=clock)
        reach = await adapter.reachability(recipient("mailbox"))
        result = await adapter.submit(adapter.render(delivery(facts, recipient("mailbox"), reach)))
        assert result.state == "delivered"
        assert {r.path for r in prefixed.requests} <= {"/api/", "/api/identification", "/api/messages"}
        await adapter.close()
