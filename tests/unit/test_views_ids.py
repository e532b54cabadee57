"""Button values and ids: they come back in payloads that feed security checks."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.views.escape import escape
from bot.views.ids import (
    MAX_TICKET_ID,
    RATING_ACTION_RE,
    ActionId,
    BlockId,
    feedback_value,
    parse_feedback_value,
    parse_rating_action_id,
    parse_rollback_value,
    parse_why_value,
    rating_action_id,
    rollback_value,
    why_value,
)

ticket_ids = st.integers(min_value=1, max_value=MAX_TICKET_ID)
scores = st.none() | st.integers(min_value=1, max_value=5)


def test_action_ids_are_the_documented_strings():
    assert ActionId.FEEDBACK_YES == "feedback_yes"
    assert ActionId.FEEDBACK_NO == "feedback_no"
    assert ActionId.WHY == "show_reasoning"
    assert ActionId.ROLLBACK_CONFIRM == "rollback_confirm"
    assert ActionId.ROLLBACK_CANCEL == "rollback_cancel"
    # StrEnum silently makes aliases of duplicate values: check there are none.
    assert len({a.value for a in ActionId}) == len(ActionId.__members__)
    assert len({b.value for b in BlockId}) == len(BlockId.__members__)


def test_feedback_values_are_compact():
    assert feedback_value(123) == "t=123"
    assert feedback_value(123, score=4) == "t=123;s=4"
    assert parse_feedback_value("t=123") == (123, None)
    assert parse_feedback_value("t=123;s=4") == (123, 4)


@given(ticket_ids, scores)
def test_feedback_values_round_trip(ticket_id, score):
    assert parse_feedback_value(feedback_value(ticket_id, score=score)) == (ticket_id, score)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "6",
        "-1",
        "123",
        "t=",
        "t=abc",
        "t=-1",
        "t=0",
        "t=+5",
        "t=007",
        "t= 7",
        "t=7 ",
        " t=7",
        "t=7\n",
        "t=٣",  # an Arabic-Indic digit: int() would accept it
        "t=１２",  # fullwidth digits
        "t=1;s=9",
        "t=1;s=0",
        "t=1;s=6",
        "t=1;s=-1",
        "t=1;s=",
        "t=1;s=44",
        "t=1;s=4;x=1",
        "t=1;x=1",
        "t=1;",
        "s=4;t=1",
        "T=1",
        "t=1;S=4",
        f"t={2**31}",
        f"t={2**31 - 1}0",
        "t=" + "9" * 40,
        "t=1\x00",
    ],
)
def test_tampered_feedback_values_are_rejected(value):
    with pytest.raises(ValueError):
        parse_feedback_value(value)


@pytest.mark.parametrize("value", [None, 123, b"t=1", ["t=1"]])
def test_feedback_values_that_are_not_strings_are_rejected(value):
    with pytest.raises(ValueError):
        parse_feedback_value(value)


@pytest.mark.parametrize(
    ("ticket_id", "score"),
    [(0, None), (-1, None), (2**31, None), (True, None), ("1", None), (1, 0), (1, 6), (1, True)],
)
def test_feedback_value_refuses_to_write_out_of_range_values(ticket_id, score):
    with pytest.raises(ValueError):
        feedback_value(ticket_id, score=score)


def test_rating_action_ids_are_distinct_and_match_the_regex():
    ids = [rating_action_id(n) for n in range(1, 6)]
    assert ids == ["rate_1", "rate_2", "rate_3", "rate_4", "rate_5"]
    for n, action_id in enumerate(ids, 1):
        assert RATING_ACTION_RE.match(action_id).group(1) == str(n)
        assert parse_rating_action_id(action_id) == n


@pytest.mark.parametrize("action_id", ["rate_0", "rate_6", "rate_", "rate_1\n", "rate_١", "xrate_1"])
def test_other_rating_action_ids_are_rejected(action_id):
    with pytest.raises(ValueError):
        parse_rating_action_id(action_id)
    assert RATING_ACTION_RE.fullmatch(action_id) is None


@pytest.mark.parametrize("score", [0, 6, -1, True])
def test_rating_action_id_refuses_bad_scores(score):
    with pytest.raises(ValueError):
        rating_action_id(score)


@given(st.uuids(), st.text(max_size=3000))
def test_rollback_values_round_trip_and_fit_slacks_limit(action_id, reason):
    value = rollback_value(action_id, reason)
    assert len(value.encode("utf-8")) <= 2000
    parsed_id, parsed_reason = parse_rollback_value(value)
    assert parsed_id == action_id
    assert "<" not in value and ">" not in value
    if len(escape(reason).encode("utf-8")) <= 2000 - len(f"a={action_id.hex};r="):
        assert parsed_reason == reason
    else:
        # Cut to fit, visibly.
        assert parsed_reason.endswith("…")
        assert reason.startswith(parsed_reason[:-1])


def test_a_long_reason_is_truncated_to_fit():
    action_id = uuid.uuid4()
    value = rollback_value(action_id, "é" * 5000)
    assert len(value.encode("utf-8")) <= 2000
    parsed_id, reason = parse_rollback_value(value)
    assert parsed_id == action_id
    assert reason.endswith("…") and set(reason[:-1]) == {"é"}


def test_a_long_reason_is_never_cut_inside_an_entity():
    action_id = uuid.uuid4()
    for shift in range(5):
        value = rollback_value(action_id, "x" * shift + "<" * 2000)
        _, reason = parse_rollback_value(value)
        assert reason.endswith("…") and set(reason[shift:-1]) <= {"<"}


def test_a_reason_with_separators_survives():
    action_id = uuid.uuid4()
    reason = "wrong fix; a=1;r=2\nsecond line <!here> &amp; &lt; & <"
    assert parse_rollback_value(rollback_value(action_id, reason)) == (action_id, reason)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "a=;r=",
        "a=3f2a9c1e;r=x",
        "a=3F2A9C1E0B6D4C1A9E2F5A7B8C9D0E1F;r=x",
        "a=3f2a9c1e-0b6d-4c1a-9e2f-5a7b8c9d0e1f;r=x",
        "a=3f2a9c1e0b6d4c1a9e2f5a7b8c9d0e1f",
        "r=x;a=3f2a9c1e0b6d4c1a9e2f5a7b8c9d0e1f",
        " a=3f2a9c1e0b6d4c1a9e2f5a7b8c9d0e1f;r=x",
        "a=3f2a9c1e0b6d4c1a9e2f5a7b8c9d0e1f;r=" + "x" * 2000,
        "a=3f2a9c1e0b6d4c1a9e2f5a7b8c9d0e1f;r=<!channel>",
        "a=3f2a9c1e0b6d4c1a9e2f5a7b8c9d0e1f;r=a > b",
        "a=3f2a9c1e0b6d4c1a9e2f5a7b8c9d0e1f;r=R&D",
        "a=3f2a9c1e0b6d4c1a9e2f5a7b8c9d0e1f;r=&quot;",
        "a=3f2a9c1e0b6d4c1a9e2f5a7b8c9d0e1f;r=&amp",
    ],
)
def test_tampered_rollback_values_are_rejected(value):
    with pytest.raises(ValueError):
        parse_rollback_value(value)


def test_rollback_value_needs_a_uuid():
    with pytest.raises(ValueError):
        rollback_value("3f2a9c1e", "x")


@given(st.uuids())
def test_why_values_round_trip(action_id):
    assert parse_why_value(why_value(action_id)) == action_id


@pytest.mark.parametrize(
    "value",
    ["", "3f2a9c1e", "3F2A9C1E-0B6D-4C1A-9E2F-5A7B8C9D0E1F", "{3f2a9c1e-0b6d-4c1a-9e2f-5a7b8c9d0e1f}",
     "3f2a9c1e0b6d4c1a9e2f5a7b8c9d0e1f", "3f2a9c1e-0b6d-4c1a-9e2f-5a7b8c9d0e1f\n"],
)
def test_other_why_values_are_rejected(value):
    with pytest.raises(ValueError):
        parse_why_value(value)
