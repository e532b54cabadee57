"""Who may roll back: listed admins, admin groups, and workspace admins only when allowed;
who may approve: admins and approver groups. Every lookup fails closed."""

from __future__ import annotations

import pytest

from bot.core.settings import Settings, load_settings
from bot.domain.admins import is_admin, may_approve


@pytest.fixture()
def make(monkeypatch):
    """Settings from a clean environment, so a developer's ADMIN_USER_IDS cannot leak in."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)

    def build(**overrides) -> Settings:
        return load_settings(database_url="sqlite:///unused.db", **overrides)

    return build


def test_listed_admin_is_admin(make):
    settings = make(admin_user_ids="UADMIN, UOTHER")
    assert is_admin(settings, "UADMIN") is True
    assert is_admin(settings, "UOTHER") is True


def test_unlisted_user_is_not_admin_without_workspace_admins(make):
    settings = make(admin_user_ids="UADMIN")
    calls = []
    assert is_admin(settings, "UNOBODY", workspace_role=lambda uid: calls.append(uid) or True) is False
    # Workspace roles are not even asked when they are not allowed to count.
    assert calls == []


def test_workspace_admin_counts_when_allowed(make):
    settings = make(admin_user_ids="UADMIN", allow_workspace_admins=True)
    assert is_admin(settings, "UWSADMIN", workspace_role=lambda uid: uid == "UWSADMIN") is True
    assert is_admin(settings, "UMEMBER", workspace_role=lambda uid: uid == "UWSADMIN") is False


def test_listed_admin_needs_no_lookup(make):
    settings = make(admin_user_ids="UADMIN", allow_workspace_admins=True)

    def lookup(_uid):
        raise AssertionError("must not be called")

    assert is_admin(settings, "UADMIN", workspace_role=lookup) is True


def test_allowed_workspace_admins_without_a_lookup_is_no(make):
    settings = make(allow_workspace_admins=True)
    assert is_admin(settings, "UWSADMIN") is False


@pytest.mark.parametrize("error", [RuntimeError("slack down"), TimeoutError(), KeyError("user")])
def test_lookup_failure_fails_closed(make, error):
    settings = make(allow_workspace_admins=True)

    def lookup(_uid):
        raise error

    assert is_admin(settings, "UWSADMIN", workspace_role=lookup) is False


@pytest.mark.parametrize("answer", [{"is_admin": True}, "true", 1, None])
def test_lookup_must_answer_a_real_true(make, answer):
    settings = make(allow_workspace_admins=True)
    assert is_admin(settings, "UWSADMIN", workspace_role=lambda _uid: answer) is False


@pytest.mark.parametrize("user_id", ["", None, 42])
def test_bad_user_ids_are_not_admins(make, user_id):
    settings = make(admin_user_ids="UADMIN", allow_workspace_admins=True)
    assert is_admin(settings, user_id, workspace_role=lambda _uid: True) is False


# User groups (ADMIN_GROUPS, APPROVER_GROUPS) and who may approve ----------------------

def _groups(members: dict[str, set[str]], calls: list | None = None):
    """A user group lookup answering from `members` ({handle: user ids})."""
    def in_groups(handles, user_id):
        if calls is not None:
            calls.append((tuple(handles), user_id))
        return any(user_id in members.get(handle, set()) for handle in handles)

    return in_groups


def test_a_member_of_an_admin_group_is_admin_and_may_approve(make):
    settings = make(admin_groups="it-admins")
    lookup = _groups({"it-admins": {"UGROUP"}})
    assert is_admin(settings, "UGROUP", in_groups=lookup) is True
    assert may_approve(settings, "UGROUP", in_groups=lookup) is True
    assert is_admin(settings, "UOTHER", in_groups=lookup) is False


def test_an_approver_may_approve_but_is_not_an_admin(make):
    settings = make(admin_user_ids="UADMIN", admin_groups="it-admins", approver_groups="helpdesk-leads")
    lookup = _groups({"it-admins": {"UGROUP"}, "helpdesk-leads": {"ULEAD"}})
    assert is_admin(settings, "ULEAD", in_groups=lookup) is False
    assert may_approve(settings, "ULEAD", in_groups=lookup) is True
    assert may_approve(settings, "UADMIN", in_groups=lookup) is True
    assert may_approve(settings, "USTRANGER", in_groups=lookup) is False


def test_groups_are_asked_only_when_configured_and_the_user_is_not_listed(make):
    calls = []
    lookup = _groups({"it-admins": {"UADMIN"}}, calls)
    assert is_admin(make(admin_user_ids="UADMIN", admin_groups="it-admins"), "UADMIN", in_groups=lookup)
    assert not is_admin(make(), "UADMIN", in_groups=lookup)
    assert calls == []
    may_approve(make(admin_groups="it-admins", approver_groups="leads"), "UX", in_groups=lookup)
    assert calls == [(("it-admins", "leads"), "UX")]  # one question for both kinds of group


@pytest.mark.parametrize("answer", [RuntimeError("slack down"), {"ok": True}, "yes", 1])
def test_a_group_lookup_that_fails_or_answers_oddly_is_no(make, answer):
    settings = make(admin_groups="it-admins", approver_groups="leads")

    def lookup(_handles, _uid):
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert is_admin(settings, "UGROUP", in_groups=lookup) is False
    assert may_approve(settings, "UGROUP", in_groups=lookup) is False


def test_workspace_admins_may_approve_when_allowed(make):
    settings = make(allow_workspace_admins=True)
    assert may_approve(settings, "UWSADMIN", workspace_role=lambda uid: uid == "UWSADMIN") is True
    assert may_approve(settings, "UMEMBER", workspace_role=lambda uid: uid == "UWSADMIN") is False
