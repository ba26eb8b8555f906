"""Print channel: preflight, atomic idempotent drop with manifest, print-house simulator, status files."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json

import pikepdf
import pytest

from gateway.channels.base import ChannelError, PostalAddress, Recipient, Rendered
from gateway.channels.print import PrintAdapter, PrintConfig
from gateway.channels.print import dropdir
from gateway.channels.print.adapter import PrintJob, render_print_pdf, with_postal_address
from gateway.channels.print.dropdir import address_problems, build_manifest, file_stem, parse_status
from gateway.channels.print.preflight import ExpectedAddress, PreflightRules, preflight_pdf
from gateway.channels.print.simulator import PrintHouseSimulator, next_working_day
from tests.gateway.channels.b2c_helpers import make_request

KARI = Recipient(name="Kari Nordmann", address=PostalAddress(("Storgata 1", "Leil. H0203"), "0155", "Oslo"))
FIXED_NOW = dt.datetime(2026, 11, 27, 14, 0, tzinfo=dt.timezone.utc)  # a Friday


@pytest.fixture
def dirs(tmp_path):
    out, inc = tmp_path / "drop", tmp_path / "incoming"
    out.mkdir()
    inc.mkdir()
    return out, inc


@pytest.fixture
def house(dirs):
    return PrintHouseSimulator(dirs[0], dirs[1], undeliverable={"Ola Flyttet"}, clock=lambda: FIXED_NOW)


def adapter_for(dirs, **over) -> PrintAdapter:
    return PrintAdapter(PrintConfig.from_dict({"outgoing_dir": dirs[0], "incoming_dir": dirs[1],
                                               "provider": "Test Trykk AS", **over}))


@pytest.fixture(scope="module")
def kari_pdf(shared_dir):
    req = make_request(shared_dir)
    return render_print_pdf(with_postal_address(req.invoice, KARI.name, KARI.address))


def raw_pdf(*, size=(595.28, 841.89), content: bytes = b"", embedded_font: bool = False, pages: int = 1,
            version: str | None = None, encrypt: pikepdf.Encryption | None = None) -> bytes:
    pdf = pikepdf.new()
    for _ in range(pages):
        pdf.add_blank_page(page_size=size)
    if content:
        font = pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica)
        pdf.pages[0].obj.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=pdf.make_indirect(font)))
        pdf.pages[0].obj.Contents = pdf.make_stream(content)
    out = io.BytesIO()
    pdf.save(out, min_version=version or "", encryption=encrypt or False)
    return out.getvalue()


WINDOW_TEXT = (b"BT /F1 11 Tf 60 650 Td (Kari Nordmann) Tj 0 -13 Td (Storgata 1) Tj "
               b"0 -13 Td (0155 Oslo) Tj ET")


# ----------------------------------------------------------------------------- preflight


def test_preflight_accepts_our_print_pdf(kari_pdf):
    result = preflight_pdf(kari_pdf, address=ExpectedAddress("Kari Nordmann", "0155", "Oslo"))
    assert result.ok, result.problems
    assert result.pages >= 1 and result.version <= "1.7"


def test_preflight_problems(kari_pdf):
    cases = {
        "not A4": raw_pdf(size=(612, 792)),
        "not embedded": raw_pdf(content=WINDOW_TEXT),
        "version 2.0": raw_pdf(version="2.0"),
        "encrypted": raw_pdf(encrypt=pikepdf.Encryption(owner="o", user="u")),
        "exceed the envelope": raw_pdf(pages=13),
        "not a readable PDF": b"%PDF-1.4 garbage",
    }
    for expected, pdf in cases.items():
        problems = " | ".join(preflight_pdf(pdf).problems)
        assert expected in problems, (expected, problems)
    empty_encrypted = raw_pdf(encrypt=pikepdf.Encryption(owner="o", user=""))
    assert "encrypted" in " ".join(preflight_pdf(empty_encrypted).problems)
    wrong = preflight_pdf(kari_pdf, address=ExpectedAddress("Per Hansen", "5003", "Bergen"))
    assert any("envelope window" in p and "5003 Bergen" in p for p in wrong.problems)


def test_preflight_barcode_margin(kari_pdf):
    strict = preflight_pdf(kari_pdf, PreflightRules(barcode_margin_mm=25))  # our text starts at 20 mm
    assert any("barcode margin" in p for p in strict.problems)


# ----------------------------------------------------------------------------- reachability


async def test_reachability_needs_complete_address(dirs):
    adapter = adapter_for(dirs)
    assert (await adapter.reachability(Recipient(name="Kari"))).reason == "no-address"
    bad = await adapter.reachability(Recipient(name="Kari", address=PostalAddress(("Anystreet 8",), "101", "Anytown")))
    assert not bad.reachable and bad.reason == "incomplete-address" and "4 digits" in bad.detail
    nameless = await adapter.reachability(Recipient(address=KARI.address))
    assert not nameless.reachable and "name" in nameless.detail
    ok = await adapter.reachability(KARI)
    assert ok.reachable and "0155 Oslo" in ok.reference
    assert (await adapter.reachability(KARI)).cached
    foreign = await adapter.reachability(Recipient(name="Anna", address=PostalAddress(("Gatan 1",), "11122", "Stockholm", "SE")))
    assert foreign.reachable
    assert address_problems("X", PostalAddress(("a",), "0155", "Oslo", "Norway"))  # not alpha-2


async def test_missing_address_cannot_render(dirs, shared_dir):
    adapter = adapter_for(dirs)
    with pytest.raises(ChannelError) as err:
        adapter.render(make_request(shared_dir, recipient=Recipient(name="Kari")))
    assert err.value.code == "incomplete-address" and not err.value.transient
    assert list(dirs[0].iterdir()) == []


# ----------------------------------------------------------------------------- end to end


async def test_success_postmarked(dirs, house, shared_dir):
    adapter = adapter_for(dirs, postage="A", duplex=False, return_address=["Salescompany ltd.", "Postboks 1, 0101 Oslo"])
    req = make_request(shared_dir, delivery_id="dlv-print-1", recipient=KARI)
    assert (await adapter.reachability(req.recipient)).reachable
    rendered = adapter.render(req)
    result = await adapter.submit(rendered)
    assert result.state == "accepted" and result.channel_ref == "dlv-print-1"

    names = sorted(p.name for p in dirs[0].iterdir() if not p.name.startswith("."))
    assert names == ["dlv-print-1.json", "dlv-print-1.pdf"]
    assert not [p for p in dirs[0].iterdir() if p.name.endswith(".tmp")]
    manifest = json.loads((dirs[0] / "dlv-print-1.json").read_text())
    assert manifest["format"] == "sendgw-print-manifest/1" and manifest["document"] == "dlv-print-1.pdf"
    assert manifest["recipient"] == {"name": "Kari Nordmann", "address_lines": ["Storgata 1", "Leil. H0203"],
                                     "postcode": "0155", "city": "Oslo", "country": "NO"}
    assert manifest["print"] == {"colour": False, "duplex": False, "postage": "A", "envelope": "C5"}
    assert manifest["sender"]["return_address"] == ["Salescompany ltd.", "Postboks 1, 0101 Oslo"]
    assert manifest["invoice"]["kid"] == "0003434323213231" and manifest["pages"] == rendered.summary["pages"]
    pdf = (dirs[0] / "dlv-print-1.pdf").read_bytes()
    assert pdf == rendered.payload.pdf
    assert await adapter.track("dlv-print-1") == []

    assert house.process() == 1
    assert house.failed == [] and len(house.printed) == 1
    assert not (dirs[0] / "dlv-print-1.json").exists()  # picked up
    events = await adapter.track("dlv-print-1")
    assert [e.state for e in events] == ["accepted", "delivered"]
    assert events[1].at == next_working_day(FIXED_NOW) == dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.timezone.utc)


async def test_polling_print_house_and_return(dirs, house, shared_dir):
    adapter = adapter_for(dirs)
    ola = Recipient(name="Ola Flyttet", address=PostalAddress(("Gamleveien 2",), "5003", "Bergen"))
    await house.start(interval=0.02)
    try:
        await adapter.submit(adapter.render(make_request(shared_dir, delivery_id="dlv-ret", recipient=ola)))
        for _ in range(200):
            if len(await adapter.track("dlv-ret")) == 3:
                break
            await asyncio.sleep(0.02)
    finally:
        await house.stop()
    assert [e.state for e in await adapter.track("dlv-ret")] == ["accepted", "delivered", "returned"]


async def test_invalid_pdf_refused_by_adapter_and_failed_by_print_house(dirs, house, shared_dir):
    adapter = adapter_for(dirs, pdf_source="request")
    req = make_request(shared_dir, delivery_id="dlv-bad", recipient=KARI, pdf=raw_pdf(content=WINDOW_TEXT))
    with pytest.raises(ChannelError) as err:
        adapter.render(req)
    assert err.value.code == "preflight-failed" and "not embedded" in err.value.message and not err.value.transient

    # a job that slipped past (e.g. written by an older version): the print house fails it
    good = adapter_for(dirs).render(make_request(shared_dir, recipient=KARI)).payload.pdf
    jobs = {
        "dlv-letter": (raw_pdf(size=(612, 792)), KARI.address),
        "dlv-font": (raw_pdf(content=WINDOW_TEXT), KARI.address),
        "dlv-postcode": (good, PostalAddress(("Storgata 1",), "155", "Oslo")),
        "dlv-window": (good, PostalAddress(("Bryggen 3",), "5003", "Bergen")),
    }
    for stem, (pdf, address) in jobs.items():
        manifest = build_manifest(delivery_id=stem, stem=stem, pdf=pdf, pages=len(pikepdf.open(io.BytesIO(pdf)).pages),
                                  recipient_name="Kari Nordmann", address=address, sender={"name": "X"},
                                  options={"colour": False, "duplex": True, "postage": "B", "envelope": "C5"},
                                  invoice={})
        await adapter.submit(Rendered(stem, "print", PrintJob(stem, pdf, manifest)))
    house.process()
    failures = dict(house.failed)
    assert "not A4" in failures["dlv-letter"] and "not embedded" in failures["dlv-font"]
    assert "postcode" in failures["dlv-postcode"] and "5003 Bergen" in failures["dlv-window"]
    assert house.printed == []
    for stem in jobs:
        events = await adapter.track(stem)
        assert [e.state for e in events] == ["failed"] and "print provider: failed" in events[0].detail


async def test_idempotent_redrop(dirs, house, shared_dir, monkeypatch):
    adapter = adapter_for(dirs)
    req = make_request(shared_dir, delivery_id="dlv-once", recipient=KARI)
    order = []
    real_write = dropdir.atomic_write

    def spy(path, data, **kw):
        order.append(path.name)
        return real_write(path, data, **kw)

    monkeypatch.setattr("gateway.channels.print.adapter.atomic_write", spy)
    first = adapter.render(req)
    await adapter.submit(first)
    assert order == ["dlv-once.pdf", "dlv-once.json", "dlv-once.json"]  # PDF, manifest last, then ledger
    before = {p.name: p.read_bytes() for p in dirs[0].iterdir() if p.is_file()}
    again = await adapter.submit(adapter.render(req))  # re-rendered PDF differs in its timestamps
    assert "already handed over" in again.detail
    assert {p.name: p.read_bytes() for p in dirs[0].iterdir() if p.is_file()} == before
    house.process()
    third = await adapter.submit(first)  # after pick-up: still no second letter
    assert "already handed over" in third.detail
    assert not (dirs[0] / "dlv-once.json").exists()
    house.process()
    assert len(house.printed) == 1
    assert adapter.handed_over("dlv-once")["delivery_id"] == "dlv-once"


async def test_crash_between_pdf_and_manifest_is_completed(dirs, shared_dir):
    adapter = adapter_for(dirs)
    rendered = adapter.render(make_request(shared_dir, delivery_id="dlv-crash", recipient=KARI))
    (dirs[0] / "dlv-crash.pdf").write_bytes(b"%PDF-1.7 half written")
    await adapter.submit(rendered)
    assert (dirs[0] / "dlv-crash.pdf").read_bytes() == rendered.payload.pdf
    assert (dirs[0] / "dlv-crash.json").exists()


async def test_drop_unwritable_is_transient(tmp_path, shared_dir):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    adapter = PrintAdapter(PrintConfig.from_dict({"outgoing_dir": blocker, "incoming_dir": tmp_path / "in"}))
    with pytest.raises(ChannelError) as err:
        await adapter.submit(adapter.render(make_request(shared_dir, recipient=KARI)))
    assert err.value.code == "drop-failed" and err.value.transient


def test_status_files_and_names():
    ok = parse_status(b'{"format":"sendgw-print-status/1","delivery_id":"d","state":"postmarked","at":"2026-11-30T08:00:00Z"}')
    assert ok.event.state == "delivered" and ok.event.at.tzinfo is not None
    for bad in (b"{}", b"nope", b'{"format":"sendgw-print-status/1","delivery_id":"d","state":"lost","at":"2026-11-30"}',
                b'{"format":"sendgw-print-status/1","delivery_id":"d","state":"failed","at":"yesterday"}'):
        with pytest.raises(ValueError):
            parse_status(bad)
    assert file_stem("dlv-1") == "dlv-1"
    assert file_stem("../../etc/passwd").startswith("d-") and file_stem("a/b") == file_stem("a/b")
    assert file_stem(".hidden").startswith("d-")


def test_config_validation(tmp_path):
    with pytest.raises(ValueError, match="required"):
        PrintConfig.from_dict({"outgoing_dir": tmp_path})
    with pytest.raises(ValueError, match="postage"):
        PrintConfig.from_dict({"outgoing_dir": tmp_path, "incoming_dir": tmp_path, "postage": "C"})
    with pytest.raises(ValueError, match="unknown"):
        PrintConfig.from_dict({"outgoing_dir": tmp_path, "incoming_dir": tmp_path, "colour_mode": "x"})
