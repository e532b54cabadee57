"""The sandbox's Slack: the stand-in's Web API plus what a person sees and does.

`SandboxSlack` answers the bot's Web API calls as `SlackStandIn` does, and adds what
the page needs: people and channels (`bot.sandbox.people`), messages posted by people,
ephemeral and response-URL messages shown only to their person, modals per person
(trigger ids that expire and are used once, views.push, response_action), App Home per
person, reactions, a version counter for live updates. What a person does on the page
(`bot.sandbox.page`) becomes a request built and signed as Slack builds and signs it,
POSTed to the bot's `/slack/events`.
"""

from __future__ import annotations

import copy
import itertools
import json
import secrets
import time
import urllib.error
import urllib.request
from typing import Any

from bot.sandbox import people, signing
from bot.sandbox.standin import Args, SlackStandIn, _SlackError

# Slack gives 3 s to use a trigger id; the sandbox's bot shares a small machine with the
# page and the jobs, so it gets more, but a trigger still works once only.
TRIGGER_TTL = 30.0
# What the bot may call that changes what a person sees (the page re-reads after each).
_VISIBLE = frozenset({
    "chat.postMessage", "chat.update", "chat.delete", "chat.postEphemeral", "views.publish",
    "views.open", "views.update", "views.push", "reactions.add",
})
_KEEP_CALLS = 2000
# Slack gives up on the app after 3 s; the sandbox waits longer for a bot on a busy laptop.
_BOT_TIMEOUT = 30.0
_SLASH_COMMANDS = ("/ticket", "/history", "/rollback", "/resolution-stats", "/autonomy")


