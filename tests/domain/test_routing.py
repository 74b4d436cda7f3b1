"""Failover routes: after each attempt, which app a message goes to next, and when a whole
round has failed (then it waits for the backoff)."""

from __future__ import annotations

import pytest

from tidings.domain.routing import Route, next_hop

# route apps, current app, rejected?, usable apps (None: all) -> next app, apps after, new round
HOPS = [
    pytest.param(("A", "B", "C"), "A", False, None, "B", ("A", "B", "C"), False,
                 id="a failure moves on to the next app at once"),
    pytest.param(("A", "B", "C"), "A", True, None, "B", ("B", "C"), False,
                 id="a reject drops the app and moves on at once"),
    pytest.param(("A", "B", "C"), "C", False, None, "A", ("A", "B", "C"), True,
                 id="a failure of the last app starts a new round with the first"),
    pytest.param(("A", "B"), "B", True, None, "A", ("A",), True,
                 id="a reject of the last app starts a new round with those left"),
    pytest.param(("A",), "A", False, None, "A", ("A",), True,
                 id="a single app that fails waits for the backoff and tries again"),
    pytest.param(("A",), "A", True, None, None, (), False,
                 id="no app left after a reject: the message has failed"),
    pytest.param(("A", "B", "C"), "A", False, {"A", "C"}, "C", ("A", "C"), False,
                 id="an app no longer usable is skipped"),
    pytest.param(("A", "B", "C"), "B", True, {"B", "C"}, "C", ("C",), False,
                 id="unusable apps before the current one do not shift the next"),
    pytest.param(("A", "B"), "A", False, set(), None, (), False,
                 id="no usable app at all: failed"),
]


@pytest.mark.parametrize(("apps", "current", "rejected", "usable", "next_app", "apps_after",
                          "new_round"), HOPS)
def test_next_hop(apps: tuple[str, ...], current: str, rejected: bool,
                  usable: set[str] | None, next_app: str | None,
                  apps_after: tuple[str, ...], new_round: bool) -> None:
    hop = next_hop(Route(apps, round=1), current, rejected=rejected, usable=usable)

    assert (hop.app_id, hop.route.apps, hop.new_round) == (next_app, apps_after, new_round)


def test_a_new_round_counts_up_and_keeps_the_callers_sender() -> None:
    hop = next_hop(Route(("A", "B"), round=2, sender="Brand"), "B", rejected=False)

    assert hop.route == Route(("A", "B"), round=3, sender="Brand")


def test_a_route_survives_its_json_form() -> None:
    route = Route(("A", "B"), round=4, sender=None)

    assert Route.from_json(route.as_json()) == route
