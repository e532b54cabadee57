"""The autonomy switch in Slack: `/autonomy status`, a change as the admin sees it and
as ALERTS_CHANNEL hears it, the App Home's line, and the shadow comparison in
`/resolution-stats`.

Duck-typed on bot.domain.autonomy (Switch: mode, reason, changed_by, changed_at;
Change: before, after, changed; ShadowComparison: days, decisions, rows of
action_type, decisions, resolved_by_people, same_team, confirmed) and on
bot.domain.ratelimit.CapWindow (cap, limit, used, left). The admin's reason is their
own text: escaped and clipped here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import Block

from bot.views.common import context, fallback, header, humanize, section, table, to_dicts, when
from bot.views.escape import clip, escape, mention
from models import AutonomyMode

Blocks = list[dict[str, Any]]

REASON_LIMIT = 500
USAGE = ("Usage: `/autonomy status`, `/autonomy pause [reason]`, `/autonomy resume`, "
         "`/autonomy shadow [reason]`, `/autonomy experiment` (the THRESHOLD_EXPERIMENT results) or "
         "`/autonomy experiment stop [reason]`.")

_MODE_LINES = {
    AutonomyMode.ON: "*On*: the bot acts alone when it is confident, within the caps.",
    AutonomyMode.PAUSED: "*Paused*: the bot acts alone on nothing; every ticket goes to people "
                         "with the bot's suggestion.",
    AutonomyMode.SHADOW: "*Shadow*: the bot records what it would have done, and every ticket "
                         "goes to people with its suggestion.",
}
_ANNOUNCED = {AutonomyMode.ON: "resumed the bot's autonomy", AutonomyMode.PAUSED: "paused the bot's autonomy",
              AutonomyMode.SHADOW: "switched the bot to shadow mode"}
_VERBS = {AutonomyMode.ON: "resumed", AutonomyMode.PAUSED: "paused",
          AutonomyMode.SHADOW: "put in shadow mode"}


def mode_line(switch: Any, *, detail: bool = True) -> str:
    """The mode in one line; with `detail` (for admins), who set it, when and why (escaped)."""
    line = _MODE_LINES[AutonomyMode(switch.mode)]
    if detail and switch.changed_by:
        line += f"\nSet by {mention(switch.changed_by)} at {when(switch.changed_at)}"
        if switch.reason:
            line += f": {_reason(switch.reason)}"
    return line


def autonomy_status(switch: Any, windows: Sequence[Any] | None, allowed: Sequence[str]) -> tuple[str, Blocks]:
    """`/autonomy status`: the mode, each cap's use, and which action types act alone.

    Args:
        switch: the switch as stored.
        windows: each cap's window; None when the caps' store cannot be read.
        allowed: AUTONOMOUS_ACTIONS.
    """
    if windows is None:
        caps = "The caps' store cannot be read right now: nothing acts alone until it answers."
    else:
        rows = [(w.cap, str(w.used), str(w.left)) for w in windows]
        caps = table(("Cap", "Used", "Left"), rows, noun="caps")
    acting = ", ".join(humanize(a).lower() for a in allowed) if allowed else "none"
    blocks: list[Block] = [
        header("Autonomy"),
        section(mode_line(switch)),
        section(f"*Caps on acting alone*\n{caps}"),
        section(f"*May act alone* (AUTONOMOUS_ACTIONS): {acting}"),
        context(USAGE),
    ]
    return fallback(f"Autonomy: {AutonomyMode(switch.mode)}"), to_dicts(blocks)


def autonomy_changed(change: Any, *, announced: bool = True) -> tuple[str, Blocks]:
    """What the admin who ran /autonomy is told (`announced`: in ALERTS_CHANNEL)."""
    after = change.after
    if not change.changed:
        text = f"Autonomy is already {_name(after.mode)}. Nothing changed."
        return text, to_dicts([section(escape(text)), context(mode_line(after))])
    text = f"Autonomy {_VERBS[AutonomyMode(after.mode)]}."
    told = ("Announced in the alerts channel and recorded in the audit log." if announced else
            "Recorded in the audit log (no ALERTS_CHANNEL is set to announce it in).")
    return text, to_dicts([section(f"*{escape(text)}*\n{mode_line(after)}"), context(told)])


def autonomy_announcement(change: Any) -> tuple[str, Blocks]:
    """The notice in ALERTS_CHANNEL: who switched what, from what, and why."""
    after = change.after
    who = mention(after.changed_by) if after.changed_by else "Someone"
    mode = AutonomyMode(after.mode)
    text = f"Autonomy {_VERBS[mode]} (was {_name(change.before.mode)})"
    did = _ANNOUNCED[mode]
    body = f"*{who} {did}* (it was {_name(change.before.mode)})."
    if after.reason:
        body += f"\nReason: {_reason(after.reason)}"
    return fallback(text), to_dicts([section(body), context(_MODE_LINES[AutonomyMode(after.mode)])])


def shadow_blocks(compared: Any) -> list[Block]:
    """The shadow decisions in the window beside what people did with those tickets."""
    if compared is None or not compared.decisions:
        return []
    rows = [(str(r.action_type).replace("_", " ").lower(), str(r.decisions), str(r.resolved_by_people),
             str(r.same_team), str(r.confirmed)) for r in compared.rows]
    shown = table(("Bot would have", "Tickets", "People resolved", "Same team", "Yes"), rows,
                  noun="action types")
    return [
        section(f"*Shadow mode: what the bot would have done* ({compared.decisions} tickets)\n{shown}"),
        context("People resolved: a person resolved the ticket after the bot's shadow decision; "
                "same team: in the team the bot named; Yes: the requester said it worked."),
    ]


def _name(mode: Any) -> str:
    return {AutonomyMode.ON: "on", AutonomyMode.PAUSED: "paused", AutonomyMode.SHADOW: "in shadow mode"}[
        AutonomyMode(mode)]


def _reason(reason: str) -> str:
    return f"_{clip(reason, REASON_LIMIT)}_"
