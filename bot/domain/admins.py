"""Who may roll back the bot's actions.

Admins are the Slack user ids in ADMIN_USER_IDS and, when ALLOW_WORKSPACE_ADMINS is
on, the workspace's admins and owners. The workspace lookup is passed in (the Slack
layer uses users.info) so this module stays free of Slack and can be tested alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot.core.settings import Settings

log = logging.getLogger(__name__)


def is_admin(
    settings: Settings,
    user_id: str,
    *,
    workspace_role: Callable[[str], bool] | None = None,
) -> bool:
    """Whether `user_id` may roll back actions.

    Args:
        settings: ADMIN_USER_IDS and ALLOW_WORKSPACE_ADMINS.
        user_id: the Slack user id asking.
        workspace_role: answers "is this user a workspace admin or owner?"; consulted
            only when ALLOW_WORKSPACE_ADMINS is on and the user is not listed.

    Returns:
        True for a listed admin, or a workspace admin when those are allowed. Any
        failure of the workspace lookup counts as "no": an outage of Slack's API must
        not hand out rollback rights.
    """
    if not isinstance(user_id, str) or not user_id:
        return False
    if user_id in settings.admin_user_ids:
        return True
    if not settings.allow_workspace_admins or workspace_role is None:
        return False
    try:
        # `is True`: a lookup that returns a truthy non-bool (a dict, a string) is a
        # bug in the caller, and a bug must not grant rights.
        return workspace_role(user_id) is True
    except Exception as error:  # fail closed, whatever the lookup raised
        log.warning("workspace admin lookup failed for %s: %s", user_id, type(error).__name__)
        return False
