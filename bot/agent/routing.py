"""Which helpdesk team owns which category of ticket: the one routing table.

Knowledge-base articles name their own team; this table is the fallback when an
article has none, and fills `suggested_team` in HTTP agent answers that lack it, so
every routed ticket lands in a real queue rather than nowhere.
"""

from __future__ import annotations

DEFAULT_TEAM = "Service Desk"

# The categories an answer may carry (the reference system's list, plus ours).
CATEGORIES = frozenset(
    {
        "wifi", "laptop", "vpn", "printer", "email", "software", "hardware", "network",
        "account", "access", "phone", "security", "storage", "onboarding", "other",
    }
)

TEAM_BY_CATEGORY: dict[str, str] = {
    "wifi": "Network",
    "vpn": "Network",
    "network": "Network",
    "laptop": "Desktop Support",
    "printer": "Desktop Support",
    "hardware": "Desktop Support",
    "storage": "Desktop Support",
    "software": "Desktop Support",
    "email": "Messaging",
    "phone": "Messaging",
    "account": "Identity & Access",
    "access": "Identity & Access",
    "security": "Security",
    "onboarding": "Service Desk",
    "other": DEFAULT_TEAM,
}


def team_for(category: str | None) -> str:
    """The team that owns a category.

    Args:
        category: an answer's category, any case; unknown or missing is fine.

    Returns:
        The owning team, or DEFAULT_TEAM for a category nobody owns.
    """
    return TEAM_BY_CATEGORY.get((category or "").strip().lower(), DEFAULT_TEAM)
