"""Block Kit ids and button values: what Slack sends back when someone clicks.

Button values come back in interaction payloads and feed authorization checks (is
this the requester's ticket? is this the action the admin previewed?), so their
parsers are strict: one canonical spelling is accepted, anything else raises
`ValueError`. A value that round-trips is one we wrote.
"""

from __future__ import annotations

import re
import uuid
from enum import StrEnum

# Ticket ids are a PostgreSQL `integer` primary key.
MAX_TICKET_ID = 2**31 - 1
# Slack rejects a button whose value is longer than this.
MAX_BUTTON_VALUE = 2000

RATING_ACTION_RE = re.compile(r"^rate_([1-5])$")
# The NPS question's 0-10 buttons ("nps_0" .. "nps_10"); each carries its DM.
NPS_ACTION_RE = re.compile(r"^nps_(10|[0-9])$")
_NPS_VALUE_RE = re.compile(r"o=([1-9][0-9]{0,9});n=(10|[0-9])")

# `[0-9]` and not `\d`: `\d` also matches other scripts' digits ("٣"). No leading
# zeros, so each ticket has exactly one spelling. Ten digits at most keeps int()
# cheap before the range check.
_FEEDBACK_RE = re.compile(r"t=([1-9][0-9]{0,9})(?:;s=([1-5]))?")
# A person's resolution: the ticket and the person_resolution row the answer is for.
_PERSON_FEEDBACK_RE = re.compile(r"t=([1-9][0-9]{0,9});p=([1-9][0-9]{0,9})(?:;s=([1-5]))?")
_TICKET_RE = re.compile(r"t=([1-9][0-9]{0,9})")
# A rollback request (two-person mode): its id.
_REQUEST_RE = re.compile(r"q=([1-9][0-9]{0,9})")
# The reason is stored escaped (Slack's three entities), so the message JSON holds no
# `<` from what an admin typed even in a button value nobody sees.
_ROLLBACK_RE = re.compile(r"a=([0-9a-f]{32});r=((?:[^&<>]|&(?:amp|lt|gt);)*)", re.DOTALL)
_ENTITY_RE = re.compile(r"&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}
_PARTIAL_ENTITY_RE = re.compile(r"&[a-z]{0,3}$")
_WHY_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ROLLBACK_PREFIX_LEN = len("a=") + 32 + len(";r=")
_ELLIPSIS = "…"
REOPENED_BLOCK_PREFIX = "reopened:"


class ActionId(StrEnum):
    """`action_id`s of our interactive elements; handlers bind to these."""

    FEEDBACK_YES = "feedback_yes"
    FEEDBACK_NO = "feedback_no"
    WHY = "show_reasoning"
    ROLLBACK_CONFIRM = "rollback_confirm"
    ROLLBACK_CANCEL = "rollback_cancel"
    # A team notice's buttons, and the resolve modal's note field.
    TEAM_TAKE = "team_take"
    TEAM_RESOLVE = "team_resolve"
    RESOLUTION_NOTE = "resolution_note"
    # A rollback request's buttons in the approvals channel, and the reject modal's field.
    ROLLBACK_APPROVE = "rollback_approve"
    ROLLBACK_REJECT = "rollback_reject"
    REJECT_REASON = "reject_reason"
    # App Home: the requester's own tickets, and the Add detail modal's field.
    MY_ADD_DETAIL = "my_add_detail"
    MY_WITHDRAW = "my_withdraw"
    DETAIL_TEXT = "detail_text"
    # The "What didn't work?" modal's field, opened by No.
    FEEDBACK_REASON = "feedback_reason"


class BlockId(StrEnum):
    """`block_id`s of the blocks that carry our buttons or are updated in place."""

    TICKET_ACK = "ticket_ack"
    ANSWER = "answer"
    CONFIDENCE = "confidence"
    FEEDBACK = "feedback"
    FEEDBACK_RESULT = "feedback_result"
    RATING = "rating"
    RATING_RESULT = "rating_result"
    TICKET_CONTEXT = "ticket_context"
    ROLLBACK_CONFIRM = "rollback_confirm"
    # A team notice: who has the ticket, and its Take it / Resolve buttons (redrawn).
    TEAM_STATE = "team_state"
    TEAM_ACTIONS = "team_actions"
    TEAM_HINT = "team_hint"
    RESOLUTION_NOTE = "resolution_note"
    # A rollback request: its Approve / Reject buttons (replaced by the outcome).
    APPROVAL_ACTIONS = "approval_actions"
    APPROVAL_OUTCOME = "approval_outcome"
    REJECT_REASON = "reject_reason"
    # App Home: the requester's tickets (one actions block each: "my_ticket_<id>").
    MY_TICKETS = "my_tickets"
    DETAIL_TEXT = "detail_text"
    FEEDBACK_REASON = "feedback_reason"
    # A reopen notice: what the requester said did not work (added when they say it).
    REQUESTER_SAID = "team_requester_said"
    # A follow-up DM's NPS question and its 0-10 buttons.
    NPS_QUESTION = "nps_question"
    NPS = "nps"


class CallbackId(StrEnum):
    """`callback_id`s of our modals; view_submission handlers bind to these."""

    RESOLVE_TICKET = "resolve_ticket"
    REJECT_ROLLBACK = "reject_rollback"
    ADD_DETAIL = "add_detail"
    # The message shortcut "Create a ticket" (a shortcut's callback_id, not a modal's).
    CREATE_TICKET = "create_ticket"
    FEEDBACK_REASON = "feedback_reason"


def rating_action_id(score: int) -> str:
    """The action_id of the star button for `score`.

    Slack wants distinct action_ids within one block, so each star has its own.

    Args:
        score: 1 to 5.

    Returns:
        "rate_1" to "rate_5".

    Raises:
        ValueError: `score` is not an int from 1 to 5.
    """
    _check_score(score)
    return f"rate_{score}"


def parse_rating_action_id(action_id: str) -> int:
    """The score of a star button's action_id ("rate_4" -> 4).

    Raises:
        ValueError: not one of our star buttons.
    """
    match = RATING_ACTION_RE.fullmatch(action_id) if isinstance(action_id, str) else None
    if match is None:
        raise ValueError(f"not a rating action id: {action_id!r:.40}")
    return int(match.group(1))


def feedback_value(ticket_id: int, *, score: int | None = None) -> str:
    """The value of a feedback button: "t=123", or "t=123;s=4" for a star.

    Args:
        ticket_id: the ticket the answer was for.
        score: the star rating the button gives, if it is a star button.

    Raises:
        ValueError: the ticket id or the score is out of range.
    """
    _check_ticket_id(ticket_id)
    if score is None:
        return f"t={ticket_id}"
    _check_score(score)
    return f"t={ticket_id};s={score}"


def parse_feedback_value(value: str) -> tuple[int, int | None]:
    """Read a feedback button's value back.

    Args:
        value: the `value` from the interaction payload.

    Returns:
        (ticket_id, score), score None for the Yes/No buttons.

    Raises:
        ValueError: anything `feedback_value` would not have written.
    """
    # fullmatch, not match with `$`: `$` also matches before a trailing newline.
    match = _FEEDBACK_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"not a feedback value: {value!r:.40}")
    ticket_id = int(match.group(1))
    if ticket_id > MAX_TICKET_ID:
        raise ValueError("ticket id out of range")
    score = match.group(2)
    return ticket_id, None if score is None else int(score)


