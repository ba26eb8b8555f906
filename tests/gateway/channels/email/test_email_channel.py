"""E-mail channel against a real aiosmtpd submission server (STARTTLS/TLS, AUTH, 550s, stalls, DSNs)."""

from __future__ import annotations

import socket

import pytest

from gateway.channels.base import ChannelError, Recipient
from gateway.channels.email import EmailAdapter, EmailConfig
from gateway.channels.email.message import message_id_for
from gateway.channels.email.simulator import SmtpSimulator
from tests.gateway.channels.b2c_helpers import make_request, make_tls_files, server_tls_context, tiny_pdf


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    return make_tls_files(tmp_path_factory.mktemp("smtp-tls"))


@pytest.fixture
async def smtp(tls_files):
    sim = SmtpSimulator(tls_context=server_tls_context(*tls_files), refused={"ukjent@example.no"},
                        deferred={"treg@example.no"}, bounce_later={"borte@example.no"})
    async with sim:
        yield sim


def config(sim: SmtpSimulator, tls_files, **over) -> EmailConfig:
    base = {"host": "127.0.0.1", "port": sim.port, "username": "sendgw", "password": "secret",
            "from_address": "faktura@leverandor.no", "tls_ca_file": str(tls_files[0]), "timeout": 2.0,
            "envelope_from": "bounce@leverandor.no"}
    base.update(over)
    return EmailConfig.from_dict(base)


async def test_success_starttls_auth_mime_content(smtp, tls_files, shared_dir):
    pdf = tiny_pdf("Faktura TOSL108")
    adapter = EmailAdapter(config(smtp, tls_files))
    req = make_request(shared_dir, delivery_id="dlv-42", pdf=pdf)
    reach = await adapter.reachability(req.recipient)
    assert reach.reachable and reach.reference == "kari@example.no"
    rendered = adapter.render(req)
    result = await adapter.submit(rendered)

    assert result.state == "accepted"
    assert result.channel_ref == "<sendgw.dlv-42@leverandor.no>" == message_id_for("dlv-42", "leverandor.no")
    assert "queued as" in result.detail
    assert len(smtp.received) == 1
    mail = smtp.received[0]
    assert mail.tls and mail.authenticated_as == "sendgw"
    assert mail.mail_from == "bounce@leverandor.no" and mail.rcpt_tos == ["kari@example.no"]
    msg = mail.message
    assert msg["Subject"] == "Faktura TOSL108 fra Salescompany ltd."
    assert msg["Message-ID"] == result.channel_ref
    assert msg["Date"] is not None and "Kari Nordmann" in msg["To"]
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    for needle in ("kr 802,00", "20.07.2013", "8601.11.17947", "0003434323213231", "Salescompany ltd."):
        assert needle in text and needle in html
    assert "Beløp å betale" in text
    attachments = {p.get_filename(): p for p in msg.iter_attachments()}
    assert set(attachments) == {"Faktura-TOSL108.pdf", "Faktura-TOSL108.xml"}
    assert attachments["Faktura-TOSL108.pdf"].get_content_type() == "application/pdf"
    assert attachments["Faktura-TOSL108.pdf"].get_content() == pdf
    assert attachments["Faktura-TOSL108.xml"].get_content() == req.ubl


async def test_same_delivery_same_message_id_on_retry(smtp, tls_files, shared_dir):
    adapter = EmailAdapter(config(smtp, tls_files))
    req = make_request(shared_dir, delivery_id="dlv-retry")
    first = await adapter.submit(adapter.render(req))
    second = await adapter.submit(adapter.render(req))
    assert first.channel_ref == second.channel_ref
    assert [m.message["Message-ID"] for m in smtp.received] == [first.channel_ref] * 2
    other = await adapter.submit(adapter.render(make_request(shared_dir, delivery_id="dlv-other")))
    assert other.channel_ref != first.channel_ref


async def test_implicit_tls(tls_files, shared_dir):
    async with SmtpSimulator(tls_context=server_tls_context(*tls_files), implicit_tls=True) as sim:
        adapter = EmailAdapter(config(sim, tls_files, security="tls"))
        result = await adapter.submit(adapter.render(make_request(shared_dir)))
        assert result.state == "accepted" and sim.received[0].tls


