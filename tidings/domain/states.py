"""Message states, the moves the pipeline may make, and how provider reports are merged.

Two kinds of change, kept apart on purpose:

1. **Pipeline transitions** are what the dispatcher (and the tenant, through cancel) does to a
   message it still owns. They are a closed list, ``PIPELINE_TRANSITIONS``; anything else is a
   bug or a race and ``pipeline_transition`` raises ``InvalidTransition``::

       queued  -> sending     claimed by the dispatcher, under a lease
       queued  -> expired     expires_at passed before it was sent
       queued  -> cancelled   cancelled by the tenant before it was sent
       sending -> queued      retryable outcome, failover to the next account, or lease ran out
       sending -> sent        a provider accepted it
       sending -> failed      rejected with no account left in the route, or attempts used up
       sending -> expired     expires_at passed while claimed, before any provider accepted it

   Not allowed: cancelling a ``sending`` message (an attempt is in flight and may already have
   reached the provider; the service answers 409); anything out of ``sent``, ``delivered``,
   ``read`` or a terminal state (only reports move those); anything into or out of
   ``received``; a state to itself (renewing a lease is not a transition).

2. **Provider reports** (delivery receipts, and the answer to a send that lost a race with its
   own receipt) are applied monotonically by ``merge_report``: a report moves a message only to a
   strictly higher rank in ``REPORT_RANK``. Reports can only say ``sent``, ``failed``,
   ``delivered`` or ``read`` (``REPORTABLE``); a provider maps its own words onto those (a
   carrier's "expired" or "rejected" is ``failed``, its own word kept in the error detail)::

       rank  states                        meaning
        0    queued                        in our queue, waiting for an attempt
        1    sending                       claimed; an attempt is in flight
        2    sent                          a provider has it
        3    failed, expired, cancelled    will not reach the recipient, as far as we know
        4    delivered                     reached the recipient's device
        5    read                          read by the recipient (channels that report it)
        -    received                      inbound; reports never apply

   The resulting table (``-`` means the report changes nothing and ``merge_report`` answers
   ``None``)::

       current \\ reported   sent   failed   delivered   read
       queued               sent   failed   delivered   read
       sending              sent   failed   delivered   read
       sent                 -      failed   delivered   read
       failed               -      -        delivered   read
       expired              -      -        delivered   read
       cancelled            -      -        delivered   read
       delivered            -      -        -           read
       read                 -      -        -           -
       received             -      -        -           -

   Why these ranks:

   - A receipt can race the provider's HTTP answer, or arrive for an attempt whose acceptance
     was never recorded (the worker died, the lease ran out). So ``queued`` and ``sending`` take
     any report: the provider evidently has the message, and sending it again would duplicate
     it. ``queued``/``sending`` + ``failed`` is ``failed`` too: the provider took the message
     and its carrier refused it; a retry would most likely be refused again, and cost money.
   - ``failed``, ``expired`` and ``cancelled`` share a rank: a late ``sent`` or a second
     failure does not turn one non-delivery into another, so an ``expired`` message stays
     ``expired`` and the first ``failed`` keeps its error.
   - Proof of delivery outranks every non-delivery. A failure is often an inference (a carrier
     timeout, a validity period), a delivery receipt comes from the handset; some carriers
     report "undelivered" and then deliver on their own retry. So ``failed`` + ``delivered`` is
     ``delivered``, while ``delivered`` + ``failed`` changes nothing. An ``expired`` or
     ``cancelled`` message that a provider reports delivered (an attempt that had reached the
     provider before the lease ran out and the message was expired or cancelled) becomes
     ``delivered``: the honest answer is what happened to the recipient, not what we meant to
     do. The tenant then sees a second callback; that is the truth arriving late.
   - ``read`` implies delivered, so ``sent`` + ``read`` is ``read`` without a ``delivered`` step.

``TERMINAL`` therefore means "the pipeline will never attempt this message again", not "no
report can change it": only ``read`` and ``received`` are beyond every report.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class MessageState(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    RECEIVED = "received"


_S = MessageState

INBOUND: frozenset[MessageState] = frozenset({_S.RECEIVED})
"""States of inbound messages; an inbound message is stored ``received`` and never moves."""

OUTBOUND: frozenset[MessageState] = frozenset(MessageState) - INBOUND
"""States of outbound messages; they are inserted ``queued``."""

ACTIVE: frozenset[MessageState] = frozenset({_S.QUEUED, _S.SENDING})
"""The pipeline still owns these: they will be attempted, retried, expired or cancelled."""

TERMINAL: frozenset[MessageState] = frozenset({_S.FAILED, _S.EXPIRED, _S.CANCELLED})
"""Outbound, never attempted again; a later delivery report may still lift them (see above)."""

REACHED: frozenset[MessageState] = frozenset({_S.DELIVERED, _S.READ})
"""The message reached the recipient. ``delivered`` is final for SMS; ``read`` may follow on
channels that report reads."""

REPORTABLE: frozenset[MessageState] = frozenset({_S.SENT, _S.FAILED, _S.DELIVERED, _S.READ})
"""The only states a provider report may carry (a provider's ``STATUS_MAP`` maps into these)."""

PIPELINE_TRANSITIONS: Mapping[tuple[MessageState, MessageState], str] = {
    (_S.QUEUED, _S.SENDING): "claimed by the dispatcher, under a lease",
    (_S.QUEUED, _S.EXPIRED): "expires_at passed before it was sent",
    (_S.QUEUED, _S.CANCELLED): "cancelled by the tenant before it was sent",
    (_S.SENDING, _S.QUEUED): "retryable outcome, failover to the next account, or lease ran out",
    (_S.SENDING, _S.SENT): "a provider accepted it",
    (_S.SENDING, _S.FAILED): "rejected with no account left in the route, or attempts used up",
    (_S.SENDING, _S.EXPIRED): "expires_at passed while claimed, before any provider accepted it",
}
"""Every move the pipeline may make, with the reason it happens (for logs and event history)."""

REPORT_RANK: Mapping[MessageState, int] = {
    _S.QUEUED: 0,
    _S.SENDING: 1,
    _S.SENT: 2,
    _S.FAILED: 3,
    _S.EXPIRED: 3,
    _S.CANCELLED: 3,
    _S.DELIVERED: 4,
    _S.READ: 5,
}
"""A report moves a message only to a strictly higher rank. ``received`` has no rank: reports
never apply to inbound messages."""


class InvalidTransition(ValueError):
    """The pipeline tried a move that ``PIPELINE_TRANSITIONS`` does not list."""

    def __init__(self, current: MessageState, target: MessageState) -> None:
        super().__init__(f"{current} -> {target} is not a pipeline transition")
        self.current = current
        self.target = target


class InvalidReport(ValueError):
    """A report carried a state outside ``REPORTABLE``: a provider's status map is wrong."""

    def __init__(self, reported: MessageState) -> None:
        super().__init__(f"a provider report cannot say {reported!s}")
        self.reported = reported


def pipeline_transition(current: MessageState, target: MessageState) -> MessageState:
    """Check that the pipeline may move a message from ``current`` to ``target``.

    Returns ``target``, so a caller writes ``row.state = pipeline_transition(row.state, SENT)``.
    Raises ``InvalidTransition`` when the move is not in ``PIPELINE_TRANSITIONS``, including a
    state to itself. Callers that race with reports (the dispatcher recording an outcome after a
    receipt already moved the row) should update with ``WHERE state = current`` and, when that
    finds nothing, apply an acceptance as ``merge_report(new_current, SENT)`` instead.
    """
    if (current, target) not in PIPELINE_TRANSITIONS:
        raise InvalidTransition(current, target)
    return MessageState(target)


def merge_report(current: MessageState, reported: MessageState) -> MessageState | None:
    """The state after applying a provider report of ``reported`` to a message in ``current``.

    Returns the new state, or ``None`` when the report changes nothing: the same state again
    (so applying a report twice is harmless), a lower or equal rank arriving late, or any
    report about an inbound message. The decision is about the state only; whether to record
    a newer error code or timestamp from a report that returns ``None`` is the caller's.
    Raises ``InvalidReport`` when ``reported`` is not in ``REPORTABLE``.
    """
    if reported not in REPORTABLE:
        raise InvalidReport(reported)
    rank = REPORT_RANK.get(current)
    if rank is None or REPORT_RANK[reported] <= rank:
        return None
    return MessageState(reported)