def person_feedback_value(ticket_id: int, person_resolution_id: int, *, score: int | None = None) -> str:
    """The value of a feedback button on a person's resolution: "t=123;p=45" (";s=4" for
    a star), so the answer lands on that resolution's own record, not the bot's.

    Raises:
        ValueError: an id or the score is out of range.
    """
    _check_ticket_id(ticket_id)
    _check_ticket_id(person_resolution_id)
    value = f"t={ticket_id};p={person_resolution_id}"
    if score is None:
        return value
    _check_score(score)
    return f"{value};s={score}"


def parse_feedback_target(value: str) -> tuple[int, int | None, int | None]:
    """Read any feedback button's value: the bot's ("t=1", "t=1;s=4") or a person's
    ("t=1;p=2", "t=1;p=2;s=4").

    Returns:
        (ticket_id, person_resolution_id or None, score or None).

    Raises:
        ValueError: anything `feedback_value` or `person_feedback_value` would not write.
    """
    if not isinstance(value, str):
        raise ValueError("not a feedback value")
    match = _PERSON_FEEDBACK_RE.fullmatch(value)
    if match is None:
        ticket_id, score = parse_feedback_value(value)
        return ticket_id, None, score
    ticket_id, person_resolution_id = int(match.group(1)), int(match.group(2))
    if max(ticket_id, person_resolution_id) > MAX_TICKET_ID:
        raise ValueError("id out of range")
    raw_score = match.group(3)
    return ticket_id, person_resolution_id, None if raw_score is None else int(raw_score)