async def test_recipient_refused_550_falls_through(smtp, tls_files, shared_dir):
    adapter = EmailAdapter(config(smtp, tls_files))
    req = make_request(shared_dir, recipient=Recipient(email="ukjent@example.no"))
    with pytest.raises(ChannelError) as err:
        await adapter.submit(adapter.render(req))
    assert err.value.code == "recipient-refused" and not err.value.transient
    assert "550" in err.value.message
    assert smtp.received == []


async def test_recipient_deferred_451_is_transient(smtp, tls_files, shared_dir):
    adapter = EmailAdapter(config(smtp, tls_files))
    with pytest.raises(ChannelError) as err:
        await adapter.submit(adapter.render(make_request(shared_dir, recipient=Recipient(email="treg@example.no"))))
    assert err.value.code == "recipient-deferred" and err.value.transient


async def test_auth_refused(smtp, tls_files, shared_dir):
    adapter = EmailAdapter(config(smtp, tls_files, password="wrong"))
    with pytest.raises(ChannelError) as err:
        await adapter.submit(adapter.render(make_request(shared_dir)))
    assert err.value.code == "auth-refused" and not err.value.transient
    assert smtp.auth_failures >= 1 and smtp.received == []


async def test_no_credentials_is_refused_by_server(smtp, tls_files, shared_dir):
    adapter = EmailAdapter(config(smtp, tls_files, username=None, password=None))
    with pytest.raises(ChannelError) as err:
        await adapter.submit(adapter.render(make_request(shared_dir)))
    assert err.value.code == "auth-required" and not err.value.transient


async def test_plaintext_auth_not_offered(smtp, tls_files, shared_dir):
    """Without STARTTLS the server offers no AUTH: a configuration error, not retried."""
    adapter = EmailAdapter(config(smtp, tls_files, security="none"))
    with pytest.raises(ChannelError) as err:
        await adapter.submit(adapter.render(make_request(shared_dir)))
    assert err.value.code == "smtp-config" and not err.value.transient


async def test_untrusted_certificate_is_refused(tls_files, tmp_path, shared_dir):
    other_cert, other_key = make_tls_files(tmp_path)
    async with SmtpSimulator(tls_context=server_tls_context(other_cert, other_key)) as sim:
        adapter = EmailAdapter(config(sim, tls_files))  # trusts only the module's certificate
        with pytest.raises(ChannelError) as err:
            await adapter.submit(adapter.render(make_request(shared_dir)))
        assert err.value.code in ("tls-failed", "connection-failed")
        assert sim.received == []


