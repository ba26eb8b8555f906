"""`sendgw lookup` exit codes and output against the local DNS/SMP servers."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from gateway.cli import main
from gateway.discovery.sml import naptr_qname
from gateway.discovery.smp import service_metadata_url

from .conftest import (
    CREDIT_NOTE,
    INVOICE,
    NOW,
    ZONE,
    fresh_participant,
    service_group_xml,
    service_metadata_xml,
    sign,
)


@pytest.fixture
def config(tmp_path, local_net, pki):
    (tmp_path / "ap.pem").write_bytes(pki.root.pem + pki.ap_ca.pem)
    (tmp_path / "smp.pem").write_bytes(pki.root.pem + pki.smp_ca.pem)
    path = tmp_path / "sendgw.toml"
    path.write_text(f"""
[trust]
ap_anchors = ["ap.pem"]
smp_anchors = ["smp.pem"]

[discovery]
sml_zone = "{ZONE}"
nameservers = ["{local_net.nameserver}"]
allow_http = true
dns_timeout = 1.0
smp_timeout = 2.0
""")
    return str(path)


def _publish(local_net, pki, participant):
    base = local_net.smp.base
    local_net.dns.register(participant, base)
    xml = service_metadata_xml(participant, INVOICE, endpoint_url="https://ap.example.test/as4", cert_der=pki.ap.der)
    local_net.smp.put(service_metadata_url(base, participant, INVOICE), sign(xml, pki.smp))
    local_net.smp.put(f"{base}/{participant.url_segment}", service_group_xml(participant, base, [INVOICE, CREDIT_NOTE]))


def test_found_text(config, local_net, pki, participant, capsys):
    _publish(local_net, pki, participant)
    assert main(["--config", config, "lookup", participant.value, "--doctype", str(INVOICE)]) == 0
    out = capsys.readouterr().out
    assert "endpoint URL:      https://ap.example.test/as4" in out
    assert "peppol-transport-as4-v2_0" in out
    assert "CN=PNO000123" in out and "CN=SENDGW TEST AP CA" in out
    assert f"SMP URL:           {local_net.smp.base}" in out


def test_found_json(config, local_net, pki, participant, capsys):
    _publish(local_net, pki, participant)
    code = main(["--config", config, "lookup", str(participant), "--doctype", str(INVOICE),
                 "--process", "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["found"] is True
    assert data["endpoint_url"] == "https://ap.example.test/as4"
    assert data["seat_id"] == "PNO000123"
    assert data["certificate"]["issuer"].endswith("CN=SENDGW TEST AP CA") or "SENDGW TEST AP CA" in data["certificate"]["issuer"]


def test_list_doctypes(config, local_net, pki, participant, capsys):
    _publish(local_net, pki, participant)
    assert main(["--config", config, "lookup", participant.value, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["document_types"] == [str(INVOICE), str(CREDIT_NOTE)]


def test_not_registered_exit_1(config, participant, capsys):
    assert main(["--config", config, "lookup", participant.value, "--doctype", str(INVOICE), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["code"] == "sml-not-registered" and data["retryable"] is False


def test_doctype_not_served_exit_1(config, local_net, pki, participant, capsys):
    _publish(local_net, pki, participant)
    assert main(["--config", config, "lookup", participant.value, "--doctype", str(CREDIT_NOTE)]) == 1
    assert "doctype-not-served" in capsys.readouterr().err


def test_technical_failure_exit_2(config, local_net, participant, capsys):
    local_net.dns.register(participant, f"http://127.0.0.1:{local_net.dead_port}")
    assert main(["--config", config, "lookup", participant.value, "--doctype", str(INVOICE)]) == 2
    assert "smp-unavailable" in capsys.readouterr().err


def test_bad_identifier_exit_2(config, capsys):
    assert main(["--config", config, "lookup", "0192:123456784", "--doctype", str(INVOICE)]) == 2
    assert "invalid-check-digit" in capsys.readouterr().err


def test_prod_flag_refuses_mixed_trust(tmp_path, capsys):
    # the default anchors follow --prod, but an explicit test set together with prod is refused
    path = tmp_path / "c.toml"
    path.write_text('[trust]\nap_anchors = ["peppol-test", "x.pem"]\n')
    assert main(["--config", str(path), "lookup", "0192:991825827", "--prod"]) == 2
    assert "mixes peppol-test" in capsys.readouterr().err


def test_from_settings_mode_selects_zone_and_trust(tmp_path, trust_dir):
    from gateway.config import load_settings
    from gateway.discovery.lookup import Discovery
    from gateway.discovery.sml import PROD_ZONE, TEST_ZONE

    path = tmp_path / "c.toml"
    path.write_text(f'[trust]\ncache = "{trust_dir}"\n[discovery]\nnameservers = ["127.0.0.1:5353"]\n')
    settings = load_settings(path)
    test = Discovery.from_settings(settings)
    prod = Discovery.from_settings(settings, mode="prod")
    assert test.config.zone == TEST_ZONE and prod.config.zone == PROD_ZONE
    subjects = lambda store: {c.subject.rfc4514_string() for c in store.anchors}
    assert any("ACCESS POINT TEST CA - G3" in s for s in subjects(test.ap_trust))
    assert any("ACCESS POINT CA - G3" in s for s in subjects(prod.ap_trust))
    assert not any("TEST" in s for s in subjects(prod.ap_trust) | subjects(prod.smp_trust))
    assert any("SERVICE METADATA PUBLISHER TEST CA - G3" in s for s in subjects(test.smp_trust))
    path.write_text(f'[trust]\ncache = "{trust_dir}"\n[discovery]\nsml_zone = "sml.example.test"\nmode = "prod"\n')
    assert Discovery.from_settings(load_settings(path)).config.zone == "sml.example.test"


def test_static_route_replaces_discovery(tmp_path, pki, capsys):
    (tmp_path / "ap.pem").write_bytes(pki.root.pem + pki.ap_ca.pem)
    (tmp_path / "smp.pem").write_bytes(pki.root.pem + pki.smp_ca.pem)
    (tmp_path / "receiver.pem").write_bytes(pki.rogue_ap.pem)  # pinned: no chain check
    (tmp_path / "old.pem").write_bytes(pki.expired_ap.pem)
    path = tmp_path / "sendgw.toml"
    path.write_text(f"""
