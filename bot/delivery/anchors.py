"""Reading the audit chain's heads back from AUDIT_CHANNEL (`audit verify --anchors`).

Only the bot's own posts count: anyone in the channel can write text that looks like
an anchor, but only the bot's token posts as the bot.
"""

from __future__ import annotations

from datetime import UTC, datetime

from slack_sdk import WebClient

from bot.domain.audit_verify import Anchor
from bot.views.audit import parse_anchor

PAGE = 200
# Pages read at most: a year of daily anchors is two pages; this bounds a channel that
# is used for much else.
MAX_PAGES = 50


def read_anchors(client: WebClient, channel: str) -> list[Anchor]:
    """Every chain head the bot posted to `channel`, oldest first.

    Args:
        client: a client from `bot.delivery.slack_client.make_web_client`.
        channel: AUDIT_CHANNEL.

    Returns:
        The anchors found (none for a channel without any).

    Raises:
        slack_sdk.errors.SlackApiError: Slack refused (not_in_channel, missing_scope...).
    """
    me = client.auth_test()
    bot_id, bot_user = me.get("bot_id"), me.get("user_id")
    anchors: list[Anchor] = []
    cursor, latest = None, None
    for _ in range(MAX_PAGES):
        page = client.conversations_history(channel=channel, limit=PAGE, cursor=cursor,
                                            latest=latest)
        messages = page.get("messages") or []
        for message in messages:
            ours = (bot_id and message.get("bot_id") == bot_id) or (
                bot_user and message.get("user") == bot_user)
            found = parse_anchor(message.get("text", "")) if ours else None
            if found is not None:
                ts = str(message.get("ts", ""))
                anchors.append(Anchor(found[0], found[1], posted_at=_posted(ts), where=ts))
        cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
        if cursor is None and page.get("has_more") and messages:
            latest = str(messages[-1]["ts"])  # no cursor given: page back by time instead
        elif cursor is None:
            break
    return sorted(anchors, key=lambda anchor: anchor.seq)


def _posted(ts: str) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(ts), tz=UTC)
    except ValueError:
        return None
