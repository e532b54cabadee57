"""`/resolution-stats` and the App Home tab: how well the bot is doing.

Duck-typed on bot.analytics.ResolutionStats (days, since, resolutions, confirmed,
failed, pending, reopened, success_rate, average_rating, ratings, withdrawn,
by_action_type, by_team, and people / people_by_team when there are any). A rate or
average of None means nobody answered yet; it is said in words, because "0%" would
read as "everything failed". People's resolutions are shown apart from the bot's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import Block, DividerBlock
from slack_sdk.models.views import View

from bot.views.autonomy import mode_line, shadow_blocks
from bot.views.common import context, fields_section, header, percent, section, to_dicts, when
from bot.views.common import table as _table
from bot.views.escape import SECTION_TEXT_LIMIT, clip
from bot.views.experiment import results_blocks
from bot.views.requester import my_tickets_blocks
from bot.views.sla import sla_blocks
from bot.views.success import success_blocks

Blocks = list[dict[str, Any]]

NO_ANSWERS = "no answers yet"
NO_RATINGS = "no ratings yet"


def stats_blocks(stats: Any, *, comments: Sequence[Any] = (), shadow: Any = None,
                 sla: Sequence[Any] | None = None, experiment: Any = None) -> Blocks:
    """The figures for `/resolution-stats`.

    Args:
        stats: a ResolutionStats.
        comments: the latest analytics.Comment of requesters who said No, newest first.
        shadow: a ShadowComparison (bot.domain.autonomy), shown when it has decisions.
        sla: the service levels per team and priority (bot.domain.sla.SlaRow), if read.
        experiment: the running THRESHOLD_EXPERIMENT's results
            (bot.domain.experiment_stats.ExperimentResults), when one runs.

    Returns:
        Blocks: the headline figures, a table per action type and one per team, the
        latest comments of requesters who said No, and the shadow decisions beside what
        people did.
    """
    levels = sla_blocks(sla) if sla is not None else []
    return to_dicts([*_stats_blocks(stats), *levels, *_comment_blocks(comments), *shadow_blocks(shadow),
                     *_experiment_blocks(experiment)])


def _experiment_blocks(experiment: Any) -> list[Block]:
    if experiment is None:
        return []
    return [DividerBlock(), *results_blocks(experiment, title="Threshold experiment (THRESHOLD_EXPERIMENT)")]


def _comment_blocks(comments: Sequence[Any]) -> list[Block]:
    """What requesters said did not work, newest first (their words, escaped)."""
    if not comments:
        return []
    budget = (SECTION_TEXT_LIMIT - 100) // len(comments)
    lines = []
    for comment in comments:
        whose = "a person's resolution" if comment.by_person else "the bot's answer"
        head = f"• #{comment.ticket_id}, about {whose} ({when(comment.at)}): "
        lines.append(head + clip(" ".join(comment.text.split()), max(budget - len(head), 40)))
    return [DividerBlock(), section("*Latest comments* (what didn't work, in the requesters' words)\n"
                                    + "\n".join(lines))]


def home_view(stats: Any | None, *, is_admin: bool, mine: Any | None = None,
              autonomy: Any = None, sla: Sequence[Any] | None = None,
              experiment: Any = None) -> dict[str, Any]:
    """The App Home tab: how to ask for help, the autonomy mode, the viewer's open
    tickets, the figures, and admin hints for admins.

    Args:
        stats: a ResolutionStats, or None when the figures could not be read.
        is_admin: whether the viewer may use /rollback and /history.
        mine: the viewer's open tickets (`tickets`, `total`: bot.domain.requester.OpenTickets),
            or None when they could not be read.
        autonomy: the autonomy switch (bot.domain.autonomy.Switch), when it was read.
        sla: the service levels per team and priority (bot.domain.sla.SlaRow), shown
            with the figures, when they were read.
        experiment: the running THRESHOLD_EXPERIMENT's results, when one runs.

    Returns:
        A `{"type": "home", "blocks": [...]}` view for views.publish.
    """
    blocks: list[Block] = [
        header("ResolveMeQ: IT help in Slack"),
        section(
            "Ask for help with `/ticket what's wrong`, send me a direct message, or "
            "mention me in a channel. When I'm confident I answer right away; when I'm "
            "not, a person from the right team takes over. React with :ticket: to any "
            "message (or use its *Create a ticket* shortcut) to open a ticket for its author."
        ),
    ]
    if autonomy is not None:
        # Who paused it and why is for admins; everyone may know whether a person answers.
        blocks.append(section(f"*Autonomy*: {mode_line(autonomy, detail=is_admin)}"))
    blocks.append(DividerBlock())
    if mine is not None:
        blocks += [*my_tickets_blocks(mine.tickets, total=mine.total), DividerBlock()]
    if stats is None:
        blocks.append(section("The figures are not available right now."))
    else:
        blocks += [*_stats_blocks(stats), *_experiment_blocks(experiment)]
        if sla is not None:
            blocks += sla_blocks(sla)
    if is_admin:
        # `&lt;…&gt;` even for our own placeholders: a raw `<…>` is link syntax.
        blocks += [
            DividerBlock(),
            section(
                "*Admin tools*\n"
                "• `/rollback &lt;action-id&gt; [reason]` undoes one of the bot's actions "
                "(the first 8 characters of the id are enough; you confirm first).\n"
                "• `/history &lt;ticket-id&gt;` shows a ticket's actions, confidence, reasoning "
                "and rollbacks.\n"
                "• `/resolution-stats [days]` shows these figures for another window.\n"
                "• `/autonomy status|pause [reason]|resume|shadow` switches whether the bot "
                "acts alone.\n"
                "• `/autonomy experiment [stop [reason]]` shows (or ends) the THRESHOLD_EXPERIMENT "
                "A/B test of AUTONOMY_THRESHOLD."
            ),
        ]
    return View(type="home", blocks=blocks).to_dict()


def _stats_blocks(stats: Any) -> list[Block]:
    days = stats.days
    window = "the last day" if days == 1 else f"the last {days} days"
    rating = (
        NO_RATINGS
        if stats.average_rating is None
        else f"{stats.average_rating:.1f} / 5 ({stats.ratings} "
        f"{'rating' if stats.ratings == 1 else 'ratings'})"
    )
    return [
        header(f"Resolution stats for {window}"),
        fields_section(
            [
                ("Success rate", _rate(stats.success_rate)),
                ("Average rating", rating),
                ("Resolutions", str(stats.resolutions)),
                ("Confirmed", str(stats.confirmed)),
                ("Failed", str(stats.failed)),
                ("Pending", str(stats.pending)),
                ("Reopened", str(stats.reopened)),
                ("Withdrawn", str(stats.withdrawn)),
            ]
        ),
        context(
            f"Since {when(stats.since)}. The success rate counts Yes/No answers; "
            "withdrawn resolutions were rolled back by an admin and are not counted."
        ),
        section(_by_action_type(stats.by_action_type)),
        section(_by_team(stats.by_team)),
        *_people_blocks(getattr(stats, "people", None), getattr(stats, "people_by_team", ())),
        *success_blocks(getattr(stats, "success", None)),
    ]


def _people_blocks(people: Any, by_team: Sequence[Any]) -> list[Block]:
    """People's work from the team channels, rated on its own records."""
    if people is None or not (people.taken or people.resolutions or people.withdrawn):
        return []
    rating = (
        NO_RATINGS
        if people.average_rating is None
        else f"{people.average_rating:.1f} / 5 ({people.ratings} "
        f"{'rating' if people.ratings == 1 else 'ratings'})"
    )
    blocks: list[Block] = [
        section("*Resolved by people* (from the team channels; not counted in the bot's figures)"),
        fields_section(
            [
                ("Taken", str(people.taken)),
                ("Resolved", str(people.resolutions)),
                ("Success rate", _rate(people.success_rate)),
                ("Average rating", rating),
                ("Reopened", str(people.reopened)),
                ("Pending", str(people.pending)),
            ]
        ),
    ]
    if by_team:
        table = [
            (
                str(r.team),
                str(r.resolutions),
                str(r.confirmed),
                str(r.failed),
                "n/a" if r.success_rate is None else percent(r.success_rate),
                "n/a" if r.average_rating is None else f"{r.average_rating:.1f}",
            )
            for r in by_team
        ]
        headings = ("Team", "Resolved", "Yes", "No", "Success", "Rating")
        blocks.append(section("*Resolved by people, by team*\n" + _table(headings, table, noun="teams")))
    return blocks


def _rate(rate: float | None) -> str:
    return NO_ANSWERS if rate is None else percent(rate)


def _by_action_type(rows: Sequence[Any]) -> str:
    if not rows:
        return "*By action type*\nNo actions in this window."
    table = [
        (
            str(r.action_type),
            str(r.actions),
            str(r.autonomous),
            percent(r.average_confidence),
            str(r.rolled_back),
        )
        for r in rows
    ]
    headings = ("Action", "Actions", "Autonomous", "Avg conf.", "Rolled back")
    return "*By action type*\n" + _table(headings, table, noun="action types")


def _by_team(rows: Sequence[Any]) -> str:
    if not rows:
        return "*By team*\nNo tickets for any team in this window."
    table = [
        (
            str(r.team),
            str(r.tickets),
            str(r.resolutions),
            str(r.confirmed),
            str(r.failed),
            "n/a" if r.success_rate is None else percent(r.success_rate),
            "n/a" if r.average_rating is None else f"{r.average_rating:.1f}",
        )
        for r in rows
    ]
    headings = ("Team", "Tickets", "Resolved", "Yes", "No", "Success", "Rating")
    return "*By team*\n" + _table(headings, table, noun="teams")
