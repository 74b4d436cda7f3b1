"""Message states: the pipeline's allowed moves and the monotonic merge of provider reports."""

from __future__ import annotations

from itertools import permutations, product

import pytest

from tidings.domain.states import (
    ACTIVE,
    INBOUND,
    OUTBOUND,
    PIPELINE_TRANSITIONS,
    REACHED,
    REPORT_RANK,
    REPORTABLE,
    TERMINAL,
    InvalidReport,
    InvalidTransition,
    MessageState,
    merge_report,
    pipeline_transition,
)

S = MessageState

# (current, target, why): written out here rather than read from the module, so a change to
# the module's table has to be made twice, on purpose.
ALLOWED_PIPELINE = [
    (S.QUEUED, S.SENDING, "claim"),
    (S.QUEUED, S.EXPIRED, "expire-before-claim"),
    (S.QUEUED, S.CANCELLED, "tenant-cancels"),
    (S.SENDING, S.QUEUED, "retry-failover-or-lease-expiry"),
    (S.SENDING, S.SENT, "provider-accepts"),
    (S.SENDING, S.FAILED, "provider-rejects"),
    (S.SENDING, S.EXPIRED, "expire-while-claimed"),
]

REFUSED_PIPELINE = [
    (S.SENDING, S.CANCELLED, "cancel-while-in-flight"),
    (S.QUEUED, S.SENT, "sent-without-claim"),
    (S.QUEUED, S.FAILED, "fail-without-claim"),
    (S.QUEUED, S.QUEUED, "same-state"),
    (S.SENDING, S.SENDING, "lease-renewal-is-not-a-transition"),
    (S.SENT, S.QUEUED, "resend-after-accept"),
    (S.SENT, S.DELIVERED, "delivery-is-a-report"),
    (S.SENT, S.EXPIRED, "expire-after-accept"),
    (S.SENT, S.CANCELLED, "cancel-after-accept"),
    (S.DELIVERED, S.READ, "read-is-a-report"),
    (S.FAILED, S.QUEUED, "revive-failed"),
    (S.EXPIRED, S.QUEUED, "revive-expired"),
    (S.CANCELLED, S.QUEUED, "revive-cancelled"),
    (S.RECEIVED, S.QUEUED, "inbound-into-pipeline"),
    (S.QUEUED, S.RECEIVED, "outbound-to-inbound"),
]


@pytest.mark.parametrize(("current", "target"), [
    pytest.param(current, target, id=why) for current, target, why in ALLOWED_PIPELINE
])
def test_pipeline_transition_allows_the_dispatcher_moves(
        current: MessageState, target: MessageState) -> None:
    assert pipeline_transition(current, target) is target


@pytest.mark.parametrize(("current", "target"), [
    pytest.param(current, target, id=why) for current, target, why in REFUSED_PIPELINE
])
def test_pipeline_transition_refuses_other_moves(
        current: MessageState, target: MessageState) -> None:
    with pytest.raises(InvalidTransition) as caught:
        pipeline_transition(current, target)
    assert (caught.value.current, caught.value.target) == (current, target)
    assert str(caught.value) == f"{current} -> {target} is not a pipeline transition"


@pytest.mark.parametrize(("current", "target"), [
    pytest.param(current, target, id=f"{current}-{target}")
    for current, target in product(MessageState, MessageState)
])
def test_pipeline_transition_allows_exactly_the_listed_pairs(
        current: MessageState, target: MessageState) -> None:
    allowed = {(c, t) for c, t, _ in ALLOWED_PIPELINE}
    if (current, target) in allowed:
        assert pipeline_transition(current, target) is target
    else:
        with pytest.raises(InvalidTransition):
            pipeline_transition(current, target)


def test_every_pipeline_transition_leaves_an_active_state_and_has_a_reason() -> None:
    assert set(PIPELINE_TRANSITIONS) == {(c, t) for c, t, _ in ALLOWED_PIPELINE}
    assert all(current in ACTIVE for current, _ in PIPELINE_TRANSITIONS)
    assert all(reason.strip() for reason in PIPELINE_TRANSITIONS.values())


def test_invalid_transition_is_a_value_error() -> None:
    assert issubclass(InvalidTransition, ValueError)
    assert issubclass(InvalidReport, ValueError)


