"""docs/configuration.md lists exactly the settings gateway/config.py reads, with their defaults."""

from __future__ import annotations

import dataclasses
import re
import tomllib
import typing
from pathlib import Path

import pytest

from gateway import config

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "configuration.md"
NOT_SETTINGS = {"SENDGW_CONFIG", "SENDGW_URL", "SENDGW_TOKEN", "SENDGW_SHARED_DIR"}


def documented() -> dict[str, dict[str, str]]:
    """{section: {key: default as written}} from the tables under each ## `[section]` heading."""
    tables: dict[str, dict[str, str]] = {}
    section = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^## `\[([a-z0-9_]+)\]`", line)
        if heading:
            section = tables.setdefault(heading.group(1), {})
        elif line.startswith("## "):
            section = None
        elif section is not None:
            row = re.match(r"^\| `([a-z0-9_]+)` \| `(.*?)` \|", line)
            if row:
                section[row.group(1)] = row.group(2)
    return tables


def in_code() -> dict[str, dict[str, object]]:
    return {name: {f.name: getattr(cls(), f.name) for f in dataclasses.fields(cls)}
            for name, cls in config._sections().items()}


def test_every_section_and_key_is_documented_and_nothing_else():
    docs, code = documented(), in_code()
    assert sorted(docs) == sorted(code)
    for section in code:
        assert sorted(docs[section]) == sorted(code[section]), f"[{section}]"


@pytest.mark.parametrize("section, key", [(s, k) for s, keys in in_code().items() for k in keys])
def test_documented_default_and_type_match_the_code(section, key):
    written = documented()[section][key]
    value = tomllib.loads(f"v = {written}")["v"]
    default = in_code()[section][key]
    assert value == default and type(value) is type(default), f"[{section}] {key}: docs say {written}"


def test_every_documented_environment_variable_is_a_setting():
    names = set()
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        names |= set(re.findall(r"SENDGW_[A-Z0-9_]*[A-Z0-9](?![_A-Z0-9<])", page.read_text(encoding="utf-8")))
    code = in_code()
    for name in sorted(names - NOT_SETTINGS):
        if name.startswith("SENDGW_TEST_"):
            continue  # the test suite's own switches
        match = [(s, name[len(f"SENDGW_{s.upper()}_"):].lower()) for s in code
                 if name.startswith(f"SENDGW_{s.upper()}_")]
        assert match, f"{name} names no section"
        section, key = match[0]
        assert key in code[section], f"{name}: no key {key!r} in [{section}]"


SPECIAL = {("server", "public_url"): ("https://ap.example.no", "https://ap.example.no"),
           ("server", "as4_path"): ("/x", "/x"), ("storage", "payloads"): ("database", "database"),
           ("discovery", "mode"): ("prod", "prod"), ("revocation", "mode"): ("ocsp", "ocsp"),
           ("as4", "not_serviced_http_status"): ("202", 202),
           ("as4", "error_http_status"): ("202", 202)}


def test_environment_overrides_reach_every_key(tmp_path, monkeypatch):
    """SENDGW_<SECTION>_<KEY> works for every documented key (the docs promise it for all)."""
    monkeypatch.chdir(tmp_path)
    samples = {bool: ("true", True), int: ("7", 7), float: ("7.5", 7.5), str: ("x", "x")}
    for section, keys in in_code().items():
        hints = typing.get_type_hints(config._sections()[section])
        for key in keys:
            hint = hints[key]
            raw, expected = samples.get(hint, ("a,b", ["a", "b"]))
            raw, expected = SPECIAL.get((section, key), (raw, expected))
            settings = config.load_settings(env={f"SENDGW_{section.upper()}_{key.upper()}": raw})
            assert getattr(getattr(settings, section), key) == expected, f"[{section}] {key}"
