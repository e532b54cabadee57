"""The embedded knowledge-base agent: reachability, calibration, escalation, loading."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.agent import KnowledgeBaseAgent, TicketInput
from bot.agent.answer import KNOWN_RECOMMENDATIONS
from bot.agent.articles import KnowledgeBaseError, load_articles
from bot.agent.routing import DEFAULT_TEAM, team_for
from bot.agent.textmatch import stem, stems

KB_DIR = Path(str(resources.files("bot") / "kb"))


@pytest.fixture(scope="module")
def agent() -> KnowledgeBaseAgent:
    return KnowledgeBaseAgent()


def ask(agent: KnowledgeBaseAgent, text: str, **kwargs):
    return agent.analyse(TicketInput(ticket_id=1, description=text, **kwargs))


# (request, expected article, expected action); at least one per article.
REQUESTS = [
    ("I forgot my password and can't log in", "password_reset", "auto_resolve"),
    ("my password expired, how do I change it", "password_reset", "auto_resolve"),
    ("need to reset my pasword", "password_reset", "auto_resolve"),
    ("I'm locked out after too many attempts", "account_lockout", "auto_resolve"),
    ("my account is locked out", "account_lockout", "auto_resolve"),
    ("VPN keeps disconnecting when I work from home", "vpn", "auto_resolve"),
    ("anyconnect won't connect from home", "vpn", "auto_resolve"),
    ("no internet on the office wifi", "wifi", "auto_resolve"),
    ("printer on 3rd floor is jammed", "printer", "auto_resolve"),
    ("the printer says offline and nothing prints", "printer", "auto_resolve"),
    ("Outlook is not receiving emails", "email_outlook", "auto_resolve"),
    ("emails stuck in my outbox", "email_outlook", "auto_resolve"),
    ("not getting the MFA code", "mfa", "auto_resolve"),
    ("I got a new phone and need to move my authenticator", "mfa", "auto_resolve"),
    ("I need Adobe Acrobat Pro installed", "software_access", "assign_to_team"),
    ("can I get a Visio license", "software_access", "assign_to_team"),
    ("my laptop is really slow and freezing", "laptop_performance", "auto_resolve"),
    ("computer keeps freezing, fan is loud", "laptop_performance", "auto_resolve"),
    ("my disk is full, no space left", "disk_full", "auto_resolve"),
    ("C drive full warning", "disk_full", "auto_resolve"),
    ("I need access to the finance shared drive", "shared_drive_access", "assign_to_team"),
    ("access denied on the S: drive", "shared_drive_access", "assign_to_team"),
    ("new hire starting monday needs a laptop and accounts", "new_hire_setup", "assign_to_team"),
    ("onboarding a new employee next week", "new_hire_setup", "assign_to_team"),
    ("my camera doesn't work in zoom", "meeting_audio_video", "auto_resolve"),
    ("second monitor not detected on the docking station", "monitor_docking", "auto_resolve"),
    ("external monitor says no signal", "monitor_docking", "auto_resolve"),
    ("how do I set up work email on my iPhone", "mobile_device", "auto_resolve"),
    ("enroll my android in company portal", "mobile_device", "auto_resolve"),
]


@pytest.mark.parametrize(("text", "article", "action"), REQUESTS)
def test_realistic_requests_reach_their_article(agent, text, article, action):
    answer = ask(agent, text)
    assert answer.source == article
    assert answer.recommended_action == action
    assert answer.recommendation_known


def test_every_shipped_article_is_reachable_by_some_request(agent):
    assert {a.id for a in agent.articles} <= {article for _, article, _ in REQUESTS}


@pytest.mark.parametrize("text", [
    "I forgot my password and can't log in", "VPN keeps disconnecting when I work from home",
    "printer on 3rd floor is jammed"])
def test_clear_single_topic_requests_are_confident(agent, text):
    assert ask(agent, text).confidence >= 0.8


@pytest.mark.parametrize(
    "text", ["my computer is weird", "help", "something is wrong", "it doesn't work", "???"])
def test_vague_requests_ask_for_clarification(agent, text):
    answer = ask(agent, text)
    assert answer.confidence < 0.3
    assert answer.recommended_action == "request_clarification"


@pytest.mark.parametrize("text", [
    "my VPN disconnects and the printer is jammed", "vpn drops and wifi drops",
    "Zoom call echo and monitor flickering"])
def test_two_topics_land_in_the_middle(agent, text):
    answer = ask(agent, text)
    assert 0.3 <= answer.confidence < 0.8
    assert answer.recommended_action == "assign_to_team"  # a person confirms


@pytest.mark.parametrize(("text", "category", "team"), [
    ("I clicked a link in a phishing email", "security", "Security"),
    ("I think my laptop has a virus", "security", "Security"),
    ("my account was hacked", "security", "Security"),
    ("ransomware note on the file server", "security", "Security"),
    ("malware warning popped up", "security", "Security"),
    ("we had a data breach", "security", "Security"),
    ("customer list leaked on a forum", "security", "Security"),
    ("possible security incident on my machine", "security", "Security"),
    ("after the security code prompt I got a security warning", "security", "Security"),
    ("email is down for everyone", "network", "Infrastructure"),
    ("major outage in the Berlin office", "network", "Infrastructure"),
    ("data loss on the project drive", "storage", "Infrastructure"),
    ("all my files were deleted and lost", "storage", "Infrastructure"),
])
def test_critical_words_escalate(agent, text, category, team):
    answer = ask(agent, text)
    assert answer.recommended_action == "escalate"
    assert answer.severity == "critical"
    assert (answer.category, answer.suggested_team) == (category, team)
    assert answer.confidence >= 0.9
    assert answer.steps


def test_critical_wins_over_a_matching_article(agent):
    answer = ask(agent, "suspicious email in Outlook asking for my password, phishing?")
    assert answer.recommended_action == "escalate" and "'phishing'" in answer.reasoning


@pytest.mark.parametrize(("text", "article"), [
    ("my MFA security code never arrives", "mfa"),
    ("add me to the security group for the finance shared drive", "shared_drive_access"),
])
def test_everyday_security_phrases_are_not_incidents(agent, text, article):
    answer = ask(agent, text)
    assert answer.recommended_action != "escalate"
    assert answer.source == article


def test_reasoning_names_the_article_the_words_and_the_margin(agent):
    answer = ask(agent, "VPN keeps disconnecting when I work from home")
    assert "'VPN won't connect or keeps disconnecting'" in answer.reasoning
    assert "'vpn'" in answer.reasoning and "'disconnecting'" in answer.reasoning
    assert "score" in answer.reasoning and "next best" in answer.reasoning


def test_answer_carries_the_article(agent):
    answer = ask(agent, "printer on 3rd floor is jammed")
    article = next(a for a in agent.articles if a.id == "printer")
    assert (answer.steps, answer.estimated_time, answer.success_probability) == (
        article.steps, article.estimated_time, article.success_probability)
    assert (answer.category, answer.suggested_team) == ("printer", "Desktop Support")


def test_tags_count_as_words(agent):
    assert ask(agent, "it is broken again").recommended_action == "request_clarification"
    assert ask(agent, "it is broken again", tags=("printer", "jam")).source == "printer"


def test_nothing_matching_routes_to_the_default_team(agent):
    answer = ask(agent, "hello?")
    assert answer.confidence == 0.0 and answer.source == ""
    assert answer.suggested_team == DEFAULT_TEAM


def test_same_input_gives_the_same_answer(agent):
    text = "vpn drops and wifi drops"
    assert ask(agent, text) == ask(agent, text) == ask(KnowledgeBaseAgent(), text)
    assert ask(agent, text).source == "vpn"  # the tie goes to the smaller article id


def test_records_one_successful_call(agent):
    calls = []
    agent.analyse(TicketInput(1, "printer jammed"), record=lambda **kw: calls.append(kw))
    assert len(calls) == 1
    call = calls[0]
    assert (call["agent"], call["ok"], call["attempts"], call["error"]) == (
        "knowledge_base", True, 1, "")
    assert call["latency_ms"] >= 0


@pytest.mark.parametrize("blank", ["", " ", "\n\t "])
def test_blank_description_is_refused(agent, blank):
    calls = []
    with pytest.raises(ValueError):
        agent.analyse(TicketInput(1, blank), record=lambda **kw: calls.append(kw))
    assert calls == []


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=300))
def test_any_text_gives_a_valid_answer(agent, text):
    if not text.strip():
        with pytest.raises(ValueError):
            ask(agent, text)
        return
    first = ask(agent, text)
    assert 0.0 <= first.confidence <= 1.0
    assert first.recommended_action in KNOWN_RECOMMENDATIONS
    assert first.reasoning
    assert ask(agent, text) == first


# --- the shipped knowledge base and its loader -----------------------------------

def test_shipped_articles_cover_the_common_topics(agent):
    ids = {a.id for a in agent.articles}
    assert len(ids) >= 14
    assert {"password_reset", "account_lockout", "vpn", "wifi", "printer", "email_outlook",
            "mfa", "software_access", "laptop_performance", "disk_full",
            "shared_drive_access", "new_hire_setup"} <= ids
    for article in agent.articles:
        assert 3 <= len(article.steps) <= 8
        assert 0 < article.success_probability <= 1
        assert article.team


def test_articles_that_need_it_to_act_are_not_self_service(agent):
    it_must_act = {a.id for a in agent.articles if not a.self_service}
    assert it_must_act == {"software_access", "shared_drive_access", "new_hire_setup"}


@pytest.fixture()
def kb_copy(tmp_path) -> Path:
    for name in ("vpn.json", "printer.json"):
        shutil.copy(KB_DIR / name, tmp_path / name)
    return tmp_path


def _edit(path: Path, **changes) -> None:
    """Change an article file's fields; None removes the field."""
    data = {**json.loads(path.read_text()), **changes}
    path.write_text(json.dumps({k: v for k, v in data.items() if v is not None}))


