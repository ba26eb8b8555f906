"""Routing configuration, recipient facts and the savings report."""

import datetime as dt
from decimal import Decimal

import pytest

from gateway.invoice import extract_invoice_facts
from gateway.routing import (
    RecipientHintError,
    RoutingConfig,
    RoutingConfigError,
    channel_report,
    delivery_id_for,
    merge_secrets,
    parse_hints,
    recipient_from,
    save_routing,
)


def email_settings(**kw):
    return {"host": "smtp.example.no", "from_address": "faktura@example.no", "password": "pw", **kw}


def test_config_round_trip_and_masking(tmp_path):
    cfg = RoutingConfig.parse({
        "b2c": ["email", "print"], "b2b": ["peppol", "email"],
        "channels": {"email": {"cost_nok": "0.10", "settings": email_settings()},
                     "print": {"cost_nok": 12, "settings": {"outgoing_dir": str(tmp_path), "incoming_dir": str(tmp_path)}}},
        "print_cost_nok": "14.50"})
    assert cfg.order("b2c") == ("email", "print")
    assert cfg.cost("email") == Decimal("0.1") and cfg.cost("sms") == 0
    out = cfg.to_dict(mask_secrets=True)
    assert out["channels"]["email"]["settings"]["password"] == "********"
    assert out["b2g"] == ["peppol"] and out["print_cost_nok"] == "14.5000"
    again = RoutingConfig.parse(merge_secrets(out, cfg))
    assert again.channels["email"].settings["password"] == "pw"


@pytest.mark.parametrize("doc, fragment", [
    ({"b2c": ["fax"]}, "unknown channel 'fax'"),
    ({"b2c": ["email"]}, "channels.email has no settings"),
    ({"b2c": ["email", "email"], "channels": {"email": {"settings": email_settings()}}}, "listed twice"),
    ({"b2g": ["email"]}, "b2g is always Peppol"),
    ({"channels": {"email": {"cost_nok": "-1", "settings": email_settings()}}}, "non-negative"),
    ({"channels": {"email": {"cost_nok": "x", "settings": email_settings()}}}, "decimal"),
    ({"channels": {"email": {"settings": {"host": "h"}}}}, "channels.email.settings"),
    ({"colour": "red"}, "unknown field"),
    ([], "JSON object"),
])
def test_config_errors(doc, fragment):
    with pytest.raises(RoutingConfigError, match=fragment.replace("(", r"\(")):
        RoutingConfig.parse(doc)


def test_hints_are_validated_and_normalised():
    hints = parse_hints({"phone": "912 34 567", "email": " kari@example.no ", "preferred_channel": "sms",
                         "address": {"lines": ["Storgata 1"], "postcode": "0155", "city": "Oslo"},
                         "birth_date": "1985-07-15"})
    assert hints["phone"] == "+4791234567" and hints["email"] == "kari@example.no"
    assert hints["address"]["country"] == "NO"
    for bad in ({"phone": "12"}, {"email": "no-at-sign"}, {"fodselsnummer": "12345678901"},
                {"orgnr": "923609017"}, {"address": {"lines": ["x"], "postcode": "55", "city": "Oslo"}},
                {"preferred_channel": "fax"}, {"shoe_size": "42"}, {"birth_date": "15.07.1985"}):
        with pytest.raises(RecipientHintError):
            parse_hints(bad)


def test_recipient_from_invoice_and_hints(shared_dir):
    facts = extract_invoice_facts((shared_dir / "conformance/ehf-billing-3/examples/ehf-3-faktura-1.xml").read_bytes())
    plain = recipient_from(facts, {})
    assert plain.orgnr == facts.buyer.orgnr and plain.kid == facts.kid
    assert plain.address is not None and plain.address.postcode == facts.buyer.address.postal_zone
    hinted = recipient_from(facts, parse_hints({"email": "ola@example.no", "preferred_channel": "email"}))
    assert hinted.email == "ola@example.no" and hinted.preferred_channel == "email"


def test_delivery_ids_are_stable_per_channel():
    mid = "8d0f4a26-2a4b-4c9e-9c1e-0f6c3c1a2b3c"
    assert delivery_id_for(mid, "email") == delivery_id_for(mid, "email") != delivery_id_for(mid, "sms")


def test_empty_report(engine):
    from gateway.store.tenants import create_tenant

    tenant, _ = create_tenant(engine, "T")
    save_routing(engine, tenant.id, RoutingConfig.parse({"print_cost_nok": "15"}))
    now = dt.datetime.now(dt.timezone.utc)
    report = channel_report(engine, tenant.id, now - dt.timedelta(days=1), now)
    assert report["channels"] == [] and report["total"]["cost_nok"] == "0.00"