async def test_server_down_is_transient(tls_files, shared_dir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    cfg = EmailConfig.from_dict({"host": "127.0.0.1", "port": port, "from_address": "faktura@leverandor.no",
                                 "username": "sendgw", "password": "secret", "timeout": 1.0})
    adapter = EmailAdapter(cfg)
    with pytest.raises(ChannelError) as err:
        await adapter.submit(adapter.render(make_request(shared_dir)))
    assert err.value.code == "connection-failed" and err.value.transient


async def test_timeout_is_transient(tls_files, shared_dir):
    async with SmtpSimulator(tls_context=server_tls_context(*tls_files), data_delay=1.5) as sim:
        adapter = EmailAdapter(config(sim, tls_files, timeout=0.3))
        with pytest.raises(ChannelError) as err:
            await adapter.submit(adapter.render(make_request(shared_dir)))
        assert err.value.code == "timeout" and err.value.transient


async def test_message_too_large_is_final(tls_files, shared_dir):
    async with SmtpSimulator(tls_context=server_tls_context(*tls_files), size_limit=2000) as sim:
        adapter = EmailAdapter(config(sim, tls_files))
        with pytest.raises(ChannelError) as err:
            await adapter.submit(adapter.render(make_request(shared_dir)))
        assert not err.value.transient and "552" in err.value.message


async def test_bounce_later_is_tracked_as_failed(smtp, tls_files, shared_dir):
    adapter = EmailAdapter(config(smtp, tls_files))
    result = await adapter.submit(adapter.render(make_request(
        shared_dir, delivery_id="dlv-bounce", recipient=Recipient(email="borte@example.no"))))
    assert result.state == "accepted" and await adapter.track(result.channel_ref) == []
    assert len(smtp.bounces) == 1
    bounce = adapter.ingest_bounce(smtp.bounces[0])
    assert bounce.delivery_id == "dlv-bounce" and bounce.recipient == "borte@example.no"
    events = await adapter.track(result.channel_ref)
    assert [e.state for e in events] == ["failed"] and "5.1.1" in events[0].detail


async def test_bounces_dropped_in_bounce_dir_are_tracked(smtp, tls_files, shared_dir, tmp_path):
    """In a running gateway nobody calls ingest_bounce: the bounce mailbox drops DSNs into
    `bounce_dir`, and track() picks them up, also on a fresh adapter after a restart."""
    bounce_dir = tmp_path / "bounces"
    bounce_dir.mkdir()
    adapter = EmailAdapter(config(smtp, tls_files, bounce_dir=str(bounce_dir)))
    result = await adapter.submit(adapter.render(make_request(
        shared_dir, delivery_id="dlv-bounce-dir", recipient=Recipient(email="borte@example.no"))))
    assert await adapter.track(result.channel_ref) == []
    (bounce_dir / ".incoming.tmp").write_bytes(b"half-written")  # dot-files are ignored
    (bounce_dir / "0001.eml").write_bytes(smtp.bounces[0])
    (bounce_dir / "0002.eml").write_bytes(b"Subject: not a DSN\r\n\r\nhello\r\n")
    events = await adapter.track(result.channel_ref)
    assert [e.state for e in events] == ["failed"] and "5.1.1" in events[0].detail
    assert [e.state for e in await adapter.track(result.channel_ref)] == ["failed"]  # read once
    restarted = EmailAdapter(config(smtp, tls_files, bounce_dir=str(bounce_dir)))
    assert [e.state for e in await restarted.track(result.channel_ref)] == ["failed"]
    assert (bounce_dir / "0001.eml").exists()  # never deleted by the gateway


async def test_dkim_signature_verifies(tls_files, shared_dir):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    import base64

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption()).decode()
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    txt = b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)
    async with SmtpSimulator(tls_context=server_tls_context(*tls_files),
                             dkim_keys={("s2026", "leverandor.no"): txt}) as sim:
        signed = EmailAdapter(config(sim, tls_files, dkim_domain="leverandor.no", dkim_selector="s2026",
                                     dkim_private_key=pem))
        await signed.submit(signed.render(make_request(shared_dir)))
        unsigned = EmailAdapter(config(sim, tls_files))
        await unsigned.submit(unsigned.render(make_request(shared_dir)))
        assert [m.dkim_valid for m in sim.received] == [True, False]
        assert sim.received[0].message.get_body(("plain",)).get_content().count("kr 802,00") == 1


async def test_reachability_rules_and_cache(tls_files):
    adapter = EmailAdapter(EmailConfig.from_dict({"host": "x", "from_address": "a@b.no"}))
    assert (await adapter.reachability(Recipient())).reason == "no-email"
    for bad in ("kari.example.no", "kari@", "kari@example", "ka ri@example.no", "kari@-x.no", "kari@@x.no"):
        r = await adapter.reachability(Recipient(email=bad))
        assert not r.reachable and r.reason == "invalid-email", bad
    ok = await adapter.reachability(Recipient(email=" Kari.Nordmann+faktura@Eksempel.no "))
    assert ok.reachable and not ok.cached and ok.reference == "Kari.Nordmann+faktura@Eksempel.no"
    again = await adapter.reachability(Recipient(email="Kari.Nordmann+faktura@Eksempel.no"))
    assert again.reachable and again.cached
    assert (await adapter.reachability(Recipient(email="ola@blåbær.no"))).reachable  # IDN domain


