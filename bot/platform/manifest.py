"""The Slack app manifest: what to paste into api.slack.com to create the app."""

from __future__ import annotations

from typing import Any

from bot.views import CallbackId

COMMANDS = (
    ("/ticket", "Open an IT helpdesk ticket", "[what is wrong]"),
    ("/history", "Show the bot's actions on a ticket", "[ticket number]"),
    ("/rollback", "Undo one of the bot's actions (admins)", "[action id] [reason]"),
    ("/resolution-stats", "How well the bot's answers work", "[days]"),
    ("/autonomy", "Pause, resume or shadow the bot's acting alone (admins)",
     "status | pause [reason] | resume | shadow [reason]"),
)
BOT_SCOPES = (
    "app_mentions:read",
    "channels:history",
    # conversations.members: who is in a team's channel (TEAM_CHANNELS) may take and
    # resolve its tickets; channels:read for public channels, groups:read for private.
    "channels:read",
    "chat:write",
    "commands",
    "groups:history",
    "groups:read",
    "im:history",
    "im:read",
    "im:write",
    # reaction_added: a :ticket: reaction opens a ticket for the message's author (the
    # message itself is read with the *:history scopes above).
    "reactions:read",
    "users:read",
    # usergroups.list and usergroups.users.list: ADMIN_GROUPS and APPROVER_GROUPS.
    "usergroups:read",
)
# message.channels and message.groups: the requester's replies in the thread of the
# bot's question (channels:history, groups:history); other messages are dropped unread.
BOT_EVENTS = (
    "app_home_opened", "app_mention", "message.channels", "message.groups", "message.im",
    "reaction_added",
)
# Message shortcuts: (name, callback_id, description).
SHORTCUTS = (
    ("Create a ticket", CallbackId.CREATE_TICKET.value, "Open a helpdesk ticket for this message's author"),
)


def build_manifest(base_url: str, *, name: str = "ResolveMeQ", socket_mode: bool = False) -> dict[str, Any]:
    """A manifest for the app served at `base_url` (the events path is appended).

    Args:
        base_url: the public HTTPS origin, e.g. https://helpdesk.example.com.
        name: the app's display name.
        socket_mode: true when the app runs with `resolvemeq socket` (no public URL).
    """
    events_url = base_url.rstrip("/") + "/slack/events"
    commands = []
    for command, description, hint in COMMANDS:
        entry = {"command": command, "description": description, "usage_hint": hint,
                 "should_escape": False}
        if not socket_mode:
            entry["url"] = events_url
        commands.append(entry)
    event_subscriptions: dict[str, Any] = {"bot_events": list(BOT_EVENTS)}
    interactivity: dict[str, Any] = {"is_enabled": True}
    if not socket_mode:
        event_subscriptions["request_url"] = events_url
        interactivity["request_url"] = events_url
    return {
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {
            "name": name,
            "description": "IT helpdesk bot that acts when it is confident, and can be undone.",
            "background_color": "#2c2d30",
        },
        "features": {
            "app_home": {"home_tab_enabled": True, "messages_tab_enabled": True,
                         "messages_tab_read_only_enabled": False},
            "bot_user": {"display_name": name, "always_online": True},
            "slash_commands": commands,
            "shortcuts": [{"name": name, "type": "message", "callback_id": callback_id,
                           "description": description}
                          for name, callback_id, description in SHORTCUTS],
        },
        "oauth_config": {"scopes": {"bot": list(BOT_SCOPES)}},
        "settings": {
            "event_subscriptions": event_subscriptions,
            "interactivity": interactivity,
            "org_deploy_enabled": False,
            "socket_mode_enabled": socket_mode,
            "token_rotation_enabled": False,
        },
    }