def test_tracking_events_move_forward_and_failures_fall_through(engine, tmp_path):
    """accepted → opened → paid only move forward; a failure before payment re-routes, after it is ignored."""
    import uuid

    from sqlalchemy import insert, select

    from gateway.channels.base import TrackEvent
    from gateway.config import Settings
    from gateway.routing import RoutingEngine, delivery_id_for
    from gateway.store.payloads import PayloadStore
    from gateway.store.schema import channel_deliveries, messages
    from gateway.store.tenants import create_tenant

    tenant, _ = create_tenant(engine, "T")
    now = dt.datetime.now(dt.timezone.utc)
    mid = str(uuid.uuid4())
    with engine.begin() as conn:
        conn.execute(insert(messages).values(id=mid, tenant_id=tenant.id, direction="out", state="delivered",
                                             created_at=now, updated_at=now, attempts=0))
        did = delivery_id_for(mid, "email")
        conn.execute(insert(channel_deliveries).values(
            id=did, message_id=mid, tenant_id=tenant.id, position=0, channel="email", state="accepted",
            channel_ref="ref-1", attempts=1, created_at=now, updated_at=now))
    router = RoutingEngine(engine, PayloadStore("database"), Settings())

    def states():
        with engine.connect() as conn:
            return (conn.execute(select(messages.c.state)).scalar(),
                    conn.execute(select(channel_deliveries.c.state)).scalar())

    assert router.apply_channel_event("email", "ref-1", TrackEvent("opened", now))
    assert states() == ("opened", "opened")
    assert not router.apply_event(did, TrackEvent("delivered", now))  # never backwards
    assert router.apply_event(did, TrackEvent("paid", now, amount=Decimal("802.00")))
    assert states() == ("paid", "paid")
    assert not router.apply_event(did, TrackEvent("failed", now, "late bounce"))
    assert states() == ("paid", "paid")
    assert not router.apply_channel_event("email", "unknown-ref", TrackEvent("opened", now))


async def test_restart_after_accept_does_not_send_again(engine, shared_dir):
    """A worker that recorded the channel's acceptance and died before marking the document delivered
    leaves it in `routing`; the next worker must finish it from the recorded decision, not submit again."""
    import uuid

    from sqlalchemy import insert, select

    from gateway.channels.base import ChannelAdapter, Reachability, Rendered, SubmitResult
    from gateway.config import Settings
    from gateway.routing import RoutingEngine
    from gateway.store.payloads import PayloadStore
    from gateway.store.schema import channel_deliveries, messages
    from gateway.store.tenants import create_tenant

    class Counting(ChannelAdapter):
        name = "email"
        submits = 0

        async def reachability(self, recipient):
            return Reachability.ok(reference="kari@example.no")

        def render(self, request):
            return Rendered(request.delivery_id, self.name, b"mail")

        async def submit(self, rendered):
            Counting.submits += 1
            return SubmitResult("accepted", "second-ref")

    tenant, _ = create_tenant(engine, "T")
    save_routing(engine, tenant.id, RoutingConfig.parse({
        "b2c": ["email"], "channels": {"email": {"cost_nok": "0.10", "settings": email_settings()}}}))
    payloads = PayloadStore("database")
    ubl = (shared_dir / "conformance/ehf-billing-3/examples/ehf-3-faktura-1.xml").read_bytes()
    now = dt.datetime.now(dt.timezone.utc)
    mid = str(uuid.uuid4())
    with engine.begin() as conn:
        sha = payloads.put(conn, ubl)
        conn.execute(insert(messages).values(id=mid, tenant_id=tenant.id, direction="out", state="routing",
                                             document_sha256=sha, options={"segment": "b2c"}, next_attempt_at=now,
                                             created_at=now, updated_at=now, attempts=0))
        conn.execute(insert(channel_deliveries).values(
            id=delivery_id_for(mid, "email"), message_id=mid, tenant_id=tenant.id, position=0, channel="email",
            state="accepted", reason="ok", channel_ref="first-ref", cost_nok="0.1000", attempts=1,
            created_at=now, updated_at=now))
    router = RoutingEngine(engine, payloads, Settings())
    router.adapter = lambda config, name: Counting()
    assert await router.run_once() == 1
    with engine.connect() as conn:
        state = conn.execute(select(messages.c.state).where(messages.c.id == mid)).scalar()
        d = conn.execute(select(channel_deliveries)).one()
    assert Counting.submits == 0
    assert state == "delivered"
    assert (d.state, d.channel_ref, d.attempts) == ("accepted", "first-ref", 1)


def test_a_report_for_another_channel_does_not_touch_the_delivery(engine):
    """An SMS delivery report whose refId names an e-mail delivery (misconfigured or forged) is ignored."""
    import uuid

    from sqlalchemy import insert, select

    from gateway.app import _sms_report
    from gateway.channels.base import TrackEvent
    from gateway.channels.sms.dlr import read_delivery_report
    from gateway.config import Settings
    from gateway.routing import RoutingEngine
    from gateway.services import Services
    from gateway.store.payloads import PayloadStore
    from gateway.store.schema import channel_deliveries, messages
    from gateway.store.tenants import create_tenant
    import asyncio

    tenant, _ = create_tenant(engine, "T")
    now = dt.datetime.now(dt.timezone.utc)
    mid = str(uuid.uuid4())
    did = delivery_id_for(mid, "email")
    with engine.begin() as conn:
        conn.execute(insert(messages).values(id=mid, tenant_id=tenant.id, direction="out", state="delivered",
                                             created_at=now, updated_at=now, attempts=0))
        conn.execute(insert(channel_deliveries).values(
            id=did, message_id=mid, tenant_id=tenant.id, position=0, channel="email", state="accepted",
            channel_ref="<sendgw.x@example.no>", attempts=1, created_at=now, updated_at=now))
    router = RoutingEngine(engine, PayloadStore("database"), Settings())
    assert not router.apply_event(did, TrackEvent("failed", now, "x"), channel="sms")
    svc = Services(settings=Settings(), engine=engine, validation=None, payloads=PayloadStore("database"))
    svc.extra["routing"] = router
    report = read_delivery_report({"id": "m1", "refId": did, "resultCode": 1006})
    asyncio.run(_sms_report(svc, report))
    with engine.connect() as conn:
        assert conn.execute(select(channel_deliveries.c.state)).scalar() == "accepted"
        assert conn.execute(select(messages.c.state)).scalar() == "delivered"
