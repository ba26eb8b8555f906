"""The operator's view of `sendgw`: every --help, usage errors, and one-line configuration and
database errors (no traceback) from every sub-command; the embedded default answering /health."""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from gateway.cli import build_parser, main
from tests.gateway.server_process import free_port

REPO = Path(__file__).resolve().parents[3]


def _command_paths(parser: argparse.ArgumentParser, prefix=()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths += _command_paths(sub, prefix + (name,))
    return paths


COMMANDS = _command_paths(build_parser())


def test_every_command_is_covered():
    top = {p[0] for p in COMMANDS if p}
    assert {"serve", "validate", "artefacts", "certs", "db", "tenant", "participant", "lookup", "send",
            "routing", "render", "report", "worker"} <= top
    assert ("tenant", "create") in COMMANDS and ("artefacts", "verify") in COMMANDS


def test_the_readme_lists_every_command_and_action():
    """The README's command table: one row per command, its actions in the first cell."""
    rows = [line.split(" | ")[0] for line in (REPO / "README.md").read_text(encoding="utf-8").splitlines()
            if line.startswith("| `sendgw ")]
    for path in (p for p in COMMANDS if p):
        cells = [c for c in rows if c.startswith(f"| `sendgw {path[0]}")]
        assert cells, f"README has no row for sendgw {path[0]}"
        if len(path) == 2:
            assert re.search(rf"\b{path[1]}\b", cells[0]), f"README does not mention sendgw {' '.join(path)}"


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "sendgw")
def test_help_exits_0_and_explains_itself(path, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*path, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: sendgw")
    description = out.split("\n\n")[1]
    assert len(description.split()) >= 3, f"{' '.join(path)} --help has no description"


GROUPS = sorted({p[:-1] for p in COMMANDS if p}, key=len)  # (), ("db",), ("tenant",), ...


@pytest.mark.parametrize("path", GROUPS, ids=lambda p: " ".join(p) or "sendgw")
def test_a_missing_command_or_action_is_a_usage_error_on_stderr(path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(list(path))
    assert exc.value.code == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.startswith("usage: sendgw") and "error: the following arguments are required" in out.err


@pytest.mark.parametrize("argv", [["frob"], ["--frob"], ["db", "status", "--frob"], ["db", "frob"],
                                  ["serve", "--port", "99999"], ["serve", "--port", "http"],
                                  ["tenant", "create"], ["worker", "--only", "nothing"],
                                  ["worker", "--grace", "-1"], ["worker", "--grace", "nan"],
                                  ["send", "doc.xml", "--wait", "--timeout", "-5"]])
def test_usage_errors_exit_2_with_a_usage_line(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: sendgw") and "error:" in err


# Commands that read the configuration, with arguments that get them to that point.
CONFIG_READERS = [
    ["serve"], ["worker"], ["validate", "doc.xml"], ["artefacts", "sync"], ["artefacts", "verify"],
    ["artefacts", "list"], ["certs", "sync", "--from", "."], ["db", "upgrade"], ["db", "status"],
    ["tenant", "list"], ["tenant", "create", "Acme AS"], ["participant", "list"],
    ["lookup", "0192:923609016"], ["routing", "show", "--tenant", "Acme AS"],
    ["report", "channels", "--tenant", "Acme AS"], ["send", "doc.xml", "--token", "t"],
]


@pytest.fixture
def operator(tmp_path, monkeypatch):
    """A working directory with a document, no configuration and no SENDGW_* settings."""
    monkeypatch.chdir(tmp_path)
    for var in list(os.environ):
        if var.startswith("SENDGW_"):
            monkeypatch.delenv(var)
    (tmp_path / "doc.xml").write_text("<Invoice/>")
    return tmp_path


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


BAD_FILES = {
    "malformed": ("[server\n", "bad.toml"),
    "not-a-table": ("server = 5\n", "[server] must be a table"),
    "unknown-key": ("[server]\nprot = 1\n", "unknown key 'prot'"),
    "wrong-type": ("[validation]\nworkers = \"four\"\n", "[validation].workers"),
    "out-of-range": ("[server]\nport = 123456\n", "[server].port"),
}


@pytest.mark.parametrize("argv", CONFIG_READERS, ids=" ".join)
@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_configuration_file_is_exit_2_and_one_line(operator, capsys, argv, case):
    text, fragment = BAD_FILES[case]
    (operator / "bad.toml").write_text(text)
    assert main(["--config", "bad.toml", *argv]) == 2
    line = _one_line(capsys.readouterr().err)
    assert fragment in line and "bad.toml" in line


@pytest.mark.parametrize("argv", CONFIG_READERS, ids=" ".join)
@pytest.mark.parametrize("var, value, fragment", [
    ("SENDGW_VALIDATION_WORKERS", "abc", "expected int"),
    ("SENDGW_OUTBOUND_CONCURRENCY", "-1", "must be more than 0"),
    ("SENDGW_SERVER_PROT", "1", "unknown setting"),
], ids=["abc", "negative", "typo"])
def test_bad_environment_override_is_exit_2_and_one_line(operator, capsys, monkeypatch, argv, var, value, fragment):
    monkeypatch.setenv(var, value)
    assert main(argv) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"${var}" in line and fragment in line


@pytest.mark.parametrize("name, reason", [("missing.toml", "not found"), (".", "is a directory")])
def test_missing_or_directory_config_names_the_path(operator, capsys, name, reason):
    assert main(["--config", name, "tenant", "list"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"configuration file {name} {reason}" in line


DB_COMMANDS = [["db", "upgrade"], ["db", "status"], ["tenant", "list"], ["tenant", "create", "Acme AS"],
               ["participant", "list"], ["routing", "show", "--tenant", "Acme AS"],
               ["report", "channels", "--tenant", "Acme AS"]]


@pytest.mark.parametrize("argv", DB_COMMANDS, ids=" ".join)
@pytest.mark.parametrize("url, fragment", [
    ("not a url", "[database] url 'not a url' is not usable"),
    ("", "[database] url '' is not usable"),
    ("mysql://u:secret@db.example/x", "[database] url 'mysql://u:***@db.example/x' is not usable"),
    ("sqlite:////proc/sendgw/x.db", "cannot create /proc/sendgw"),
    ("sqlite:///.", "unreachable"),  # the database file is a directory
    ("sqlite://", "[database] url 'sqlite://' is an in-memory SQLite database"),
    ("sqlite:///:memory:", "[database] url 'sqlite:///:memory:' is an in-memory SQLite database"),
    ("postgresql://u:secret@127.0.0.1:{port}/x", "database postgresql+psycopg://u:***@127.0.0.1"),
], ids=["garbage", "empty", "no-driver", "no-folder", "directory", "memory", "memory2", "refused"])
def test_unusable_database_is_exit_2_and_one_line(operator, capsys, monkeypatch, argv, url, fragment):
    monkeypatch.setenv("SENDGW_DATABASE_URL", url.format(port=free_port()))
    assert main(argv) == 2
    line = _one_line(capsys.readouterr().err)
    assert fragment in line and "secret" not in line


def test_real_entry_point_reports_a_bad_database_in_one_line(operator):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENDGW_")}
    env.update(SENDGW_DATABASE_URL="nonsense", PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, "-m", "gateway", "tenant", "list"], cwd=operator, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert _one_line(result.stderr).startswith("sendgw: configuration: [database] url 'nonsense'")


def test_serve_on_the_embedded_default_answers_health_and_stops_on_sigterm(operator, artefact_cache):
    """No configuration at all: SQLite under ./var/, 127.0.0.1; only the port and cache are set."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENDGW_")}
    env.update(SENDGW_ARTEFACTS_CACHE=str(artefact_cache), SENDGW_VALIDATION_WORKERS="1",
               PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--port", str(port)], cwd=operator,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, body = time.monotonic() + 60, None
        while body is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
                    body = resp.read()
            except OSError:
                time.sleep(0.2)
        assert body is not None and b'"status": "ok"' in body
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert f"sendgw serving on http://127.0.0.1:{port}" in err
    assert (operator / "var" / "sendgw.db").is_file()


@pytest.mark.parametrize("var, argv, section", [
    ("SENDGW_ARTEFACTS_CACHE", ["artefacts", "sync", "--from", "mirror"], "[artefacts] cache"),
    ("SENDGW_TRUST_CACHE", ["certs", "sync", "--from", "mirror"], "[trust] cache"),
], ids=["artefacts", "certs"])
def test_sync_into_a_cache_that_cannot_be_created_is_exit_2(operator, capsys, monkeypatch, var, argv, section):
    (operator / "mirror").mkdir()
    monkeypatch.setenv(var, str(operator / "doc.xml" / "cache"))  # below a file
    assert main(argv) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"cannot install into {section} {operator / 'doc.xml' / 'cache'}" in line


@pytest.mark.parametrize("option", ["--doctype", "--process"])
def test_lookup_refuses_an_empty_identifier_instead_of_ignoring_it(operator, capsys, option):
    assert main(["lookup", "0192:923609016", option, ""]) == 2
    assert _one_line(capsys.readouterr().err).startswith("invalid identifier: empty:")


@pytest.mark.parametrize("argv", [["serve", "--port", "0"], ["worker"]], ids=" ".join)
@pytest.mark.parametrize("var, name", [("SENDGW_STORAGE_DIRECTORY", "[storage] directory"),
                                       ("SENDGW_AS4_TMP_DIR", "[as4] tmp_dir")], ids=["payloads", "tmp"])
def test_a_folder_that_cannot_be_created_stops_start_up(operator, capsys, monkeypatch, argv, var, name):
    """Found at start, not when the first document arrives and cannot be stored."""
    monkeypatch.setenv(var, str(operator / "doc.xml" / "folder"))
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"sendgw: refusing to start: {name} {operator / 'doc.xml' / 'folder'}: Not a directory" in err
