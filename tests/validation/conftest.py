"""Fixtures for the validation engine tests: one Validator per session (stylesheets compile once)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def validator(artefact_cache: Path):
    from validation.engine import Validator

    return Validator(artefact_cache)


@pytest.fixture(scope="session")
def conformance(shared_dir: Path) -> Path:
    return shared_dir / "conformance"


@pytest.fixture(scope="session")
def base_example(conformance: Path) -> bytes:
    return (conformance / "peppol-bis-billing-3/3.0.21/examples/base-example.xml").read_bytes()
