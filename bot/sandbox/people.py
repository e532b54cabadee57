"""Who and what is in the sandbox's workspace: fixed ids, so the page's guide, the tests
and the bot's settings can name them (the contract: docs/SANDBOX.md).

The ids are shaped as Slack's are (`U…`, `C…`, no underscores): the bot checks the
shape of the channel ids in its settings, and finds mentions by it.
"""

from __future__ import annotations

from dataclasses import dataclass

BOT_USER_ID = "URESOLVEMEQ"
BOT_ID = "BRESOLVEMEQ"
BOT_NAME = "ResolveMeQ"
TEAM_ID = "TSANDBOX"


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    role: str  # requester | team | admin


@dataclass(frozen=True)
class Channel:
    id: str
    name: str
    members: tuple[str, ...]
    team: str | None = None  # the helpdesk team working here (TEAM_CHANNELS)


REQUESTER, TEAM_MEMBER, ADMIN, ADMIN2 = "UREQ", "UTEAM", "UADMIN", "UADMIN2"

PEOPLE: tuple[Person, ...] = (
    Person(REQUESTER, "Riley Requester", "requester"),
    Person(TEAM_MEMBER, "Sam Support", "team"),
    Person(ADMIN, "Alex Admin", "admin"),
    Person(ADMIN2, "Jordan Admin", "admin"),
)
ADMINS = (ADMIN, ADMIN2)
_EVERYONE = tuple(p.id for p in PEOPLE)
_SUPPORT = (TEAM_MEMBER, ADMIN, ADMIN2)

HELPDESK = "CHELPDESK"
ALERTS = "CALERTS"
APPROVALS = "CAPPROVALS"
SERVICE_DESK = "CTEAMSERVICE"

CHANNELS: tuple[Channel, ...] = (
    Channel(HELPDESK, "helpdesk", _EVERYONE),
    Channel("CTEAMNETWORK", "it-network", _SUPPORT, team="Network"),
    Channel("CTEAMDESKTOP", "desktop-support", _SUPPORT, team="Desktop Support"),
    Channel("CTEAMIDENTITY", "identity-access", _SUPPORT, team="Identity & Access"),
    Channel("CTEAMMESSAGING", "messaging", _SUPPORT, team="Messaging"),
    Channel(SERVICE_DESK, "service-desk", _SUPPORT, team="Service Desk"),
    Channel(ALERTS, "helpdesk-alerts", ADMINS),
    Channel(APPROVALS, "rollback-approvals", ADMINS),
)

# The guided first run: one request the embedded agent resolves alone, one it routes
# to a team, one it treats as critical (checked with `resolvemeq ask`; tests pin it).
EXAMPLES: tuple[dict[str, str], ...] = (
    {"label": "The bot resolves it", "text": "/ticket My VPN keeps disconnecting every few minutes"},
    {"label": "The bot routes it to a team",
     "text": "/ticket I need access to the Finance shared drive"},
    {"label": "Critical: escalated at once", "text": "/ticket My laptop was stolen from my car"},
)


def dm_channel(user_id: str) -> str:
    """The id of a person's DM with the bot."""
    return f"D{user_id}"


def person(user_id: str) -> Person | None:
    return next((p for p in PEOPLE if p.id == user_id), None)


def bot_settings() -> dict[str, str]:
    """The bot's settings that name the workspace's people and channels."""
    teams = ",".join(f"{c.team}={c.id}" for c in CHANNELS if c.team)
    return {
        "ADMIN_USER_IDS": ",".join(ADMINS),
        "TEAM_CHANNELS": teams,
        "HELPDESK_CHANNELS": HELPDESK,
        "ALERTS_CHANNEL": ALERTS,
        "CRITICAL_ALERTS_CHANNEL": ALERTS,
        "ESCALATION_CHANNEL": SERVICE_DESK,
        "APPROVALS_CHANNEL": APPROVALS,
        "SLACK_TEAM_ID": TEAM_ID,
    }
