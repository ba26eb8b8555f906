import json

import pytest

from gateway.cli import main


@pytest.fixture
def cli(db_url, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SENDGW_DATABASE_URL", db_url)
    assert main(["db", "upgrade"]) == 0
    assert main(["tenant", "create", "Acme AS"]) == 0
    return lambda *argv: main(list(argv))


def test_routing_set_show_and_report(cli, capsys, tmp_path):
    capsys.readouterr()
    doc = {"b2c": ["email"], "channels": {"email": {"cost_nok": "0.10", "settings": {
        "host": "smtp.example.no", "from_address": "faktura@example.no", "password": "pw"}}}}
    (tmp_path / "r.json").write_text(json.dumps(doc))
    assert cli("routing", "set", "--tenant", "Acme AS", str(tmp_path / "r.json")) == 0
    capsys.readouterr()
    assert cli("routing", "show", "--tenant", "Acme AS") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["b2c"] == ["email"] and shown["channels"]["email"]["settings"]["password"] == "********"
    # a masked secret sent back keeps the stored one
    (tmp_path / "r2.json").write_text(json.dumps(shown))
    assert cli("routing", "set", "--tenant", "Acme AS", str(tmp_path / "r2.json")) == 0
    capsys.readouterr()
    assert cli("routing", "show", "--tenant", "Acme AS", "--reveal") == 0
    assert json.loads(capsys.readouterr().out)["channels"]["email"]["settings"]["password"] == "pw"
    (tmp_path / "bad.json").write_text('{"b2c": ["fax"]}')
    assert cli("routing", "set", "--tenant", "Acme AS", str(tmp_path / "bad.json")) == 1
    assert "unknown channel" in capsys.readouterr().err
    assert cli("routing", "show", "--tenant", "Nobody") == 1
    assert cli("report", "channels", "--tenant", "Acme AS", "--from", "2026-01-01", "--to", "2026-12-31") == 0
    assert "total" in capsys.readouterr().out
    assert cli("report", "channels", "--tenant", "Acme AS", "--from", "garbage") == 2
