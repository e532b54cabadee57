"""What every listener gets injected as `deps` (through Bolt's context)."""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk import WebClient

from bot.delivery.background import Background
from bot.delivery.channel_members import ChannelMembers
from bot.delivery.slack_roles import WorkspaceRoles
from bot.delivery.user_groups import UserGroups
from bot.domain import admins
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
    groups: UserGroups

    def is_admin(self, user_id: str) -> bool:
        """Whether `user_id` is an admin now (asked at click time, failing closed)."""
        return admins.is_admin(self.runtime.settings, user_id, workspace_role=self.roles,
                               in_groups=self.groups.member_of_any)

    def may_approve(self, user_id: str) -> bool:
        """Whether `user_id` may approve or reject a rollback request now: an admin or
        an approver (asked at click time, failing closed)."""
        return admins.may_approve(self.runtime.settings, user_id, workspace_role=self.roles,
                                  in_groups=self.groups.member_of_any)

    def may_act(self, user_id: str) -> MayAct:
        """Whether `user_id` may work on tickets of the team in a channel: an admin, or
        a member of that channel (asked at click time, failing closed)."""
        def check(channel: str | None) -> bool:
            if self.is_admin(user_id):
                return True
            return channel is not None and self.members.is_member(channel, user_id)

        return check
