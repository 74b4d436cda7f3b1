"""``to_e164``: phone numbers as people write them, to E.164, with a default region."""

from __future__ import annotations

import random
from collections.abc import Callable

import phonenumbers
import pytest

from tidings.domain import phone
from tidings.domain.phone import InvalidPhone, is_region, to_e164, to_e164_digits_first


@pytest.mark.parametrize(("text", "region", "expected"), [
    ("+44 20 7946 0958", "US", "+442079460958"),
    ("020 7946 0958", "GB", "+442079460958"),
    ("020 7946 0958", "gb", "+442079460958"),
    ("(202) 555-0123", "US", "+12025550123"),
    ("202.555.0123", "US", "+12025550123"),
    ("  +1 202 555 0123  ", "IN", "+12025550123"),
    ("098765 43210", "IN", "+919876543210"),
    ("+919876543210", "GB", "+919876543210"),
])
def test_to_e164_normalises_international_and_national_numbers(
        text: str, region: str, expected: str) -> None:
    assert to_e164(text, region) == expected


@pytest.mark.parametrize(("text", "region"), [
    ("", "US"),
    ("   ", "US"),
    ("hello", "US"),
    ("12", "US"),
    ("020 7946 0958", "US"),  # a British national number is not a valid US number
    ("+1 202 555 01234567", "US"),
    ("+" + "1" * 40, "US"),
])
def test_to_e164_rejects_what_is_not_a_valid_number(text: str, region: str) -> None:
    with pytest.raises(InvalidPhone):
        to_e164(text, region)


def test_is_region_knows_iso_codes_in_any_case() -> None:
    assert is_region("GB")
    assert is_region("in")
    assert not is_region("XX")


@pytest.mark.parametrize(("text", "region", "expected"), [
    ("966501234567", "US", "+966501234567"),  # not a US number: read as international
    ("00966501234567", "US", "+966501234567"),
    ("0501234567", "SA", "+966501234567"),  # a valid national number wins
    ("4155550100", "US", "+14155550100"),
    ("+966501234567", "IN", "+966501234567"),
])
def test_to_e164_digits_first_reads_bare_digits_as_national_then_international(
        text: str, region: str, expected: str) -> None:
    assert to_e164_digits_first(text, region) == expected


# --- the library's answers, computed faster ------------------------------------------------------

def _library_e164(text: str, region: str) -> str:
    """What ``to_e164`` promises to answer: phonenumbers' parse, validity and E.164 format."""
    raw = text.strip()
    if not raw or len(raw) > 32:
        raise InvalidPhone("empty or too long")
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(str(exc)) from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone("not valid")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _candidates() -> list[str]:
    """Example numbers of every region (and non-geographic code) and type, written
    canonically and as the region writes them nationally, plus near misses: a digit changed,
    one dropped or added, a national prefix or leading zero kept after the country code.
    (Checked once against 300,000 random numbers too, with no difference.)"""
    rng = random.Random(20261124)
    numbers = set()
    candidates = set()
    examples = [phonenumbers.example_number_for_type(region, kind)
                for region in sorted(phonenumbers.SUPPORTED_REGIONS)
                for kind in phonenumbers.PhoneNumberType.values()]
    examples += [phonenumbers.example_number_for_non_geo_entity(code)
                 for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS)]
    for example in examples:
        if example is not None:
            numbers.add(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164))
            candidates.add(phonenumbers.format_number(
                example, phonenumbers.PhoneNumberFormat.NATIONAL))
    candidates |= numbers
    for number in sorted(numbers):
        digits = number[1:]
        where = rng.randrange(1, len(digits))
        candidates.add("+" + digits[:where] + str(rng.randrange(10)) + digits[where + 1:])
        candidates.add("+" + digits[:-1])
        candidates.add(number + str(rng.randrange(10)))
        candidates.add(digits)
        code = str(phonenumbers.parse(number).country_code)
        candidates.add(f"+{code}0{digits[len(code):]}")
        candidates.add(f"+{code}8{digits[len(code):]}")
        candidates.add(f"+{code}1{digits[len(code):]}")
    return sorted(candidates)


