"""SMS channel end to end: our LINK client against the LINK simulator, DLRs posted to our callback."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web

from gateway.channels.base import ChannelError, Reachability, Recipient
from gateway.channels.sms import DLR_PATH, SmsAdapter, SmsConfig, make_dlr_handler
from gateway.channels.sms.client import LinkMobilityClient, LinkSettings
from gateway.channels.sms.simulator import LinkSimulator
from tests.gateway.channels.b2c_helpers import make_request

SECRET = "dlr-shared-secret"


@pytest.fixture
async def callback_server():
    """Our server's DLR endpoint (the lead mounts the same handler in the gateway app)."""
    holder: dict = {}

    async def dispatch(request):
        return await holder["handler"](request)

    app = web.Application()
    app.router.add_post(DLR_PATH, dispatch)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    holder["url"] = f"http://127.0.0.1:{port}{DLR_PATH}"
    yield holder
    await runner.cleanup()


@pytest.fixture
async def link(callback_server):
    sim = LinkSimulator(gates={"gate-1": f"{callback_server['url']}?token={SECRET}"},
                        outcomes={"+4741111111": [1000, 1006]})
    async with sim:
        yield sim


def cfg(sim: LinkSimulator, **over) -> SmsConfig:
    base = {"base_url": sim.base_url, "platform_id": "COMMON_API", "platform_partner_id": "12345",
            "sender": "Leverandor", "username": "sendgw", "password": "secret",
            "delivery_report_gates": ["gate-1"], "link_template": "https://faktura.example.no/f/{delivery_id}",
            "dlr_secret": SECRET, "timeout": 2.0}
    base.update(over)
    return SmsConfig.from_dict(base)