class PageError(Exception):
    """A page request that cannot be done; `status` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


class SandboxSlack(SlackStandIn):
    """A small Slack workspace on loopback, wired to one bot.

    Args:
        events_url: the bot's `POST /slack/events`.
        signing_secret: the app's signing secret (what the bot checks).
        token: the only bot token accepted.
        port: the port to listen on (0: any free one).
    """

    def __init__(self, *, events_url: str, signing_secret: str, token: str, port: int = 0) -> None:
        super().__init__(token=token, team_id=people.TEAM_ID, bot_user_id=people.BOT_USER_ID,
                         bot_id=people.BOT_ID)
        self.bind_port = port
        self.ts_base = int(time.time())  # a message's ts is when it was posted, as on Slack
        self.events_url, self.signing_secret = events_url, signing_secret
        self.version = 0
        self._ids = itertools.count(1)
        self._triggers: dict[str, tuple[str, float]] = {}  # trigger id -> (user, expires)
        self._used_triggers: set[str] = set()
        self._modals: dict[str, list[str]] = {}  # user -> view ids, top last
        self._view_owner: dict[str, str] = {}  # view id -> user
        self._targets: dict[str, Args] = {}  # response URL key -> what it answers
        self._read: dict[tuple[str, str], float] = {}  # (user, channel) -> ts read up to
        self._methods["views.push"] = self._views_push
        # The page's routes (`bot.sandbox.page.Page`), set by whoever starts the sandbox.
        self.page: Any = None
        for p in people.PEOPLE:
            self.set_user(p.id, real_name=p.name, is_admin=p.role == "admin")
        self.set_user(people.BOT_USER_ID, real_name=people.BOT_NAME, is_bot=True,
                      profile={"real_name": people.BOT_NAME, "display_name": people.BOT_NAME,
                               "bot_id": people.BOT_ID, "team": people.TEAM_ID})
        for c in people.CHANNELS:
            self.set_members(c.id, [*c.members, people.BOT_USER_ID])
        for p in people.PEOPLE:
            self.set_members(people.dm_channel(p.id), [p.id, people.BOT_USER_ID])

    def _page_request(self, handler: Any, path: str, query: str) -> bool:
        return self.page is not None and bool(self.page.handle(handler, path, query))

    # ----- what a person sees ------------------------------------------------------

    def dm_channel(self, user_id: str) -> str:
        return people.dm_channel(user_id)

    def changed(self) -> None:
        """Something visible changed: bump the version and wake the event streams."""
        with self._cond:
            self.version += 1
            self._cond.notify_all()

    def wait_version(self, seen: int, timeout: float) -> int:
        """Block until the version passes `seen` (or `timeout` seconds); the version."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.version <= seen and (left := deadline - time.monotonic()) > 0:
                self._cond.wait(left)
            return self.version

    def channels_of(self, user: str) -> list[Args]:
        found = [{"id": c.id, "name": c.name, "kind": "channel", "unread": 0}
                 for c in people.CHANNELS if user in c.members]
        found.append({"id": people.dm_channel(user), "name": people.BOT_NAME, "kind": "dm", "unread": 0})
        return found

    def view_state(self, user: str, read: str | None = None) -> Args:
        """The page's view of the workspace for one person (contract: GET /sandbox/state);
        `read`: the channel the person is looking at, read up to its latest message."""
        with self._cond:
            channels = self.channels_of(user)
            messages = {c["id"]: self._visible_messages(c["id"], user) for c in channels}
            if read is not None and messages.get(read):
                self._read[(user, read)] = float(messages[read][-1]["ts"])
            for c in channels:
                since = self._read.get((user, c["id"]), 0.0)
                c["unread"] = sum(1 for m in messages[c["id"]]
                                  if float(m["ts"]) > since and m["user"] != user)
            stack = self._modals.get(user) or []
            modal = ({"view_id": stack[-1], "view": copy.deepcopy(self._views[stack[-1]])}
                     if stack else None)
            return {"ok": True, "version": self.version, "me": user,
                    "people": [{"id": p.id, "name": p.name, "role": p.role} for p in people.PEOPLE],
                    "channels": channels, "messages": messages,
                    "home": copy.deepcopy(self._home.get(user)), "modal": modal}

    def _visible_messages(self, channel: str, user: str) -> list[Args]:
        stored = self._channels.get(channel, [])
        replies: dict[str, int] = {}
        for m in stored:
            if m.get("thread_ts") and m["thread_ts"] != m["ts"]:
                replies[m["thread_ts"]] = replies.get(m["thread_ts"], 0) + 1
        shown = [self._shown(m, replies.get(m["ts"], 0), ephemeral=False) for m in stored]
        shown += [self._shown({**e, "ts": e["message_ts"], "user": people.BOT_USER_ID}, 0, ephemeral=True)
                  for e in self._ephemerals if e["channel"] == channel and e["user"] == user]
        return sorted(shown, key=lambda m: float(m["ts"]))

    def _shown(self, m: Args, reply_count: int, *, ephemeral: bool) -> Args:
        by_bot = m.get("user") == people.BOT_USER_ID or "bot_id" in m or ephemeral
        who = people.person(str(m.get("user")))
        thread_ts = m.get("thread_ts")
        return {"ts": m["ts"], "thread_ts": thread_ts if thread_ts != m["ts"] else None,
                "user": None if by_bot else m.get("user"), "bot": by_bot,
                "name": people.BOT_NAME if by_bot else (who.name if who else str(m.get("user"))),
                "text": m.get("text", ""), "blocks": copy.deepcopy(m.get("blocks")) or None,
                "edited": bool(m.get("edited")), "ephemeral": ephemeral, "reply_count": reply_count,
                "reactions": [{"name": r["name"], "users": list(r["users"])}
                              for r in m.get("reactions", [])]}

    # ----- the Web API, as the page needs it -----------------------------------------

    def _answer(self, method: str, args: Args, headers: dict[str, str], fault: Any):
        answer = super()._answer(method, args, headers, fault)
        if method in _VISIBLE and answer[1].get("ok"):
            self.changed()
        return answer

    def _record(self, call: Any) -> None:
        # The tests read every call back; a sandbox left open for days keeps the latest only.
        with self._cond:
            super()._record(call)
            del self._calls[:-_KEEP_CALLS]

    def _new_trigger(self, user: str) -> str:
        trigger = f"{next(self._ids)}.{int(time.time())}.{secrets.token_hex(8)}"
        now = time.monotonic()
        with self._cond:
            for old in [t for t, (_, expires) in self._triggers.items() if expires < now - TRIGGER_TTL]:
                del self._triggers[old]  # never used: forgotten a while after they expire
            if len(self._used_triggers) > _KEEP_CALLS:
                self._used_triggers.clear()
            self._triggers[trigger] = (user, now + TRIGGER_TTL)
        return trigger

    def _use_trigger(self, args: Args) -> str:
        """The person a trigger id was for; Slack's errors for a bad, old or used one."""
        trigger = str(args.get("trigger_id") or "")
        if not trigger:
            raise _SlackError("invalid_arguments")
        found = self._triggers.pop(trigger, None)
        if found is None:
            raise _SlackError("exchanged_trigger_id" if trigger in self._used_triggers
                              else "invalid_trigger_id")
        self._used_triggers.add(trigger)
        user, expires = found
        if time.monotonic() > expires:
            raise _SlackError("expired_trigger_id")
        return user

    def _post_ephemeral(self, args: Args) -> Args:
        # As Slack: an ephemeral message goes only to someone in the channel.
        channel = self._channel(args)
        members = self._members.get(channel)
        if members is not None and args.get("user") and args["user"] not in members:
            raise _SlackError("user_not_in_channel")
        return super()._post_ephemeral(args)

    def _views_open(self, args: Args) -> Args:
        user = self._use_trigger(args)
        view = self._store_view(args.get("view"), f"V{next(self._ids):06d}")
        self._modals[user] = [view["id"]]
        self._view_owner[view["id"]] = user
        return {"view": view}

    def _views_push(self, args: Args) -> Args:
        user = self._use_trigger(args)
        if not self._modals.get(user):
            raise _SlackError("not_found")
        view = self._store_view(args.get("view"), f"V{next(self._ids):06d}")
        self._modals[user].append(view["id"])
        self._view_owner[view["id"]] = user
        return {"view": view}

    def _on_response_url(self, key: str, body: Args) -> None:
        with self._cond:
            target = self._targets.get(key)
            if target is None:
                return
            content: Args = {k: body[k] for k in ("text", "blocks") if k in body}
            if body.get("delete_original"):
                self._drop(target)
            elif body.get("replace_original") and target.get("message_ts"):
                self._replace(target, content)
            elif body.get("response_type") == "in_channel":
                self._post_message({"channel": target["channel"], **content,
                                    **({"thread_ts": body["thread_ts"]} if body.get("thread_ts") else {})})
            elif content:
                ts = self._next_ts()
                self._ephemerals.append({"channel": target["channel"], "user": target["user"],
                                         "message_ts": ts, "text": content.get("text", ""),
                                         **({"blocks": content["blocks"]} if content.get("blocks") else {})})
                if target.get("message_ts") is None:  # a command's: a later replace edits this
                    target["message_ts"], target["ephemeral"] = ts, True
        self.changed()

    def _drop(self, target: Args) -> None:
        ts = target.get("message_ts")
        if target.get("ephemeral"):
            self._ephemerals[:] = [e for e in self._ephemerals
                                   if not (e["message_ts"] == ts and e["user"] == target["user"])]
        else:
            self._channels[target["channel"]][:] = [m for m in self._channels.get(target["channel"], [])
                                                    if m["ts"] != ts]

    def _replace(self, target: Args, content: Args) -> None:
        ts = target["message_ts"]
        if target.get("ephemeral"):
            for e in self._ephemerals:
                if e["message_ts"] == ts and e["user"] == target["user"]:
                    e["text"] = content.get("text", "")
                    e.pop("blocks", None)
                    if content.get("blocks"):
                        e["blocks"] = content["blocks"]
            return
        for m in self._channels.get(target["channel"], []):
            if m["ts"] == ts:
                m["text"] = content.get("text", "")
                m.pop("blocks", None)
                if content.get("blocks"):
                    m["blocks"] = content["blocks"]
                m["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}

    def _new_response_url(self, user: str, channel: str, message_ts: str | None, ephemeral: bool) -> str:
        key = f"{user}.{next(self._ids)}.{secrets.token_hex(6)}"
        with self._cond:
            self._targets[key] = {"user": user, "channel": channel, "message_ts": message_ts,
                                  "ephemeral": ephemeral}
            while len(self._targets) > _KEEP_CALLS:  # Slack's expire after 30 minutes
                del self._targets[next(iter(self._targets))]
        return self.response_url(key)

    # ----- what people do: requests to the bot ----------------------------------------

    def _deliver(self, body: str, content_type: str) -> tuple[int, bytes]:
        """POST one signed request to the bot, as Slack does; (status, body)."""
        headers = signing.signed_headers(self.signing_secret, body, content_type=content_type)
        request = urllib.request.Request(self.events_url, data=body.encode(), headers=headers,
                                         method="POST")
        try:
            with urllib.request.urlopen(request, timeout=_BOT_TIMEOUT) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except OSError as error:
            raise PageError(f"the bot did not answer ({error})", 502) from None

    def _event(self, event: Args) -> None:
        event_id = f"Ev{next(self._ids):08d}"
        status, _ = self._deliver(signing.event_body(event, event_id=event_id, team_id=self.team_id,
                                                     bot_user_id=self.bot_user_id),
                                  signing.JSON_CONTENT_TYPE)
        if status >= 400:
            raise PageError(f"the bot answered the event with HTTP {status}", 502)

    def _interaction(self, payload: Args) -> Args | None:
        status, raw = self._deliver(signing.block_actions_body(payload), signing.FORM_CONTENT_TYPE)
        if status >= 400:
            raise PageError(f"the bot answered with HTTP {status}", 502)
        try:
            answer = json.loads(raw) if raw.strip() else None
        except ValueError:
            return None
        return answer if isinstance(answer, dict) else None

    def _check_person(self, user: Any, channel: Any = None) -> str:
        if people.person(str(user)) is None:
            raise PageError(f"unknown person {user!r}")
        if channel is not None and not any(c["id"] == channel for c in self.channels_of(str(user))):
            raise PageError(f"{user} is not in channel {channel!r}")
        return str(user)

    def _channel_name(self, channel: str) -> str:
        return next((c.name for c in people.CHANNELS if c.id == channel), "directmessage")

    def send(self, user: str, channel: str, text: str, thread_ts: str | None = None) -> Args:
        """A person types `text` in `channel` (a slash command, or a message)."""
        self._check_person(user, channel)
        text = (text or "").strip()
        if not text:
            raise PageError("nothing to send")
        command, _, rest = text.partition(" ")
        if command in _SLASH_COMMANDS:
            return self._slash(user, channel, command, rest.strip())
        if command.startswith("/"):
            raise PageError(f"{command} is not a command here; try {', '.join(_SLASH_COMMANDS)}")
        text = _mentions(text)
        ts = self.post_as_person(channel, user, text, thread_ts=thread_ts)
        self.changed()
        is_dm = channel.startswith("D")
        event: Args = {"type": "message", "channel": channel, "user": user, "text": text, "ts": ts,
                       "event_ts": ts, "team": self.team_id,
                       "channel_type": "im" if is_dm else "channel",
                       **({"thread_ts": thread_ts} if thread_ts else {})}
        self._event(event)
        if not is_dm and f"<@{self.bot_user_id}>" in text:
            self._event({**{k: v for k, v in event.items() if k != "channel_type"}, "type": "app_mention"})
        return {"ok": True, "ts": ts}

    def _slash(self, user: str, channel: str, command: str, text: str) -> Args:
        response_url = self._new_response_url(user, channel, None, True)
        body = signing.slash_command_body(
            command, text, user_id=user, channel_id=channel, team_id=self.team_id,
            trigger_id=self._new_trigger(user), response_url=response_url,
            user_name=user.lower(), channel_name=self._channel_name(channel))
        status, raw = self._deliver(body, signing.FORM_CONTENT_TYPE)
        if status >= 400:
            raise PageError(f"the bot answered {command} with HTTP {status}", 502)
        answer: Any = None
        if raw.strip():
            try:
                answer = json.loads(raw)
            except ValueError:
                answer = {"text": raw.decode("utf-8", "replace")}
        if isinstance(answer, dict) and (answer.get("text") or answer.get("blocks")):
            self._on_response_url(response_url.rsplit("/", 1)[1], answer)
        return {"ok": True, "ts": None}

    def click(self, user: str, action_id: str, block_id: str, *, channel: str | None = None,
              message_ts: str | None = None, view_id: str | None = None, value: Any = None,
              selected_option: Args | None = None, values: Args | None = None) -> Args:
        """A person clicks a button (or picks an option) on a message or in a view;
        `values`: what is typed in the view's inputs so far (its state, as Slack sends it)."""
        self._check_person(user)
        action: Args = {"action_id": action_id, "block_id": block_id,
                        "type": "static_select" if selected_option else "button",
                        "action_ts": f"{time.time():.6f}"}
        if selected_option:
            action["selected_option"] = selected_option
        else:
            action["value"] = "" if value is None else str(value)
        base: Args = {"type": "block_actions",
                      "user": {"id": user, "username": user.lower(), "name": user.lower(),
                               "team_id": self.team_id},
                      "api_app_id": signing.DEFAULT_APP_ID, "token": signing.DEFAULT_VERIFICATION_TOKEN,
                      "trigger_id": self._new_trigger(user),
                      "team": {"id": self.team_id, "domain": "resolvemeq-sandbox"},
                      "enterprise": None, "is_enterprise_install": False, "actions": [action]}
        if view_id:
            with self._cond:
                view = self._views.get(view_id)
                if view is None or (view_id not in self._modals.get(user, [])
                                    and self._home.get(user, {}).get("id") != view_id):
                    raise PageError(f"no view {view_id!r} open for {user}", 404)
                view = copy.deepcopy(view)
            payload = {**base, "container": {"type": "view", "view_id": view_id},
                       "view": {**view, "state": {"values": _state_values(view, values or {})}}}
        else:
            if not channel or not message_ts:
                raise PageError("a click needs channel and message_ts, or view_id")
            self._check_person(user, channel)
            with self._cond:
                message, ephemeral = self._clicked_message(user, channel, message_ts)
            payload = {**base,
                       "container": {"type": "message", "message_ts": message_ts, "channel_id": channel,
                                     "is_ephemeral": ephemeral},
                       "channel": {"id": channel, "name": self._channel_name(channel)},
                       "state": {"values": {}},
                       "response_url": self._new_response_url(user, channel, message_ts, ephemeral)}
            if not ephemeral:  # Slack echoes the message, except an ephemeral one
                payload["message"] = message
        self._interaction(payload)
        return {"ok": True}

    def _clicked_message(self, user: str, channel: str, ts: str) -> tuple[Args, bool]:
        for m in self._channels.get(channel, []):
            if m["ts"] == ts:
                return copy.deepcopy(m), False
        for e in self._ephemerals:
            if e["message_ts"] == ts and e["user"] == user and e["channel"] == channel:
                return {"type": "message", "text": e.get("text", ""), "ts": ts}, True
        raise PageError(f"no message {ts} in {channel}", 404)

    def _open_view(self, user: str, view_id: str) -> Args:
        with self._cond:
            if view_id not in self._modals.get(user, []):
                raise PageError(f"no modal {view_id!r} open for {user}", 404)
            return copy.deepcopy(self._views[view_id])

    def submit(self, user: str, view_id: str, values: Args) -> Args:
        """A person presses Submit on the modal `view_id`; the bot's response_action applied."""
        self._check_person(user)
        view = self._open_view(user, view_id)
        state = _state_values(view, values or {})
        payload = signing.view_submission_payload(view, {}, user_id=user, team_id=self.team_id)
        payload["view"]["state"] = {"values": state}
        payload["view"]["notify_on_close"] = bool(view.get("notify_on_close"))
        payload["trigger_id"] = self._new_trigger(user)
        answer = self._interaction(payload) or {}
        action = answer.get("response_action")
        errors = None
        with self._cond:
            stack = self._modals.setdefault(user, [])
            if action == "errors":
                errors = answer.get("errors") or {}
            elif action == "clear":
                stack.clear()
            elif action == "update" and isinstance(answer.get("view"), dict):
                self._store_view(answer["view"], view_id)
            elif action == "push" and isinstance(answer.get("view"), dict):
                pushed = self._store_view(answer["view"], f"V{next(self._ids):06d}")
                stack.append(pushed["id"])
            elif view_id in stack:
                stack.remove(view_id)
        self.changed()
        return {"ok": True, "errors": errors}

    def close(self, user: str, view_id: str) -> Args:
        """A person closes the modal; `view_closed` when the view asked for it."""
        self._check_person(user)
        view = self._open_view(user, view_id)
        with self._cond:
            stack = self._modals.get(user, [])
            if view_id in stack:
                stack.remove(view_id)
        self.changed()
        if view.get("notify_on_close"):
            payload = signing.view_submission_payload(view, {}, user_id=user, team_id=self.team_id)
            payload["type"] = "view_closed"
            payload["is_cleared"] = False
            payload.pop("trigger_id", None)
            self._interaction(payload)
        return {"ok": True}

    def react(self, user: str, channel: str, ts: str, name: str) -> Args:
        """A person adds a reaction to a message; reaction_added goes to the bot."""
        self._check_person(user, channel)
        if not name:
            raise PageError("a reaction needs a name")
        with self._cond:
            message = next((m for m in self._channels.get(channel, []) if m["ts"] == ts), None)
            if message is None:
                raise PageError(f"no message {ts} in {channel}", 404)
            reactions = message.setdefault("reactions", [])
            reaction = next((r for r in reactions if r["name"] == name), None)
            if reaction is None:
                reactions.append(reaction := {"name": name, "users": [], "count": 0})
            if user in reaction["users"]:
                return {"ok": True}
            reaction["users"].append(user)
            reaction["count"] = len(reaction["users"])
            author = message.get("user")
        self.changed()
        self._event({"type": "reaction_added", "user": user, "reaction": name,
                     "item": {"type": "message", "channel": channel, "ts": ts},
                     "item_user": author, "event_ts": f"{time.time():.6f}"})
        return {"ok": True}

    def shortcut(self, user: str, channel: str, ts: str, callback_id: str) -> Args:
        """A person uses a message shortcut on a message."""
        self._check_person(user, channel)
        with self._cond:
            message, ephemeral = self._clicked_message(user, channel, ts)
        if ephemeral:
            raise PageError("shortcuts do not work on messages only you can see")
        payload = signing.message_shortcut_payload(callback_id, message, user_id=user, channel_id=channel,
                                                   team_id=self.team_id, trigger_id=self._new_trigger(user))
        payload["response_url"] = self._new_response_url(user, channel, None, True)
        self._interaction(payload)
        return {"ok": True}

    def open_home(self, user: str) -> Args:
        """A person opens the bot's App Home tab."""
        self._check_person(user)
        with self._cond:
            view = copy.deepcopy(self._home.get(user))
        event: Args = {"type": "app_home_opened", "user": user, "channel": people.dm_channel(user),
                       "tab": "home", "event_ts": f"{time.time():.6f}"}
        if view:
            event["view"] = view
        self._event(event)
        return {"ok": True}


def _mentions(text: str) -> str:
    """`@ResolveMeQ` or `@Riley Requester` typed, as Slack's client sends it: `<@U…>`."""
    names = [(people.BOT_NAME, people.BOT_USER_ID)] + [(p.name, p.id) for p in people.PEOPLE]
    for name, user_id in names:
        text = text.replace(f"@{name}", f"<@{user_id}>")
    return text


def _state_values(view: Args, values: Args) -> Args:
    """`view.state.values` as Slack sends it, from what was typed: each element's type
    comes from the view (a select's value is the option whose value matches)."""
    elements: dict[tuple[str, str], Args] = {}
    for block in view.get("blocks") or []:
        element = block.get("element")
        if isinstance(element, dict) and block.get("block_id"):
            elements[(block["block_id"], element.get("action_id", ""))] = element
    state: Args = {}
    for block_id, actions in values.items():
        if not isinstance(actions, dict):
            raise PageError("values must be {block_id: {action_id: value}}")
        for action_id, value in actions.items():
            element = elements.get((block_id, action_id), {"type": "plain_text_input"})
            kind = element.get("type", "plain_text_input")
            if kind in ("static_select", "radio_buttons"):
                option = next((o for o in element.get("options", []) if o.get("value") == value), None)
                entry: Args = {"type": kind, "selected_option": option}
            else:
                entry = {"type": kind, "value": None if value in (None, "") else str(value)}
            state.setdefault(block_id, {})[action_id] = entry
    return state

