"""End to end against the simulator: reachability, render, submit, track, and every failure mode."""

from __future__ import annotations

import dataclasses
import datetime as dt

import aiohttp
import pytest

from gateway.channels.base import ChannelError, PostalAddress, Reachability, Recipient
from gateway.channels.efaktura.adapter import EfakturaAdapter, EfakturaConfig

from .conftest import (ACCOUNT, ISSUER, KARI, KARI_FNR, NILS_FNR, PASSWORD, PER_FNR, UNKNOWN_FNR, invoice,
                       request)


async def test_success_lookup_submit_then_delivered_on_a_later_poll(sim, adapter):
    reach = await adapter.reachability(KARI)
    assert reach.reachable and reach.reason == "ok" and reach.reference == "EF-KARI-0001"
    rendered = adapter.render(request(reach))
    assert rendered.channel == "efaktura"
    assert rendered.summary["efaktura_identifier"] == "EF-KARI-0001"
    assert rendered.summary["amount"] == "1234.50" and rendered.summary["account"] == ACCOUNT
    result = await adapter.submit(rendered)
    assert result.state == "accepted" and result.channel_ref == "dlv-0001"

    stored = sim.consignment("dlv-0001")
    [inv] = stored.invoices
    assert (inv.invoice_number, inv.recipient, inv.kid, str(inv.amount), inv.account, inv.issuer) == \
        ("F-2026-0001", "EF-KARI-0001", rendered.summary["kid"], "1234.50", ACCOUNT, ISSUER)
    assert inv.pdf.startswith(b"%PDF-")

    first = await adapter.track(result.channel_ref)  # poll 1: still RECEIVED
    assert [e.state for e in first] == ["accepted"]
    second = await adapter.track(result.channel_ref)  # poll 2: processed into the banks
    assert [e.state for e in second] == ["delivered"]
    assert "PROCESSED" in second[0].detail
    ops = [r["operation"] for r in sim.requests]
    assert ops == ["getEfakturaIdentifiers", "getBlackList", "addInvoices", "getInvoiceStatus", "getInvoiceStatus"]
    assert all(r["headers"]["SOAPAction"].strip('"').endswith(r["operation"]) for r in sim.requests)


async def test_lookup_by_name_and_address_with_ambiguity_and_narrowing(sim, adapter):
    by_name = Recipient(name="Kari Anne Nordmann", address=PostalAddress(("Storgata 1",), "0155", "Oslo"))
    reach = await adapter.reachability(by_name)
    assert reach.reachable and reach.reference == "EF-KARI-0001"

    ola = Recipient(name="Ola Nordmann", address=PostalAddress(("Fjordveien 2",), "5003", "Bergen"))
    ambiguous = await adapter.reachability(ola)
    assert not ambiguous.reachable and ambiguous.reason == "ambiguous"
    narrowed = await adapter.reachability(dataclasses.replace(ola, email="ola.junior@example.no"))
    assert narrowed.reachable and narrowed.reference == "EF-OLA-0002"
    by_birth = await adapter.reachability(dataclasses.replace(ola, birth_date=dt.date(1970, 1, 2)))
    assert by_birth.reachable and by_birth.reference == "EF-OLA-0001"
    sent = sim.operations("getEfakturaIdentifiers")[-1]["body"]
    assert b"<ef:dateOfBirth>1970-01-02</ef:dateOfBirth>" in sent and b"socialSecurityNumber" not in sent


async def test_not_reachable_cases(sim, adapter):
    unknown = await adapter.reachability(Recipient(name="Ukjent Person", fodselsnummer=UNKNOWN_FNR))
    assert (unknown.reachable, unknown.reason) == (False, "not-registered")
    no_consent = await adapter.reachability(Recipient(fodselsnummer=NILS_FNR))
    assert (no_consent.reachable, no_consent.reason) == (False, "not-registered")
    org = await adapter.reachability(Recipient(name="Firma AS", orgnr="923609016"))
    assert org.reason == "not-consumer"
    too_little = await adapter.reachability(Recipient(name="Kari"))
    assert too_little.reason == "insufficient-data"
    bad_fnr = await adapter.reachability(Recipient(fodselsnummer="01010112345"))
    assert bad_fnr.reason == "invalid-fnr"
    # Only the two valid lookups reached the service.
    assert len(sim.operations("getEfakturaIdentifiers")) == 2