async def wait_for(predicate, timeout=3.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_success_then_delivery_report_arrives_later(link, callback_server, shared_dir):
    adapter = SmsAdapter(cfg(link))
    callback_server["handler"] = adapter.dlr_handler()
    req = make_request(shared_dir, delivery_id="dlv-sms-1")
    reach = await adapter.reachability(req.recipient)
    assert reach.reachable and reach.reference == "+4791234567"
    rendered = adapter.render(req)
    assert rendered.summary["encoding"] == "GSM-7" and rendered.summary["segments"] == 1
    result = await adapter.submit(rendered)
    assert result.state == "accepted" and result.channel_ref in link.messages
    assert await adapter.track(result.channel_ref) == []  # nothing yet: reports come later

    sent = link.requests[0]
    assert sent["destination"] == "+4791234567" and sent["sourceTON"] == "ALPHANUMERIC"
    assert sent["refId"] == "dlv-sms-1" and sent["deliveryReportGates"] == ["gate-1"]
    assert sent["useDeliveryReport"] is True and sent["platformPartnerId"] == "12345"
    for needle in ("kr 802,00", "20.07.2013", "8601.11.17947", "KID 0003434323213231",
                   "https://faktura.example.no/f/dlv-sms-1", "Faktura TOSL108 fra Salescompany ltd."):
        assert needle in sent["userData"]

    async def delivered():
        return [e.state for e in await adapter.track(result.channel_ref)] == ["accepted", "delivered"]

    await wait_for(delivered)
    assert all(status == 200 for _, status in link.dlr_attempts)
    await adapter.close()


async def test_failed_delivery_report(link, callback_server, shared_dir):
    adapter = SmsAdapter(cfg(link))
    callback_server["handler"] = adapter.dlr_handler()
    req = make_request(shared_dir, recipient=Recipient(phone="+47 411 11 111"))
    result = await adapter.submit(adapter.render(req))

    async def failed():
        events = await adapter.track(result.channel_ref)
        return bool(events) and events[-1].state == "failed"

    await wait_for(failed)
    assert "1006" in (await adapter.track(result.channel_ref))[-1].detail
    await adapter.close()


async def test_multipart_message_delivered_when_all_parts_are(link, callback_server, shared_dir):
    long_link = "https://faktura.example.no/f/{delivery_id}?" + "x" * 120
    adapter = SmsAdapter(cfg(link, link_template=long_link, max_segments=3))
    callback_server["handler"] = adapter.dlr_handler()
    rendered = adapter.render(make_request(shared_dir, delivery_id="dlv-long"))
    assert rendered.summary["segments"] == 2
    result = await adapter.submit(rendered)
    assert "2 segment" in result.detail

    async def delivered():
        return [e.state for e in await adapter.track(result.channel_ref)][-1:] == ["delivered"]

    await wait_for(delivered)
    await link.wait_for_reports()
    assert link.messages[result.channel_ref]["segments"] == 2
    assert len(link.dlr_attempts) == 4  # (1000, 1001) for part $0 and part $1
    assert [e.state for e in await adapter.track(result.channel_ref)] == ["accepted", "delivered"]
    await adapter.close()


async def test_oauth2_token_flow(link, callback_server, shared_dir):
    adapter = SmsAdapter(cfg(link, auth="oauth2", username=None, password=None,
                             client_id="sendgw-client", client_secret="client-secret"))
    callback_server["handler"] = adapter.dlr_handler()
    first = await adapter.submit(adapter.render(make_request(shared_dir, delivery_id="o1")))
    second = await adapter.submit(adapter.render(make_request(shared_dir, delivery_id="o2")))
    assert first.channel_ref != second.channel_ref and len(link.tokens) == 1  # token reused
    link.tokens.clear()  # revoked: the client fetches a new token once
    third = await adapter.submit(adapter.render(make_request(shared_dir, delivery_id="o3")))
    assert third.state == "accepted" and len(link.tokens) == 1
    await adapter.close()


async def test_auth_refused_basic_and_oauth2(link, shared_dir):
    for over in ({"password": "wrong"},
                 {"auth": "oauth2", "client_id": "sendgw-client", "client_secret": "nope"}):
        adapter = SmsAdapter(cfg(link, **over))
        with pytest.raises(ChannelError) as err:
            await adapter.submit(adapter.render(make_request(shared_dir)))
        assert err.value.code == "auth-refused" and not err.value.transient
        await adapter.close()
    assert link.requests == []


async def test_wrong_platform_partner_is_refused(link, shared_dir):
    adapter = SmsAdapter(cfg(link, platform_partner_id="99999"))
    with pytest.raises(ChannelError) as err:
        await adapter.submit(adapter.render(make_request(shared_dir)))
    assert err.value.code == "auth-refused" and "403" in err.value.message
    await adapter.close()


async def test_invalid_number_rejected(link, shared_dir):
    adapter = SmsAdapter(cfg(link))
    fixed = await adapter.reachability(Recipient(phone="+4722334455"))
    assert not fixed.reachable and fixed.reason == "not-mobile"
    junk = await adapter.reachability(Recipient(phone="5121230"))
    assert not junk.reachable and junk.reason == "invalid-phone"
    foreign = await adapter.reachability(Recipient(phone="+46701234567"))
    assert not foreign.reachable and foreign.reason == "foreign-number"
    # the provider refuses what is not an E.164 MSISDN, whatever a caller hands it
    req = make_request(shared_dir, reachability=Reachability.ok(reference="+4791234567"))
    rendered = adapter.render(req)
    rendered.payload["destination"] = "4791234567"
    with pytest.raises(ChannelError) as err:
        await adapter.submit(rendered)
    assert err.value.code == "invalid-request" and not err.value.transient and "2106" in err.value.message
    await adapter.close()


async def test_sender_rules_enforced_by_provider(link):
    client = LinkMobilityClient(LinkSettings(link.base_url, "COMMON_API", "12345", "basic", "sendgw", "secret"))
    base = {"sourceTON": "ALPHANUMERIC", "destination": "+4791234567", "userData": "Hei",
            "platformId": "COMMON_API", "platformPartnerId": "12345", "useDeliveryReport": False}
    for source in ("Leverandøren", "1Faktura", "Leverandoren1", "L"):
        with pytest.raises(ChannelError) as err:
            await client.send({**base, "source": source})
        assert err.value.code == "invalid-request" and "2000" in err.value.message
    with pytest.raises(ChannelError) as err:
        await client.send({**base, "source": "Faktura", "userData": "Takk 😀"})
    assert "4001" in err.value.message
    with pytest.raises(ChannelError):
        await client.send({**base, "source": "Faktura", "useDeliveryReport": True})  # no gate
    ok = await client.send({**base, "source": "Faktura", "userData": "ł" * 71})
    assert ok.sms_count == 2 and ok.result_code == 1005
    await client.close()
    with pytest.raises(ValueError):
        cfg(link, sender="Leverandør AS")


async def test_not_reachable_without_phone(link):
    adapter = SmsAdapter(cfg(link))
    answer = await adapter.reachability(Recipient(email="kari@example.no"))
    assert not answer.reachable and answer.reason == "no-phone"
    ok = await adapter.reachability(Recipient(phone="91234567"))
    cached = await adapter.reachability(Recipient(phone="+47 91 23 45 67"))
    assert ok.reachable and not ok.cached and cached.cached
    await adapter.close()


async def test_timeout_is_transient(link, shared_dir):
    link.response_delay = 1.0
    adapter = SmsAdapter(cfg(link, timeout=0.3))
    with pytest.raises(ChannelError) as err:
        await adapter.submit(adapter.render(make_request(shared_dir)))
    assert err.value.code == "timeout" and err.value.transient
    await adapter.close()


async def test_provider_down_is_transient(shared_dir):
    sim = LinkSimulator()
    await sim.start()
    url = sim.base_url
    await sim.stop()
    adapter = SmsAdapter(SmsConfig.from_dict({
        "base_url": url, "platform_id": "p", "platform_partner_id": "q", "sender": "Faktura",
        "username": "u", "password": "p", "timeout": 1.0}))
    with pytest.raises(ChannelError) as err:
        await adapter.submit(adapter.render(make_request(shared_dir)))
    assert err.value.code == "connection-failed" and err.value.transient
    await adapter.close()


async def test_idempotent_submit(link, callback_server, shared_dir):
    adapter = SmsAdapter(cfg(link))
    callback_server["handler"] = adapter.dlr_handler()
    rendered = adapter.render(make_request(shared_dir, delivery_id="dlv-once"))
    first = await adapter.submit(rendered)
    again = await adapter.submit(adapter.render(make_request(shared_dir, delivery_id="dlv-once")))
    assert again == first and len(link.requests) == 1
    await adapter.close()
    # a provider that deduplicates on refId answers a resend from another process with the same id
    link.dedupe_ref_id = True
    other = SmsAdapter(cfg(link))
    assert (await other.submit(other.render(make_request(shared_dir, delivery_id="dlv-once")))).channel_ref \
        == first.channel_ref
    await other.close()


async def test_dlr_endpoint_auth_and_retry(link, callback_server, shared_dir):
    received = []
    calls = {"n": 0}

    async def flaky(report):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("database busy")
        received.append(report)

    callback_server["handler"] = make_dlr_handler(flaky, secret=SECRET)
    async with aiohttp.ClientSession() as http:
        url = callback_server["url"]
        async with http.post(url, json={"id": "m1", "resultCode": 1001}) as resp:
            assert resp.status == 401
        async with http.post(url + "?token=wrong", json={"id": "m1", "resultCode": 1001}) as resp:
            assert resp.status == 401
        async with http.post(url, json={"id": "m1", "resultCode": 1001},
                             headers={"X-Sendgw-Dlr-Token": SECRET}) as resp:
            assert resp.status == 500  # callback failed: LINK must retry
        async with http.post(url + f"?token={SECRET}", data=b"{broken") as resp:
            assert resp.status == 400
    # the simulator retries until our endpoint answers 200
    calls["n"] = 0
    adapter = SmsAdapter(cfg(link, delivery_report_gates=["gate-1"]))
    await adapter.submit(adapter.render(make_request(shared_dir, delivery_id="dlv-retry")))
    await link.wait_for_reports()
    assert [(r.ref_id, r.result_code) for r in received] == [("dlv-retry", 1000), ("dlv-retry", 1001)]
    assert [status for _, status in link.dlr_attempts] == [500, 200, 200]
    await adapter.close()


async def test_dlr_network_allow_list(callback_server):
    got = []

    async def record(report):
        got.append(report)

    callback_server["handler"] = make_dlr_handler(record, allowed_networks=["10.0.0.0/8"])
    async with aiohttp.ClientSession() as http:
        async with http.post(callback_server["url"], json={"id": "m1", "resultCode": 1001}) as resp:
            assert resp.status == 403
    assert got == []


def test_config_validation(link):
    with pytest.raises(ValueError, match="required"):
        SmsConfig.from_dict({"base_url": "x", "platform_id": "p", "platform_partner_id": "q"})
    with pytest.raises(ValueError, match="basic"):
        SmsConfig.from_dict({"base_url": "x", "platform_id": "p", "platform_partner_id": "q", "sender": "Faktura"})
    with pytest.raises(ValueError, match="48 hours"):
        cfg(link, relative_validity_ms=1000)
    with pytest.raises(ValueError, match="unknown"):
        cfg(link, gates=["x"])
    assert cfg(link, delivery_report_gates="gate-1").delivery_report_gates == ("gate-1",)