def reopened_block_id(ticket_id: int, person_resolution_id: int | None = None) -> str:
    """The block id of a reopen notice's headline: which resolution the "No" was about
    ("reopened:t=12", or "reopened:t=12;p=3" for a person's), so the requester's words
    reach the notice of the answer they were about.

    Raises:
        ValueError: an id is out of range.
    """
    if person_resolution_id is None:
        return REOPENED_BLOCK_PREFIX + feedback_value(ticket_id)
    return REOPENED_BLOCK_PREFIX + person_feedback_value(ticket_id, person_resolution_id)


def ticket_value(ticket_id: int) -> str:
    """The value of a team notice's buttons and the resolve modal's private_metadata:
    "t=123".

    Raises:
        ValueError: the ticket id is out of range.
    """
    _check_ticket_id(ticket_id)
    return f"t={ticket_id}"


def parse_ticket_value(value: object) -> int:
    """Read `ticket_value` back.

    Raises:
        ValueError: anything `ticket_value` would not have written.
    """
    match = _TICKET_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None or int(match.group(1)) > MAX_TICKET_ID:
        raise ValueError(f"not a ticket value: {value!r:.40}")
    return int(match.group(1))


def request_value(request_id: int) -> str:
    """The value of a rollback request's Approve and Reject buttons, and the reject
    modal's private_metadata: "q=12".

    Raises:
        ValueError: the id is out of range.
    """
    _check_ticket_id(request_id)  # the same integer key range
    return f"q={request_id}"


def parse_request_value(value: object) -> int:
    """Read `request_value` back.

    Raises:
        ValueError: anything `request_value` would not have written.
    """
    match = _REQUEST_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None or int(match.group(1)) > MAX_TICKET_ID:
        raise ValueError(f"not a rollback request value: {value!r:.40}")
    return int(match.group(1))


def rollback_value(action_id: uuid.UUID, reason: str) -> str:
    """The value of the rollback Confirm button: the action and the admin's reason.

    The reason rides in the button so the confirm click needs no server-side state.
    It is escaped like any text we send Slack (`parse_rollback_value` undoes that)
    and cut, with an ellipsis, so the value fits Slack's 2000-character limit,
    counted in UTF-8 bytes so it fits however Slack counts.

    Args:
        action_id: the action to roll back.
        reason: the admin's reason, as typed (it is not rendered from here).

    Raises:
        ValueError: `action_id` is not a UUID or `reason` is not a string.
    """
    if not isinstance(action_id, uuid.UUID):
        raise ValueError("action_id must be a UUID")
    if not isinstance(reason, str):
        raise ValueError("reason must be a string")
    budget = MAX_BUTTON_VALUE - _ROLLBACK_PREFIX_LEN
    escaped = reason.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    encoded = escaped.encode("utf-8")
    if len(encoded) > budget:
        cut = budget - len(_ELLIPSIS.encode("utf-8"))
        # errors="ignore" drops a code point split by the byte cut; the regex drops
        # an entity split by it.
        head = encoded[:cut].decode("utf-8", errors="ignore")
        escaped = _PARTIAL_ENTITY_RE.sub("", head) + _ELLIPSIS
    return f"a={action_id.hex};r={escaped}"