def test_credit_note_wording(shared_dir):
    adapter = EmailAdapter(EmailConfig.from_dict({"host": "x", "from_address": "a@b.no"}))
    req = make_request(shared_dir)
    credit = req.invoice.__class__(**{**req.invoice.__dict__, "kind": "credit_note"})
    rendered = adapter.render(req.__class__(**{**req.__dict__, "invoice": credit}))
    msg = rendered.payload
    assert msg["Subject"] == "Kreditnota TOSL108 fra Salescompany ltd."
    text = msg.get_body(("plain",)).get_content()
    assert "Beløp å betale" not in text and "kreditnota TOSL108" in text
    assert rendered.summary["attachments"] == ["Kreditnota-TOSL108.pdf", "Kreditnota-TOSL108.xml"]


def test_config_validation():
    with pytest.raises(ValueError, match="host"):
        EmailConfig.from_dict({"from_address": "a@b.no"})
    with pytest.raises(ValueError, match="security"):
        EmailConfig.from_dict({"host": "x", "from_address": "a@b.no", "security": "ssl3"})
    with pytest.raises(ValueError, match="unknown"):
        EmailConfig.from_dict({"host": "x", "from_address": "a@b.no", "hots": "y"})
    with pytest.raises(ValueError, match="DKIM"):
        EmailConfig.from_dict({"host": "x", "from_address": "a@b.no", "dkim_private_key": "k"})
    cfg = EmailConfig.from_dict({"host": "x", "from_address": "a@b.no", "port": "465", "cost": 0.1})
    assert cfg.port == 465 and cfg.security == "starttls" and cfg.mx_check is False


async def test_idn_recipient_is_sent_in_punycode(smtp, tls_files, shared_dir):
    smtp_adapter = EmailAdapter(config(smtp, tls_files))
    req = make_request(shared_dir, recipient=Recipient(email="ola@blåbær.no"))
    await smtp_adapter.submit(smtp_adapter.render(req))
    assert smtp.received[0].rcpt_tos == ["ola@xn--blbr-roah.no"]


async def test_optional_mx_check(monkeypatch):
    import dns.asyncresolver
    import dns.resolver

    answers = {"example.no": "mx", "nomail.invalid": "nx", "flaky.no": "timeout", "a-only.no": "a"}

    async def fake_resolve(self, name, rtype):
        kind = answers[name]
        if kind == "nx":
            raise dns.resolver.NXDOMAIN()
        if kind == "timeout":
            raise dns.resolver.LifetimeTimeout()
        if kind == "a" and rtype == "MX":
            raise dns.resolver.NoAnswer()
        return [type("MX", (), {"exchange": "mx1.example.no."})()]

    monkeypatch.setattr(dns.asyncresolver.Resolver, "resolve", fake_resolve)
    adapter = EmailAdapter(EmailConfig.from_dict({"host": "x", "from_address": "a@b.no", "mx_check": True}))
    assert (await adapter.reachability(Recipient(email="kari@example.no"))).reachable
    no_mx = await adapter.reachability(Recipient(email="kari@nomail.invalid"))
    assert not no_mx.reachable and no_mx.reason == "no-mx"
    assert (await adapter.reachability(Recipient(email="kari@a-only.no"))).reachable  # implicit MX
    flaky = await adapter.reachability(Recipient(email="kari@flaky.no"))
    assert flaky.reachable and "unanswered" in flaky.detail
    assert not (await adapter.reachability(Recipient(email="kari@flaky.no"))).cached
    plain = EmailAdapter(EmailConfig.from_dict({"host": "x", "from_address": "a@b.no"}))
    assert (await plain.reachability(Recipient(email="kari@nomail.invalid"))).reachable  # off by default


def test_no_kid_reminder_without_a_kid(shared_dir):
    """An invoice paid without KID (PaymentID absent) must not tell the payer to quote one."""
    import dataclasses

    from gateway.channels.email.message import build_invoice_message
    from gateway.channels.notice import PaymentNotice

    notice = PaymentNotice.from_facts(make_request(shared_dir).invoice)
    for n, expected in ((notice, True), (dataclasses.replace(notice, kid=None), False)):
        msg = build_invoice_message(n, to="kari@example.no", sender="faktura@leverandor.no", sender_name=None,
                                    delivery_id="dlv-1", message_id_domain="leverandor.no", pdf=tiny_pdf(),
                                    ubl=None)
        for part in ("plain", "html"):
            assert ("oppgi KID" in msg.get_body((part,)).get_content()) is expected
