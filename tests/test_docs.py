"""The documentation keeps up with the code: every setting is documented in its section."""

import dataclasses
import re
import typing
from pathlib import Path

from gateway.config import Settings, _sections

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_setting_is_documented_in_its_section():
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    missing = []
    for name, cls in _sections().items():
        match = re.search(rf"^## `\[{name}\]`.*?(?=^## |\Z)", text, re.S | re.M)
        assert match, f"docs/configuration.md has no section for [{name}]"
        section = match.group(0)
        for f in dataclasses.fields(cls):
            if f"`{f.name}`" not in section:
                missing.append(f"[{name}] {f.name}")
    assert not missing, f"undocumented settings: {missing}"


def test_readme_has_the_two_setup_commands():
    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    assert "./scripts/serve.sh" in readme and "./scripts/test.sh" in readme
    ci = (DOCS.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "./scripts/test.sh" in ci