def parse_rollback_value(value: str) -> tuple[uuid.UUID, str]:
    """Read the rollback Confirm button's value back.

    Returns:
        (action_id, reason), the reason as the admin typed it (unescaped).

    Raises:
        ValueError: anything `rollback_value` would not have written.
    """
    if not isinstance(value, str) or len(value.encode("utf-8")) > MAX_BUTTON_VALUE:
        raise ValueError("not a rollback value")
    match = _ROLLBACK_RE.fullmatch(value)
    if match is None:
        raise ValueError(f"not a rollback value: {value!r:.60}")
    # One pass, so "&amp;lt;" becomes "&lt;" and not "<".
    reason = _ENTITY_RE.sub(lambda m: _ENTITIES[m.group(1)], match.group(2))
    return uuid.UUID(hex=match.group(1)), reason


def why_value(action_id: uuid.UUID) -> str:
    """The value of the "Why?" button: the action id, canonical hyphenated form."""
    if not isinstance(action_id, uuid.UUID):
        raise ValueError("action_id must be a UUID")
    return str(action_id)


def parse_why_value(value: str) -> uuid.UUID:
    """Read the "Why?" button's value back.

    Raises:
        ValueError: not a lowercase hyphenated UUID (what `why_value` writes).
    """
    if not isinstance(value, str) or _WHY_RE.fullmatch(value) is None:
        raise ValueError(f"not an action id: {value!r:.40}")
    return uuid.UUID(value)


def _check_ticket_id(ticket_id: int) -> None:
    # bool is an int subclass: `True` as a ticket id is a bug, not ticket #1.
    if isinstance(ticket_id, bool) or not isinstance(ticket_id, int):
        raise ValueError("ticket id must be an int")
    if not 1 <= ticket_id <= MAX_TICKET_ID:
        raise ValueError("ticket id out of range")


def _check_score(score: int) -> None:
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
        raise ValueError("score must be an int from 1 to 5")


def nps_action_id(score: int) -> str:
    """The action_id of the NPS button for `score` (0-10)."""
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 10:
        raise ValueError(f"NPS score out of range: {score!r}")
    return f"nps_{score}"


def nps_value(outbox_id: int, score: int) -> str:
    """The value of an NPS button: "o=<the DM's outbox row>;n=<score>"."""
    nps_action_id(score)
    if isinstance(outbox_id, bool) or not isinstance(outbox_id, int) or not 1 <= outbox_id <= MAX_TICKET_ID:
        raise ValueError(f"outbox id out of range: {outbox_id!r}")
    return f"o={outbox_id};n={score}"


def parse_nps(action_id: str, value: str) -> tuple[int, int]:
    """(the DM's outbox row, the score) of an NPS click; action id and value must agree.

    Raises:
        ValueError: not one of our NPS buttons.
    """
    named = NPS_ACTION_RE.fullmatch(action_id) if isinstance(action_id, str) else None
    match = _NPS_VALUE_RE.fullmatch(value) if isinstance(value, str) else None
    if named is None or match is None or named.group(1) != match.group(2):
        raise ValueError("not an NPS button")
    outbox_id = int(match.group(1))
    if outbox_id > MAX_TICKET_ID:
        raise ValueError("outbox id out of range")
    return outbox_id, int(match.group(2))
