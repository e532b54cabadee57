"""In-memory data for the view tests: model objects never added to a session, and
small helpers to inspect the blocks a person would see."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk.models.blocks import Block

from bot.domain.analytics import ActionTypeStats, ResolutionStats, TeamStats
from models import ActionHistory, ActionType, Actor, PersonResolution, Ticket, TicketResolution, TicketStatus

NOW = datetime(2024, 5, 2, 9, 30, tzinfo=UTC)
ACTION_ID = uuid.UUID("3f2a9c1e-0b6d-4c1a-9e2f-5a7b8c9d0e1f")
EVIL = "<!channel> hi <@U123> & <https://evil|click>"


def ticket(**fields: Any) -> Ticket:
    values: dict[str, Any] = {
        "ticket_id": 42,
        "user_id": "UREQ1",
        "issue_type": "VPN",
        "status": TicketStatus.RESOLVED,
        "description": "My VPN keeps disconnecting",
        "category": "network",
        "tags": [],
        "assigned_team": "Network",
        "created_at": NOW - timedelta(days=1),
        "updated_at": NOW - timedelta(days=1),
    }
    values.update(fields)
    return Ticket(**values)


def action(**fields: Any) -> ActionHistory:
    values: dict[str, Any] = {
        "id": ACTION_ID,
        "ticket_id": 42,
        "action_type": ActionType.AUTO_RESOLVE,
        "action_params": {
            "team": "Network",
            "steps": ["Open the VPN client", "Sign out and in again"],
            "estimated_time": "5 minutes",
            "band": "high",
        },
        "executed_at": NOW - timedelta(days=1),
        "executed_by": Actor.AGENT,
        "autonomous": True,
        "confidence_score": 0.92,
        "agent_reasoning": "Matched KB article 'vpn'.",
        "rollback_possible": True,
        "rolled_back": False,
        "rollback_reason": "",
    }
    values.update(fields)
    return ActionHistory(**values)


def resolution(**fields: Any) -> TicketResolution:
    values: dict[str, Any] = {
        "ticket_id": 42,
        "action_id": ACTION_ID,
        "autonomous_action": ActionType.AUTO_RESOLVE,
        "resolution_confirmed": None,
        "satisfaction_score": None,
        "reopened": False,
    }
    values.update(fields)
    return TicketResolution(**values)


def person_resolution(**fields: Any) -> PersonResolution:
    values: dict[str, Any] = {
        "id": 7,
        "ticket_id": 42,
        "action_id": ACTION_ID,
        "resolved_by": "UTEAM1",
        "team": "Network",
        "note": "Re-enrolled the laptop in the VPN profile",
        "resolution_confirmed": None,
        "satisfaction_score": None,
        "reopened": False,
        "created_at": NOW - timedelta(days=1),
    }
    values.update(fields)
    return PersonResolution(**values)


def stats(**fields: Any) -> ResolutionStats:
    values: dict[str, Any] = {
        "days": 30,
        "since": NOW - timedelta(days=30),
        "resolutions": 10,
        "confirmed": 6,
        "failed": 2,
        "pending": 2,
        "reopened": 2,
        "success_rate": 0.75,
        "average_rating": 4.25,
        "ratings": 4,
        "withdrawn": 1,
        "by_action_type": (
            ActionTypeStats(ActionType.AUTO_RESOLVE, 11, 11, 0.88, 1),
            ActionTypeStats(ActionType.ESCALATE, 3, 2, None, 0),
        ),
        "by_team": (
            TeamStats("Network", 8, 6, 4, 1, 0.8, 4.5),
            TeamStats("Service Desk", 3, 0, 0, 0, None, None),
        ),
    }
    values.update(fields)
    return ResolutionStats(**values)


def walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every dict inside blocks (blocks, elements, text objects)."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def buttons(blocks: list[dict]) -> dict[str, dict]:
    """Buttons by action_id."""
    return {n["action_id"]: n for n in walk(blocks) if n.get("type") == "button"}


def all_text(blocks: list[dict]) -> str:
    """Every text a person can read, joined."""
    return "\n".join(
        n["text"] for n in walk(blocks) if n.get("type") in ("mrkdwn", "plain_text")
    )


def dumped(output: Any) -> str:
    return json.dumps(output, ensure_ascii=False)


def assert_within_limits(blocks: list[dict], *, max_blocks: int = 50) -> None:
    """Slack's limits, checked explicitly and by slack_sdk's own validators."""
    assert 0 < len(blocks) <= max_blocks
    for block in blocks:
        # Block.parse rebuilds the object; to_dict() runs its validators again.
        Block.parse(block).to_dict()
        if block["type"] == "section" and "text" in block:
            assert 0 < len(block["text"]["text"]) <= 3000
        if block["type"] == "section":
            for field in block.get("fields", []):
                assert len(field["text"]) <= 2000
            assert len(block.get("fields", [])) <= 10
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
        if block["type"] == "context":
            assert len(block["elements"]) <= 10
            for element in block["elements"]:
                assert 0 < len(element["text"]) <= 3000
    for node in walk(blocks):
        if node.get("type") == "button":
            assert len(node["text"]["text"]) <= 75
            assert len(node["value"]) <= 2000
            assert len(node["action_id"]) <= 255
    block_ids = [b["block_id"] for b in blocks if "block_id" in b]
    assert len(block_ids) == len(set(block_ids)), "block_ids must be unique in a message"
