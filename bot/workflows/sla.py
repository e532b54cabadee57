"""The `check_sla` job: measure open tickets against SLA_TARGETS and tell their teams of
a target 80% used and of a breach, once each (bot.domain.sla).
"""

from __future__ import annotations

import logging

from slack_sdk import WebClient

from bot import views
from bot.core import clock
from bot.delivery import outbox
from bot.domain import sla
from bot.workflows.runtime import Runtime
from models import read_transaction, transaction

log = logging.getLogger(__name__)


def check_sla(runtime: Runtime, client: WebClient) -> int:
    """Measure every ticket whose clocks run, write the notices they owe (each in the
    ticket's own transaction, with the flag that makes it once), then send them;
    returns how many notices were owed."""
    settings, now = runtime.settings, clock.now()
    with read_transaction(runtime.sessions) as session:
        ids = sla.due_tickets(session, now=now)
    owed: list[int] = []
    for ticket_id in ids:
        try:
            with transaction(runtime.sessions) as session:
                for notice in sla.check(session, ticket_id, settings=settings, now=now):
                    text, blocks = views.sla_notice(notice)
                    row = outbox.enqueue(session, purpose=outbox.NOTICE, channel=notice.channel, text=text,
                                         blocks=blocks, ticket_id=ticket_id, now=now)
                    owed.append(row.id)
        except Exception:
            log.exception("check_sla: measuring ticket %s failed; going on with the next", ticket_id)
    if owed:
        outbox.deliver(runtime.sessions, client, owed, ttl=settings.claim_ttl)
    return len(owed)
