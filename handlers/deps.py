"""What every listener gets injected as `deps` (through Bolt's context)."""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk import WebClient

from bot.delivery.background import Background
from bot.delivery.channel_members import ChannelMembers
from bot.delivery.slack_roles import WorkspaceRoles
from bot.domain.admins import is_admin
from bot.domain.teamwork import MayAct
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
    members: ChannelMembers

    def is_admin(self, user_id: str) -> bool:
        return is_admin(self.runtime.settings, user_id, workspace_role=self.roles)

    def may_act(self, user_id: str) -> MayAct:
        """Whether `user_id` may work on tickets of the team in a channel: an admin, or
        a member of that channel (asked at click time, failing closed)."""
        def check(channel: str | None) -> bool:
            if self.is_admin(user_id):
                return True
            return channel is not None and self.members.is_member(channel, user_id)

        return check
