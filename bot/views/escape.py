"""Making text safe to echo into Slack, and Slack's size limits.

Anything a person or an agent wrote (a ticket, a reason, the agent's reasoning, a
team name from an HTTP agent) goes through `escape` before it reaches mrkdwn, so
`<!channel>`, `<@U123>` or `<https://evil|click>` show as typed instead of pinging
everyone or hiding a link.

Slack sends the text of messages and slash commands already escaped, so that text is
decoded once where it enters the app (`from_slack_text`): stored and given to the agent
as the person typed it, and escaped exactly once on the way out.
"""

from __future__ import annotations

import re

# Slack's limits (docs.slack.dev, Block Kit reference).
SECTION_TEXT_LIMIT = 3000
SECTION_FIELD_LIMIT = 2000
CONTEXT_TEXT_LIMIT = 3000
HEADER_TEXT_LIMIT = 150
BUTTON_TEXT_LIMIT = 75
MESSAGE_BLOCK_LIMIT = 50
HOME_BLOCK_LIMIT = 100
# The top-level `text` may be 40,000 characters; a fallback is a notification
# preview, so we keep it far shorter.
FALLBACK_TEXT_LIMIT = 3000

ELLIPSIS = "…"

# A Slack user id (U… or, on Enterprise Grid, W…). Only ids of this shape become
# mentions; anything else is shown as escaped text.
_USER_ID_RE = re.compile(r"[UW][A-Z0-9]{2,31}")
# An entity cut off at the end of a truncated string ("&am", "&lt").
_PARTIAL_ENTITY_RE = re.compile(r"&[a-z]{0,3}$")


def escape(text: str) -> str:
    """Escape `&`, `<` and `>` as Slack asks, so echoed text cannot ping or link.

    Args:
        text: any text people or agents wrote.

    Returns:
        The text with `&amp;`, `&lt;` and `&gt;` in place of the three characters.
    """
    # `&` first, or the `&` of the other two entities would be escaped again.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def from_slack_text(text: str) -> str:
    """Text as a person typed it, from the text of a Slack message or slash command.

    Slack encodes `&`, `<` and `>` in that text as `&amp;`, `&lt;` and `&gt;` (and
    only those); its own markup (`<@U123>`, `<#C1|general>`, `<https://x|y>`,
    `<!channel>`) arrives unencoded and stays as it is (shown escaped, like any text).
    Not for a view's plain_text_input values, which Slack sends as typed.

    Args:
        text: the `text` of a slash command, message event or message read from Slack.

    Returns:
        The text with the three entities decoded, each once.
    """
    # `&amp;` last, so that `&amp;lt;` (a person typing "&lt;") becomes "&lt;", not "<".
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def truncate(text: str, limit: int) -> str:
    """Cut `text` to at most `limit` characters, ending in an ellipsis when cut.

    Safe on escaped text: a cut never leaves half an entity ("&am") behind.

    Args:
        text: the text, escaped or not.
        limit: the largest length allowed, at least 1.

    Returns:
        `text` itself if it fits, else a prefix plus "…" of at most `limit` characters.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if len(text) <= limit:
        return text
    head = text[: limit - len(ELLIPSIS)]
    head = _PARTIAL_ENTITY_RE.sub("", head)
    return head + ELLIPSIS


def clip(text: str, limit: int) -> str:
    """Escape, then truncate: the usual way to echo people's text into mrkdwn.

    Escaping first makes the limit apply to what Slack counts.
    """
    return truncate(escape(text), limit)


def quote(text: str, limit: int) -> str:
    """People's text as a mrkdwn block quote, escaped and within `limit` characters.

    Args:
        text: the text to quote (may have several lines).
        limit: the largest length of the result.
    """
    lines = (text or "").strip().splitlines() or [""]
    quoted = "\n".join("> " + escape(line) for line in lines)
    return truncate(quoted, limit)


def is_user_id(value: object) -> bool:
    """Whether `value` looks like a Slack user id (and so may be made a mention)."""
    return isinstance(value, str) and _USER_ID_RE.fullmatch(value) is not None


def mention(user_id: str) -> str:
    """`<@U…>` for a Slack user id; anything else escaped as plain text.

    Mentions are the one kind of `<…>` we write ourselves, and only for ids of the
    right shape, so a crafted "id" cannot smuggle in `<!channel>`.
    """
    if is_user_id(user_id):
        return f"<@{user_id}>"
    return escape(str(user_id))
