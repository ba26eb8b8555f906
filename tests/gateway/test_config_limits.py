"""Configuration values an operator can get wrong: each is refused with the file/key or variable named."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, load_settings


@pytest.mark.parametrize("text, fragment", [
    ("server = 5\n", "[server] must be a table"),
    ("[server]\nport = 70000\n", "[server].port: must be at most 65535"),
    ("[server]\nport = -1\n", "[server].port: must be at least 0"),
    ("[validation]\nworkers = -2\n", "[validation].workers: must be at least 0"),
    ("[validation]\nmax_bytes = 0\n", "[validation].max_bytes: must be more than 0"),
    ("[validation]\ntimeout_seconds = nan\n", "[validation].timeout_seconds: must be a finite number"),
    ("[outbound]\nfirst_retry_seconds = -inf\n", "[outbound].first_retry_seconds: must be a finite number"),
    ("[database]\npool_size = 0\n", "[database].pool_size: must be more than 0"),
    ("[as4]\nerror_http_status = 99\n", "[as4].error_http_status: must be at least 200"),
    ("[server]\npublic_url = \"ap.example.no\"\n", "[server].public_url: must be an http:// or https://"),
    ("[server]\nas4_path = \"as4\"\n", "[server].as4_path: must start with '/'"),
    ("[storage]\npayloads = \"s3\"\n", "[storage].payloads: must be one of file, database"),
    ("[discovery]\nmode = \"staging\"\n", "[discovery].mode: must be one of test, prod"),
])
def test_out_of_range_file_values_name_file_and_key(tmp_path, text, fragment):
    cfg = tmp_path / "gw.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, env={})
    assert fragment in str(err.value) and "gw.toml" in str(err.value)


@pytest.mark.parametrize("var, value, fragment", [
    ("SENDGW_VALIDATION_WORKERS", "abc", "expected int"),
    ("SENDGW_VALIDATION_WORKERS", "-3", "must be at least 0"),
    ("SENDGW_SERVER_PORT", "65536", "must be at most 65535"),
    ("SENDGW_AS4_MAX_PARTS", "0", "must be more than 0"),
    ("SENDGW_WEBHOOKS_TIMEOUT_SECONDS", "inf", "must be a finite number"),
    ("SENDGW_SERVER_RUN_WORKER", "maybe", "expected bool"),
    ("SENDGW_SERVER_PUBLIC_URL", "ftp://ap.example.no", "http:// or https://"),
    ("SENDGW_SERVER_PUBLIC_URL", "https://[::1", "http:// or https://"),
    ("SENDGW_SERVER_PUBLIC_URL", "https://ap.example.no:https", "http:// or https://"),
    ("SENDGW_SERVER_PROT", "9090", "unknown setting"),
    ("SENDGW_DATABASE_UR", "sqlite:///x.db", "unknown setting"),
])
def test_bad_environment_overrides_name_the_variable(tmp_path, monkeypatch, var, value, fragment):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        load_settings(env={var: value})
    assert f"${var}" in str(err.value) and fragment in str(err.value)


def test_boundary_values_and_foreign_variables_are_accepted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load_settings(env={"SENDGW_SERVER_PORT": "0", "SENDGW_SERVER_PROCESSES": "0",
                           "SENDGW_VALIDATION_WORKERS": "0", "SENDGW_AS4_SPILL_BYTES": "0",
                           "SENDGW_OUTBOUND_FIRST_RETRY_SECONDS": "0", "SENDGW_SERVER_PUBLIC_URL": "https://ap.example.no",
                           "SENDGW_URL": "http://x", "SENDGW_TOKEN": "t", "SENDGW_TEST_DATABASES": "sqlite"})
    assert (s.server.port, s.server.processes, s.validation.workers, s.as4.spill_bytes) == (0, 0, 0, 0)
    assert s.server.public_url == "https://ap.example.no"
    assert load_settings(env={"SENDGW_DISCOVERY_MODE": "PROD"}).discovery.mode == "PROD"  # lookup lower-cases it


def test_a_directory_is_not_a_configuration_file(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        load_settings(tmp_path, env={})


def test_a_missing_file_named_by_sendgw_config_says_so(tmp_path):
    with pytest.raises(ConfigError, match=r"nope.toml \(from \$SENDGW_CONFIG\) not found"):
        load_settings(env={"SENDGW_CONFIG": str(tmp_path / "nope.toml")})


def test_a_byte_order_mark_is_not_a_syntax_error(tmp_path):
    cfg = tmp_path / "gw.toml"
    cfg.write_bytes(b"\xef\xbb\xbf[server]\nport = 9000\n")
    assert load_settings(cfg, env={}).server.port == 9000
