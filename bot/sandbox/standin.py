"""A threaded, stdlib-only stand-in for the Slack Web API on loopback: the tests' fake
Slack, and the base of the sandbox's (`bot.sandbox.workspace`).

The app gets ``SLACK_API_URL=fake.base_url`` and talks to it with its real slack_sdk
client, so headers, encodings, retries and timeouts are all exercised. Answers follow
Slack's documentation (HTTP 200 with ``{"ok": true, ...}`` or ``{"ok": false, "error":
code}``); every call is recorded; posts are kept per channel ("what the person saw");
faults can be scripted: 429 with ``Retry-After``, 5xx, an API error, a slow answer, a
connection closed without an answer. Example::

    with SlackStandIn() as slack:
        settings = load_settings(slack_api_url=slack.base_url, slack_bot_token=slack.token)
        slack.fail_next("chat.postMessage", status=429, retry_after=1)
        ...
        slack.wait_for("chat.postMessage", count=2)
        assert slack.messages("C1")[0]["text"] == "..."
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bot.sandbox.loopback import LoopbackHTTPServer, QuickServer

DEFAULT_TOKEN = "xoxb-test-token"
# slack_sdk sends these as JSON text inside form bodies; the fake records them decoded.
# Where a slash command's response_url points (what hooks.slack.com is on Slack); a
# POST there is recorded as a call of the method RESPONSE_METHOD.
RESPONSE_PATH = "/response/"
RESPONSE_METHOD = "response_url"
_JSON_FIELDS = ("blocks", "attachments", "metadata", "view")
_TS_BASE = 1732527000  # so the first ts is "1732527000.000100", Slack's format
_MAX_TEXT = 40000  # Slack answers msg_too_long past this

Args = dict[str, Any]


@dataclass(frozen=True)
class Call:
    """One request the fake answered (or dropped), in arrival order.

    ``headers`` keys are lowercased. ``status`` is the HTTP status sent (0 when the
    connection was dropped); ``outcome`` is ``"ok"``, the error code sent, or ``"dropped"``.
    """

    method: str
    args: Args
    headers: dict[str, str]
    at: float
    status: int = 200
    outcome: str = "ok"
    response: Args | None = None

    @property
    def token(self) -> str | None:
        """The bearer token the caller sent, if any."""
        auth = self.headers.get("authorization", "")
        return auth[7:] if auth.lower().startswith("bearer ") else None


@dataclass
class _Fault:
    status: int | None = None
    error: str | None = None
    retry_after: int | None = None
    seconds: float = 0.0
    drop: bool = False
    remaining: int = 1


class _SlackError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _truthy(value: Any) -> bool:
    return str(value).lower() in ("1", "true")


def _flatten(query: dict[str, list[str]]) -> Args:
    return {key: values[-1] for key, values in query.items()}


class _Server(QuickServer):
    request_queue_size = 128  # the default 5 makes bursts of concurrent calls wait on SYN retries
    accepted = 0  # TCP connections accepted (`SlackStandIn.connections`)

    def get_request(self):
        request = super().get_request()
        self.accepted += 1
        return request


class SlackStandIn(LoopbackHTTPServer):
    """A fake Slack Web API on ``127.0.0.1`` with an OS-assigned port.

    Args:
        token: the only bot token accepted (others get ``invalid_auth``).
        team_id: the workspace ``auth.test`` reports.
        bot_user_id: the bot user ``auth.test`` reports; posts are authored by it.
        bot_id: the bot id ``auth.test`` reports.
        enterprise_id: the Enterprise Grid organisation ``auth.test`` reports (none:
            a workspace outside Enterprise Grid).
    """

    server_class = _Server
    ts_base = _TS_BASE  # the seconds of the first ts (the sandbox uses the real time)

    def __init__(self, *, token: str = DEFAULT_TOKEN, team_id: str = "T0RESOLVEQ",
                 bot_user_id: str = "UBOT", bot_id: str = "BBOT",
                 enterprise_id: str | None = None) -> None:
        self.token, self.team_id, self.enterprise_id = token, team_id, enterprise_id
        self.bot_user_id, self.bot_id = bot_user_id, bot_id
        self._cond = threading.Condition(threading.RLock())
        self._calls: list[Call] = []
        self._faults: dict[str, list[_Fault]] = defaultdict(list)
        self._channels: dict[str, list[Args]] = defaultdict(list)
        self._ephemerals: list[Args] = []
        self._users: dict[str, Args] = {}
        self._members: dict[str, list[str]] = {}
        self._usergroups: dict[str, Args] = {}  # by handle
        self._views: dict[str, Args] = {}
        self._home: dict[str, Args] = {}
        self._outside: set[str] = set()
        self._ts_counter = 0
        self._methods: dict[str, Callable[[Args], Args]] = {
            "auth.test": self._auth_test, "chat.postMessage": self._post_message,
            "chat.update": self._update, "chat.delete": self._delete,
            "chat.postEphemeral": self._post_ephemeral, "conversations.open": self._open,
            "conversations.history": self._history, "users.info": self._users_info,
            "conversations.replies": self._replies,
            "views.publish": self._views_publish, "views.open": self._views_open,
            "views.update": self._views_update, "reactions.add": self._reactions_add,
            "conversations.members": self._conversations_members,
            "usergroups.list": self._usergroups_list, "usergroups.users.list": self._usergroups_users,
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        return _make_handler(self)

    @property
    def base_url(self) -> str:
        """The Web API base, ``http://127.0.0.1:PORT/api/`` (what SLACK_API_URL gets)."""
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, key: str) -> str:
        """A response URL for one slash command; posts to it are calls of RESPONSE_METHOD."""
        return self.base_url.removesuffix("/api/") + RESPONSE_PATH + key

    # ----- what happened ---------------------------------------------------------

    def calls(self, method: str | None = None) -> list[Call]:
        """Every recorded call (attempts that failed included), or one method's; oldest first."""
        with self._cond:
            return [c for c in self._calls if method is None or c.method == method]

    def last(self, method: str) -> Call:
        """The latest call of a method; AssertionError if there was none."""
        found = self.calls(method)
        if not found:
            raise AssertionError(f"no {method} call; saw {self._summary()}")
        return found[-1]

    def wait_for(self, method: str, count: int = 1, timeout: float = 5) -> list[Call]:
        """Block until at least ``count`` calls of ``method`` were recorded.

        Args:
            method: the API method, e.g. ``chat.postMessage``.
            count: how many calls to wait for (failed attempts count too).
            timeout: seconds to wait.

        Returns:
            All calls of that method so far.

        Raises:
            AssertionError: on timeout, listing every call seen.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(found := [c for c in self._calls if c.method == method]) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"expected {count} {method} call(s) in {timeout}s, "
                                         f"got {len(found)}; saw {self._summary()}")
                self._cond.wait(remaining)
            return found

    def messages(self, channel: str) -> list[Args]:
        """A channel's messages now (edits applied, deletions gone, replies in), oldest first.

        A user id (``U...``) means the DM with that user, as in chat.postMessage.
        """
        with self._cond:
            return copy.deepcopy(self._channels.get(self._resolve(channel), []))

    def connections(self) -> int:
        """TCP connections accepted since the fake started (keep-alive: a client that
        reuses its connections opens few)."""
        return self._server.accepted if isinstance(self._server, _Server) else 0

    def ephemerals(self, channel: str | None = None) -> list[Args]:
        """Ephemeral messages posted (channel, user, text, blocks, message_ts)."""
        with self._cond:
            return [copy.deepcopy(e) for e in self._ephemerals if channel in (None, e["channel"])]

    def responses(self, user: str | None = None) -> list[Call]:
        """What was sent to response URLs (oldest first); with `user`, only to the URLs
        of that user's clicks (keyed "USER.TRIGGER" by the harness)."""
        return [c for c in self.calls(RESPONSE_METHOD)
                if user is None or str(c.args.get("response_key", "")).startswith(user + ".")]

    def told(self, user: str) -> list[Args]:
        """What `user` alone was shown, oldest first: ephemeral messages posted to them,
        and answers to their clicks through response URLs. Each has ``user``, ``text``,
        ``blocks`` and ``via`` (``"ephemeral"`` with its ``channel``, or
        ``"response_url"`` with ``replace_original``)."""
        found = []
        for call in self.calls():
            if call.outcome != "ok":
                continue
            if call.method == "chat.postEphemeral" and call.args.get("user") == user:
                found.append({"via": "ephemeral", "channel": call.args.get("channel"), "user": user,
                              "text": call.args.get("text") or "", "blocks": call.args.get("blocks") or []})
            elif (call.method == RESPONSE_METHOD
                  and str(call.args.get("response_key", "")).startswith(user + ".")):
                found.append({"via": "response_url", "user": user, "text": call.args.get("text") or "",
                              "blocks": call.args.get("blocks") or [],
                              "replace_original": call.args.get("replace_original", False)})
        return copy.deepcopy(found)

    def home_view(self, user_id: str) -> Args | None:
        """The App Home view last published for a user."""
        with self._cond:
            return copy.deepcopy(self._home.get(user_id))

    def dm_channel(self, user_id: str) -> str:
        """The DM channel id ``conversations.open`` gives a user (stable per user)."""
        return "D" + hashlib.sha1(user_id.encode()).hexdigest()[:10].upper()

    def reset(self) -> None:
        """Forget calls, posts, views and pending faults; users and the token stay."""
        with self._cond:
            for store in (self._calls, self._faults, self._channels, self._ephemerals,
                          self._views, self._home):
                store.clear()

    # ----- configuration and scripted faults -------------------------------------

    def set_user(self, user_id: str, *, is_admin: bool = False, is_owner: bool = False,
                 real_name: str | None = None, **fields: Any) -> None:
        """Make ``users.info`` know a user; extra ``fields`` go on the user object."""
        name = real_name or f"User {user_id}"
        user = {"id": user_id, "team_id": self.team_id, "name": user_id.lower(),
                "deleted": False, "real_name": name, "tz": "Europe/London",
                "is_admin": is_admin, "is_owner": is_owner, "is_primary_owner": False,
                "is_restricted": False, "is_ultra_restricted": False, "is_bot": False,
                "profile": {"real_name": name, "display_name": name, "team": self.team_id}}
        with self._cond:
            self._users[user_id] = {**user, **fields}

    def set_members(self, channel: str, users: list[str]) -> None:
        """Say who is in a channel (what ``conversations.members`` answers); like users,
        this stays through ``reset``. A channel never set is ``channel_not_found``."""
        with self._cond:
            self._members[channel] = list(users)

    def set_usergroup(self, handle: str, users: list[str], *, enabled: bool = True) -> str:
        """Make a user group (``@handle``) with these members, or change an existing one's
        members or whether it is enabled. Like users, groups stay through ``reset``.

        Returns:
            The group's id (``S…``), stable per handle, as Slack's are.
        """
        with self._cond:
            group = self._usergroups.get(handle)
            if group is None:
                group_id = "S" + hashlib.sha1(handle.encode()).hexdigest()[:10].upper()
                group = {"id": group_id, "team_id": self.team_id, "is_usergroup": True,
                         "name": handle.replace("-", " ").title(), "description": "",
                         "handle": handle, "is_external": False, "date_create": _TS_BASE,
                         "date_update": _TS_BASE, "date_delete": 0, "auto_type": None,
                         "created_by": "UCREATOR", "updated_by": "UCREATOR", "deleted_by": None,
                         "prefs": {"channels": [], "groups": []}}
                self._usergroups[handle] = group
            group["users"] = list(users)
            group["user_count"] = len(users)
            group["date_delete"] = 0 if enabled else _TS_BASE + 1
            return group["id"]

    def keep_bot_out(self, channel: str) -> None:
        """The bot is not in `channel` (people may still use slash commands there):
        chat.postMessage and chat.postEphemeral to it answer ``not_in_channel``, as
        Slack does; response URLs still reach it. Stays through ``reset``."""
        with self._cond:
            self._outside.add(channel)

    def post_as_person(self, channel: str, user_id: str, text: str, *, thread_ts: str | None = None) -> str:
        """A person (not the bot) posts ``text`` in ``channel`` (in a thread when
        ``thread_ts`` is given); returns the message's ts."""
        with self._cond:
            message = {"type": "message", "user": user_id, "team": self.team_id, "text": text,
                       "ts": self._next_ts(), **({"thread_ts": thread_ts} if thread_ts else {})}
            self._channels[self._resolve(channel)].append(message)
            return message["ts"]

    def fail_next(self, method: str, *, status: int | None = None, error: str | None = None,
                  retry_after: int | None = None, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with a failure.

        Args:
            method: the API method, e.g. ``chat.postMessage``.
            status: HTTP status (429, 500, 503, ...). Default: 429 when retry_after is
                given, else 200 (Slack's API errors are HTTP 200).
            error: the body's ``error`` code; default ``ratelimited`` for 429,
                ``internal_error`` otherwise.
            retry_after: seconds for the ``Retry-After`` header.
            times: how many consecutive calls fail.
        """
        status = status if status is not None else (429 if retry_after is not None else 200)
        if status == 200 and error is None:
            raise ValueError("fail_next needs a status or an error")
        self._add_fault(method, _Fault(status, error, retry_after, remaining=times))

    def delay(self, method: str, seconds: float, *, times: int = 1) -> None:
        """Sleep ``seconds`` before answering the next ``times`` calls (then answer normally).

        The call still takes effect, as a slow Slack may post after the client gave up.
        """
        self._add_fault(method, _Fault(seconds=seconds, remaining=times))

    def faults_left(self, method: str) -> int:
        """How many more calls of ``method`` the faults set for it will meet (0: a call
        has taken the last one, e.g. it is waiting out its delay now)."""
        with self._cond:
            return sum(fault.remaining for fault in self._faults.get(method, ()))

    def drop_connection_next(self, method: str, *, times: int = 1) -> None:
        """Close the connection without answering the next ``times`` calls (no effect)."""
        self._add_fault(method, _Fault(drop=True, remaining=times))

    # ----- hooks for the sandbox (no-ops here) -------------------------------------

    def _page_request(self, handler: BaseHTTPRequestHandler, path: str, query: str) -> bool:
        """Serve a request that is not Slack's Web API; True when answered."""
        return False

    def _on_response_url(self, key: str, body: Args) -> None:
        """Apply a JSON message posted to a response URL (recorded either way)."""

    # ----- internals: request flow ------------------------------------------------

    def _add_fault(self, method: str, fault: _Fault) -> None:
        with self._cond:
            self._faults[method].append(fault)

    def _take_fault(self, method: str) -> _Fault | None:
        with self._cond:
            queue = self._faults.get(method)
            if not queue:
                return None
            queue[0].remaining -= 1
            return queue.pop(0) if queue[0].remaining <= 0 else queue[0]

    def _record(self, call: Call) -> None:
        with self._cond:
            self._calls.append(call)
            self._cond.notify_all()

    def _summary(self) -> list[tuple[str, str]]:
        with self._cond:
            return [(c.method, c.outcome) for c in self._calls]

    def _answer(self, method: str, args: Args, headers: dict[str, str],
                fault: _Fault | None) -> tuple[int, Args, dict[str, str]]:
        if fault is not None and fault.status is not None:
            status = fault.status
            error = fault.error or ("ratelimited" if status == 429 else "internal_error")
            extra = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
            return status, {"ok": False, "error": error}, extra
        auth = headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else args.pop("token", None)
        handler = self._methods.get(method)
        try:
            if not token:
                raise _SlackError("not_authed")
            if token != self.token:
                raise _SlackError("invalid_auth")
            if handler is None:
                raise _SlackError("unknown_method")
            with self._cond:
                return 200, {"ok": True, **handler(args)}, {}
        except _SlackError as err:
            return 200, {"ok": False, "error": err.code}, {}

    # ----- internals: the methods (called with the lock held) ----------------------

    def _next_ts(self) -> str:
        self._ts_counter += 1
        micros = self.ts_base * 1_000_000 + self._ts_counter * 100
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _resolve(self, channel: str) -> str:
        # Posting to a user id lands in the DM with that user, as on Slack.
        return self.dm_channel(channel) if channel[:1] in ("U", "W") else channel

    def _channel(self, args: Args) -> str:
        if not args.get("channel"):
            raise _SlackError("channel_not_found")
        return self._resolve(str(args["channel"]))

    def _find(self, channel: str, ts: Any) -> Args:
        for message in self._channels.get(channel, []):
            if message["ts"] == ts:
                return message
        raise _SlackError("message_not_found")

    def _content(self, args: Args) -> Args:
        text = args.get("text") or ""
        if not text and not args.get("blocks") and not args.get("attachments"):
            raise _SlackError("no_text")
        if len(text) > _MAX_TEXT:
            raise _SlackError("msg_too_long")
        extra = {k: args[k] for k in ("blocks", "attachments", "metadata") if args.get(k)}
        return {"text": text, **extra}

    def _auth_test(self, args: Args) -> Args:
        return {"url": "https://resolvemeq-test.slack.com/", "team": "ResolveMeQ Test",
                "user": "resolvemeq", "team_id": self.team_id, "user_id": self.bot_user_id,
                "bot_id": self.bot_id, "is_enterprise_install": False,
                **({"enterprise_id": self.enterprise_id} if self.enterprise_id else {})}

    def _post_message(self, args: Args) -> Args:
        channel = self._channel(args)
        if channel in self._outside:
            raise _SlackError("not_in_channel")
        message = {"type": "message", "user": self.bot_user_id, "bot_id": self.bot_id,
                   "team": self.team_id, **self._content(args), "ts": self._next_ts()}
        if args.get("thread_ts"):
            message["thread_ts"] = str(args["thread_ts"])
        self._channels[channel].append(message)
        return {"channel": channel, "ts": message["ts"], "message": copy.deepcopy(message)}

    def _update(self, args: Args) -> Args:
        channel = self._channel(args)
        message = self._find(channel, args.get("ts"))
        message.update({k: args[k] for k in ("text", "blocks", "attachments", "metadata")
                        if k in args})
        message["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        return {"channel": channel, "ts": message["ts"], "text": message.get("text", ""),
                "message": copy.deepcopy(message)}

    def _delete(self, args: Args) -> Args:
        channel = self._channel(args)
        self._channels[channel].remove(self._find(channel, args.get("ts")))
        return {"channel": channel, "ts": args["ts"]}

    def _post_ephemeral(self, args: Args) -> Args:
        channel = self._channel(args)
        if channel in self._outside:
            raise _SlackError("not_in_channel")
        if not args.get("user"):
            raise _SlackError("user_not_found")
        ts = self._next_ts()
        self._ephemerals.append({"channel": channel, "user": args["user"], "message_ts": ts,
                                 **self._content(args)})
        return {"message_ts": ts}

    def _open(self, args: Args) -> Args:
        users = [u for u in str(args.get("users") or "").split(",") if u]
        if len(users) != 1:
            # Group DMs are not something this app opens; say so rather than fake them.
            raise _SlackError("users_list_not_supplied" if not users else "not_supported")
        channel = self.dm_channel(users[0])
        opened = channel in self._channels
        return {"channel": {"id": channel}, "no_op": opened, "already_open": opened}

    def _history(self, args: Args) -> Args:
        channel = self._channel(args)
        inclusive = _truthy(args.get("inclusive", "0"))
        oldest = float(args.get("oldest") or 0)
        latest = float(args["latest"]) if args.get("latest") else float("inf")
        limit = min(int(args.get("limit") or 100), 999)
        found = []
        for message in reversed(self._channels.get(channel, [])):
            ts = float(message["ts"])
            # Like Slack: top-level messages only (replies are for conversations.replies).
            if message.get("thread_ts", message["ts"]) != message["ts"]:
                continue
            if (oldest < ts < latest) or (inclusive and ts in (oldest, latest)):
                item = copy.deepcopy(message)
                if not _truthy(args.get("include_all_metadata", "0")):
                    item.pop("metadata", None)
                found.append(item)
        return {"messages": found[:limit], "has_more": len(found) > limit, "pin_count": 0,
                "response_metadata": {"next_cursor": ""}}

    def _replies(self, args: Args) -> Args:
        channel = self._channel(args)
        root = str(args.get("ts") or "")
        thread = [m for m in self._channels.get(channel, [])
                  if m["ts"] == root or m.get("thread_ts") == root]
        if not thread:
            raise _SlackError("thread_not_found")
        limit = min(int(args.get("limit") or 100), 999)
        found = []
        for message in thread[:limit]:  # oldest first, like Slack
            item = copy.deepcopy(message)
            if not _truthy(args.get("include_all_metadata", "0")):
                item.pop("metadata", None)
            found.append(item)
        return {"messages": found, "has_more": len(thread) > limit,
                "response_metadata": {"next_cursor": ""}}

    def _conversations_members(self, args: Args) -> Args:
        members = self._members.get(str(args.get("channel") or ""))
        if members is None:
            raise _SlackError("channel_not_found")
        limit = min(int(args.get("limit") or 100), 1000)
        cursor = str(args.get("cursor") or "")
        if cursor and not (cursor.startswith("next:") and cursor[5:].isdigit()):
            raise _SlackError("invalid_cursor")
        start = int(cursor[5:]) if cursor else 0
        page = members[start:start + limit]
        more = start + limit < len(members)
        return {"members": page,
                "response_metadata": {"next_cursor": f"next:{start + limit}" if more else ""}}

    def _usergroups_list(self, args: Args) -> Args:
        # Like Slack: disabled groups only with include_disabled; users only with include_users.
        found = []
        for group in self._usergroups.values():
            if group["date_delete"] and not _truthy(args.get("include_disabled", "0")):
                continue
            item = {k: copy.deepcopy(v) for k, v in group.items() if k not in ("users", "user_count")}
            if _truthy(args.get("include_users", "0")):
                item["users"] = list(group["users"])
            if _truthy(args.get("include_count", "0")):
                item["user_count"] = group["user_count"]
            found.append(item)
        return {"usergroups": found}

    def _usergroups_users(self, args: Args) -> Args:
        wanted = str(args.get("usergroup") or "")
        if not wanted:
            raise _SlackError("missing_argument")
        group = next((g for g in self._usergroups.values() if g["id"] == wanted), None)
        if group is None or (group["date_delete"] and not _truthy(args.get("include_disabled", "0"))):
            raise _SlackError("no_such_subteam")
        return {"users": list(group["users"])}

    def _users_info(self, args: Args) -> Args:
        user = self._users.get(str(args.get("user") or ""))
        if user is None:
            raise _SlackError("user_not_found")
        return {"user": copy.deepcopy(user)}

    def _store_view(self, view: Any, view_id: str) -> Args:
        if not isinstance(view, dict) or "type" not in view:
            raise _SlackError("invalid_arguments")
        self._views[view_id] = {**view, "id": view_id, "team_id": self.team_id,
                                "bot_id": self.bot_id, "hash": f"{time.time():.6f}"}
        return copy.deepcopy(self._views[view_id])

    def _views_publish(self, args: Args) -> Args:
        if not args.get("user_id"):
            raise _SlackError("invalid_arguments")
        old = self._home.get(args["user_id"])
        view = self._store_view(args.get("view"), old["id"] if old else f"VH{len(self._views):06d}")
        self._home[args["user_id"]] = view
        return {"view": view}

    def _views_open(self, args: Args) -> Args:
        if not args.get("trigger_id"):
            raise _SlackError("invalid_arguments")
        return {"view": self._store_view(args.get("view"), f"VM{len(self._views):06d}")}

    def _views_update(self, args: Args) -> Args:
        view_id = args.get("view_id") or next(
            (v["id"] for v in self._views.values()
             if args.get("external_id") and v.get("external_id") == args["external_id"]), None)
        if view_id not in self._views:
            raise _SlackError("not_found")
        return {"view": self._store_view(args.get("view"), str(view_id))}

    def _reactions_add(self, args: Args) -> Args:
        message = self._find(self._channel(args), args.get("timestamp"))
        reactions = message.setdefault("reactions", [])
        if not args.get("name"):
            raise _SlackError("invalid_name")
        if any(r["name"] == args["name"] for r in reactions):
            raise _SlackError("already_reacted")
        reactions.append({"name": args["name"], "users": [self.bot_user_id], "count": 1})
        return {}


def _make_handler(fake: SlackStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # Keep-alive, as Slack's servers: every answer says its Content-Length.
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # keep test output clean; the fake records calls instead

        def do_GET(self) -> None:  # noqa: N802
            self._serve()

        def do_POST(self) -> None:  # noqa: N802
            self._serve()

        def _serve(self) -> None:
            split = urlsplit(self.path)
            if fake._page_request(self, split.path, split.query):
                return None
            if split.path.startswith(RESPONSE_PATH):
                return self._response_url(split.path[len(RESPONSE_PATH):])
            if not split.path.startswith("/api/"):
                return self._send(404, {"ok": False, "error": "not_found"}, {})
            method = split.path[len("/api/"):].strip("/")
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                args = self._args(split.query)
            except ValueError:  # bad JSON or bad UTF-8
                return self._send(200, {"ok": False, "error": "invalid_form_data"}, {})
            fault = fake._take_fault(method)
            if fault is not None and fault.seconds:
                time.sleep(fault.seconds)
            if fault is not None and fault.drop:
                fake._record(Call(method, args, headers, time.time(), 0, "dropped"))
                self.close_connection = True  # no byte written: the client sees a disconnect
                return None
            status, body, extra = fake._answer(method, dict(args), headers, fault)
            outcome = "ok" if body.get("ok") else str(body.get("error"))
            fake._record(Call(method, args, headers, time.time(), status, outcome, body))
            return self._send(status, body, extra)

        def _response_url(self, key: str) -> None:
            # Slack's response URLs take a JSON message and answer a plain "ok".
            headers = {k.lower(): v for k, v in self.headers.items()}
            length = int(self.headers.get("Content-Length") or 0)
            try:
                args = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                args = None
            ok = isinstance(args, dict)
            if ok:
                fake._on_response_url(key, args)
            fake._record(Call(RESPONSE_METHOD, {**(args if ok else {}), "response_key": key},
                              headers, time.time(), 200 if ok else 400,
                              "ok" if ok else "invalid_payload"))
            data = b"ok" if ok else b"invalid_payload"
            self.send_response(200 if ok else 400)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _args(self, query: str) -> Args:
            args = _flatten(parse_qs(query, keep_blank_values=True))
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if raw and content_type == "application/json":
                body = json.loads(raw)
                if not isinstance(body, dict):
                    raise ValueError("JSON body must be an object")
                args.update(body)
            elif raw:
                args.update(_flatten(parse_qs(raw.decode("utf-8"), keep_blank_values=True)))
            for key in _JSON_FIELDS:
                if isinstance(args.get(key), str) and args[key][:1] in ("[", "{"):
                    args[key] = json.loads(args[key])
            return args

        def _send(self, status: int, body: Args, extra: dict[str, str]) -> None:
            data = json.dumps(body).encode("utf-8")
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the client gave up (timeout tests); there is no one left to tell

    return Handler
