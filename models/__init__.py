"""SQLAlchemy models and the session factory. Imports nothing of ours outside models/.

Each fact about the stored values is named once, beside its model: `ActionType`,
`Actor`, `TicketStatus`, `Awaiting`, `EscalationPriority`, `TicketSource`, `AlertRule`,
`OutboxStatus`, `OutboxPurpose`, `RequestStatus`, `AutonomyMode`, `SlaPriority` (StrEnums whose members are
the stored strings),
`short_id` for an action id, `as_utc` for timestamps.
"""

from models.action_history import (
    AGENT_ACTIONS,
    PEOPLE_ACTIONS,
    UNDOABLE_ACTIONS,
    ActionHistory,
    ActionType,
    Actor,
    short_id,
)
from models.agent_call import AgentCall
from models.alert_state import AlertRule, AlertState
from models.audit_chain import GENESIS_HASH, AuditChainEntry
from models.audit_event import AuditEvent
from models.autonomy_state import AutonomyMode, AutonomyState, ShadowDecision
from models.base import Base, as_utc
from models.nps_answer import NpsAnswer
from models.person_resolution import PersonResolution
from models.rollback_request import RequestStatus, RollbackRequest
from models.session import (
    UnitOfWork,
    bounded_lock_wait,
    make_engine,
    make_session_factory,
    preceded_by,
    read_transaction,
    rowcount,
    transaction,
)
from models.slack_outbox import OutboxPurpose, OutboxStatus, SlackOutbox
from models.stats_rollup import StatsDirty, StatsRollup, StatsRollupDay
from models.threshold_experiment import ExperimentStop, ThresholdExperiment
from models.ticket import Awaiting, EscalationPriority, Ticket, TicketSource, TicketStatus
from models.ticket_message import MessageKind, TicketMessage
from models.ticket_resolution import TicketResolution
from models.ticket_sla import SlaPriority, TicketSla

__all__ = [
    "AGENT_ACTIONS",
    "ActionHistory",
    "ActionType",
    "Actor",
    "AgentCall",
    "AlertRule",
    "AlertState",
    "AuditChainEntry",
    "AuditEvent",
    "AutonomyMode",
    "AutonomyState",
    "Awaiting",
    "Base",
    "EscalationPriority",
    "ExperimentStop",
    "GENESIS_HASH",
    "MessageKind",
    "NpsAnswer",
    "OutboxPurpose",
    "OutboxStatus",
    "PEOPLE_ACTIONS",
    "PersonResolution",
    "RequestStatus",
    "RollbackRequest",
    "ShadowDecision",
    "SlaPriority",
    "StatsDirty",
    "StatsRollup",
    "StatsRollupDay",
    "SlackOutbox",
    "Ticket",
    "TicketMessage",
    "TicketResolution",
    "TicketSla",
    "TicketSource",
    "TicketStatus",
    "ThresholdExperiment",
    "UNDOABLE_ACTIONS",
    "UnitOfWork",
    "as_utc",
    "make_engine",
    "make_session_factory",
    "rowcount",
    "bounded_lock_wait",
    "preceded_by",
    "read_transaction",
    "short_id",
    "transaction",
]
