"""The embedded knowledge-base agent: reachability, confidence, escalation, determinism."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.agent import KnowledgeBaseAgent, TicketInput, examples, kb
from bot.agent.answer import KNOWN_RECOMMENDATIONS
from bot.agent.articles import load_articles
from bot.agent.examples import HELD_OUT_SPLITS, TUNING_SPLITS, evaluation_set, training_examples
from bot.agent.routing import DEFAULT_TEAM
from bot.core.settings import load_settings
from bot.domain import policy

# The default bands, whatever the environment running the tests says.
BANDS = load_settings(autonomy_threshold=0.8, medium_confidence_threshold=0.6,
                      low_confidence_threshold=0.3, auto_resolve_min_success=0.8)


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
def test_realistic_requests_reach_their_article_confidently(agent, text, article, action):
    answer = ask(agent, text)
    assert answer.source == article
    assert answer.recommended_action == action
    assert answer.confidence >= 0.8


def test_every_shipped_article_is_reachable_by_some_request(agent):
    assert {a.id for a in agent.articles} <= {article for _, article, _ in REQUESTS}


# The issue's complaints, as the bot decides them with the default bands: what a
# self-service article plainly answers is resolved with it, an expense question is not.
@pytest.mark.parametrize(("text", "action", "article"), [
    ("my VPN keeps disconnecting", "AUTO_RESOLVE", "vpn"),
    ("wifi keeps dropping on my laptop", "AUTO_RESOLVE", "wifi"),
    ("a second monitor is not detected", "AUTO_RESOLVE", "monitor_docking"),
    ("my laptop freezes", "AUTO_RESOLVE", "laptop_performance"),
    ("can I expense my home office chair?", "REQUEST_CLARIFICATION", ""),
])
def test_the_issues_requests_are_decided_as_a_person_would(agent, text, action, article):
    answer = ask(agent, text)
    planned = policy.plan(answer, BANDS)
    assert (planned.action_type, answer.source) == (action, article)
    if article:
        assert planned.params["band"] == "high"


# What no article answers, even in IT words: expenses, HR and payroll, travel,
# purchasing, facilities, personal devices, meeting-room bookings. Never acted on alone.
@pytest.mark.parametrize("text", [
    "will I get reimbursed for the usb headset I bought on amazon",
    "can I put my new wifi extender on my expense report",
    "can I buy a keyboard and claim it back",
    "who signs off travel for the it conference in berlin",
    "my payslip shows the wrong overtime",
    "the meeting room on floor 3 is booked twice",
    "please fix my daughter's laptop, it's really slow",
    "what's the process to order a new office chair",
])
def test_out_of_scope_requests_are_never_resolved_alone(agent, text):
    answer = ask(agent, text)
    planned = policy.plan(answer, BANDS)
    assert planned.action_type != "AUTO_RESOLVE"
    assert answer.severity != "critical"


# Round three's traps: an article's own words (print, password, vpn, phone, freezing,
# leaking) about something no article answers: a print shop, a personal account, a policy
# question, the building. Learned as "no article"; none of these is a training phrasing.
@pytest.mark.parametrize("text", [
    "where's the nearest print shop for posters",
    "can reception print and laminate signs for the event",
    "my personal gmail password isn't working",
    "is it ok to use my own vpn for streaming at lunch",
    "can I get a company mobile phone",
    "can you print 200 copies of the handbook for me",
    "order more printer paper for the office",
    "the meeting room is freezing, can the heating go up",
    "there's water leaking from the ceiling by the lifts",
    "what's the wifi going to be like at the offsite venue",
])
def test_out_of_scope_in_an_articles_words_is_never_resolved_alone(agent, text):
    answer = ask(agent, text)
    assert policy.plan(answer, BANDS).action_type != "AUTO_RESOLVE", (answer.source, answer.confidence)
    assert answer.severity != "critical"


# Round four's traps: personal and consumer accounts (a streaming, gaming, banking or
# private mail password reads like a password reset), guest Wi-Fi for a visitor (the
# Wi-Fi article fixes the staff network), a recording to watch (not lost data).
@pytest.mark.parametrize("text", [
    "forgot my netflix password",
    "can't sign in to my disney+ account on my laptop",
    "my roblox account password needs resetting",
    "my personal yahoo email keeps rejecting my password",
    "locked out of my monzo app",
    "can you reset my linkedin password",  # a family member no phrasing names
    "what's the guest wifi code for a visitor tomorrow",
    "my interview candidate needs the visitor internet password",
    "where is the video of the quarterly kickoff",
])
def test_personal_services_and_guests_are_never_resolved_alone(agent, text):
    answer = ask(agent, text)
    assert policy.plan(answer, BANDS).action_type != "AUTO_RESOLVE", (answer.source, answer.confidence)
    assert answer.severity != "critical"


# Mail and apps on a phone asking for a password are the phone article's, not the
# password article's (v3's wrong act, in our words).
@pytest.mark.parametrize("text", [
    "outlook on my iphone keeps asking for my password since I reset it",
    "since I changed my password my android won't sync mail, the desktop is fine",
])
def test_phone_apps_after_a_password_change_are_the_phone_article(agent, text):
    answer = ask(agent, text)
    assert (answer.source, policy.plan(answer, BANDS).action_type) == ("mobile_device", "AUTO_RESOLVE")


def test_word_families_are_features():
    # One feature for a family, so what spotify teaches carries to hulu.
    from bot.agent.classifier import word_features

    assert "concept:personal_service" in word_features("forgot my hulu password")
    assert "concept:handheld" in word_features("mail on my pixel")
    assert not any(f.startswith("concept:") for f in word_features("vpn keeps dropping"))


# What IT must act on, asked as a question, an approval or a situation: routed to the
# article's team, not escalated and not asked about.
@pytest.mark.parametrize(("text", "article"), [
    ("how would I go about getting a licence for a mind-mapping app", "software_access"),
    ("our team wants to use a new whiteboard app, who approves that", "software_access"),
    ("can you put the desktop version of slack on my laptop", "software_access"),
    ("second day here and I still have no laptop to work on", "new_hire_setup"),
    ("the contractor who started yesterday has no login yet", "new_hire_setup"),
    ("the R: drive my colleagues use isn't there for me", "shared_drive_access"),
])
def test_it_must_act_requests_are_routed_to_their_team(agent, text, article):
    answer = ask(agent, text)
    planned = policy.plan(answer, BANDS)
    assert (answer.source, planned.action_type) == (article, "ASSIGN_TO_TEAM"), answer.confidence
    assert planned.params["team"] == next(a.team for a in agent.articles if a.id == article)


@pytest.mark.parametrize(
    "text", ["my computer is weird", "help", "something is wrong", "it doesn't work", "???", "hello?"])
def test_vague_requests_ask_for_clarification(agent, text):
    answer = ask(agent, text)
    assert answer.confidence < 0.3
    assert answer.recommended_action == "request_clarification"
    assert (answer.source, answer.suggested_team) == ("", DEFAULT_TEAM)


@pytest.mark.parametrize(("text", "topics"), [
    ("my VPN disconnects and the printer is jammed", {"vpn", "printer"}),
    ("vpn drops and wifi drops", {"vpn", "wifi"}),
    ("Zoom call echo and monitor flickering", {"meeting_audio_video", "monitor_docking"}),
])
def test_two_topics_name_one_of_them(agent, text, topics):
    answer = ask(agent, text)
    assert answer.source in topics
    assert sum(confidence for article, confidence in agent.rank(text) if article in topics) > 0.9


@pytest.mark.parametrize(("text", "article"), [
    ("my MFA security code never arrives", "mfa"),
    ("add me to the security group for the finance shared drive", "shared_drive_access"),
])
def test_everyday_security_phrases_are_not_incidents(agent, text, article):
    answer = ask(agent, text)
    assert answer.recommended_action != "escalate"
    assert answer.source == article


def test_critical_wins_over_a_matching_article(agent):
    answer = ask(agent, "suspicious email in Outlook asking for my password, phishing?")
    assert answer.recommended_action == "escalate" and answer.severity == "critical"
    assert "'phishing'" in answer.reasoning and answer.suggested_team == "Security"


def test_reasoning_names_the_article_its_probability_and_the_next(agent):
    answer = ask(agent, "VPN keeps disconnecting when I work from home")
    title = "VPN won't connect or keeps disconnecting"
    assert answer.reasoning.startswith(f"KB article '{title}' fits with probability")
    assert "; next '" in answer.reasoning


def test_answer_carries_the_article(agent):
    answer = ask(agent, "printer on 3rd floor is jammed")
    article = next(a for a in agent.articles if a.id == "printer")
    assert (answer.steps, answer.estimated_time, answer.success_probability) == (
        article.steps, article.estimated_time, article.success_probability)
    assert (answer.category, answer.suggested_team) == ("printer", "Desktop Support")


def test_tags_count_as_words(agent):
    assert ask(agent, "it is broken again").recommended_action == "request_clarification"
    assert ask(agent, "it is broken again", tags=("printer", "jam")).source == "printer"


def test_rank_and_suggest_give_every_article_best_first(agent):
    ranked = agent.rank("my printer is jammed")
    assert [a for a, _ in ranked][0] == "printer" and len(ranked) == len(agent.articles)
    assert ranked == sorted(ranked, key=lambda r: (-r[1], r[0]))
    assert 0.9 < sum(c for _, c in ranked) <= 1.000001  # the rest is "no article"
    top = agent.suggest("my printer is jammed")
    assert [(s.article.id, s.confidence) for s in top] == ranked[:3]


def test_the_agent_is_fitted_once_per_set_of_articles():
    articles = load_articles()
    assert KnowledgeBaseAgent(articles)._ranker is KnowledgeBaseAgent(list(articles))._ranker


def test_a_fresh_fit_gives_the_same_answers(agent):
    texts = ["vpn drops and wifi drops", "my laptop got nicked", "it doesn't work", "need a tableau licence"]
    before = [ask(agent, t) for t in texts]
    kb._fit.cache_clear()
    assert [ask(KnowledgeBaseAgent(), t) for t in texts] == before


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


# --- the evaluation set ------------------------------------------------------------

def test_no_evaluation_request_is_trained_on(agent):
    def key(text: str) -> str:
        return " ".join(text.lower().split())

    trained = {key(e) for a in agent.articles for e in a.examples}
    shipped = training_examples()
    trained |= {key(t) for _, t in shipped.critical} | {key(t) for t in shipped.out_of_scope}
    # The tuning splits only: the held-out split is read by the bench alone, once (the
    # bench counts its requests that are training phrasings, and says so).
    labels: dict[str, str] = {}
    for split in TUNING_SPLITS:
        texts = {key(r.text): r.label for r in evaluation_set(split)}
        assert trained & set(texts) == set(), split
        # The splits were written apart; the few requests two writers both wrote ("help",
        # "hello?") must at least be labelled alike.
        for text, label in texts.items():
            assert labels.setdefault(text, label) == label, text


def test_the_evaluation_set_is_big_enough_and_labelled_with_known_articles(agent):
    requests = [r for split in TUNING_SPLITS for r in evaluation_set(split)]
    assert len(requests) >= 400
    ids = {a.id for a in agent.articles}
    for request in requests:
        assert request.is_critical or request.is_out_of_scope or request.article_id in ids
    with pytest.raises(ValueError, match="unknown split"):
        evaluation_set("training")
    with pytest.raises(ValueError, match="unknown split"):
        evaluation_set("held_out")  # round one's held-out part is tuning_r1 now
    with pytest.raises(ValueError, match="unknown split"):
        evaluation_set("held_out_v2")  # round two's is tuning_r2
    with pytest.raises(ValueError, match="unknown split"):
        evaluation_set("held_out_v3")  # round three's is tuning_r3


@pytest.mark.parametrize("split", TUNING_SPLITS)
def test_on_the_tuning_splits_no_autonomous_act_is_wrong_and_every_critical_is_escalated(agent, split):
    # The tuning splits were looked at while tuning; the held-out split is deliberately
    # not asserted here (python -m bench.agent_eval --split held_out_v4 reports it, once).
    for request in evaluation_set(split):
        answer = ask(agent, request.text)
        action = policy.plan(answer, BANDS).action_type
        if request.is_critical:
            assert action == "ESCALATE", request.text
        if action == "AUTO_RESOLVE":
            assert answer.source == request.article_id, request.text


def test_the_bench_runs_the_held_out_split_by_name_and_says_when_it_is_missing(agent, monkeypatch, capsys):
    # The lead adds evaluation_held_out_v4.yaml and runs it once; until then (and in this
    # test, whatever is there) the bench says in one line that the file is not there.
    from bench import agent_eval

    assert HELD_OUT_SPLITS == ("held_out_v4",) and not set(HELD_OUT_SPLITS) & set(TUNING_SPLITS)

    def missing(name: str) -> dict:
        raise FileNotFoundError(name)

    monkeypatch.setattr(examples, "_read", missing)
    assert agent_eval.main(["--split", "held_out_v4", "--no-costs"]) == 2
    error = capsys.readouterr().err
    assert "split held_out_v4: evaluation_held_out_v4.yaml is not in bot/agent/data/ yet" in error
