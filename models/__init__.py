"""SQLAlchemy models and the session factory. Imports nothing of ours outside models/."""

from models.action_history import ACTION_TYPES, RECORD_TYPES, ActionHistory
from models.agent_call import AgentCall
from models.alert_state import AlertState
from models.audit_event import AuditEvent
from models.base import Base
from models.session import UnitOfWork, make_engine, make_session_factory, transaction
from models.slack_outbox import OUTBOX_STATUSES, SlackOutbox
from models.ticket import TICKET_STATUSES, Ticket
from models.ticket_resolution import TicketResolution

__all__ = [
    "ACTION_TYPES",
    "RECORD_TYPES",
    "ActionHistory",
    "AgentCall",
    "AlertState",
    "AuditEvent",
    "Base",
    "OUTBOX_STATUSES",
    "SlackOutbox",
    "TICKET_STATUSES",
    "Ticket",
    "TicketResolution",
    "UnitOfWork",
    "make_engine",
    "make_session_factory",
    "transaction",
]
