"""`sendgw validate` exit codes and output, and `sendgw artefacts sync|verify|list`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import main

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def cli(artefact_cache, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SENDGW_ARTEFACTS_CACHE", str(artefact_cache))
    monkeypatch.delenv("SENDGW_ARTEFACTS_MIRROR", raising=False)
    monkeypatch.delenv("SENDGW_VALIDATION_DEFAULT_RULES", raising=False)

    def run(*argv):
        return main([str(a) for a in argv])

    return run


@pytest.fixture
def files(shared_dir, tmp_path):
    base = (shared_dir / "conformance/peppol-bis-billing-3/3.0.21/examples/base-example.xml").read_bytes()
    out = {}
    for name, data in {
        "valid.xml": base,
        "invalid.xml": base.replace(b"<cbc:Name>SupplierTradingName Ltd.</cbc:Name>", b"<cbc:Name/>", 1),
        "quantity.xml": base.replace(b'unitCode="DAY">7<', b'unitCode="DAY">seven<', 1),
        "notxml.xml": b"this is not xml",
        "unknown.xml": b"<Waybill xmlns='urn:example'/>",
        "dtd.xml": b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
    }.items():
        (tmp_path / name).write_bytes(data)
        out[name] = tmp_path / name
    return out


def _one_line(err: str) -> bool:
    return len(err.strip().splitlines()) == 1


def test_valid_file_exits_0_with_the_json_report(cli, files, capsys):
    assert cli("validate", files["valid.xml"], "--format", "json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is True and report["rules"] == "peppol-billing-invoice@3.0.21"
    assert {"valid", "rules", "artefacts", "errors", "warnings"} <= set(report)


def test_invalid_file_exits_1(cli, files, capsys):
    assert cli("validate", files["invalid.xml"], "--format", "json") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False and report["errors"][0]["rule"] == "PEPPOL-EN16931-R008"


def test_xsd_invalid_with_dynamic_error_exits_1_not_a_crash(cli, files, capsys):
    assert cli("validate", files["quantity.xml"], "--format", "json") == 1
    out = capsys.readouterr()
    report = json.loads(out.out)
    assert {i["rule"] for i in report["errors"]} == {"XSD", "DYNAMIC-ERROR"}


@pytest.mark.parametrize("name, code", [("notxml.xml", "not-xml"), ("unknown.xml", "unknown-document-type"),
                                        ("dtd.xml", "forbidden-xml")])
def test_unusable_input_exits_2_with_one_line(cli, files, capsys, name, code):
    assert cli("validate", files[name]) == 2
    out = capsys.readouterr()
    assert out.out == "" and _one_line(out.err) and code in out.err and name in out.err


def test_unreadable_file_exits_2(cli, tmp_path, capsys):
    assert cli("validate", tmp_path / "missing.xml") == 2
    err = capsys.readouterr().err
    assert _one_line(err) and "missing.xml" in err and "cannot read" in err


def test_unknown_rule_set_exits_2(cli, files, capsys):
    assert cli("validate", files["valid.xml"], "--rules", "peppol-billing-invoice@0.0.1") == 2
    assert "unknown-rule-set" in capsys.readouterr().err


def test_several_files_worst_status_wins(cli, files, capsys):
    assert cli("validate", files["valid.xml"], files["invalid.xml"], "--format", "json") == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert [json.loads(x)["valid"] for x in lines] == [True, False]
    assert json.loads(lines[0])["file"].endswith("valid.xml")
    assert cli("validate", files["valid.xml"], files["invalid.xml"], files["notxml.xml"], "--format", "json") == 2


def test_rules_and_at_options(cli, files, capsys):
    assert cli("validate", files["valid.xml"], "--at", "2025-09-01", "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["rules"] == "peppol-billing-invoice@3.0.19"
    assert cli("validate", files["valid.xml"], "--rules", "en16931-ubl-invoice@1.3.16", "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["rules"] == "en16931-ubl-invoice@1.3.16"


def test_text_format(cli, files, capsys):
    assert cli("validate", files["invalid.xml"], "--format", "text") == 1
    text = capsys.readouterr().out
    assert "INVALID" in text and "PEPPOL-EN16931-R008" in text and "line " in text


def test_svrl_format(cli, files, capsysbinary):
    assert cli("validate", files["invalid.xml"], "--format", "svrl") == 1
    out = capsysbinary.readouterr().out
    assert out.startswith(b"<?xml") and b"svrl:failed-assert" in out


def test_real_process_stderr_stays_clean(artefact_cache, files, tmp_path):
    """The installed command: exit codes, and Saxon's own error chatter never reaches stderr."""
    env = {"SENDGW_ARTEFACTS_CACHE": str(artefact_cache), "PATH": "/usr/bin:/bin"}
    cmd = [sys.executable, "-m", "gateway", "validate", "--format", "json"]
    res = subprocess.run(cmd + [str(files["quantity.xml"])], capture_output=True, cwd=tmp_path, env=env, timeout=120,
                         text=True)
    assert res.returncode == 1 and res.stderr == "" and '"DYNAMIC-ERROR"' in res.stdout
    res = subprocess.run(cmd + [str(files["notxml.xml"])], capture_output=True, cwd=tmp_path, env=env, timeout=120,
                         text=True)
    assert res.returncode == 2 and _one_line(res.stderr) and res.stdout == ""


