"""SMS text rules: GSM-7 vs UCS-2, segment counting, numbers and sender ids, DLR parsing."""

from __future__ import annotations

import pytest

from gateway.channels.sms.dlr import DlrError, parse_delivery_report, read_delivery_report
from gateway.channels.sms.numbers import is_norwegian_mobile, normalize_msisdn, sender_ton
from gateway.channels.sms.text import render_notice_text, segment_info, to_gsm_friendly
from gateway.channels.notice import PaymentNotice


@pytest.mark.parametrize("text,encoding,units,segments", [
    ("", "GSM-7", 0, 0),
    ("a" * 160, "GSM-7", 160, 1),
    ("a" * 161, "GSM-7", 161, 2),
    ("a" * 306, "GSM-7", 306, 2),
    ("a" * 307, "GSM-7", 307, 3),
    ("æøåÆØÅ" * 26 + "abcd", "GSM-7", 160, 1),  # Norwegian letters are in the basic set
    ("€" * 80, "GSM-7", 160, 1),  # extension characters cost two septets
    ("€" * 81, "GSM-7", 162, 2),
    ("a" * 152 + "€", "GSM-7", 154, 1),  # still one SMS (≤ 160 septets)
    ("ł" * 70, "UCS-2", 70, 1),
    ("ł" + "a" * 70, "UCS-2", 71, 2),
    ("ł" * 134, "UCS-2", 134, 2),
    ("ł" * 135, "UCS-2", 135, 3),
])
def test_segment_counting(text, encoding, units, segments):
    info = segment_info(text)
    assert (info.encoding, info.units, info.segments) == (encoding, units, segments)


def test_extension_pair_moves_to_next_part():
    # 153 septets fit per part; 152 plain + an ESC pair needs 154 → 2 parts, and 153+153 boundary
    assert segment_info("a" * 305 + "€").segments == 3
    assert segment_info("a" * 304 + "€").segments == 2


def test_gsm_friendly_replacements():
    assert to_gsm_friendly("Kari’s «faktura» – 1\u00a0234") == "Kari's \"faktura\" - 1 234"
    assert to_gsm_friendly("Takk 😀") == "Takk "
    assert segment_info(to_gsm_friendly("Ærlig talt – “Bø”")).encoding == "GSM-7"


def test_notice_text_has_payment_facts_and_link():
    n = PaymentNotice("Faktura", "123", "Leverandør AS", "Kari", "kr 1 234,50", "20.12.2026",
                      "1234.56.78903", "0003434323213231", True)
    text = render_notice_text(n, "https://f.example.no/d/dlv-1")
    assert text == ("Faktura 123 fra Leverandør AS: kr 1 234,50, forfall 20.12.2026. "
                    "Konto 1234.56.78903, KID 0003434323213231. https://f.example.no/d/dlv-1")
    info = segment_info(text)
    assert info.encoding == "GSM-7" and info.segments == 1
    credit = render_notice_text(PaymentNotice("Kreditnota", "9", "X AS", None, "kr 10,00", None, None, None, False), None)
    assert credit == "Kreditnota 9 fra X AS: kr 10,00 til gode."


@pytest.mark.parametrize("raw,expected", [
    ("+47 912 34 567", "+4791234567"), ("0047 41234567", "+4741234567"), ("91234567", "+4791234567"),
    ("+46701234567", "+46701234567"), ("5121230", None), ("+47abc", None), ("", None), (None, None),
    ("+0123456789", None),
])
def test_normalize_msisdn(raw, expected):
    assert normalize_msisdn(raw) == expected


def test_norwegian_mobile_numbering_plan():
    assert is_norwegian_mobile("+4791234567") and is_norwegian_mobile("+4741234567")
    assert not is_norwegian_mobile("+4722334455")  # Oslo fixed line
    assert not is_norwegian_mobile("+479123456")  # too short
    assert not is_norwegian_mobile("+46701234567")


def test_sender_rules():
    assert sender_ton("Leverandor") == "ALPHANUMERIC"
    assert sender_ton("+4791234567") == "MSISDN"
    assert sender_ton("2270") == "SHORTNUMBER"
    for bad in ("A", "Leverandoren1", "Leverandør", "1Faktura", "Lev AS", "+47"):
        with pytest.raises(ValueError):
            sender_ton(bad)


def test_parse_delivery_report_json_and_form():
    body = (b'{"refId":"dlv-1","id":"abc123$1","operator":"no.telia","sentTimestamp":"2026-11-30T10:00:00Z",'
            b'"timestamp":"2026-11-30T10:00:05Z","resultCode":1001,"operatorResultCode":"0","segments":2}')
    report = read_delivery_report(body, "application/json")
    assert (report.message_id, report.part, report.ref_id, report.final) == ("abc123", 1, "dlv-1", True)
    assert report.event.state == "delivered" and report.event.at.isoformat() == "2026-11-30T10:00:05+00:00"
    assert parse_delivery_report(b'{"id":"x","resultCode":1006}').state == "failed"
    interim = read_delivery_report(b'{"id":"x","resultCode":1000}')
    assert interim.event.state == "accepted" and not interim.final
    assert parse_delivery_report(b"id=x&resultCode=2104&refId=d", "application/x-www-form-urlencoded").state == "failed"
    assert parse_delivery_report({"id": "x", "resultCode": 1002}).state == "failed"
    for bad in (b"not json", b'{"resultCode":1001}', b'{"id":"x"}', b'[1]'):
        with pytest.raises(DlrError):
            read_delivery_report(bad)


async def test_multipart_fold_needs_every_part():
    from gateway.channels.sms import SmsAdapter, SmsConfig
    from gateway.channels.sms.adapter import _Tracked

    adapter = SmsAdapter(SmsConfig.from_dict({"base_url": "http://x", "platform_id": "p", "platform_partner_id": "q",
                                              "sender": "Faktura", "username": "u", "password": "p"}))
    adapter._tracked["m"] = _Tracked("d", 3)
    for part in (0, 2):
        await adapter.record_delivery_report(read_delivery_report({"id": f"m${part}", "resultCode": 1001}))
    assert [e.state for e in await adapter.track("m")] == []
    await adapter.record_delivery_report(read_delivery_report({"id": "m$1", "resultCode": 1001}))
    assert [e.state for e in await adapter.track("m")] == ["delivered"]
    await adapter.record_delivery_report(read_delivery_report({"id": "m$1", "resultCode": 1006}))
    assert [e.state for e in await adapter.track("m")] == ["delivered"]  # final stays final
    await adapter.close()
