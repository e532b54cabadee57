"""What every listener gets injected as `deps` (through Bolt's context)."""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk import WebClient

from bot.delivery.background import Background
from bot.delivery.slack_roles import WorkspaceRoles
from bot.domain.admins import is_admin
from bot.workflows.home import HomeFigures
from bot.workflows.runtime import Runtime


@dataclass
class SlackDeps:
    """What listeners need, injected as `deps` through the Bolt context.

    `background` runs decisions and the Slack posts they owe; `reads` runs the App
    Home and /resolution-stats, so figures never wait in front of a ticket's answer.
    """

    runtime: Runtime
    client: WebClient
    background: Background
    roles: WorkspaceRoles
    reads: Background
    home: HomeFigures

    def is_admin(self, user_id: str) -> bool:
        return is_admin(self.runtime.settings, user_id, workspace_role=self.roles)
