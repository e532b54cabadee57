"""Who may roll back the bot's actions, and who may approve a rollback.

Admins are the Slack user ids in ADMIN_USER_IDS, the members of the Slack user groups
in ADMIN_GROUPS and, when ALLOW_WORKSPACE_ADMINS is on, the workspace's admins and
owners. Admins roll back (or, in two-person mode, ask for a rollback) and approve
others' requests. Members of APPROVER_GROUPS may approve or reject a request but not
start one. Nobody approves their own request (bot.domain.approvals).

The lookups are passed in (the Slack layer asks users.info and the usergroups
methods) so this module stays free of Slack and can be tested alone. Every lookup
fails closed: an error, or an answer that is not a real True, is "no".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from bot.core.settings import Settings

log = logging.getLogger(__name__)

# Answers "is this user a workspace admin or owner?".
WorkspaceRole = Callable[[str], bool]
# Answers "is this user in at least one of these user groups (by handle)?".
InGroups = Callable[[Sequence[str], str], bool]


def is_admin(
    settings: Settings,
    user_id: str,
    *,
    workspace_role: WorkspaceRole | None = None,
    in_groups: InGroups | None = None,
) -> bool:
    """Whether `user_id` may roll back actions.

    Args:
        settings: ADMIN_USER_IDS, ADMIN_GROUPS and ALLOW_WORKSPACE_ADMINS.
        user_id: the Slack user id asking.
        workspace_role: consulted only when ALLOW_WORKSPACE_ADMINS is on and the user
            is neither listed nor in an admin group.
        in_groups: the user group lookup; consulted only when ADMIN_GROUPS is set and
            the user is not listed.

    Returns:
        True for a listed admin, a member of an admin group, or a workspace admin when
        those are allowed. Any failure of a lookup counts as "no": an outage of Slack's
        API must not hand out rollback rights.
    """
    if not isinstance(user_id, str) or not user_id:
        return False
    if user_id in settings.admin_user_ids:
        return True
    if _in_groups(in_groups, settings.admin_groups, user_id, "admin group"):
        return True
    if not settings.allow_workspace_admins or workspace_role is None:
        return False
    return _asked(workspace_role, "workspace admin", user_id)


def may_approve(
    settings: Settings,
    user_id: str,
    *,
    workspace_role: WorkspaceRole | None = None,
    in_groups: InGroups | None = None,
) -> bool:
    """Whether `user_id` may approve or reject someone's rollback request: an admin
    (see :func:`is_admin`) or a member of APPROVER_GROUPS.

    Whether it is their own request is the caller's check (bot.domain.approvals).

    Args:
        settings: the roles' settings.
        user_id: the Slack user id clicking.
        workspace_role: as for :func:`is_admin`.
        in_groups: the user group lookup.

    Returns:
        True only on a definite yes; a failed lookup is "no".
    """
    if not isinstance(user_id, str) or not user_id:
        return False
    if user_id in settings.admin_user_ids:
        return True
    # One lookup for both kinds of group: the cache answers both from the same lists.
    groups = [*settings.admin_groups, *settings.approver_groups]
    if _in_groups(in_groups, groups, user_id, "admin or approver group"):
        return True
    if not settings.allow_workspace_admins or workspace_role is None:
        return False
    return _asked(workspace_role, "workspace admin", user_id)


def _in_groups(in_groups: InGroups | None, handles: Sequence[str], user_id: str, what: str) -> bool:
    if not handles or in_groups is None:
        return False
    return _asked(lambda user: in_groups(list(handles), user), what, user_id)


def _asked(lookup: Callable[[str], object], what: str, user_id: str) -> bool:
    try:
        # `is True`: a lookup that returns a truthy non-bool (a dict, a string) is a
        # bug in the caller, and a bug must not grant rights.
        return lookup(user_id) is True
    except Exception as error:  # fail closed, whatever the lookup raised
        log.warning("%s lookup failed for %s: %s", what, user_id, type(error).__name__)
        return False