def test_an_agent_can_read_another_directory(kb_copy):
    agent = KnowledgeBaseAgent(directory=kb_copy)
    assert [a.id for a in agent.articles] == ["printer", "vpn"]
    assert ask(agent, "paper jam").source == "printer"


def test_broken_json_names_the_file(kb_copy):
    (kb_copy / "zz_broken.json").write_text('{"id": "broken", ')
    with pytest.raises(KnowledgeBaseError, match=r"zz_broken\.json.*JSON"):
        KnowledgeBaseAgent(directory=kb_copy)


@pytest.mark.parametrize(("changes", "message"), [
    ({"steps": None}, "steps"),
    ({"steps": ["one", "two"]}, "steps: expected 3 to 8"),
    ({"category": "toaster"}, "category 'toaster'"),
    ({"success_probability": 1.5}, "success_probability"),
    ({"self_service": "yes"}, "self_service"),
    ({"keywords": ["printer", ""]}, "keywords"),
    ({"keywords": ["printer", "can't"]}, "no meaningful word"),
    ({"title": None}, "title"),
    ({"id": "Printer Jam!"}, "id"),
])
def test_invalid_article_names_the_file_and_field(kb_copy, changes, message):
    _edit(kb_copy / "printer.json", **changes)
    with pytest.raises(KnowledgeBaseError, match="printer.json") as raised:
        load_articles(kb_copy)
    assert message in str(raised.value)


