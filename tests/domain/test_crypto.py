"""``SecretBox``: credentials encrypted at rest, bound to their row, under rotating keys."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable

import pytest

from tidings.domain.crypto import DecryptionError, SecretBox, mask

OLD_KEY = "old-secret-key-4f1c0f0b6a2e4c7d9a51e3b8c2d7f6a0"
NEW_KEY = "new-secret-key-9b27d5e1c8a34f60b1e2d3c4a5968778"
OTHER_KEY = "other-deployment-key-0c6e1a9f5b2d4e7f8a3b6c9d0e1f"
CONTEXT = b"channel_account:01J0000000000000000000ACCT"
PLAINTEXT = b'{"auth_token":"sk_live_PLAINTEXT_SECRET_123"}'
TOKEN_RE = re.compile(r"^v1\.[0-9a-f]{8}\.[A-Za-z0-9_-]+$")

# Written once by this module; if it stops decrypting, every stored credential would too.
FIXED_KEY = "tidings-test-key-fixed-vector-0001"
FIXED_CONTEXT = b"channel_account:01TEST"
FIXED_TOKEN = "v1.0de14019.hgsWBYyaRXv0QtUdMelssqtVDluUqb9jx3PE7nPYnHrDVoni9npiSmcjBIBg"
FIXED_JSON_TOKEN = "v1.0de14019.LLrP6Q8P4qdaZyiQls7yYSjdbn7r4FKmz-gQCV8wvM0eSiZ0dleNDh4QpA"


def _payload_of(token: str) -> str:
    return token.rsplit(".", 1)[1]


def _with_payload(token: str, payload: str) -> str:
    return token.rsplit(".", 1)[0] + "." + payload


# --- round trips -----------------------------------------------------------------------------

@pytest.mark.parametrize("plaintext", [b"", b"x", PLAINTEXT, bytes(range(256)) * 8])
def test_decrypt_returns_what_encrypt_was_given(plaintext: bytes) -> None:
    box = SecretBox([NEW_KEY])
    token = box.encrypt(plaintext, context=CONTEXT)
    assert TOKEN_RE.match(token)
    assert box.decrypt(token, context=CONTEXT) == plaintext


def test_token_names_the_current_key_id() -> None:
    box = SecretBox([NEW_KEY, OLD_KEY])
    assert box.encrypt(PLAINTEXT, context=CONTEXT).split(".")[1] == box.current_key_id
    assert box.key_ids == (box.current_key_id, SecretBox([OLD_KEY]).current_key_id)


def test_the_same_secret_key_gives_the_same_key_id_in_every_instance() -> None:
    token = SecretBox([NEW_KEY]).encrypt(PLAINTEXT, context=CONTEXT)
    assert SecretBox([NEW_KEY]).decrypt(token, context=CONTEXT) == PLAINTEXT


def test_a_token_written_by_this_format_version_still_decrypts() -> None:
    box = SecretBox([FIXED_KEY])
    assert box.current_key_id == "0de14019"
    assert box.decrypt(FIXED_TOKEN, context=FIXED_CONTEXT) == b"hello credentials"
    assert box.decrypt_json(FIXED_JSON_TOKEN, context=FIXED_CONTEXT) == {"a": "x", "b": 2}


def test_two_encryptions_of_the_same_plaintext_use_different_nonces() -> None:
    box = SecretBox([NEW_KEY])
    first, second = (box.encrypt(PLAINTEXT, context=CONTEXT) for _ in range(2))
    nonce = [base64.urlsafe_b64decode(_payload_of(t) + "==")[:12] for t in (first, second)]
    assert first != second
    assert nonce[0] != nonce[1]


def test_json_round_trip_is_stored_as_compact_sorted_json() -> None:
    box = SecretBox([NEW_KEY])
    token = box.encrypt_json({"sid": "AC1", "auth_token": "t\u00e9st", "n": 1}, context=CONTEXT)
    assert box.decrypt(token, context=CONTEXT) == '{"auth_token":"tést","n":1,"sid":"AC1"}'.encode()
    assert box.decrypt_json(token, context=CONTEXT) == {"sid": "AC1", "auth_token": "tést", "n": 1}


@pytest.mark.parametrize("plaintext", [b"[1, 2]", b'"text"', b"not json", b"\xff\xfe"])
def test_decrypt_json_rejects_a_plaintext_that_is_not_a_json_object(plaintext: bytes) -> None:
    box = SecretBox([NEW_KEY])
    with pytest.raises(DecryptionError, match="not a JSON object") as caught:
        box.decrypt_json(box.encrypt(plaintext, context=CONTEXT), context=CONTEXT)
    assert caught.value.__context__ is None


# --- binding and integrity -------------------------------------------------------------------

@pytest.mark.parametrize("context", [b"channel_account:01J0000000000000000000OTHER",
                                     CONTEXT + b"x", CONTEXT[:-1], CONTEXT.upper()])
def test_a_different_context_fails(context: bytes) -> None:
    box = SecretBox([NEW_KEY])
    token = box.encrypt(PLAINTEXT, context=CONTEXT)
    with pytest.raises(DecryptionError, match="failed authentication"):
        box.decrypt(token, context=context)


def test_an_empty_context_is_refused_on_both_sides() -> None:
    box = SecretBox([NEW_KEY])
    with pytest.raises(ValueError, match="context"):
        box.encrypt(PLAINTEXT, context=b"")
    with pytest.raises(ValueError, match="context"):
        box.decrypt(box.encrypt(PLAINTEXT, context=CONTEXT), context=b"")


def test_changing_any_character_of_the_payload_fails() -> None:
    box = SecretBox([NEW_KEY])
    token = box.encrypt(b"short secret", context=CONTEXT)
    payload = _payload_of(token)
    for index, char in enumerate(payload):
        for replacement in {"A", "B", "_"} - {char}:
            tampered = payload[:index] + replacement + payload[index + 1:]
            with pytest.raises(DecryptionError):
                box.decrypt(_with_payload(token, tampered), context=CONTEXT)


def test_flipping_any_bit_of_nonce_ciphertext_or_tag_fails() -> None:
    box = SecretBox([NEW_KEY])
    token = box.encrypt(b"short secret", context=CONTEXT)
    raw = base64.urlsafe_b64decode(_payload_of(token) + "==")
    for index in range(len(raw)):
        for bit in range(8):
            flipped = bytearray(raw)
            flipped[index] ^= 1 << bit
            payload = base64.urlsafe_b64encode(bytes(flipped)).rstrip(b"=").decode()
            with pytest.raises(DecryptionError, match="failed authentication"):
                box.decrypt(_with_payload(token, payload), context=CONTEXT)


@pytest.mark.parametrize("cut", [1, 16, 28])
def test_a_truncated_payload_fails(cut: int) -> None:
    box = SecretBox([NEW_KEY])
    token = box.encrypt(PLAINTEXT, context=CONTEXT)
    with pytest.raises(DecryptionError):
        box.decrypt(token[:-cut], context=CONTEXT)


def test_a_token_moved_under_another_configured_key_id_fails() -> None:
    box = SecretBox([NEW_KEY, OLD_KEY])
    token = box.encrypt(PLAINTEXT, context=CONTEXT)
    relabelled = token.replace(box.key_ids[0], box.key_ids[1], 1)
    with pytest.raises(DecryptionError, match="failed authentication"):
        box.decrypt(relabelled, context=CONTEXT)


def test_a_token_from_a_box_with_another_key_is_not_configured_here() -> None:
    token = SecretBox([OTHER_KEY]).encrypt(PLAINTEXT, context=CONTEXT)
    with pytest.raises(DecryptionError, match="key that is not configured"):
        SecretBox([NEW_KEY]).decrypt(token, context=CONTEXT)


# --- rotation --------------------------------------------------------------------------------

def test_after_rotation_old_key_tokens_still_decrypt() -> None:
    old_token = SecretBox([OLD_KEY]).encrypt(PLAINTEXT, context=CONTEXT)
    assert SecretBox([NEW_KEY, OLD_KEY]).decrypt(old_token, context=CONTEXT) == PLAINTEXT


def test_old_key_tokens_need_rotation_and_rotated_ones_do_not() -> None:
    box = SecretBox([NEW_KEY, OLD_KEY])
    old_token = SecretBox([OLD_KEY]).encrypt(PLAINTEXT, context=CONTEXT)
    assert box.needs_rotation(old_token)
    rotated = box.rotate(old_token, context=CONTEXT)
    assert not box.needs_rotation(rotated)
    assert rotated.split(".")[1] == box.current_key_id
    assert SecretBox([NEW_KEY]).decrypt(rotated, context=CONTEXT) == PLAINTEXT


def test_current_key_tokens_do_not_need_rotation() -> None:
    box = SecretBox([NEW_KEY, OLD_KEY])
    assert not box.needs_rotation(box.encrypt(PLAINTEXT, context=CONTEXT))


def test_a_token_of_an_unconfigured_key_needs_rotation_but_cannot_be_rotated() -> None:
    box = SecretBox([NEW_KEY, OLD_KEY])
    foreign = SecretBox([OTHER_KEY]).encrypt(PLAINTEXT, context=CONTEXT)
    assert box.needs_rotation(foreign)
    with pytest.raises(DecryptionError, match="not configured"):
        box.rotate(foreign, context=CONTEXT)


def test_rotate_checks_the_context() -> None:
    box = SecretBox([NEW_KEY, OLD_KEY])
    old_token = SecretBox([OLD_KEY]).encrypt(PLAINTEXT, context=CONTEXT)
    with pytest.raises(DecryptionError, match="failed authentication"):
        box.rotate(old_token, context=b"channel_account:someone-else")


def test_the_old_key_alone_cannot_decrypt_a_new_key_token() -> None:
    new_token = SecretBox([NEW_KEY]).encrypt(PLAINTEXT, context=CONTEXT)
    with pytest.raises(DecryptionError, match="not configured"):
        SecretBox([OLD_KEY]).decrypt(new_token, context=CONTEXT)


# --- malformed tokens ------------------------------------------------------------------------

def _valid_token() -> str:
    return SecretBox([NEW_KEY]).encrypt(PLAINTEXT, context=CONTEXT)


MALFORMED: list[tuple[str, Callable[[], str], str]] = [
    ("empty", lambda: "", "malformed"),
    ("unknown version", lambda: "v2.x.y", "version is not supported"),
    ("unknown version, valid rest", lambda: "v2" + _valid_token()[2:], "version is not supported"),
    ("not a version", lambda: "x1" + _valid_token()[2:], "malformed"),
    ("two parts", lambda: "v1.abc", "malformed"),
    ("four parts", lambda: _valid_token() + ".x", "malformed"),
    ("key id too short", lambda: "v1.abc.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "malformed"),
    ("key id upper case", lambda: "v1.ABCDEF12." + _payload_of(_valid_token()), "malformed"),
    ("empty payload", lambda: _with_payload(_valid_token(), ""), "malformed"),
    ("padded payload", lambda: _valid_token() + "==", "malformed"),
    ("standard base64 chars", lambda: _valid_token()[:-2] + "+/", "malformed"),
    ("impossible length", lambda: _with_payload(_valid_token(), "A" * 45), "malformed"),
    ("too short for nonce and tag", lambda: _with_payload(_valid_token(), "AAAA"), "malformed"),
    ("non-ascii", lambda: _valid_token() + "é", "malformed"),
    ("whitespace", lambda: " " + _valid_token(), "malformed"),
]


@pytest.mark.parametrize(("label", "make", "message"), MALFORMED,
                         ids=[case[0] for case in MALFORMED])
def test_malformed_tokens_raise_decryption_error(
        label: str, make: Callable[[], str], message: str) -> None:
    with pytest.raises(DecryptionError, match=message):
        SecretBox([NEW_KEY]).decrypt(make(), context=CONTEXT)


@pytest.mark.parametrize("token", ["", "v2.x.y", "v1.abc", "v1.0de14019.!!!"])
def test_needs_rotation_raises_for_malformed_tokens(token: str) -> None:
    with pytest.raises(DecryptionError):
        SecretBox([NEW_KEY]).needs_rotation(token)


def test_decryption_error_is_a_value_error() -> None:
    assert issubclass(DecryptionError, ValueError)


# --- nothing secret leaks --------------------------------------------------------------------

def _failures() -> dict[str, tuple[str, bytes]]:
    """label -> (token, context) for every way decrypt fails, each made from PLAINTEXT."""
    box = SecretBox([NEW_KEY])
    token = box.encrypt(PLAINTEXT, context=CONTEXT)
    payload = _payload_of(token)
    return {
        "wrong context": (token, b"channel_account:other"),
        "tampered": (_with_payload(token, ("B" if payload[0] == "A" else "A") + payload[1:]),
                     CONTEXT),
        "unknown key": (SecretBox([OTHER_KEY]).encrypt(PLAINTEXT, context=CONTEXT), CONTEXT),
        "malformed": (token + "==", CONTEXT),
        "unknown version": ("v9" + token[2:], CONTEXT),
    }


@pytest.mark.parametrize("label", ["wrong context", "tampered", "unknown key", "malformed",
                                   "unknown version"])
def test_error_messages_contain_neither_plaintext_nor_key_nor_token(label: str) -> None:
    token, context = _failures()[label]
    with pytest.raises(DecryptionError) as caught:
        SecretBox([NEW_KEY]).decrypt(token, context=context)
    shown = f"{caught.value} {caught.value!r}"
    for secret in (PLAINTEXT.decode(), "PLAINTEXT_SECRET", NEW_KEY, OTHER_KEY, token,
                   _payload_of(token)):
        assert secret not in shown, label
    assert caught.value.__cause__ is None, label
    assert caught.value.__context__ is None, label


def test_repr_shows_key_ids_not_keys() -> None:
    box = SecretBox([NEW_KEY, OLD_KEY])
    assert repr(box) == f"SecretBox(key_ids={list(box.key_ids)!r})"
    assert NEW_KEY not in repr(box)
    assert OLD_KEY not in repr(box)


# --- construction ----------------------------------------------------------------------------

@pytest.mark.parametrize(("keys", "message"), [
    ([], "at least one"),
    ([""], "#1 is empty"),
    (["   "], "#1 is empty"),
    ([NEW_KEY, ""], "#2 is empty"),
    ([NEW_KEY, OLD_KEY, NEW_KEY], "#3 has the same key id"),
])
def test_constructor_refuses_missing_empty_or_repeated_keys(keys: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SecretBox(keys)


def test_constructor_refuses_a_single_string() -> None:
    with pytest.raises(TypeError, match="not one key string"):
        SecretBox(NEW_KEY)


def test_constructor_errors_do_not_show_the_keys() -> None:
    with pytest.raises(ValueError, match="same key id") as caught:
        SecretBox([NEW_KEY, NEW_KEY])
    assert NEW_KEY not in str(caught.value)


def test_key_id_is_not_derived_from_the_plain_hash_of_the_key() -> None:
    box = SecretBox([NEW_KEY])
    assert box.current_key_id not in hashlib.sha256(NEW_KEY.encode()).hexdigest()


# --- mask ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("", "••••"),
    ("abc", "••••"),
    ("12345678901", "••••"),          # 11 characters: too short to show any
    ("123456789012", "••••9012"),     # 12 characters: the last 4 show
    ("sk_live_abcdefgh1234", "••••1234"),
    ("AC" + "0" * 30 + "wxyz", "••••wxyz"),
    ("pässwörd-mit-ümläuten", "••••uten"),
])
def test_mask_shows_at_most_the_last_four_characters_of_long_values(
        value: str, expected: str) -> None:
    assert mask(value) == expected
