"""Sortable ids: shape, order by time, unguessable tails."""

from __future__ import annotations

import re

from tidings.domain.ids import new_id

CROCKFORD = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")


def test_an_id_is_26_crockford_base32_characters() -> None:
    assert all(CROCKFORD.match(new_id()) for _ in range(100))


def test_ids_sort_by_creation_time() -> None:
    ids = [new_id(now_ms=ms) for ms in (1, 1_000, 1_700_000_000_000, 1_700_000_000_001)]
    assert sorted(ids) == ids


def test_ids_made_in_the_same_millisecond_differ_after_the_time_part() -> None:
    ids = {new_id(now_ms=1_700_000_000_000) for _ in range(1000)}
    assert len(ids) == 1000
    assert len({value[:10] for value in ids}) == 1
