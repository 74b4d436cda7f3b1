"""``to_e164``: phone numbers as people write them, to E.164, with a default region."""

from __future__ import annotations

import pytest

from tidings.domain.phone import InvalidPhone, is_region, to_e164


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
