"""Where each request goes: one Bolt listener per kind of request, routing by its id.

Bolt tries its listeners in the order they were registered, and for each one builds the
arguments of its matcher (`build_required_kwargs`, every argument Bolt knows, each time)
and runs it: with a listener per button, a star rating was tried against about eleven
listeners before its own, a third of Bolt's work on a click (docs/BENCHMARKS.md, "Ack
CPU"). Here each kind that is hot has one listener, and a dict lookup by the request's
own id (then a pattern or two, such as the star ratings' `rate_1`..`rate_5`) finds the
handler, which gets the arguments it names, the same objects Bolt would have given it:

- slash commands, by `command`: the first listener, so `/ticket` is matched at once; a
  command nobody handles is not matched, and Bolt answers it as before (404);
- events, by the event's `type`; one nobody handles is acknowledged (an empty 200: Slack
  retries an event it does not get a 200 for);
- actions (buttons), by `action_id` (for the older interactive payloads, attachments and
  dialogs, their `callback_id`, as `app.action` matched them); one nobody handles is
  acknowledged (an error would show the person an error for an old message's button).

Modal submissions and the message shortcut keep a Bolt listener each (rare, and after
the routers, so they cost the hot requests nothing). Nothing else changes for a
handler: the same request, the same `ack` (which commits, `handlers.transaction`), the
same error path (what it raises reaches `handlers.errors` through Bolt).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any, TypeVar

from slack_bolt import Ack, App, BoltRequest, Respond
from sqlalchemy.orm import Session

from handlers.deps import SlackDeps

Handler = TypeVar("Handler", bound=Callable[..., Any])
Found = tuple[Callable[..., Any], tuple[str, ...]]

# What any handler may name, beside its kind's payload (`command`, `event`, `action`).
_COMMON = frozenset({"ack", "body", "request", "respond", "session", "deps"})


class Router:
    """Handlers of one kind of request, by id (exact) or by pattern (searched in order,
    as Bolt's matchers search a pattern).

    Args:
        payload: the name a handler of this kind takes its payload by.
    """

    def __init__(self, payload: str) -> None:
        self.payload = payload
        self.available = _COMMON | {payload}
        self._exact: dict[str, Found] = {}
        self._patterns: list[tuple[re.Pattern[str], Callable[..., Any], tuple[str, ...]]] = []

    def on(self, constraint: str | re.Pattern[str]) -> Callable[[Handler], Handler]:
        """Register a handler for one id, or for those `constraint` finds.

        Raises:
            ValueError: the handler names an argument the router cannot give; or the id
                is taken, or a pattern finds an id registered already (or the other way
                round): which handler wins would depend on the order of registration.
        """
        def register(handler: Handler) -> Handler:
            names = tuple(inspect.signature(handler).parameters)
            unknown = set(names) - self.available
            if unknown:
                raise ValueError(f"{handler.__name__} takes {sorted(unknown)}: a {self.payload} "
                                 f"handler takes only {sorted(self.available)}")
            if isinstance(constraint, str):
                if constraint in self._exact or any(p.search(constraint) for p, _, _ in self._patterns):
                    raise ValueError(f"two {self.payload} handlers for {constraint!r}")
                self._exact[constraint] = (handler, names)
            else:
                if any(constraint.search(known) for known in self._exact):
                    raise ValueError(f"{constraint.pattern!r} finds a {self.payload} id registered already")
                self._patterns.append((constraint, handler, names))
            return handler

        return register

    def find(self, key: object) -> Found | None:
        """The handler of `key` and the arguments it names, or None."""
        if not isinstance(key, str):
            return None
        found = self._exact.get(key)
        if found is not None:
            return found
        for pattern, handler, names in self._patterns:
            if pattern.search(key):
                return handler, names
        return None

    def exact_ids(self) -> list[str]:
        """The ids registered exactly."""
        return list(self._exact)

    def run(self, found: Found, given: dict[str, Any]) -> None:
        handler, names = found
        handler(**{name: given[name] for name in names})


class Routes:
    """Every listener of the app, gathered by the handler modules' `register(routes)`,
    then bound to the Bolt app in the order that costs the hot requests least (`bind`)."""

    def __init__(self) -> None:
        self.commands = Router("command")
        self.events = Router("event")
        self.actions = Router("action")
        self._others: list[Callable[[App], object]] = []

    def command(self, name: str) -> Callable[[Handler], Handler]:
        return self.commands.on(name)

    def event(self, event_type: str) -> Callable[[Handler], Handler]:
        return self.events.on(event_type)

    def action(self, constraint: str | re.Pattern[str]) -> Callable[[Handler], Handler]:
        return self.actions.on(constraint)

    def view(self, callback_id: str) -> Callable[[Handler], Handler]:
        """A modal's submission: a Bolt listener of its own (`app.view`)."""
        def register(handler: Handler) -> Handler:
            self._others.append(lambda app: app.view(callback_id)(handler))
            return handler

        return register

    def message_shortcut(self, callback_id: str) -> Callable[[Handler], Handler]:
        """A message shortcut: a Bolt listener of its own (`app.message_shortcut`)."""
        def register(handler: Handler) -> Handler:
            self._others.append(lambda app: app.message_shortcut(callback_id)(handler))
            return handler

        return register

    def bind(self, app: App) -> None:
        """Register the listeners with `app`: commands, events, actions, then the rest."""
        commands, events, actions = self.commands, self.events, self.actions
        # Only the commands we handle match: any other gets Bolt's answer, as before.
        known = re.compile("^(?:" + "|".join(re.escape(c) for c in commands.exact_ids()) + r")\Z")

        def route_command(ack: Ack, body: dict, command: dict, request: BoltRequest,
                          respond: Respond, session: Session, deps: SlackDeps) -> None:
            found = commands.find(command.get("command"))
            if found is None:  # matched by `known`, so registered: never here
                raise LookupError(f"no handler for {command.get('command')!r}")
            commands.run(found, {"ack": ack, "body": body, "command": command, "request": request,
                                 "respond": respond, "session": session, "deps": deps})

        def route_event(ack: Ack, body: dict, event: dict, request: BoltRequest,
                        respond: Respond, session: Session, deps: SlackDeps) -> None:
            found = events.find(event.get("type"))
            if found is None:
                ack()
                return
            events.run(found, {"ack": ack, "body": body, "event": event, "request": request,
                               "respond": respond, "session": session, "deps": deps})

        def route_action(ack: Ack, body: dict, action: dict, request: BoltRequest,
                         respond: Respond, session: Session, deps: SlackDeps) -> None:
            payload = action if isinstance(action, dict) else {}
            key = payload.get("action_id") if body.get("type") == "block_actions" else body.get("callback_id")
            found = actions.find(key)
            if found is None:
                ack()
                return
            actions.run(found, {"ack": ack, "body": body, "action": action, "request": request,
                                "respond": respond, "session": session, "deps": deps})

        if commands.exact_ids():
            app.command(known)(route_command)
        app.event(re.compile(".*"))(route_event)
        app.action(re.compile(".*"))(route_action)
        for register in self._others:
            register(app)
