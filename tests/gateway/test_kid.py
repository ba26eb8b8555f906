"""KID check digits: spec examples, edge rules, cross-check with norwegian-numbers."""

import random

import pytest

from gateway.kid import (
    KidError,
    kid_algorithms,
    kid_valid,
    make_kid,
    mod10_check_digit,
    mod11_check_digit,
    validate_kid,
)


def test_spec_examples():
    # AvtaleGiro systemspesifikasjon / MPS KID page examples
    assert mod10_check_digit("12345678") == "2"
    assert mod11_check_digit("12345678") == "5"
    assert make_kid("1234567", "mod10") == "12345674"
    assert make_kid("12345678", "mod11") == "123456785"


def test_mod11_remainder_rules():
    # weighted sum of 1009 (weights 2,3,4,5 from the right) = 18+0+0+5 = 23 -> r = 1 -> '-'
    assert mod11_check_digit("1009") == "-"
    # 1003: 6+0+0+5 = 11 -> r = 0 -> '0'
    assert mod11_check_digit("1003") == "0"
    assert kid_valid("1009-", "mod11")
    assert not kid_valid("1009-", "mod10")
    assert not kid_valid("10090", "mod11")


def test_weights_cycle_after_seven():
    # 7 digits uses weights 2..7 then 2 again: "1000000" -> 1*2 = 2 -> 11-2 = 9
    assert mod11_check_digit("1000000") == "9"
    assert mod11_check_digit("100000") == "4"  # weight 7 -> 11-7


@pytest.mark.parametrize("algorithm", ["mod10", "mod11"])
def test_cross_check_norwegian_numbers(algorithm):
    nn = pytest.importorskip("norwegian_numbers")
    rng = random.Random(8)
    for _ in range(500):
        base = str(rng.randrange(1, 10**rng.randrange(1, 24)))
        ours = make_kid(base, algorithm)
        assert ours == nn.make_kid_number(base, algorithm.upper())
        assert nn.verify_kid_number(ours, algorithm.upper())
        assert kid_valid(ours, algorithm)


def test_cross_check_luhn_from_stdnum():
    from stdnum import luhn

    rng = random.Random(10)
    for _ in range(300):
        base = str(rng.randrange(10, 10**20))
        assert mod10_check_digit(base) == luhn.calc_check_digit(base)


def test_either_algorithm_when_none():
    assert kid_valid("12345674")  # mod10
    assert kid_valid("123456785")  # mod11
    # 1234567 happens to have check digit 4 under both algorithms
    assert kid_algorithms("12345674") == ("mod10", "mod11")
    assert kid_algorithms("123456782") == ("mod10",)
    assert kid_algorithms("123456785") == ("mod11",)
    assert not kid_valid("123456781")


def test_single_digit_error_detected():
    kid = make_kid("00800001168837")
    for i in range(len(kid)):
        for d in "0123456789":
            if d != kid[i]:
                assert not kid_valid(kid[:i] + d + kid[i + 1:], "mod10")


@pytest.mark.parametrize(
    "kid, code",
    [
        ("", "kid.empty"),
        ("   ", "kid.empty"),
        ("12a4", "kid.format"),
        ("12-4", "kid.format"),
        ("1", "kid.length"),
        ("1" * 25 + "3", "kid.length"),
        ("12345675", "kid.check_digit"),
        ("１２３４５６７４", "kid.format"),  # full-width digits are not KID digits
    ],
)
def test_errors_are_typed(kid, code):
    with pytest.raises(KidError) as exc:
        validate_kid(kid)
    assert exc.value.code == code


def test_length_rules():
    assert kid_valid("18")  # 2 digits: general minimum (1 -> luhn 8)
    assert not kid_valid("18", min_length=4)  # AvtaleGiro/OCR minimum
    kid25 = make_kid("1" * 24)
    assert len(kid25) == 25 and kid_valid(kid25)
    with pytest.raises(KidError) as exc:
        make_kid("1" * 25)
    assert exc.value.code == "kid.length"


def test_dash_policy_and_normalisation():
    with pytest.raises(KidError) as exc:
        make_kid("1009", "mod11", allow_dash=False)
    assert exc.value.code == "kid.dash_not_allowed"
    with pytest.raises(KidError) as exc:
        validate_kid("1009-", "mod11", allow_dash=False)
    assert exc.value.code == "kid.dash_not_allowed"
    assert validate_kid(" 1234 5674 ") == "12345674"


def test_unknown_algorithm():
    with pytest.raises(KidError) as exc:
        make_kid("123", "mod97")  # type: ignore[arg-type]
    assert exc.value.code == "kid.algorithm"


def test_algorithm_spelling_and_types():
    assert kid_valid("123456785", "MOD11") and make_kid("1234567", "MOD10") == "12345674"
    with pytest.raises(KidError) as exc:
        validate_kid(12345674)  # type: ignore[arg-type]
    assert exc.value.code == "kid.format"
    assert make_kid(1234567) == "12345674"
    with pytest.raises(KidError):
        kid_valid("12345674", "luhn")  # type: ignore[arg-type]