[trust]
ap_anchors = ["ap.pem"]
smp_anchors = ["smp.pem"]
[discovery]
nameservers = ["127.0.0.1:9"]
[routes."0192:923609016"]
url = "https://ap.partner.test/as4"
certificate = "receiver.pem"
document_types = ["{INVOICE}"]
[routes."9915:old"]
url = "https://old.partner.test/as4"
certificate = "old.pem"
""")
    assert main(["--config", str(path), "lookup", "0192:923609016", "--doctype", str(INVOICE), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["endpoint_url"] == "https://ap.partner.test/as4" and data["seat_id"] == "PNO000666"
    assert data["smp_signer"] is None
    assert main(["--config", str(path), "lookup", "0192:923609016", "--doctype", str(CREDIT_NOTE)]) == 1
    assert main(["--config", str(path), "lookup", "9915:old", "--doctype", str(INVOICE)]) == 2
    assert "endpoint-certificate-expired" in capsys.readouterr().err
    path.write_text(path.read_text() + '\n[routes."0192:123456784"]\nurl = "https://x.test"\ncertificate = "old.pem"\n')
    assert main(["--config", str(path), "lookup", "9915:old", "--doctype", str(INVOICE)]) == 2
    assert "invalid-check-digit" in capsys.readouterr().err


def _publish_window(local_net, pki, participant, **window):
    local_net.dns.register(participant, local_net.smp.base)
    xml = service_metadata_xml(participant, INVOICE, endpoint_url="https://ap.example.test/as4", cert_der=pki.ap.der, **window)
    local_net.smp.put(service_metadata_url(local_net.smp.base, participant, INVOICE), sign(xml, pki.smp))


def test_activation_window_shown_and_inactive_endpoint_is_exit_1(config, local_net, pki, capsys):
    active, future = fresh_participant(), fresh_participant()
    start, end = NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=1)
    _publish_window(local_net, pki, active, activation=start, expiration=end)
    _publish_window(local_net, pki, future, activation=NOW + dt.timedelta(days=2))
    assert main(["--config", config, "lookup", str(active), "--doctype", str(INVOICE), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["activation"].startswith(start.strftime("%Y-%m-%dT%H:%M:%S"))
    assert data["expiration"].startswith(end.strftime("%Y-%m-%dT%H:%M:%S"))
    assert {"smp_url", "endpoint_url", "transport_profile", "certificate"} <= set(data)
    assert {"subject", "issuer", "not_before", "not_after"} <= set(data["certificate"])
    assert main(["--config", config, "lookup", str(future), "--doctype", str(INVOICE), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["found"] is False and data["code"] == "endpoint-not-active"


@pytest.mark.parametrize("what, code", [("servfail", "dns-servfail"), ("untrusted", "endpoint-certificate-untrusted")])
def test_technical_and_trust_failures_are_exit_2(config, local_net, pki, capsys, what, code):
    participant = fresh_participant()
    if what == "servfail":
        local_net.dns.servfail.add(naptr_qname(participant, ZONE))
    else:
        local_net.dns.register(participant, local_net.smp.base)
        xml = service_metadata_xml(participant, INVOICE, endpoint_url="https://ap.example.test/as4", cert_der=pki.rogue_ap.der)
        local_net.smp.put(service_metadata_url(local_net.smp.base, participant, INVOICE), sign(xml, pki.smp))
    assert main(["--config", config, "lookup", str(participant), "--doctype", str(INVOICE), "--json"]) == 2
    data = json.loads(capsys.readouterr().out)
    assert data["code"] == code and data["retryable"] is (what == "servfail")
