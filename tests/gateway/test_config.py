from pathlib import Path

import pytest

from gateway.config import ConfigError, describe, load_settings


def test_defaults_start_embedded_gateway(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load_settings(env={})
    assert (s.server.host, s.server.port) == ("127.0.0.1", 8080)
    assert s.database.url == "sqlite:///var/sendgw.db"
    assert s.validation.max_bytes == 100 * 1024 * 1024
    assert s.trust.ap_anchors == ["peppol-test"]


def test_toml_file_and_relative_paths(tmp_path):
    cfg = tmp_path / "conf" / "gw.toml"
    cfg.parent.mkdir()
    cfg.write_text('[server]\nport = 9090\n[ap]\nseat_id = "PNO000001"\nkey = "ap.key.pem"\n'
                   '[trust]\nap_anchors = ["peppol-prod", "ca.pem"]\n'
                   '[routes."0192:923609016"]\nurl = "https://ap.example/as4"\ncertificate = "x.pem"\n')
    s = load_settings(cfg, env={})
    assert s.server.port == 9090
    assert s.ap.seat_id == "PNO000001"
    assert s.path(s.ap.key) == cfg.parent.resolve() / "ap.key.pem"
    assert s.trust.ap_anchors == ["peppol-prod", "ca.pem"]
    assert s.routes["0192:923609016"]["url"] == "https://ap.example/as4"


def test_default_file_is_picked_up(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sendgw.toml").write_text("[server]\nport = 8181\n")
    assert load_settings(env={}).server.port == 8181


def test_environment_overrides_file(tmp_path):
    cfg = tmp_path / "gw.toml"
    cfg.write_text("[server]\nport = 9090\n")
    env = {"SENDGW_SERVER_PORT": "9191", "SENDGW_TRUST_AP_ANCHORS": "peppol-prod, /x/ca.pem",
           "SENDGW_SERVER_RUN_WORKER": "false", "SENDGW_DATABASE_URL": "postgresql://db/x",
           "SENDGW_UNRELATED": "ignored"}
    s = load_settings(cfg, env=env)
    assert s.server.port == 9191
    assert s.server.run_worker is False
    assert s.trust.ap_anchors == ["peppol-prod", "/x/ca.pem"]
    assert s.database.url == "postgresql://db/x"


def test_config_path_from_environment(tmp_path):
    cfg = tmp_path / "other.toml"
    cfg.write_text("[server]\nport = 7000\n")
    assert load_settings(env={"SENDGW_CONFIG": str(cfg)}).server.port == 7000


@pytest.mark.parametrize("text, fragment", [
    ("[server]\nprot = 1\n", "unknown key 'prot'"),
    ("[nosuch]\na = 1\n", "unknown section [nosuch]"),
    ("[server]\nport = 'eighty'\n", "server].port"),
    ("[server\n", "gw.toml"),
])
def test_bad_files_name_the_problem(tmp_path, text, fragment):
    cfg = tmp_path / "gw.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, env={})
    assert fragment in str(err.value)


def test_bad_environment_value_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="SENDGW_SERVER_PORT"):
        load_settings(env={"SENDGW_SERVER_PORT": "x"})


def test_missing_explicit_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml", env={})


def test_describe_masks_secrets():
    s = load_settings(env={"SENDGW_AP_PASSWORD": "hunter2"})
    assert describe(s)["ap"]["password"] == "********"
