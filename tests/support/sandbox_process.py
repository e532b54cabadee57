"""`resolvemeq sandbox` as a subprocess on a free port with a data folder of its own,
and a client of its page API that sees only what the page sees.

    with SandboxProcess(tmp_path) as sandbox:
        page = sandbox.page
        page.send("UREQ", "CHELPDESK", "/ticket My VPN keeps disconnecting")
        page.wait_for("UREQ", lambda state: ...)
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import httpx

from tests.support.harness import ROOT, free_port

READY = "Sandbox ready: "
# The sandbox starts the bot, migrates a database and imports the KB: slow on a busy CI box.
START_TIMEOUT = 180.0
WAIT_TIMEOUT = 60.0

State = dict[str, Any]


class PageClient:
    """The page's API (/sandbox/*), as the browser page calls it."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=120)

    def state(self, user: str) -> State:
        answer = self.http.get("/sandbox/state", params={"user": user})
        answer.raise_for_status()
        return answer.json()

    def post(self, action: str, **body: Any) -> dict[str, Any]:
        """POST /sandbox/<action>; the JSON answer (AssertionError unless ok)."""
        answer = self.http.post(f"/sandbox/{action}", json=body)
        data = answer.json()
        assert answer.status_code == 200 and data.get("ok"), f"{action} {body}: {answer.status_code} {data}"
        return data

    def send(self, user: str, channel: str, text: str, thread_ts: str | None = None) -> dict[str, Any]:
        return self.post("send", user=user, channel=channel, text=text,
                         **({"thread_ts": thread_ts} if thread_ts else {}))

    def wait_for(self, user: str, found: Callable[[State], Any], what: str,
                 timeout: float = WAIT_TIMEOUT) -> Any:
        """Re-read `user`'s state until `found(state)` is truthy; that value.

        Raises:
            AssertionError: after `timeout` seconds, naming `what` and the messages seen.
        """
        deadline = time.monotonic() + timeout
        while True:
            state = self.state(user)
            value = found(state)
            if value:
                return value
            if time.monotonic() > deadline:
                seen = {c: [m["text"][:80] for m in ms] for c, ms in state["messages"].items() if ms}
                raise AssertionError(f"{user} never saw {what} in {timeout:.0f}s; saw {seen}, "
                                     f"modal {state['modal']}")
            time.sleep(0.3)


def messages(state: State, channel: str) -> list[dict[str, Any]]:
    return state["messages"].get(channel, [])


def buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A message's buttons by action_id, each with the block_id it sits in."""
    found = {}
    for block in message.get("blocks") or []:
        for element in block.get("elements") or []:
            if element.get("type") == "button":
                found[element["action_id"]] = {**element, "block_id": block.get("block_id", "")}
    return found


class SandboxProcess:
    """`python -m bot.platform.cli sandbox --port P --data DIR`, stopped on exit."""

    def __init__(self, data: Path) -> None:
        self.data, self.port = data, free_port()
        self._process: subprocess.Popen[str] | None = None
        self.output: list[str] = []
        self.url = ""

    def __enter__(self) -> Self:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bot.platform.cli", "sandbox", "--port", str(self.port),
             "--data", str(self.data)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: queue.Queue[str | None] = queue.Queue()

        def read() -> None:
            assert self._process is not None and self._process.stdout is not None
            for line in self._process.stdout:
                self.output.append(line)
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.url:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                self.__exit__()
                raise AssertionError(f"the sandbox did not start: {''.join(self.output)}")
            if line.startswith(READY):
                self.url = line[len(READY):].strip()
        self.page = PageClient(self.url)
        return self

    def __exit__(self, *exc: object) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def bot_log(self) -> str:
        log = self.data / "bot.log"
        return log.read_text(errors="replace") if log.exists() else ""
