"""Phone numbers to E.164, with the tenant's default region for numbers written locally.

Answers are ``phonenumbers``' (parse, ``is_valid_number``, format as E.164), computed faster:
validity is checked against that library's metadata compiled once per region rather than
looked up per number, and a number already written in canonical E.164 skips the parse (about
five times cheaper; bulk sends read 100,000 numbers a request).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata


class InvalidPhone(ValueError):
    """The text is not a valid phone number for the given region."""


def to_e164(text: str, default_region: str) -> str:
    """Normalise ``text`` (``"+44 20 7946 0958"``, ``"020 7946 0958"`` with region GB) to E.164.

    Raises ``InvalidPhone`` when it cannot be parsed or is not a valid number.
    """
    raw = text.strip()
    if not raw or len(raw) > 32:
        raise InvalidPhone("not a valid phone number")
    fast = _canonical_e164(raw)
    if fast is not None:
        return fast
    try:
        number = phonenumbers.parse(raw, default_region.upper())
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone("not a valid phone number") from exc
    national = phonenumbers.national_significant_number(number)
    if number.country_code is None or not _valid_national(number.country_code, national):
        raise InvalidPhone("not a valid phone number")
    return f"+{number.country_code}{national}"


def to_e164_digits_first(text: str, default_region: str) -> str:
    """``to_e164`` that also takes international numbers written without ``+``: ``00`` then the
    country code, or the bare digits (``"966501234567"``, as the slug API's callers write them)
    when they are not a valid national number of ``default_region``.

    Raises ``InvalidPhone`` when no reading is a valid number.
    """
    raw = text.strip()
    if raw.startswith("00") and raw[2:].isdigit():
        return to_e164("+" + raw[2:], default_region)
    if raw.isascii() and raw.isdigit() and _never_national(raw, default_region.upper()):
        return to_e164("+" + raw, default_region)
    try:
        return to_e164(raw, default_region)
    except InvalidPhone:
        if not raw.isdigit():
            raise
    return to_e164("+" + raw, default_region)


class NotMobile(InvalidPhone):
    """A valid number that is not a mobile one (phones can only text mobiles)."""


def to_mobile_e164(text: str, default_region: str) -> str:
    """``to_e164`` for numbers a phone can text: mobile or possibly mobile.

    Raises ``InvalidPhone("invalid phone number")`` or ``NotMobile("not mobile phone number")``
    (the Android surface's own wording)."""
    try:
        number = phonenumbers.parse(text.strip(), default_region.upper())
    except phonenumbers.NumberParseException:
        raise InvalidPhone("invalid phone number") from None
    if len(text.strip()) > 32 or not phonenumbers.is_valid_number(number):
        raise InvalidPhone("invalid phone number")
    if phonenumbers.number_type(number) not in (phonenumbers.PhoneNumberType.MOBILE,
                                                phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE):
        raise NotMobile("not mobile phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def is_region(code: str) -> bool:
    """Whether ``code`` is a region phonenumbers knows (ISO 3166-1 alpha-2, e.g. ``"IN"``)."""
    return code.upper() in phonenumbers.SUPPORTED_REGIONS


# --- validity, from phonenumbers' metadata compiled once ------------------------------------

_CANONICAL_E164 = re.compile(r"\+[1-9][0-9]{2,15}")
_EVERYTHING = re.compile("")


@functools.cache
def _national_prefix(code: int) -> re.Pattern[str] | None:
    """The national-prefix pattern ``phonenumbers.parse`` tries to strip from numbers of
    calling code ``code``: None when it has none, one matching everything when there is no
    metadata (so no number of that code takes the shortcut)."""
    region = phonenumbers.region_code_for_country_code(code)
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(code, region)
    if metadata is None:
        return _EVERYTHING
    pattern = metadata.national_prefix_for_parsing
    return re.compile(pattern) if pattern else None


def calling_code(e164: str) -> int:
    """The country calling code of an E.164 number (codes are prefix-free)."""
    for size in (1, 2, 3):
        code = int(e164[1:1 + size])
        if code in COUNTRY_CODE_TO_REGION_CODE:
            return code
    raise ValueError(f"no country calling code in {e164!r}")


@dataclass(frozen=True)
class _Desc:
    """One number description of phonenumbers' metadata, compiled: a national number matches
    it when its length is one of ``lengths`` (any, when empty) and ``pattern`` matches it
    whole (what ``phonenumbers`` calls ``_is_number_matching_desc``)."""

    lengths: frozenset[int]
    pattern: re.Pattern[str]

    def matches(self, national: str) -> bool:
        return ((not self.lengths or len(national) in self.lengths)
                and self.pattern.fullmatch(national) is not None)


@dataclass(frozen=True)
class _Rules:
    """What makes a national number valid in one region's metadata: it matches the general
    description and at least one number type's (``number_type`` is then not ``UNKNOWN``)."""

    general: _Desc | None
    kinds: tuple[_Desc, ...]
    leading_digits: re.Pattern[str] | None

    def valid(self, national: str) -> bool:
        return (self.general is not None and self.general.matches(national)
                and any(kind.matches(national) for kind in self.kinds))


# The commonest types first: the answer (any of them) does not depend on the order.
_KINDS = ("fixed_line", "mobile", "toll_free", "premium_rate", "shared_cost", "voip",
          "personal_number", "pager", "uan", "voicemail")


def _desc(description: Any) -> _Desc | None:
    if description is None or not description.national_number_pattern:
        return None
    return _Desc(frozenset(description.possible_length),
                 re.compile(description.national_number_pattern))


@functools.cache
def _rules(code: int, region: str) -> _Rules | None:
    """The rules of ``region`` (``"001"``: the non-geographic code ``code``)."""
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(code, region)
    if metadata is None:
        return None
    kinds = tuple(desc for desc in (_desc(getattr(metadata, kind)) for kind in _KINDS)
                  if desc is not None)
    leading = metadata.leading_digits
    return _Rules(_desc(metadata.general_desc), kinds, re.compile(leading) if leading else None)


@functools.cache
def _valid_lengths(code: int) -> frozenset[int] | None:
    """Every length a valid national number of ``code`` can have (a region's rules accept only
    the lengths of its general description), or None when some region does not say."""
    lengths: set[int] = set()
    for region in COUNTRY_CODE_TO_REGION_CODE.get(code, ()):
        rules = _rules(code, region)
        if rules is None:
            continue
        if rules.general is None:
            continue  # that region accepts nothing
        if not rules.general.lengths:
            return None
        lengths |= rules.general.lengths
    return frozenset(lengths)


def _valid_national(code: int, national: str) -> bool:
    """``phonenumbers.is_valid_number`` for the number ``+<code><national>`` (``national`` its
    national significant number), computed as it does: the region is the code's only one, or the
    first of its regions whose leading digits match or whose rules accept the number; the
    number is valid when that region's rules accept it. Patterns are compiled once, and a
    region found by its rules is not checked a second time."""
    lengths = _valid_lengths(code)
    if lengths is not None and len(national) not in lengths:
        return False
    regions = COUNTRY_CODE_TO_REGION_CODE.get(code, ())
    if len(regions) == 1:
        rules = _rules(code, regions[0])
        return rules is not None and rules.valid(national)
    for region in regions:
        rules = _rules(code, region)
        if rules is None:
            continue
        if rules.leading_digits is not None:
            if rules.leading_digits.match(national):
                return rules.valid(national)
        elif rules.valid(national):
            return True
    return False


def _canonical_e164(raw: str) -> str | None:
    """``raw`` when it is a valid number written in canonical E.164, else None (then parse it:
    the parse gives the answer, valid or not).

    For ``+<digits>`` whose national part starts neither with 0 nor with what the country's
    national-prefix pattern matches, ``phonenumbers.parse`` builds exactly the number
    ``(code, int(national))`` (nothing to normalise, strip or keep as leading zeros) and
    formatting it back gives ``raw``; so the answer is ``raw`` exactly when that number is
    valid (``_valid_national``).
    """
    if _CANONICAL_E164.fullmatch(raw) is None:
        return None
    try:
        code = calling_code(raw)
    except ValueError:
        return None
    national = raw[1 + len(str(code)):]
    if national.startswith("0"):
        return None
    prefix = _national_prefix(code)
    if prefix is not None and prefix.match(national):
        return None
    return raw if _valid_national(code, national) else None


# --- bare digits that no national reading makes valid ------------------------------------------

@dataclass(frozen=True)
class _NationalReading:
    """What ``phonenumbers.parse`` may strip from bare digits read in a region: its calling
    code (``code``), a national prefix of the region or of its code's main region
    (``prefixes``), twice at most; it reads the digits as international instead when ``idd``
    matches their start."""

    code: int
    prefixes: tuple[re.Pattern[str], ...]
    idd: re.Pattern[str] | None


@functools.cache
def _national_reading(region: str) -> _NationalReading | None:
    """None when the region has no metadata or one whose prefix applies rewrites national
    numbers (a transform rule: the national number is then not a suffix of the digits)."""
    metadata = PhoneMetadata.metadata_for_region(region)
    if metadata is None or metadata.country_code is None:
        return None
    code = metadata.country_code
    prefixes = []
    for other in {region, phonenumbers.region_code_for_country_code(code)}:
        rules = PhoneMetadata.metadata_for_region_or_calling_code(code, other)
        if rules is None:
            return None
        if rules.national_prefix_transform_rule:
            return None
        if rules.national_prefix_for_parsing:
            prefixes.append(re.compile(rules.national_prefix_for_parsing))
    idd = metadata.international_prefix
    return _NationalReading(code, tuple(prefixes),
                            re.compile(idd) if idd else None)


def _never_national(digits: str, region: str) -> bool:
    """True only when reading the ASCII ``digits`` as a national number of ``region`` cannot
    give a valid number, so the parse can be skipped.

    Read nationally, the digits keep the region's calling code and lose at most that code and
    national prefixes at their start: the national number is one of those suffixes (leading
    zeros kept or not). When none of them has a length a valid number of the code can have,
    no reading is valid. Anything this does not cover (no metadata, a transform rule, an
    international prefix at the start, a code whose lengths are not all known) answers False.
    """
    reading = _national_reading(region)
    if reading is None or (reading.idd is not None and reading.idd.match(digits)):
        return False
    lengths = _valid_lengths(reading.code)
    if lengths is None:
        return False
    code = str(reading.code)
    forms = {digits, digits[len(code):]} if digits.startswith(code) else {digits}
    for _ in range(2):
        forms |= {form[match.end():] for form in forms for prefix in reading.prefixes
                  if (match := prefix.match(form)) is not None}
    return not any(size in lengths for form in forms
                   for size in range(len(form.lstrip("0")), len(form) + 1))
