"""API keys and one-time tokens: their shape, and how they are stored."""

from __future__ import annotations

import pytest

from tidings.domain.keys import (
    DISPLAY_PREFIX_LENGTH,
    KeyMode,
    looks_like_api_key,
    new_api_key,
    new_one_time_token,
    same_digest,
    sha256_hex,
)


@pytest.mark.parametrize(("mode", "prefix"), [(KeyMode.LIVE, "jc_live_"),
                                              (KeyMode.TEST, "jc_test_")])
def test_a_new_key_carries_its_mode_and_is_recognised(mode: KeyMode, prefix: str) -> None:
    key = new_api_key(mode)
    assert key.startswith(prefix)
    assert len(key) == len(prefix) + 40
    assert looks_like_api_key(key)


@pytest.mark.parametrize("token", ["eyJhbGciOiJIUzI1NiJ9.e30.x", "jc_prod_abc", "", "JC_LIVE_x"])
def test_other_tokens_are_not_taken_for_api_keys(token: str) -> None:
    assert not looks_like_api_key(token)


def test_keys_are_unique_and_their_display_prefix_does_not_reveal_them() -> None:
    keys = {new_api_key(KeyMode.LIVE) for _ in range(100)}
    assert len(keys) == 100
    assert all(len(key) - DISPLAY_PREFIX_LENGTH >= 32 for key in keys)


def test_stored_form_is_the_sha256_hex_digest() -> None:
    assert sha256_hex("abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    assert same_digest(sha256_hex("abc"), sha256_hex("abc"))
    assert not same_digest(sha256_hex("abc"), sha256_hex("abd"))


def test_one_time_tokens_are_long_and_unique() -> None:
    tokens = {new_one_time_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(len(token) >= 43 for token in tokens)