async def test_blocked_issuer_is_not_reachable(sim, adapter):
    reach = await adapter.reachability(Recipient(fodselsnummer=PER_FNR))
    assert (reach.reachable, reach.reason) == (False, "blocked-issuer")
    # The block is per issuer: another issuer's adapter reaches Per.
    other = EfakturaAdapter(EfakturaConfig.from_dict({"issuer_orgnr": "999999999", "url": sim.url,
                                                      "username": "other", "password": "pw"}))
    sim.add_user("other", "pw", issuers={"999999999"})
    try:
        assert (await other.reachability(Recipient(fodselsnummer=PER_FNR))).reachable
    finally:
        await other.close()


async def test_block_after_submit_arrives_later_as_failed(sim, adapter):
    reach = await adapter.reachability(KARI)
    result = await adapter.submit(adapter.render(request(reach)))
    sim.block(ISSUER, "EF-KARI-0001")  # the consumer reserves before MPS processed the consignment
    assert [e.state for e in await adapter.track(result.channel_ref)] == ["accepted"]
    events = await adapter.track(result.channel_ref)
    assert [e.state for e in events] == ["failed"]
    assert "BLOCKED_BY_CONSUMER" in events[0].detail
    assert sim.consignment(result.channel_ref).status == "REJECTED"


async def test_withdrawn_consent_arrives_later_as_failed(sim, adapter):
    reach = await adapter.reachability(KARI)
    result = await adapter.submit(adapter.render(request(reach)))
    sim.withdraw_consent("EF-KARI-0001")
    sim.process(result.channel_ref)
    [event] = await adapter.track(result.channel_ref)
    assert event.state == "failed" and "NO_EFAKTURA_AGREEMENT" in event.detail


async def test_status_forced_through_the_control_endpoint(sim, adapter):
    reach = await adapter.reachability(KARI)
    result = await adapter.submit(adapter.render(request(reach)))
    async with aiohttp.ClientSession() as http:
        url = f"{sim.base_url}/_control/consignments/{result.channel_ref}/invoices/F-2026-0001/status"
        async with http.post(url, json={"status": "REJECTED", "errorCode": "X1", "errorMessage": "bank said no"}) as r:
            assert r.status == 200
        async with http.get(f"{sim.base_url}/_control/requests") as r:
            assert [x["operation"] for x in await r.json()][-1] == "addInvoices"
    [event] = await adapter.track(result.channel_ref)
    assert event.state == "failed" and "X1 bank said no" in event.detail


async def test_auth_refused_wrong_password(sim, config_dict):
    a = EfakturaAdapter(EfakturaConfig.from_dict({**config_dict, "password": "wrong"}))
    try:
        with pytest.raises(ChannelError) as err:
            await a.reachability(KARI)
        assert err.value.code == "auth-refused" and not err.value.transient
        with pytest.raises(ChannelError) as err:
            await a.submit(a.render(request(Reachability.ok(reference="EF-KARI-0001"))))
        assert err.value.code == "auth-refused"
    finally:
        await a.close()
    assert sim.consignments == {}
    assert all(r["fault"][0] == "wsse:FailedAuthentication" for r in sim.requests)


async def test_auth_refused_without_credentials(sim, config_dict):
    a = EfakturaAdapter(EfakturaConfig.from_dict({**config_dict, "username": None, "password": None}))
    try:
        with pytest.raises(ChannelError) as err:
            await a.reachability(KARI)
        assert err.value.code == "auth-refused"
        assert sim.requests[-1]["fault"][0] == "wsse:InvalidSecurity"
    finally:
        await a.close()


async def test_password_digest_accepted(sim, config_dict):
    a = EfakturaAdapter(EfakturaConfig.from_dict({**config_dict, "password_digest": True}))
    try:
        assert (await a.reachability(KARI)).reachable
        assert b"#PasswordDigest" in sim.requests[-1]["body"]
        assert PASSWORD.encode() not in sim.requests[-1]["body"]
    finally:
        await a.close()


async def test_invalid_data_rejected_locally_before_sending(sim, adapter):
    reach = Reachability.ok(reference="EF-KARI-0001")
    bad_kid = invoice(kid="10020031")
    with pytest.raises(ChannelError) as err:
        adapter.render(request(reach, facts=bad_kid))
    assert err.value.code == "invalid-data" and "KID" in err.value.message
    with pytest.raises(ChannelError) as err:
        adapter.render(request(reach, facts=invoice(account="15038000002")))
    assert "account" in err.value.message
    with pytest.raises(ChannelError) as err:
        adapter.render(request(reach, facts=invoice(kind="credit_note")))
    assert err.value.code == "unsupported-document"
    with pytest.raises(ChannelError) as err:
        adapter.render(request(reach, facts=invoice(currency="EUR")))
    assert "NOK" in err.value.message
    with pytest.raises(ChannelError) as err:
        adapter.render(request(Reachability.ok(), recipient=Recipient(name="X Y")))
    assert err.value.code == "not-reachable"
    other_seller = dataclasses.replace(request(reach), issuer_orgnr="923609016")
    with pytest.raises(ChannelError) as err:  # looked up and checked for blocks under the agreement's issuer
        adapter.render(other_seller)
    assert err.value.code == "invalid-data" and "is not the eFaktura issuer" in err.value.message
    assert sim.requests == []