# -- sendgw artefacts ------------------------------------------------------------------------------
@pytest.fixture
def fresh(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SENDGW_ARTEFACTS_CACHE", raising=False)
    monkeypatch.delenv("SENDGW_ARTEFACTS_MIRROR", raising=False)
    return tmp_path


def test_artefacts_sync_verify_list(fresh, shared_dir, capsys, monkeypatch):
    assert main(["artefacts", "sync", "--from", str(shared_dir / "artefacts")]) == 0
    assert "109 installed" in capsys.readouterr().out
    assert (fresh / "var/artefacts/ubl-2.1/xsd/maindoc/UBL-Invoice-2.1.xsd").is_file()
    monkeypatch.setenv("SENDGW_ARTEFACTS_MIRROR", str(shared_dir / "artefacts"))
    assert main(["artefacts", "sync", "--quiet"]) == 0
    assert capsys.readouterr() == ("", "")
    assert main(["artefacts", "verify"]) == 0
    capsys.readouterr()
    assert main(["artefacts", "list", "--at", "2026-11-30"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("peppol-billing-invoice@3.0.21 "))
    assert "3.0.21" in line and "2026-08-24" in line and "active" in line
    assert "superseded" in next(x for x in out.splitlines() if x.startswith("peppol-billing-invoice@3.0.19 "))
    assert main(["artefacts", "list", "--json", "--at", "2026-06-01"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)["rule_sets"]}
    assert rows["peppol-billing-invoice@3.0.21"]["status"] == "upcoming" and len(rows) == 47


def test_artefacts_sync_refuses_a_tampered_mirror(fresh, shared_dir, capsys):
    mirror = fresh / "mirror"
    shutil.copytree(shared_dir / "artefacts", mirror)
    victim = mirror / "ubl-2.1/xsd/common/UBL-CommonAggregateComponents-2.1.xsd"
    victim.write_bytes(victim.read_bytes().replace(b"minOccurs=\"0\"", b"minOccurs=\"1\"", 1))
    assert main(["artefacts", "sync", "--from", str(mirror)]) == 1
    err = capsys.readouterr().err
    assert _one_line(err) and "UBL-CommonAggregateComponents-2.1.xsd" in err
    assert not (fresh / "var/artefacts/ubl-2.1").exists()


def test_artefacts_verify_names_a_damaged_file(fresh, shared_dir, capsys):
    assert main(["artefacts", "sync", "--quiet", "--from", str(shared_dir / "artefacts")]) == 0
    (fresh / "var/artefacts/peppol-poacc-3/3.0.17/xslt/PEPPOLBIS-T01.xslt").unlink()
    assert main(["artefacts", "verify"]) == 1
    assert "PEPPOLBIS-T01.xslt" in capsys.readouterr().err
    order = shared_dir / "conformance/peppol-poacc-3/3.0.17/examples/Order_Example.xml"
    assert main(["validate", "--format", "json", str(order)]) == 2  # a missing artefact: unusable, named
    err = capsys.readouterr().err
    assert _one_line(err) and "PEPPOLBIS-T01.xslt" in err and "artefacts sync" in err


def test_help_texts():
    for argv in (["validate", "--help"], ["artefacts", "--help"], ["artefacts", "sync", "--help"],
                 ["artefacts", "list", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
