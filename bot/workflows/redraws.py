"""What a click owes after its acknowledgement, and where that work runs.

A requester's answer (Yes/No, stars, an NPS number, the "What didn't work?" words) is
stored and acknowledged on the request path; what the person then sees is work after
the ack: the clicked message redrawn with the answer, the notices a "No" owes sent,
the team's notices redrawn when the ticket moved. That work is most of a click's CPU,
so like decisions it runs where the process is configured to put it:

- on the Celery workers (`DECIDE_ON=workers`, the default with REDIS_URL): a
  `resolvemeq.redraw` task per click, published after the ack's commit with plain
  values (ids, the message's channel and ts; `Redraw.fields`), never ORM objects
  (`jobs.dispatch.CeleryRedraws`). A broker that refuses the publish: this process's
  pool, so the person still sees their answer;
- in the serving process's bounded pool (`InProcessRedraws`), as in the embedded
  default.

Running one twice is harmless (a redelivered task, a retry): each message is drawn from
the stored state at send time under its message lock, so a second run draws the same,
and owed outbox rows are sent once through their claims (`bot.delivery.outbox`).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from slack_sdk import WebClient

from bot.delivery.background import Background
from bot.domain.feedback import FeedbackResult
from bot.workflows import announce
from bot.workflows import teamwork as team_notices
from bot.workflows.runtime import Runtime

log = logging.getLogger(__name__)


class RedrawKind(enum.StrEnum):
    """Which work after a click (the Celery task carries it by value)."""

    # The requester's answer on the message they clicked; then the notices it owes, and
    # the team's notices when the answer moved the ticket.
    ANSWER = "answer"
    # An NPS number on a follow-up DM.
    NPS = "nps"
    # The team's notices of a ticket (the "What didn't work?" words reached them).
    TEAM_NOTICES = "team_notices"


@dataclass(frozen=True)
class Redraw:
    """One piece of work after a click, in plain values (what a task carries)."""

    kind: RedrawKind
    ticket_id: int | None = None
    # The person's resolution the answer is about (None: the bot's).
    person_resolution_id: int | None = None
    channel: str | None = None
    message_ts: str | None = None
    # Outbox rows the answer wrote with it (a "No"'s notices): sent after the redraw.
    owed: tuple[int, ...] = ()
    # The answer changed the ticket's status: its team notices are redrawn too.
    ticket_moved: bool = False

    def fields(self) -> dict[str, Any]:
        """Plain JSON values (the task's keyword arguments)."""
        return {**asdict(self), "kind": str(self.kind), "owed": list(self.owed)}

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> Redraw:
        """The inverse of `fields`; ValueError for anything `fields` would not write."""
        try:
            return cls(kind=RedrawKind(fields["kind"]),
                       ticket_id=_optional_int(fields.get("ticket_id")),
                       person_resolution_id=_optional_int(fields.get("person_resolution_id")),
                       channel=fields.get("channel"), message_ts=fields.get("message_ts"),
                       owed=tuple(int(i) for i in fields.get("owed") or ()),
                       ticket_moved=bool(fields.get("ticket_moved")))
        except (KeyError, TypeError) as error:
            raise ValueError(f"not a redraw: {error}") from None


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def answer(result: FeedbackResult, *, channel: str, message_ts: str, owed: Sequence[int] = ()) -> Redraw:
    """The redraw a recorded answer owes (the message clicked, `owed` after it)."""
    return Redraw(RedrawKind.ANSWER, ticket_id=result.ticket.ticket_id,
                  person_resolution_id=result.resolution.id if result.by_person else None,
                  channel=channel, message_ts=message_ts, owed=tuple(int(i) for i in owed),
                  ticket_moved=result.ticket_moved)


def nps_answer(*, channel: str, message_ts: str) -> Redraw:
    """The redraw of a follow-up DM after an NPS number."""
    return Redraw(RedrawKind.NPS, channel=channel, message_ts=message_ts)


def team_notices_of(ticket_id: int) -> Redraw:
    """The redraw of a ticket's team notices."""
    return Redraw(RedrawKind.TEAM_NOTICES, ticket_id=ticket_id)


def run_redraw(runtime: Runtime, client: WebClient, redraw: Redraw) -> None:
    """Do the work where it landed (this process's pool, a worker)."""
    if redraw.kind is RedrawKind.ANSWER:
        assert redraw.ticket_id is not None and redraw.channel and redraw.message_ts
        announce.redraw_answer(runtime, client, ticket_id=redraw.ticket_id,
                               person_resolution_id=redraw.person_resolution_id,
                               channel=redraw.channel, message_ts=redraw.message_ts,
                               owed=redraw.owed, ticket_moved=redraw.ticket_moved)
    elif redraw.kind is RedrawKind.NPS:
        assert redraw.channel and redraw.message_ts
        announce.announce_nps(runtime, client, channel=redraw.channel, message_ts=redraw.message_ts)
    else:
        assert redraw.ticket_id is not None
        team_notices.refresh_team_notices(runtime, client, redraw.ticket_id)


class Redraws(Protocol):
    """Where this process hands the work after a click off to."""

    def hand_off(self, redraw: Redraw) -> None:
        """Run it elsewhere, after the ack's commit (may be dropped when all is full:
        it is cosmetic, and the stored answer is right either way)."""


class InProcessRedraws:
    """The work after a click on the serving process's bounded pool.

    Args:
        runtime: this process's runtime.
        client: the Slack client.
        background: the executor (SLACK_BACKGROUND_WORKERS threads); full, the redraw
            is dropped with a log line.
    """

    def __init__(self, runtime: Runtime, client: WebClient, background: Background) -> None:
        self._runtime, self._client, self._background = runtime, client, background

    def hand_off(self, redraw: Redraw) -> None:
        self._background.try_submit(run_redraw, self._runtime, self._client, redraw)


def hand_off(runtime: Runtime, redraw: Redraw) -> None:
    """Hand the work after a click off (after the ack: the answer is committed)."""
    if runtime.redraws is None:
        log.warning("no place for the work after a click in this process; %s dropped", redraw.kind)
        return
    runtime.redraws.hand_off(redraw)