def test_duplicate_ids_are_refused(kb_copy):
    shutil.copy(kb_copy / "vpn.json", kb_copy / "vpn_copy.json")
    with pytest.raises(KnowledgeBaseError, match="vpn_copy.json.*duplicate id 'vpn'"):
        load_articles(kb_copy)


def test_an_empty_directory_is_refused(tmp_path):
    with pytest.raises(KnowledgeBaseError, match="no KB articles"):
        load_articles(tmp_path)


def test_an_article_without_a_team_uses_the_routing_table(kb_copy):
    _edit(kb_copy / "printer.json", team=None)
    [printer] = [a for a in load_articles(kb_copy) if a.id == "printer"]
    assert printer.team == team_for("printer") == "Desktop Support"


def test_routing_table_defaults_unknown_categories():
    assert team_for("vpn") == team_for("VPN ") == "Network"
    assert team_for("toaster") == team_for(None) == DEFAULT_TEAM


@pytest.mark.parametrize(("word", "expected"), [
    ("printers", "printer"), ("batteries", "battery"), ("disconnecting", "disconnect"),
    ("jammed", "jam"), ("virus", "virus"), ("access", "access"), ("switches", "switch"),
])
def test_stemmer(word, expected):
    assert stem(word) == expected


def test_tokens_join_hyphenated_words_and_drop_stop_words():
    words = stems("My Wi-Fi can't connect to the e-mail server")
    assert words == ("wifi", "connect", "email", "server")
