"""Who may roll back: listed admins, and workspace admins only when allowed; fail closed."""

from __future__ import annotations

import pytest

from bot.core.settings import Settings, load_settings
from bot.domain.admins import is_admin


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