# current -> {reported: new state, or None for "changes nothing"}; the table in the module
# docstring, written out.
NO: None = None
MERGE: dict[MessageState, dict[MessageState, MessageState | None]] = {
    S.QUEUED:    {S.SENT: S.SENT, S.FAILED: S.FAILED, S.DELIVERED: S.DELIVERED, S.READ: S.READ},
    S.SENDING:   {S.SENT: S.SENT, S.FAILED: S.FAILED, S.DELIVERED: S.DELIVERED, S.READ: S.READ},
    S.SENT:      {S.SENT: NO,     S.FAILED: S.FAILED, S.DELIVERED: S.DELIVERED, S.READ: S.READ},
    S.FAILED:    {S.SENT: NO,     S.FAILED: NO,       S.DELIVERED: S.DELIVERED, S.READ: S.READ},
    S.EXPIRED:   {S.SENT: NO,     S.FAILED: NO,       S.DELIVERED: S.DELIVERED, S.READ: S.READ},
    S.CANCELLED: {S.SENT: NO,     S.FAILED: NO,       S.DELIVERED: S.DELIVERED, S.READ: S.READ},
    S.DELIVERED: {S.SENT: NO,     S.FAILED: NO,       S.DELIVERED: NO,          S.READ: S.READ},
    S.READ:      {S.SENT: NO,     S.FAILED: NO,       S.DELIVERED: NO,          S.READ: NO},
    S.RECEIVED:  {S.SENT: NO,     S.FAILED: NO,       S.DELIVERED: NO,          S.READ: NO},
}


@pytest.mark.parametrize(("current", "reported", "expected"), [
    pytest.param(current, reported, expected, id=f"{current}+{reported}")
    for current, row in MERGE.items()
    for reported, expected in row.items()
])
def test_merge_report_follows_the_table(
        current: MessageState, reported: MessageState, expected: MessageState | None) -> None:
    assert merge_report(current, reported) == expected


def test_the_merge_table_covers_every_state_and_every_reportable_state() -> None:
    assert set(MERGE) == set(MessageState)
    assert all(set(row) == REPORTABLE for row in MERGE.values())


@pytest.mark.parametrize(("current", "reported"), [
    pytest.param(current, reported, id=f"{current}+{reported}")
    for current, reported in product(MessageState, sorted(REPORTABLE))
])
def test_applying_the_same_report_twice_changes_nothing_the_second_time(
        current: MessageState, reported: MessageState) -> None:
    after = merge_report(current, reported) or current
    assert merge_report(after, reported) is None


@pytest.mark.parametrize(("reports", "expected"), [
    pytest.param([S.DELIVERED, S.SENT], S.DELIVERED, id="late-sent-after-delivered"),
    pytest.param([S.READ, S.DELIVERED, S.SENT], S.READ, id="reverse-order"),
    pytest.param([S.DELIVERED, S.FAILED], S.DELIVERED, id="failure-after-delivery"),
    pytest.param([S.FAILED, S.DELIVERED], S.DELIVERED, id="delivery-after-failure"),
    pytest.param([S.FAILED, S.SENT], S.FAILED, id="late-sent-after-failure"),
    pytest.param([S.SENT, S.SENT, S.DELIVERED, S.DELIVERED], S.DELIVERED, id="duplicates"),
])
def test_out_of_order_receipts_end_in_the_highest_state(
        reports: list[MessageState], expected: MessageState) -> None:
    state = S.SENT
    for reported in reports:
        state = merge_report(state, reported) or state
    assert state is expected


def _fold(start: MessageState, reports: tuple[MessageState, ...]) -> MessageState:
    state = start
    for reported in reports:
        state = merge_report(state, reported) or state
    return state


@pytest.mark.parametrize("start", sorted(OUTBOUND))
def test_the_outcome_does_not_depend_on_the_order_reports_arrive_in(start: MessageState) -> None:
    for size in range(1, len(REPORTABLE) + 1):
        for chosen in permutations(sorted(REPORTABLE), size):
            outcomes = {_fold(start, order) for order in permutations(chosen)}
            assert len(outcomes) == 1, (start, chosen, outcomes)


@pytest.mark.parametrize("reported", sorted(set(MessageState) - REPORTABLE))
def test_a_report_of_a_state_providers_cannot_report_is_a_bug(reported: MessageState) -> None:
    with pytest.raises(InvalidReport) as caught:
        merge_report(S.SENT, reported)
    assert caught.value.reported is reported


def test_the_state_groups_partition_the_states() -> None:
    assert INBOUND == {S.RECEIVED}
    assert OUTBOUND == set(MessageState) - INBOUND
    assert ACTIVE | {S.SENT} | TERMINAL | REACHED == OUTBOUND
    assert len(ACTIVE) + 1 + len(TERMINAL) + len(REACHED) == len(OUTBOUND)
    assert set(REPORT_RANK) == OUTBOUND
    assert REPORTABLE <= OUTBOUND - ACTIVE


def test_terminal_states_outrank_sent_and_delivery_outranks_them() -> None:
    ranks = {REPORT_RANK[state] for state in TERMINAL}
    assert len(ranks) == 1
    (terminal,) = ranks
    assert REPORT_RANK[S.SENT] < terminal < REPORT_RANK[S.DELIVERED] < REPORT_RANK[S.READ]