def _outcome(function: Callable[[str, str], str], raw: str, region: str) -> str:
    try:
        return function(raw, region)
    except InvalidPhone:
        return "invalid"


@pytest.mark.parametrize("region", ["US", "IN", "SA", "GB", "IT", "BR"])
def test_to_e164_answers_exactly_what_phonenumbers_answers(region: str) -> None:
    candidates = _candidates() + ["+39 06 6988 0000", "+390669880000", "0044 20 7946 0958",
                                  "4155550100", " +14155550100 ", "+1-415-555-0100", "+0123",
                                  "+999123456789", "+1", "", "+" + "1" * 20]

    mismatches = [raw for raw in candidates
                  if _outcome(to_e164, raw, region) != _outcome(_library_e164, raw, region)]

    assert len(candidates) > 8000
    assert mismatches == []


def test_every_region_reads_its_own_national_numbers_as_phonenumbers_does() -> None:
    written = [(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL),
                region)
               for region in sorted(phonenumbers.SUPPORTED_REGIONS)
               for kind in phonenumbers.PhoneNumberType.values()
               if (example := phonenumbers.example_number_for_type(region, kind)) is not None]

    mismatches = [(raw, region) for raw, region in written
                  if _outcome(to_e164, raw, region) != _outcome(_library_e164, raw, region)]

    assert len(written) > 1300
    assert mismatches == []


def _library_digits_first(text: str, region: str) -> str:
    """What ``to_e164_digits_first`` promises: national first, then ``00`` or bare digits as
    international."""
    raw = text.strip()
    if raw.startswith("00") and raw[2:].isdigit():
        return _library_e164("+" + raw[2:], region)
    try:
        return _library_e164(raw, region)
    except InvalidPhone:
        if not raw.isdigit():
            raise
    return _library_e164("+" + raw, region)


@pytest.mark.parametrize("region", ["US", "CA", "IN", "SA", "GB", "BR", "AR"])
def test_to_e164_digits_first_answers_exactly_what_phonenumbers_answers(region: str) -> None:
    digits = sorted({"".join(char for char in raw if char.isdigit()) for raw in _candidates()})

    mismatches = [raw for raw in digits
                  if _outcome(to_e164_digits_first, raw, region)
                  != _outcome(_library_digits_first, raw, region)]

    assert len(digits) > 5000
    assert mismatches == []


def test_every_region_reads_its_own_national_digits_as_phonenumbers_does() -> None:
    written = [("".join(char for char in phonenumbers.format_number(
                   example, phonenumbers.PhoneNumberFormat.NATIONAL) if char.isdigit()), region)
               for region in sorted(phonenumbers.SUPPORTED_REGIONS)
               for kind in phonenumbers.PhoneNumberType.values()
               if (example := phonenumbers.example_number_for_type(region, kind)) is not None]

    mismatches = [(raw, region) for raw, region in written
                  if _outcome(to_e164_digits_first, raw, region)
                  != _outcome(_library_digits_first, raw, region)]

    assert mismatches == []


def test_bare_digits_no_national_reading_fits_skip_the_national_parse(
        monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[str] = []
    library_parse = phonenumbers.parse

    def counting_parse(raw: str, region: str) -> phonenumbers.PhoneNumber:
        parsed.append(raw)
        return library_parse(raw, region)

    monkeypatch.setattr(phone.phonenumbers, "parse", counting_parse)

    assert to_e164_digits_first("966501234567", "US") == "+966501234567"
    assert to_e164_digits_first("0501234567", "SA") == "+966501234567"
    assert parsed == ["0501234567"]


def test_a_canonical_e164_number_is_taken_without_the_parse(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(raw: str, region: str) -> phonenumbers.PhoneNumber:
        raise AssertionError(f"parsed {raw}")

    monkeypatch.setattr(phone.phonenumbers, "parse", refuse)

    assert [to_e164(raw, "US") for raw in ("+14155550100", "+919876543210",
                                           "+447911123456")] == [
        "+14155550100", "+919876543210", "+447911123456"]
