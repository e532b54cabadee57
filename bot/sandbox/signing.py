"""Requests shaped and signed exactly as Slack sends them: what the sandbox's Slack sends
the bot, and what the tests and benchmarks send the HTTP app.

Slack signs every request it sends with the app's signing secret:
``X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:{timestamp}:{raw body}">`` plus the
``X-Slack-Request-Timestamp`` header. The signer here is written with the standard
library on purpose: if it reused slack_sdk's signer, a bug shared by both would make
every test pass while Slack itself rejected nothing and we accepted anything.

Bodies are built in the encodings Slack uses: slash commands are form-encoded fields,
interactivity is a form with one ``payload`` field holding JSON, and the Events API is
a JSON document of ``type: event_callback``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode

SIGNATURE_HEADER = "X-Slack-Signature"
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE = "application/json"

# The deprecated verification token Slack still puts in bodies; apps must not rely on it.
DEFAULT_VERIFICATION_TOKEN = "verification-token-unused"
DEFAULT_APP_ID = "A0RESOLVEMQ"
DEFAULT_TRIGGER_ID = "13345224609.738474920.8088930838d88f008e0"


def signature(signing_secret: str, body: bytes | str, timestamp: int | str) -> str:
    """The ``X-Slack-Signature`` value for a body sent at a timestamp.

    Args:
        signing_secret: the app's signing secret.
        body: the raw request body, exactly the bytes sent (str is UTF-8 encoded).
        timestamp: Unix seconds, as sent in ``X-Slack-Request-Timestamp``.

    Returns:
        ``v0=`` followed by the lowercase hex HMAC-SHA256.
    """
    raw = body.encode("utf-8") if isinstance(body, str) else body
    base = b"v0:" + str(timestamp).encode("ascii") + b":" + raw
    digest = hmac.new(signing_secret.encode("utf-8"), base, hashlib.sha256).hexdigest()
    return f"v0={digest}"


def sign(
    signing_secret: str, body: bytes | str, timestamp: int | None = None
) -> dict[str, str]:
    """The two headers Slack adds to a request it signs.

    Args:
        signing_secret: the app's signing secret.
        body: the raw request body.
        timestamp: Unix seconds; now when omitted (apps reject anything 5 minutes off).

    Returns:
        ``{"X-Slack-Request-Timestamp": ..., "X-Slack-Signature": "v0=..."}``.
    """
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return {
        TIMESTAMP_HEADER: str(ts),
        SIGNATURE_HEADER: signature(signing_secret, body, ts),
    }


def signed_headers(
    signing_secret: str,
    body: bytes | str,
    *,
    content_type: str = FORM_CONTENT_TYPE,
    timestamp: int | None = None,
) -> dict[str, str]:
    """The signature headers plus the Content-Type Slack sends with that body.

    Args:
        signing_secret: the app's signing secret.
        body: the raw request body.
        content_type: ``FORM_CONTENT_TYPE`` (commands, interactivity) or
            ``JSON_CONTENT_TYPE`` (events).
        timestamp: Unix seconds; now when omitted.

    Returns:
        Headers ready to pass to an HTTP client.
    """
    return {"Content-Type": content_type, **sign(signing_secret, body, timestamp)}


def slash_command_body(
    command: str,
    text: str,
    *,
    user_id: str,
    channel_id: str,
    team_id: str,
    trigger_id: str = DEFAULT_TRIGGER_ID,
    response_url: str | None = None,
    user_name: str = "requester",
    channel_name: str = "general",
    team_domain: str = "resolvemeq-test",
    token: str = DEFAULT_VERIFICATION_TOKEN,
    api_app_id: str | None = DEFAULT_APP_ID,
    enterprise_id: str | None = None,
) -> str:
    """A slash-command request body, form-encoded in the field order Slack uses.

    Args:
        command: the command with its slash, e.g. ``/ticket``.
        text: everything the person typed after the command.
        user_id: who ran it.
        channel_id: where it was run.
        team_id: the workspace.
        trigger_id: lets the app open a modal within 3 s.
        response_url: where delayed responses go; a per-command hooks URL by default.
        user_name: the legacy user name field.
        channel_name: the channel's name.
        team_domain: the workspace's domain.
        token: the deprecated verification token.
        api_app_id: the app id; ``None`` leaves the field out, as older payloads
            (including Slack's signing example) did.
        enterprise_id: the Enterprise Grid organisation, for a workspace in one.

    Returns:
        The raw body, e.g. ``token=...&team_id=T1&...&command=%2Fticket&text=...``.
    """
    if response_url is None:
        response_url = f"https://hooks.slack.com/commands/{team_id}/1234567890/abcdefRESOLVEMEQ"
    fields: list[tuple[str, str]] = [
        ("token", token),
        ("team_id", team_id),
        ("team_domain", team_domain),
        *([("enterprise_id", enterprise_id), ("enterprise_name", "ResolveMeQ Org")]
          if enterprise_id else []),
        ("channel_id", channel_id),
        ("channel_name", channel_name),
        ("user_id", user_id),
        ("user_name", user_name),
        ("command", command),
        ("text", text),
        ("response_url", response_url),
        ("trigger_id", trigger_id),
    ]
    if api_app_id is not None:
        fields.append(("api_app_id", api_app_id))
    return urlencode(fields)


def block_actions_payload(
    action_id: str,
    value: str,
    *,
    user_id: str,
    channel_id: str,
    team_id: str,
    message_ts: str,
    block_id: str = "actions",
    message: dict[str, Any] | None = None,
    trigger_id: str = DEFAULT_TRIGGER_ID,
    api_app_id: str = DEFAULT_APP_ID,
    action_type: str = "button",
    enterprise_id: str | None = None,
    response_url: str | None = None,
    is_ephemeral: bool = False,
) -> dict[str, Any]:
    """A realistic ``block_actions`` payload for one button click on a message.

    Args:
        action_id: the clicked element's action id.
        value: the element's value.
        user_id: who clicked.
        channel_id: the channel of the message.
        team_id: the workspace.
        message_ts: the ts of the message carrying the button.
        block_id: the block holding the element.
        message: the message as Slack echoes it back (text, blocks, metadata).
        trigger_id: lets the app open a modal within 3 s.
        api_app_id: the app id.
        action_type: the element type (``button``, ``static_select``, ...).
        enterprise_id: the Enterprise Grid organisation, for a workspace in one.
        response_url: where answers to the click go (a hooks.slack.com URL by default).
        is_ephemeral: the clicked message is ephemeral (a slash command's answer).

    Returns:
        The payload dict; encode it with :func:`block_actions_body`.
    """
    echoed = dict(message or {"type": "message", "text": "", "ts": message_ts})
    echoed.setdefault("ts", message_ts)
    return {
        "type": "block_actions",
        "user": {"id": user_id, "username": "requester", "name": "requester", "team_id": team_id},
        "api_app_id": api_app_id,
        "token": DEFAULT_VERIFICATION_TOKEN,
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": is_ephemeral,
        },
        "trigger_id": trigger_id,
        "team": {"id": team_id, "domain": "resolvemeq-test",
                 **({"enterprise_id": enterprise_id} if enterprise_id else {})},
        "enterprise": {"id": enterprise_id, "name": "ResolveMeQ Org"} if enterprise_id else None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": "general"},
        "message": echoed,
        "state": {"values": {}},
        "response_url": response_url or f"https://hooks.slack.com/actions/{team_id}/1234567890/abcdefRESOLVEMEQ",
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "value": value,
                "type": action_type,
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }


def view_submission_payload(
    view: dict[str, Any],
    values: dict[str, dict[str, str]],
    *,
    user_id: str,
    team_id: str,
    api_app_id: str = DEFAULT_APP_ID,
) -> dict[str, Any]:
    """A ``view_submission`` payload: a person pressed Submit on a modal.

    Args:
        view: the view as the app opened it (views.open's ``view``, with its ``id`` when
            Slack gave one): callback_id, private_metadata and blocks come back as sent.
        values: what was typed, ``{block_id: {action_id: text}}`` (plain_text_input).
        user_id: who submitted.
        team_id: the workspace.
        api_app_id: the app id.

    Returns:
        The payload dict; encode it with :func:`block_actions_body`.
    """
    state = {block: {action: {"type": "plain_text_input", "value": text}
                     for action, text in actions.items()}
             for block, actions in values.items()}
    return {
        "type": "view_submission",
        "team": {"id": team_id, "domain": "resolvemeq-test"},
        "user": {"id": user_id, "username": "requester", "name": "requester", "team_id": team_id},
        "api_app_id": api_app_id,
        "token": DEFAULT_VERIFICATION_TOKEN,
        "trigger_id": DEFAULT_TRIGGER_ID,
        "view": {
            "id": view.get("id", "VMODAL0001"),
            "team_id": team_id,
            "type": view.get("type", "modal"),
            "blocks": view.get("blocks", []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": state},
            "hash": "1732527000.abcdef",
            "title": view.get("title"),
            "clear_on_close": False,
            "notify_on_close": False,
            "close": view.get("close"),
            "submit": view.get("submit"),
            "previous_view_id": None,
            "root_view_id": view.get("id", "VMODAL0001"),
            "app_id": api_app_id,
            "external_id": "",
            "app_installed_team_id": team_id,
            "bot_id": "BBOT",
        },
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def home_actions_payload(
    action_id: str,
    value: str,
    *,
    user_id: str,
    team_id: str,
    view: dict[str, Any] | None = None,
    block_id: str = "actions",
    trigger_id: str = DEFAULT_TRIGGER_ID,
    api_app_id: str = DEFAULT_APP_ID,
) -> dict[str, Any]:
    """A ``block_actions`` payload for a click in the App Home tab: its container is the
    view, and it names no channel (there is none).

    Args:
        action_id, value: the clicked button's.
        user_id: who clicked (whose Home it is).
        team_id: the workspace.
        view: the published home view, as the fake Slack stored it.
        block_id: the block holding the button.
        trigger_id: lets the app open a modal within 3 s.
        api_app_id: the app id.
    """
    view = dict(view or {"type": "home", "blocks": []})
    view_id = view.get("id", "VHOME00001")
    return {
        "type": "block_actions",
        "user": {"id": user_id, "username": "requester", "name": "requester", "team_id": team_id},
        "api_app_id": api_app_id,
        "token": DEFAULT_VERIFICATION_TOKEN,
        "container": {"type": "view", "view_id": view_id},
        "trigger_id": trigger_id,
        "team": {"id": team_id, "domain": "resolvemeq-test"},
        "enterprise": None,
        "is_enterprise_install": False,
        "view": {**view, "id": view_id, "team_id": team_id, "state": {"values": {}}},
        "actions": [{"action_id": action_id, "block_id": block_id, "value": value, "type": "button",
                     "action_ts": f"{time.time():.6f}"}],
    }


def message_shortcut_payload(
    callback_id: str,
    message: dict[str, Any],
    *,
    user_id: str,
    channel_id: str,
    team_id: str,
    trigger_id: str = DEFAULT_TRIGGER_ID,
) -> dict[str, Any]:
    """A ``message_action`` payload: someone used a message shortcut on `message`.

    Args:
        callback_id: the shortcut's callback id.
        message: the message as Slack carries it (type, user, text, ts, thread_ts).
        user_id: who used the shortcut.
        channel_id: the message's channel.
        team_id: the workspace.
        trigger_id: lets the app open a modal within 3 s.
    """
    return {
        "type": "message_action",
        "token": DEFAULT_VERIFICATION_TOKEN,
        "action_ts": f"{time.time():.6f}",
        "team": {"id": team_id, "domain": "resolvemeq-test"},
        "user": {"id": user_id, "username": "reporter", "team_id": team_id, "name": "reporter"},
        "channel": {"id": channel_id, "name": "general"},
        "is_enterprise_install": False,
        "enterprise": None,
        "callback_id": callback_id,
        "trigger_id": trigger_id,
        "message_ts": message.get("ts"),
        "message": message,
        "response_url": f"https://hooks.slack.com/app/{team_id}/1234567890/abcdefRESOLVEMEQ",
    }


def block_actions_body(payload: dict[str, Any]) -> str:
    """An interactivity request body: form-encoded ``payload=<json>``.

    Works for any interactive payload (block_actions, view_submission, shortcut).

    Args:
        payload: the payload dict, e.g. from :func:`block_actions_payload`.

    Returns:
        The raw body.
    """
    return urlencode({"payload": json.dumps(payload, separators=(",", ":"))})


def event_body(
    event: dict[str, Any],
    *,
    event_id: str,
    team_id: str,
    api_app_id: str = DEFAULT_APP_ID,
    event_time: int | None = None,
    bot_user_id: str = "UBOT",
    token: str = DEFAULT_VERIFICATION_TOKEN,
    enterprise_id: str | None = None,
) -> str:
    """An Events API request body (JSON, ``type: event_callback``).

    Args:
        event: the inner event, e.g. ``{"type": "app_mention", "user": ..., "text": ...}``.
        event_id: Slack's unique id for this delivery (retries reuse it).
        team_id: the workspace.
        api_app_id: the app id.
        event_time: Unix seconds; now when omitted.
        bot_user_id: the installation's bot user, listed under ``authorizations``.
        token: the deprecated verification token.
        enterprise_id: the Enterprise Grid organisation, for a workspace in one.

    Returns:
        The raw JSON body.
    """
    document = {
        "token": token,
        "team_id": team_id,
        **({"enterprise_id": enterprise_id} if enterprise_id else {}),
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()) if event_time is None else event_time,
        "authorizations": [
            {
                "enterprise_id": enterprise_id,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-{event_id}",
    }
    return json.dumps(document, separators=(",", ":"))


def url_verification_body(challenge: str, *, token: str = DEFAULT_VERIFICATION_TOKEN) -> str:
    """The one-time ``url_verification`` request Slack sends when the URL is set.

    Args:
        challenge: the value the app must echo back.
        token: the deprecated verification token.

    Returns:
        The raw JSON body.
    """
    return json.dumps({"token": token, "challenge": challenge, "type": "url_verification"})
