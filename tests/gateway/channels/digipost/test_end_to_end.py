"""End-to-end: DigipostAdapter against the simulator, in both auth modes (signature, bearer over mTLS)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest

from gateway.channels.base import ChannelError
from gateway.kid import make_kid
from gateway.channels.digipost import schema
from gateway.channels.digipost.simulator import parse_multipart

from .conftest import FNR_IDENTIFIED, FNR_MAILBOX, a4_pdf, delivery, recipient


async def reach_and_render(adapter, facts, kind, delivery_id="dlv-0001", **kw):
    rcpt = recipient(kind)
    reach = await adapter.reachability(rcpt)
    return reach, adapter.render(delivery(facts, rcpt, reach, delivery_id, **kw))


async def test_mailbox_delivery_with_invoice_data(env, facts, clock):
    sim, make = env
    adapter = make()
    reach, rendered = await reach_and_render(adapter, facts, "mailbox")
    assert reach.reachable and reach.reference == "kari.nordmann#1A2B"
    result = await adapter.submit(rendered)
    assert result.state == "delivered"
    assert result.channel_ref == rendered.payload.document_uuid

    # what Digipost received: message part first, then the PDF named by its UUID
    post = next(r for r in sim.requests if r.path == "/messages")
    parts = parse_multipart(post.headers["Content-Type"], post.body)
    assert parts[0].filename == "message" and parts[0].headers["content-type"].startswith(schema.MEDIA_TYPE)
    assert parts[1].filename == result.channel_ref and parts[1].body.startswith(b"%PDF-")
    msg = sim.messages[rendered.payload.message_id]
    assert msg.recipient.kind == "personal-identification-number" and msg.recipient.value == FNR_MAILBOX
    inv = msg.primary.invoice
    assert inv.sum == Decimal("802.00") and inv.creditor_account == "86011117947"
    assert inv.kid == make_kid("000343432321323", "mod10")
    assert inv.due_date.date() == dt.date(2026, 12, 20) and inv.due_date.utcoffset() == dt.timedelta(hours=1)
    assert msg.print_details is None
    doc = sim.documents[result.channel_ref]
    assert doc.channel == "DIGIPOST" and doc.subject.startswith("Faktura")
    await adapter.close()


async def test_events_arrive_later_opened(env, facts, clock):
    sim, make = env
    adapter = make()
    _, rendered = await reach_and_render(adapter, facts, "mailbox")
    ref = (await adapter.submit(rendered)).channel_ref
    assert await adapter.track(ref) == []
    clock.advance(hours=3)
    sim.open_document(ref)
    events = await adapter.track(ref)
    assert [e.state for e in events] == ["opened"]
    assert events[0].at == clock.now


async def test_submit_is_idempotent_on_delivery_id(env, facts):
    sim, make = env
    adapter = make()
    _, rendered = await reach_and_render(adapter, facts, "mailbox")
    first = await adapter.submit(rendered)
    reach = await adapter.reachability(recipient("mailbox"))
    again = adapter.render(delivery(facts, recipient("mailbox"), reach))  # a retry renders again
    assert again.payload.body == rendered.payload.body  # pure, deterministic render
    second = await adapter.submit(again)
    assert second.state == "accepted" and second.channel_ref == first.channel_ref
    assert "already submitted" in second.detail
    assert len(sim.messages) == 1
    assert [r.status for r in sim.requests if r.path == "/messages"] == [201, 409]


async def test_reachability_results_and_cache(env):
    sim, make = env
    adapter = make()
    hits = lambda: sum(1 for r in sim.requests if r.path == "/identification")  # noqa: E731
    first = await adapter.reachability(recipient("mailbox"))
    second = await adapter.reachability(recipient("mailbox"))
    assert first.reachable and not first.cached and second.cached and hits() == 1

    no_print = await adapter.reachability(recipient("identified"))
    assert not no_print.reachable and no_print.reason == "no-mailbox"
    unknown = await adapter.reachability(recipient("unknown"))
    assert not unknown.reachable and unknown.reason == "not-registered"
    by_name = await adapter.reachability(recipient("name"))
    assert by_name.reachable and by_name.reference == "per.hansen#77"
    ambiguous = await adapter.reachability(recipient("ambiguous"))
    assert not ambiguous.reachable and ambiguous.reason == "ambiguous"
    bad = dataclasses.replace(recipient("mailbox"), fodselsnummer=FNR_MAILBOX[:-1] + str((int(FNR_MAILBOX[-1]) + 1) % 10))
    invalid = await adapter.reachability(bad)
    assert not invalid.reachable and invalid.reason == "invalid-identifier"
    org = await adapter.reachability(dataclasses.replace(recipient("unknown"), fodselsnummer=None, orgnr="987654325"))
    assert org.reachable
    nothing = await adapter.reachability(dataclasses.replace(recipient("unknown"), fodselsnummer=None, address=None))
    assert nothing.reason == "no-identifier"


async def test_print_fallback_then_postmarked(env, facts, clock):
    sim, make = env
    adapter = make(print_fallback=True)
    reach, rendered = await reach_and_render(adapter, facts, "identified")
    assert reach.reachable and reach.reference.startswith("print:")
    result = await adapter.submit(rendered)
    assert result.state == "accepted" and "print" in result.detail
    msg = sim.messages[rendered.payload.message_id]
    assert msg.recipient.value == FNR_IDENTIFIED
    assert msg.print_details.recipient.name == "Ola Uten Postkasse"
    assert msg.print_details.recipient.zip_code == "5003"
    assert msg.print_details.return_address.name == "Salescompany ltd."
    assert sim.documents[result.channel_ref].channel == "PRINT"
    assert await adapter.track(result.channel_ref) == []  # printed once per working day
    clock.advance(days=1)
    events = await adapter.track(result.channel_ref)
    assert [e.state for e in events] == ["delivered"] and "POSTMARKED" in events[0].detail


async def test_print_failed_event_fails_the_delivery(env, facts, clock):
    sim, make = env
    adapter = make(print_fallback=True)
    _, rendered = await reach_and_render(adapter, facts, "identified")
    ref = (await adapter.submit(rendered)).channel_ref
    clock.advance(hours=2)
    sim.fail_print(ref, "ADDRESS_UNREADABLE")
    clock.advance(days=3)
    events = await adapter.track(ref)
    assert [e.state for e in events] == ["failed"] and "ADDRESS_UNREADABLE" in events[0].detail


async def test_print_if_unread_turns_into_paper(env, facts, clock):
    sim, make = env
    adapter = make(print_if_unread_days=14)
    _, rendered = await reach_and_render(adapter, facts, "mailbox")
    ref = (await adapter.submit(rendered)).channel_ref
    msg = sim.messages[rendered.payload.message_id]
    assert msg.print_if_unread_after == clock.now + dt.timedelta(days=14)
    assert msg.print_if_unread_details.recipient.city == "Oslo" and msg.print_details is None
    clock.advance(days=13)
    assert await adapter.track(ref) == []
    clock.advance(days=2)  # unread after 14 days: Digipost prints it
    assert await adapter.track(ref) == []
    clock.advance(days=3)
    assert [e.state for e in await adapter.track(ref)] == ["delivered"]


async def test_opened_before_deadline_cancels_print_if_unread(env, facts, clock):
    sim, make = env
    adapter = make(print_if_unread_days=14)
    _, rendered = await reach_and_render(adapter, facts, "mailbox")
    ref = (await adapter.submit(rendered)).channel_ref
    clock.advance(days=2)
    sim.open_document(ref)
    clock.advance(days=20)
    assert [e.state for e in await adapter.track(ref)] == ["opened"]


async def test_not_reachable_at_submit_is_a_fallthrough(env, facts):
    sim, make = env
    adapter = make()
    rcpt = recipient("identified")
    reach = await adapter.reachability(recipient("mailbox"))  # stale decision: the person has no mailbox
    rendered = adapter.render(delivery(facts, rcpt, reach))
    with pytest.raises(ChannelError) as err:
        await adapter.submit(rendered)
    assert err.value.code == "not-reachable" and not err.value.transient


async def test_invalid_invoice_data_is_rejected(env, facts):
    sim, make = env
    adapter = make()
    inv, _raw = facts
    bad_kid = dataclasses.replace(inv, payment_means=tuple(
        dataclasses.replace(m, kid="0003434323213231") for m in inv.payment_means))  # wrong check digit
    rcpt = recipient("mailbox")
    reach = await adapter.reachability(rcpt)
    with pytest.raises(ChannelError) as err:
        await adapter.submit(adapter.render(delivery(facts, rcpt, reach, invoice=bad_kid)))
    assert err.value.code == "invalid-data" and not err.value.transient
    assert "VALIDATION_FAILED" in err.value.message and "kid" in err.value.message
    assert sim.messages == {}


async def test_print_rejects_non_a4_pdf(env, facts):
    sim, make = env
    adapter = make(print_fallback=True)
    rcpt = recipient("identified")
    reach = await adapter.reachability(rcpt)
    rendered = adapter.render(delivery(facts, rcpt, reach, pdf=a4_pdf(size=(612, 792))))  # US Letter
    with pytest.raises(ChannelError) as err:
        await adapter.submit(rendered)
    assert err.value.code == "invalid-data" and "not A4" in err.value.message


async def test_timeout_is_transient(env, facts):
    sim, make = env
    adapter = make(timeout_seconds=0.3)
    sim.delay = 1.0
    with pytest.raises(ChannelError) as err:
        await adapter.reachability(recipient("mailbox"))
    assert err.value.code == "timeout" and err.value.transient


@pytest.mark.parametrize("tamper", ["signature", "body", "unsigned", "date"])
async def test_untrusted_response_is_rejected(env, tamper):
    sim, make = env
    adapter = make()
    sim.tamper = tamper
    with pytest.raises(ChannelError) as err:
        await adapter.reachability(recipient("mailbox"))
    assert err.value.code == "response-not-trusted"


async def test_server_error_is_transient(env):
    sim, make = env
    adapter = make()
    sim.fail_next.append((503, schema.ApiError("API_UNAVAILABLE", "maintenance", "SERVER")))
    with pytest.raises(ChannelError) as err:
        await adapter.reachability(recipient("mailbox"))
    assert err.value.code == "unavailable" and err.value.transient
    assert (await adapter.reachability(recipient("mailbox"))).reachable