async def test_invalid_data_rejected_by_the_service(sim, config_dict):
    """Rules the adapter cannot know (registered accounts, past due dates) come back as validationFault."""
    a = EfakturaAdapter(EfakturaConfig.from_dict({**config_dict, "kid_algorithm": None}))
    try:
        reach = Reachability.ok(reference="EF-KARI-0001")
        other_account = "12345678903"  # valid MOD11 but not registered for the issuer
        with pytest.raises(ChannelError) as err:
            await a.submit(a.render(request(reach, facts=invoice(account=other_account))))
        assert err.value.code == "invalid-data" and not err.value.transient
        assert err.value.error_codes == ("ACCOUNT_NOT_REGISTERED",)
        past = invoice(due=dt.date.today() - dt.timedelta(days=3))
        with pytest.raises(ChannelError) as err:
            await a.submit(a.render(request(reach, delivery_id="dlv-past", facts=past)))
        assert "INVALID_DUE_DATE" in err.value.error_codes
        from gateway.kid import make_kid
        mod11 = invoice(kid=make_kid("10020030", "mod11"))  # issuer's agreement is MOD10
        with pytest.raises(ChannelError) as err:
            await a.submit(a.render(request(reach, delivery_id="dlv-mod11", facts=mod11)))
        assert err.value.error_codes == ("INVALID_KID",)
    finally:
        await a.close()
    assert sim.consignments == {}


async def test_timeout_is_transient(sim, config_dict):
    a = EfakturaAdapter(EfakturaConfig.from_dict({**config_dict, "timeout_seconds": 0.2}))
    sim.delay = 0.6
    try:
        with pytest.raises(ChannelError) as err:
            await a.reachability(KARI)
        assert err.value.code == "timeout" and err.value.transient
    finally:
        await a.close()


async def test_server_errors_are_transient(sim, adapter):
    sim.fail_next = [503]
    with pytest.raises(ChannelError) as err:
        await adapter.reachability(KARI)
    assert err.value.code == "server-error" and err.value.transient
    assert (await adapter.reachability(KARI)).reachable  # next attempt goes through


async def test_resubmit_is_idempotent(sim, adapter):
    reach = await adapter.reachability(KARI)
    rendered = adapter.render(request(reach, delivery_id="dlv-retry"))
    first = await adapter.submit(rendered)
    again = await adapter.submit(adapter.render(request(reach, delivery_id="dlv-retry")))
    assert first.channel_ref == again.channel_ref == "dlv-retry"
    assert again.state == "accepted" and "already submitted" in again.detail
    assert len(sim.consignments) == 1
    adds = sim.operations("addInvoices")
    assert len(adds) == 2 and adds[1]["fault"][1][0][0] == "209"
    # Each attempt carried a fresh messageIdentifier.
    assert adds[0]["body"] != adds[1]["body"]


async def test_vipps_flag_is_recorded_not_a_separate_api(sim, adapter):
    reach = await adapter.reachability(KARI)
    plain = adapter.render(request(reach, delivery_id="dlv-v"))
    vipps = adapter.render(request(reach, delivery_id="dlv-v", options={"vipps": True}))
    assert plain.summary["vipps"] is False and vipps.summary["vipps"] is True
    assert "Alltid Vipps eFaktura" in vipps.summary["vipps_note"]
    assert vipps.payload == plain.payload  # same eFaktura request: no Vipps-only delivery exists
    result = await adapter.submit(vipps)
    assert result.state == "accepted" and "vipps=yes" in result.detail
    assert [r["operation"] for r in sim.requests][-1] == "addInvoices"


async def test_vipps_default_from_config(sim, config_dict):
    a = EfakturaAdapter(EfakturaConfig.from_dict({**config_dict, "vipps": True}))
    try:
        rendered = a.render(request(Reachability.ok(reference="EF-KARI-0001")))
        assert rendered.summary["vipps"] is True
        assert not a.render(request(Reachability.ok(reference="EF-KARI-0001"),
                                    options={"vipps": False})).summary["vipps"]
    finally:
        await a.close()


