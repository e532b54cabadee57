"""/autonomy after the admin check: the status as the admin sees it, and a change with
the announcement it owes ALERTS_CHANNEL (an outbox row written in the change's
transaction, sent after the acknowledgement commits it).
"""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk import WebClient
from sqlalchemy.orm import Session

from bot import views
from bot.agent.answer import clean_text
from bot.core import clock
from bot.delivery import outbox
from bot.domain import autonomy
from bot.views.autonomy import REASON_LIMIT
from bot.workflows.runtime import Runtime
from models import AutonomyMode


@dataclass(frozen=True)
class Switched:
    """A change and the outbox rows announcing it (none when nothing changed)."""

    change: autonomy.Change
    owed: list[int]


def status(session: Session, runtime: Runtime) -> tuple[str, list]:
    """`/autonomy status`: the mode, each cap's use, and which types may act alone."""
    return views.autonomy_status(autonomy.current(session), runtime.budget.windows(),
                                 runtime.settings.autonomous_actions)


def switch(session: Session, runtime: Runtime, mode: AutonomyMode, *, actor_id: str,
           reason: str = "") -> Switched:
    """Set the mode (audited) and write its announcement to ALERTS_CHANNEL, in the
    caller's transaction (flushed, not committed)."""
    now = clock.now()
    change = autonomy.change(session, mode, actor_id=actor_id,
                             reason=clean_text(reason, REASON_LIMIT, one_line=True), now=now)
    channel = runtime.settings.alerts_channel
    if not change.changed or not channel:
        return Switched(change, [])
    text, blocks = views.autonomy_announcement(change)
    row = outbox.enqueue(session, purpose=outbox.NOTICE, channel=channel, text=text, blocks=blocks, now=now)
    return Switched(change, [row.id])


def announce(runtime: Runtime, client: WebClient, owed: list[int]) -> None:
    """Send the announcement right after the commit (the delivery job retries it)."""
    outbox.deliver(runtime.sessions, client, owed, ttl=runtime.settings.claim_ttl)
