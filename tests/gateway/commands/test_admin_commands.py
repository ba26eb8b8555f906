"""`sendgw db`, `tenant` and `participant` against both database backends."""

import pytest

from gateway.cli import main


@pytest.fixture
def cli(db_url, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SENDGW_DATABASE_URL", db_url)

    def run(*argv):
        return main(list(argv))

    return run


def test_commands_refuse_an_unmigrated_database(cli, capsys):
    assert cli("tenant", "list") == 2
    assert "sendgw db upgrade" in capsys.readouterr().err
    assert cli("db", "status") == 1
    assert cli("db", "upgrade") == 0
    assert cli("db", "status") == 0


def test_tenant_lifecycle(cli, capsys):
    cli("db", "upgrade")
    capsys.readouterr()
    assert cli("tenant", "create", "Acme AS") == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("sgw_")
    assert cli("tenant", "create", "Acme AS") == 1
    assert "already exists" in capsys.readouterr().err
    assert cli("tenant", "token", "Acme AS", "--label", "ci") == 0
    assert capsys.readouterr().out.strip() != token
    assert cli("tenant", "list") == 0
    assert "Acme AS" in capsys.readouterr().out
    assert cli("tenant", "revoke", "Acme AS") == 0
    assert "revoked 2" in capsys.readouterr().out
    assert cli("tenant", "token", "Nobody") == 1


def test_participant_lifecycle(cli, capsys):
    cli("db", "upgrade")
    cli("tenant", "create", "Acme AS")
    capsys.readouterr()
    doctype = ("busdox-docid-qns::urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##"
               "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1")
    assert cli("participant", "add", "0192:923609016", "--tenant", "Acme AS", "--doctype", doctype) == 0
    assert "1 document types" in capsys.readouterr().out
    assert cli("participant", "add", "iso6523-actorid-upis::0192:923609016", "--tenant", "Acme AS") == 1
    assert "already hosted" in capsys.readouterr().err
    assert cli("participant", "add", "0192:923609017", "--tenant", "Acme AS") == 2  # MOD11
    assert "MOD11" in capsys.readouterr().err
    assert cli("participant", "add", "0192:923609016", "--tenant", "Nobody") == 1
    capsys.readouterr()
    assert cli("participant", "list", "--tenant", "Acme AS") == 0
    out = capsys.readouterr().out
    assert "iso6523-actorid-upis::0192:923609016\tAcme AS\t" + doctype in out
    assert cli("participant", "remove", "0192:923609016") == 0
    assert cli("participant", "remove", "0192:923609016") == 1


def test_help_for_every_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("serve", "tenant", "participant", "db", "certs"):
        assert command in out
        with pytest.raises(SystemExit) as exc:
            main([command, "--help"])
        assert exc.value.code == 0
