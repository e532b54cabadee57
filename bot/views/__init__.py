"""Block Kit builders: pure functions from data to Slack blocks.

No database, no I/O, no Slack calls. People's text is escaped and every block is
kept within Slack's limits here, so handlers and jobs can post what they get.

May import `bot.domain` (for the types it renders), `bot.core` and `models`.
"""

from bot.views.admin import (
    error_message,
    history_blocks,
    rollback_confirm,
    rollback_done,
    rollback_thread_notice,
)
from bot.views.escape import escape, truncate
from bot.views.ids import (
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
from bot.views.stats import home_view, stats_blocks
from bot.views.ticket import (
    action_thread_message,
    answered_resolution_message,
    followup_dm,
    reasoning_message,
    reopened_notice,
    resolution_message,
    saved_while_busy,
    ticket_received,
)

__all__ = [
    "RATING_ACTION_RE",
    "ActionId",
    "BlockId",
    "action_thread_message",
    "answered_resolution_message",
    "error_message",
    "escape",
    "feedback_value",
    "followup_dm",
    "history_blocks",
    "home_view",
    "parse_feedback_value",
    "parse_rating_action_id",
    "parse_rollback_value",
    "parse_why_value",
    "rating_action_id",
    "reasoning_message",
    "reopened_notice",
    "resolution_message",
    "rollback_confirm",
    "rollback_done",
    "rollback_thread_notice",
    "rollback_value",
    "saved_while_busy",
    "stats_blocks",
    "ticket_received",
    "truncate",
    "why_value",
]
