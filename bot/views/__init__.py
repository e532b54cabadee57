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
from bot.views.approvals import (
    outcome_line,
    reject_modal,
    request_outcome_dm,
    request_sent,
    rollback_request_message,
)
from bot.views.autonomy import autonomy_announcement, autonomy_changed, autonomy_status
from bot.views.escape import escape, truncate
from bot.views.experiment import experiment_announcement, experiment_status, experiment_stopped
from bot.views.feedback import feedback_reason_modal
from bot.views.ids import (
    NPS_ACTION_RE,
    RATING_ACTION_RE,
    ActionId,
    BlockId,
    CallbackId,
    feedback_value,
    nps_action_id,
    nps_value,
    parse_feedback_target,
    parse_feedback_value,
    parse_nps,
    parse_rating_action_id,
    parse_request_value,
    parse_rollback_value,
    parse_ticket_value,
    parse_why_value,
    person_feedback_value,
    rating_action_id,
    request_value,
    rollback_value,
    ticket_value,
    why_value,
)
from bot.views.person_resolution import (
    answered_person_resolution_message,
    person_followup_dm,
    person_resolution_message,
    taken_notice,
)
from bot.views.requester import (
    add_detail_modal,
    detail_for_holder,
    message_has_ticket,
    my_tickets_blocks,
    opened_from_message,
)
from bot.views.sla import sla_blocks, sla_notice
from bot.views.stats import home_view, stats_blocks
from bot.views.surveys import MAX_BLOCKS, fits, followup_digest, nps_blocks
from bot.views.team import (
    NoticeKind,
    NoticeState,
    is_reopen_notice_of,
    is_team_notice,
    redraw_team_notice,
    resolve_modal,
    team_notice,
    with_requester_said,
)
from bot.views.ticket import (
    action_thread_message,
    answered_resolution_message,
    followup_dm,
    reasoning_message,
    reply_saved_while_busy,
    resolution_message,
    saved_while_busy,
    ticket_received,
)

__all__ = [
    "MAX_BLOCKS",
    "NPS_ACTION_RE",
    "fits",
    "followup_digest",
    "nps_action_id",
    "nps_blocks",
    "nps_value",
    "parse_nps",
    "autonomy_announcement",
    "autonomy_changed",
    "autonomy_status",
    "experiment_announcement",
    "experiment_status",
    "experiment_stopped",
    "ActionId",
    "BlockId",
    "CallbackId",
    "NoticeKind",
    "NoticeState",
    "RATING_ACTION_RE",
    "action_thread_message",
    "add_detail_modal",
    "detail_for_holder",
    "answered_person_resolution_message",
    "answered_resolution_message",
    "error_message",
    "escape",
    "feedback_reason_modal",
    "feedback_value",
    "followup_dm",
    "history_blocks",
    "home_view",
    "is_reopen_notice_of",
    "is_team_notice",
    "message_has_ticket",
    "my_tickets_blocks",
    "opened_from_message",
    "outcome_line",
    "parse_feedback_target",
    "parse_feedback_value",
    "parse_rating_action_id",
    "parse_request_value",
    "parse_rollback_value",
    "parse_ticket_value",
    "parse_why_value",
    "person_feedback_value",
    "person_followup_dm",
    "person_resolution_message",
    "rating_action_id",
    "reasoning_message",
    "redraw_team_notice",
    "reject_modal",
    "request_outcome_dm",
    "request_sent",
    "request_value",
    "resolution_message",
    "resolve_modal",
    "rollback_confirm",
    "rollback_done",
    "rollback_request_message",
    "rollback_thread_notice",
    "rollback_value",
    "reply_saved_while_busy",
    "saved_while_busy",
    "sla_blocks",
    "sla_notice",
    "stats_blocks",
    "taken_notice",
    "team_notice",
    "ticket_received",
    "ticket_value",
    "truncate",
    "why_value",
    "with_requester_said",
]
