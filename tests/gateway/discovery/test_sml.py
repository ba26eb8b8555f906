"""SML U-NAPTR: memo hash vectors, qname, NAPTR choice and regexp application (pure functions)."""

from __future__ import annotations

import pytest

from gateway.discovery.errors import DiscoveryError, NotRegistered
from gateway.discovery.sml import (
    PROD_ZONE,
    TEST_ZONE,
    NaptrRecord,
    apply_naptr_regexp,
    naptr_label,
    naptr_qname,
    parse_nameserver,
    select_smp_url,
)
from gateway.identifiers import ParticipantId

# as4-anchors.md §4.1 (checked there against peppol-commons PeppolNaptrURLProviderTest)
VECTORS = [
    ("9915:test", "eh5boavaktmbgzyh2a63dz4qov33fvp5nsdvqklucfraayoodw6a"),
    ("0192:991825827", "7i2243uolq5qzb6jxfvi6yei4iq7sfipkv55htzfnr6s54y6yufa"),
    ("9925:be0848934496", "3kbwcdjpjlznbhgy2qydzak2gvaadf323uwokpt44l6l4jm3mpyq"),
]


@pytest.mark.parametrize("value,label", VECTORS)
def test_memo_hash_vectors(value, label):
    assert naptr_label(ParticipantId.parse(value)) == label
    assert naptr_label(ParticipantId.parse("iso6523-actorid-upis::" + value.upper())) == label  # value lower-cased
    assert naptr_label(value.upper()) == label


def test_scheme_not_hashed():
    assert naptr_label("iso6523-actorid-upis::9915:test") != VECTORS[0][1]


def test_qname_and_default_zones():
    p = ParticipantId.parse("0192:991825827")
    assert naptr_qname(p, PROD_ZONE) == ("7i2243uolq5qzb6jxfvi6yei4iq7sfipkv55htzfnr6s54y6yufa"
                                         ".iso6523-actorid-upis.participant.sml.prod.tech.peppol.org")
    assert naptr_qname(p, TEST_ZONE + ".").endswith(".iso6523-actorid-upis.participant.sml.test.tech.peppol.org")
    assert "edelivery.tech.ec.europa.eu" not in PROD_ZONE + TEST_ZONE


def test_regexp_application():
    assert apply_naptr_regexp("!.*!https://test.erechnung.gv.at/smp!", "x.iso6523-actorid-upis.zone") == \
        "https://test.erechnung.gv.at/smp"
    assert apply_naptr_regexp("!^([a-z0-9]+)\\..*$!https://smp.test/\\1!", "abc.def") == "https://smp.test/abc"
    assert apply_naptr_regexp("#.*#https://a.test#i", "ABC") == "https://a.test"


@pytest.mark.parametrize("regexp", ["", "!.*!https://x", "a.*ahttps://xa", "!(!x!", "!^z$!https://x!", "!.*!\\2!"])
def test_bad_regexp(regexp):
    with pytest.raises(DiscoveryError) as info:
        apply_naptr_regexp(regexp, "abc")
    assert info.value.code == "sml-bad-regexp"


def test_select_by_order_preference_and_service():
    records = [
        NaptrRecord(100, 20, "U", "Meta:SMP", "!.*!https://second.test!"),
        NaptrRecord(100, 10, "U", "Meta:SMP", "!.*!https://first.test/smp/!"),
        NaptrRecord(10, 10, "U", "Meta:Other", "!.*!https://other.test!"),
        NaptrRecord(10, 10, "S", "Meta:SMP", "!.*!https://nonterminal.test!"),
        NaptrRecord(200, 10, "u", "meta:smp", "!.*!https://later.test!"),
    ]
    assert select_smp_url(records, "q") == "https://first.test/smp"


def test_select_none():
    with pytest.raises(NotRegistered) as info:
        select_smp_url([NaptrRecord(1, 1, "U", "Meta:Other", "!.*!https://x.test!")], "q")
    assert info.value.code == "sml-no-smp-record"


def test_http_smp_only_when_allowed():
    records = [NaptrRecord(1, 1, "U", "Meta:SMP", "!.*!http://smp.test!")]
    with pytest.raises(DiscoveryError) as info:
        select_smp_url(records, "q")
    assert info.value.code == "sml-bad-url"
    assert select_smp_url(records, "q", allow_http=True) == "http://smp.test"
    with pytest.raises(DiscoveryError):
        select_smp_url([NaptrRecord(1, 1, "U", "Meta:SMP", "!.*!ftp://smp.test!")], "q", allow_http=True)


def test_parse_nameserver():
    assert parse_nameserver("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_nameserver("10.0.0.1") == ("10.0.0.1", 53)
    assert parse_nameserver("[::1]:5300") == ("::1", 5300)
    assert parse_nameserver("::1") == ("::1", 53)
    for bad in ("dns.example:53", "127.0.0.1:0", "127.0.0.1:x"):
        with pytest.raises(ValueError):
            parse_nameserver(bad)


def test_catastrophic_pattern_refused():
    import time

    t0 = time.perf_counter()
    with pytest.raises(DiscoveryError) as info:
        apply_naptr_regexp("!^([a-z2-7]+)+\\.$!https://x.test!", "a" * 52 + "!")
    assert info.value.code == "sml-bad-regexp"
    assert time.perf_counter() - t0 < 0.5
