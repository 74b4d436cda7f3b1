"""Phone numbers to E.164, with the tenant's default region for numbers written locally."""

from __future__ import annotations

import phonenumbers


class InvalidPhone(ValueError):
    """The text is not a valid phone number for the given region."""


def to_e164(text: str, default_region: str) -> str:
    """Normalise ``text`` (``"+44 20 7946 0958"``, ``"020 7946 0958"`` with region GB) to E.164.

    Raises ``InvalidPhone`` when it cannot be parsed or is not a valid number.
    """
    raw = text.strip()
    if not raw or len(raw) > 32:
        raise InvalidPhone("not a valid phone number")
    try:
        number = phonenumbers.parse(raw, default_region.upper())
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone("not a valid phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def to_e164_digits_first(text: str, default_region: str) -> str:
    """``to_e164`` that also takes international numbers written without ``+``: ``00`` then the
    country code, or the bare digits (``"966501234567"``, as the slug API's callers write them)
    when they are not a valid national number of ``default_region``.

    Raises ``InvalidPhone`` when no reading is a valid number.
    """
    raw = text.strip()
    if raw.startswith("00") and raw[2:].isdigit():
        return to_e164("+" + raw[2:], default_region)
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
