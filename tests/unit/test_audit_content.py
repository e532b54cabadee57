"""What the audit chain hashes: canonical bytes, free text as a digest, the columns a
rollback fills in later left out; and the anchor post read back. No database."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime

from bot.domain import audit_chain
from bot.domain.audit_chain import ACTIONS, EVENTS
from bot.domain.audit_verify import Problem, Report
from bot.views.audit import anchor_text, parse_anchor, verify_text

AT = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
ROW = {
    "id": uuid.UUID("3f2a9c1e-0000-4000-8000-000000000001"), "ticket_id": 7,
    "action_type": "AUTO_RESOLVE",
    "action_params": {"team": "Network", "band": "high", "steps": ["Restart the VPN client"]},
    "executed_at": AT, "executed_by": "autonomous_agent", "autonomous": True,
    "confidence_score": 0.93, "agent_reasoning": "KB article 'vpn' fits", "rollback_possible": True,
    "rollback_steps": None, "rollback_of": None,
    "before_state": {"status": "new"}, "after_state": {"status": "resolved"},
    "rolled_back": False, "rolled_back_at": None, "rolled_back_by": None, "rollback_reason": "",
}


def _digest(row) -> str:
    return audit_chain.content_digest(ACTIONS, row, audit_chain.text_digest(ACTIONS, row))


def test_canonical_bytes_are_rfc_8785():
    assert audit_chain.canonical({"b": 2, "a": [1.0, "é", None, True]}) == \
        '{"a":[1,"é",null,true],"b":2}'.encode()
    # Past what JSON numbers hold exactly: hashed as the decimal string, not refused.
    assert audit_chain.canonical({"n": 2**60}) == b'{"n":"1152921504606846976"}'


def test_the_hashed_bytes_are_the_documented_format():
    # Written out by hand, so anyone can recompute a digest without our code, and a
    # change of what is hashed cannot slip through: it needs a new CONTENT_VERSION (old
    # entries verified under the old one), not a new expectation here.
    text = '{"agent_reasoning":"KB article \'vpn\' fits","params":{"steps":["Restart the VPN client"]}}'
    text_hash = hashlib.sha256(text.encode()).hexdigest()
    content = (
        '{"row":{"action_params":{"band":"high","team":"Network"},"action_type":"AUTO_RESOLVE",'
        '"after_state":{"status":"resolved"},"autonomous":true,"before_state":{"status":"new"},'
        '"confidence_score":0.93,"executed_at":"2026-11-25T09:00:00+00:00",'
        '"executed_by":"autonomous_agent","id":"3f2a9c1e-0000-4000-8000-000000000001",'
        '"rollback_of":null,"rollback_possible":true,"rollback_steps":null,"ticket_id":7},'
        f'"table":"action_history","text":"{text_hash}","v":1}}'
    )
    assert audit_chain.CONTENT_VERSION == 1
    assert audit_chain.text_digest(ACTIONS, ROW) == text_hash
    assert _digest(ROW) == hashlib.sha256(content.encode()).hexdigest()
    link = '{"content":"' + _digest(ROW) + '","prev":"' + "0" * 64 + '","seq":1}'
    assert audit_chain.entry_hash(1, _digest(ROW), "0" * 64) == hashlib.sha256(link.encode()).hexdigest()
    assert audit_chain.sign(b"k" * 32, "ab" * 32) == hmac.new(b"k" * 32, ("ab" * 32).encode(),
                                                            hashlib.sha256).hexdigest()


def test_the_columns_a_rollback_fills_in_later_are_not_hashed():
    undone = {**ROW, "rolled_back": True, "rolled_back_at": AT, "rolled_back_by": "UADMIN",
              "rollback_reason": "wrong answer"}
    assert _digest(undone) == _digest(ROW)
    assert _digest({**ROW, "executed_by": "UEVIL"}) != _digest(ROW)
    assert _digest({**ROW, "action_params": {**ROW["action_params"], "team": "HR"}}) != _digest(ROW)


def test_free_text_counts_as_its_digest():
    text_hash = audit_chain.text_digest(ACTIONS, ROW)
    blanked = {**ROW, "agent_reasoning": "", "action_params": {"team": "Network", "band": "high"}}
    # Redaction blanks the text; with the recorded digest the content is unchanged.
    assert audit_chain.content_digest(ACTIONS, blanked, text_hash) == _digest(ROW)
    assert audit_chain.text_digest(ACTIONS, blanked) != text_hash
    event = {"id": 4, "occurred_at": AT, "event_type": "rollback_denied", "actor_id": "U1",
             "ticket_id": 7, "action_id": None, "detail": {"ref": "3f2a", "stage": "preview"}}
    assert audit_chain.text_of(EVENTS, event) == {"detail": {"ref": "3f2a"}}


def test_entries_link_and_sign():
    first = audit_chain.entry_hash(1, _digest(ROW), "0" * 64)
    assert audit_chain.entry_hash(2, _digest(ROW), first) != audit_chain.entry_hash(2, _digest(ROW), "0" * 64)
    assert audit_chain.sign(None, first) is None
    signed = audit_chain.sign(b"k" * 32, first)
    assert len(signed) == 64 and signed != audit_chain.sign(b"x" * 32, first)


def test_an_anchor_post_is_read_back_as_it_was_written():
    text = anchor_text(1234, "ab" * 32, "cd" * 32, AT)
    assert parse_anchor(text) == (1234, "ab" * 32)
    assert "2026-11-25 09:00 UTC" in text and "HMAC cdcdcdcd" in text
    assert "unsigned" in anchor_text(1, "ab" * 32, None, AT)
    assert parse_anchor("Audit chain head: entry #12, sha256 not-a-hash") is None


def test_the_verify_report_names_the_first_problem_first():
    ok = Report(entries=3, head=audit_chain.Head(3, "ab" * 32, None))
    assert verify_text(ok, anchors_asked=False).splitlines()[:2] == [
        "OK: every row is as it was chained",
        "audit chain: 3 entries, head #3 abababababababab…, 0 signed (signatures not checked: "
        "AUDIT_SIGNING_KEY is not set), 0 redacted"]
    bad = Report(entries=3)
    bad.add(Problem("changed", "action_history row X (entry #2) was changed."))
    bad.add(Problem("inserted", "audit_events row 9 is not in the chain."))
    lines = verify_text(bad, anchors_asked=True).splitlines()
    assert lines[0] == "FAILED: 2 problems; the first: action_history row X (entry #2) was changed."
    assert "anchors: 0 posted heads read from AUDIT_CHANNEL; none posted yet" in lines[2]
