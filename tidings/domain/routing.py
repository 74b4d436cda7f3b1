"""Failover routes: the ordered SMS apps a message may go through, and where it goes next.

A route is stored on the message (``messages.route``) as ``{"apps": [...], "round": n,
"sender": ...}``. The message's ``channel_account_id`` is always one of ``apps``: the app it
is queued for or being sent through. After each attempt (``next_hop``):

- a **reject** (the provider refused it: a 4xx, a bad number, no balance) removes that app from
  the route for good, and the message moves to the next app at once;
- a **failure** (timeout, connection error, 5xx, 429) keeps the app but moves on to the next
  app at once;
- when the move wraps past the end of ``apps``, every app left has been tried in this round:
  the message waits for the retry policy's backoff (``round`` is its attempt number) and starts
  again with the first app left;
- when no app is left, the message has failed.

``sender`` is the sender id the caller asked for (kept on every app), or ``None`` to use each
app's own sender. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Route:
    """The apps a message may still go through, in order, and how many rounds it has had."""

    apps: tuple[str, ...]
    round: int = 1
    sender: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"apps": list(self.apps), "round": self.round, "sender": self.sender}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Route:
        return cls(apps=tuple(str(app) for app in data.get("apps") or ()),
                   round=int(data.get("round") or 1), sender=data.get("sender"))


@dataclass(frozen=True)
class Hop:
    """Where a message goes after an attempt: ``app_id`` (``None``: nowhere, it has failed),
    the route from now on, and whether the move starts a new round (then it waits for the
    retry backoff rather than going at once)."""

    app_id: str | None
    route: Route
    new_round: bool


def next_hop(route: Route, current: str, *, rejected: bool,
             usable: Collection[str] | None = None) -> Hop:
    """The move after ``current`` answered (module docstring). ``usable`` names the apps that
    can still send (active ones); the others are dropped from the route as if they had
    rejected the message. ``current`` missing from the route counts as its first position."""
    apps = list(route.apps)
    position = apps.index(current) if current in apps else 0
    if rejected and current in apps:
        apps.remove(current)
    else:
        position += 1
    if usable is not None:
        kept = [app for app in apps if app in usable]
        position -= sum(1 for app in apps[:position] if app not in kept)
        apps = kept
    if not apps:
        return Hop(None, Route((), route.round, route.sender), new_round=False)
    if position >= len(apps):
        return Hop(apps[0], Route(tuple(apps), route.round + 1, route.sender), new_round=True)
    return Hop(apps[position], Route(tuple(apps), route.round, route.sender), new_round=False)
