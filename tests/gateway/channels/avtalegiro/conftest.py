"""Shared fixtures: a claim batch and helpers to mutate 80-character files."""

from __future__ import annotations

import datetime as dt

import pytest

from gateway.channels.avtalegiro.claims import Cancellation, Claim, ClaimBatch

SENDER = "55555555"
ACCOUNT = "15038000001"
TODAY = dt.date(2026, 11, 30)


@pytest.fixture
def batch() -> ClaimBatch:
    return ClaimBatch(
        data_sender=SENDER,
        transmission_number="1000081",
        assignment_number="4000086",
        account=ACCOUNT,
        claims=[
            Claim("008000011688373", 12345, dt.date(2026, 12, 17), "Bjørnstjerne Bjørnson",
                  "Faktura 168837", notify_payer=True,
                  specification=("Gjelder faktura 168837" + " " * 30 + "Forfall 17.12.26", "", "Takk for at du betaler med AvtaleGiro")),
            Claim("008000021688389", 100, dt.date(2026, 12, 20), "Åse Ærø", ""),
        ],
        cancellations=[Cancellation("00800003168831", 500, dt.date(2026, 12, 18), "Ola", "Faktura 1")],
        cancellation_assignment_number="4000087",
    )


def records(data: bytes) -> list[str]:
    text = data.decode("iso-8859-1")
    assert text.endswith("\r\n")
    return text[:-2].split("\r\n")


def patch(data: bytes, record: int, position: int, new: str) -> bytes:
    """Overwrite characters at 1-based record/column of a CRLF file."""
    lines = records(data)
    line = lines[record - 1]
    lines[record - 1] = line[: position - 1] + new + line[position - 1 + len(new):]
    return ("\r\n".join(lines) + "\r\n").encode("iso-8859-1")


def replace_record(data: bytes, record: int, new: str | None) -> bytes:
    lines = records(data)
    if new is None:
        del lines[record - 1]
    else:
        lines[record - 1] = new
    return ("\r\n".join(lines) + "\r\n").encode("iso-8859-1")