async def test_address_by_ssn(sim, config_dict):
    a = EfakturaAdapter(EfakturaConfig.from_dict({**config_dict, "address_by_ssn": True}))
    try:
        reach = await a.reachability(KARI)
        result = await a.submit(a.render(request(reach)))
        [inv] = sim.consignment(result.channel_ref).invoices
        assert (inv.recipient_kind, inv.recipient) == ("socialSecurityNumber", KARI_FNR)
        sim.process(result.channel_ref)
        assert [e.state for e in await a.track(result.channel_ref)] == ["delivered"]
    finally:
        await a.close()


async def test_reachability_cache_ttl(sim, config_dict):
    now = [1000.0]
    a = EfakturaAdapter(EfakturaConfig.from_dict({**config_dict, "identifier_ttl_seconds": 60,
                                                  "negative_ttl_seconds": 10, "blacklist_ttl_seconds": 30}),
                        clock=lambda: now[0])
    try:
        first = await a.reachability(KARI)
        second = await a.reachability(KARI)
        assert not first.cached and second.cached and second.reference == first.reference
        assert len(sim.operations("getEfakturaIdentifiers")) == 1
        assert len(sim.operations("getBlackList")) == 1
        # The consumer blocks us; the cached blacklist hides it until its TTL runs out.
        sim.block(ISSUER, "EF-KARI-0001")
        now[0] += 31
        assert (await a.reachability(KARI)).reason == "blocked-issuer"
        # Negative answers expire sooner.
        unknown = Recipient(fodselsnummer=UNKNOWN_FNR)
        assert (await a.reachability(unknown)).reason == "not-registered"
        sim.add_consumer("EF-NEW-0001", social_security_number=UNKNOWN_FNR)
        assert (await a.reachability(unknown)).cached
        now[0] += 11
        fresh = await a.reachability(unknown)
        assert fresh.reachable and not fresh.cached
    finally:
        await a.close()


async def test_real_norwegian_example_invoice(sim, adapter, shared_dir):
    from gateway.invoice import extract_invoice_facts
    from gateway.kid import make_kid

    facts = extract_invoice_facts((shared_dir / "conformance/ehf-billing-3/examples/Norwegian-example-1.xml")
                                  .read_bytes())
    due = dt.date.today() + dt.timedelta(days=10)
    means = tuple(dataclasses.replace(m, kid=make_kid("3434323213", "mod10"), account=ACCOUNT,
                                      account_kind="bban", due_date=due) for m in facts.payment_means)
    facts = dataclasses.replace(facts, due_date=due, payment_means=means)
    reach = await adapter.reachability(KARI)
    rendered = adapter.render(request(reach, delivery_id="dlv-example", facts=facts))
    assert rendered.summary["invoice_number"] == facts.number
    assert rendered.summary["amount"] == f"{facts.payable_amount:.2f}"
    result = await adapter.submit(rendered)
    assert result.state == "accepted"
    assert sim.consignment("dlv-example").invoices[0].amount == facts.payable_amount


async def test_retry_after_timeout_does_not_send_twice(sim, config_dict):
    """The first addInvoices times out on our side but MPS stored it: the retry is confirmed, not duplicated."""
    import asyncio

    a = EfakturaAdapter(EfakturaConfig.from_dict({**config_dict, "timeout_seconds": 0.2}))
    try:
        rendered = a.render(request(Reachability.ok(reference="EF-KARI-0001"), delivery_id="dlv-slow"))
        sim.delay = 0.4
        with pytest.raises(ChannelError) as err:
            await a.submit(rendered)
        assert err.value.code == "timeout" and err.value.transient
        for _ in range(50):  # the service finishes the request after we gave up
            if sim.consignments:
                break
            await asyncio.sleep(0.02)
        sim.delay = 0
        result = await a.submit(rendered)
        assert result.state == "accepted" and "already submitted" in result.detail
        assert len(sim.consignments) == 1 and len(sim.consignment("dlv-slow").invoices) == 1
    finally:
        await a.close()


async def test_lookup_cleans_optional_contact_data(sim, adapter):
    kari = Recipient(name="Kari Anne Nordmann", phone="+47 912 34 567", email="x" * 120 + "@example.no",
                     address=PostalAddress(("Storgata 1",), "0155", "Oslo"))
    assert (await adapter.reachability(kari)).reachable
    body = sim.operations("getEfakturaIdentifiers")[-1]["body"]
    assert b"<ef:phoneNumber>+4791234567</ef:phoneNumber>" in body and b"<ef:email>" not in body
    odd_postcode = dataclasses.replace(kari, address=PostalAddress(("Storgata 1",), "0155/Oslo", "Oslo"))
    assert (await adapter.reachability(odd_postcode)).reason == "insufficient-data"
