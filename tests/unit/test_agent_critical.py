"""Critical requests escalate whatever they are worded like, at every confidence."""

from __future__ import annotations

from collections import Counter

import pytest

from bot.agent import CriticalDetector, KnowledgeBaseAgent, TicketInput
from bot.agent.articles import shipped_articles
from bot.agent.critical import KIND_BY_KEY, KINDS, NOT_CRITICAL, equal_priors, find_critical, training_set
from bot.core.settings import load_settings
from bot.domain import policy

BANDS = load_settings(autonomy_threshold=0.8, medium_confidence_threshold=0.6,
                      low_confidence_threshold=0.3, auto_resolve_min_success=0.8)


@pytest.fixture(scope="module")
def detector() -> CriticalDetector:
    return CriticalDetector()


@pytest.fixture(scope="module")
def agent() -> KnowledgeBaseAgent:
    return KnowledgeBaseAgent()


# Paraphrases the classifier must catch on its own, whatever the rules say. None of them
# is a training or evaluation phrasing.
PARAPHRASES = [
    ("I gave my login to a website that turned out not to be ours", "security"),
    ("there's a sign-in from Brazil on my account and I'm in Leeds", "security"),
    ("my outlook sent messages to all my contacts that I never wrote", "security"),
    ("a pop-up took over my screen and says my files are locked until I pay", "security"),
    ("I left my work laptop on the bus this morning", "lost_device"),
    ("someone grabbed my laptop bag at the café", "lost_device"),
    ("the finance folder on the shared drive is suddenly empty", "data_loss"),
    ("I deleted the team's sharepoint folder by accident", "data_loss"),
    ("two years of project documents vanished from onedrive", "data_loss"),
    ("the online shop is not loading for any customer", "outage"),
    ("nobody in the building can get on the network", "outage"),
    ("the whole sales team cannot log in to the crm", "outage"),
    # The families round two widened: prompts nobody asked for and one approved by
    # mistake, a password changed by someone else, a computer or browser acting on its
    # own, mail the person did not write, data sent to the wrong outsider, outages said
    # by who is affected, devices lost in many words.
    ("my phone keeps showing approve sign-in prompts and I'm not even at my computer", "security"),
    ("I pressed accept on an authenticator request that popped up, but I wasn't logging in", "security"),
    ("got an email saying my password was updated a few minutes ago, but I haven't touched it", "security"),
    ("the mouse pointer is clicking on things while I watch", "security"),
    ("edge keeps opening new windows with adverts by itself", "security"),
    ("a colleague asked why I sent her a payment request, I never wrote that", "security"),
    ("I accidentally emailed the payroll export to someone at our supplier", "security"),
    ("forgot my company laptop on the 8:15 train home", "lost_device"),
    ("someone took my bag in the pub, the work phone was in it", "lost_device"),
    ("haven't been able to find my work mobile since the christmas party", "lost_device"),
    ("since 9 nobody in accounts can open the invoicing tool", "outage"),
    ("all customers are seeing errors when they try to pay", "outage"),
]


@pytest.mark.parametrize(("text", "kind"), PARAPHRASES)
def test_paraphrases_without_the_rule_words_are_caught(detector, text, kind):
    # What was learned alone (round three's patterns catch a few of these as well).
    match = detector.learned(text)
    assert match.kind.key == kind
    assert match.probability > 0.5
    assert "reads like the critical examples" in match.reason and KIND_BY_KEY[kind].team in match.reason


@pytest.mark.parametrize(("text", "kind"), PARAPHRASES)
def test_the_agent_escalates_them_whatever_the_band(agent, text, kind):
    answer = agent.analyse(TicketInput(1, text))
    planned = policy.plan(answer, BANDS)
    assert planned.action_type == "ESCALATE" and planned.params["priority"] == "critical"
    assert answer.suggested_team == KIND_BY_KEY[kind].team
    assert answer.source == f"critical:{kind}"


@pytest.mark.parametrize(("text", "kind", "team"), [
    ("my laptop was stolen from my car", "lost_device", "Security"),
    ("I lost my phone with company mail on it", "lost_device", "Security"),
    ("someone else signed in to my account", "security", "Security"),
    ("I clicked a link in a phishing email", "security", "Security"),
    ("I think my laptop has a virus", "security", "Security"),
    ("ransomware note on the file server", "security", "Security"),
    ("customer list leaked on a forum", "security", "Security"),
    ("someone deleted our shared folder", "data_loss", "Infrastructure"),
    ("all my files were deleted and lost", "data_loss", "Infrastructure"),
    ("the customer-facing website is down", "outage", "Infrastructure"),
    ("email is down for everyone", "outage", "Infrastructure"),
    ("major outage in the Berlin office", "outage", "Infrastructure"),
])
def test_the_issues_critical_requests_escalate(agent, text, kind, team):
    answer = agent.analyse(TicketInput(1, text))
    assert answer.recommended_action == "escalate" and answer.severity == "critical"
    assert (answer.source, answer.suggested_team) == (f"critical:{kind}", team)
    assert answer.steps and answer.reasoning.endswith(f"escalated to {team}.")


@pytest.mark.parametrize("text", [
    "ransomware", "phishing?", "is this phishing", "trojan", "stolen", "major outage",
    "burglary", "pickpocketed", "bag snatched", "identity theft", "keylogger", "spoofed email",
])
def test_the_rules_are_a_floor_under_the_classifier(detector, text):
    # Single words carry little for the classifier; the rules still escalate them,
    # and say so.
    match = detector.detect(text)
    assert match is not None and match.words
    assert match.reason.startswith("The request mentions '")


# Round three's patterns: what a fixed phrase cannot say (who is affected, a device lost
# somewhere, data that vanished, an account someone else used). In our own words: none is
# a training or evaluation phrasing.
@pytest.mark.parametrize(("text", "kind"), [
    ("the booking system won't open for anyone in the warehouse", "outage"),
    ("payroll portal is down for everybody in hr since lunch", "outage"),
    ("our customers can't check out on the web shop", "outage"),
    ("the entire support team is locked out of zendesk", "outage"),
    ("nobody on the 3rd floor can print or reach the intranet", "outage"),
    ("lost my company iphone somewhere between the office and home", "lost_device"),
    ("can't find my work laptop anywhere since the team dinner", "lost_device"),
    ("pretty sure I left my macbook on the tram", "lost_device"),
    ("my tablet went missing at the trade show", "lost_device"),
    ("every photo from the site survey has disappeared from the team folder", "data_loss"),
    ("my pst with ten years of mail got wiped when they swapped my pc", "data_loss"),
    ("excel crashed and i lost a whole day of work", "data_loss"),
    ("i think someone has been using my account at night", "security"),
    ("our salary spreadsheet was leaked to a journalist", "security"),
])
def test_the_patterns_catch_what_a_phrase_cannot(detector, agent, text, kind):
    match = detector.detect(text)
    assert match is not None and match.kind.key == kind and match.words
    answer = agent.analyse(TicketInput(1, text))
    assert policy.plan(answer, BANDS).action_type == "ESCALATE" and answer.source == f"critical:{kind}"


# Round four: the kinds held-out v3 missed (prompts the person did not start, a macro
# file that was opened, sessions on devices nobody owns), in our own words. The floor
# escalates them whatever the classifier says, and the reason quotes the words.
@pytest.mark.parametrize("text", [
    "duo keeps sending me push after push, I'm not even trying to log in",
    "I got like 40 okta prompts in ten minutes and I denied them all",
    "my authenticator is being flooded with approval requests",
    "approve requests on my phone that aren't mine, over and over",
    "someone rang pretending to be IT and asked me for the code on my authenticator",
    "a caller wanted my pin to 'verify' my account",
    "my account page shows a login from a laptop I don't recognise",
    "there are sessions from an unknown device on my okta account",
    "opened the invoice attachment, enabled macros, now the laptop is acting weird",
    "black command prompt windows keep flashing up on my pc since this morning",
])
def test_the_floor_catches_round_fours_security_kinds(detector, agent, text):
    match = detector.detect(text)
    assert match is not None and match.kind.key == "security" and match.words
    assert match.reason.startswith("The request mentions '") and "escalated to Security" in match.reason
    answer = agent.analyse(TicketInput(1, text))
    assert policy.plan(answer, BANDS).action_type == "ESCALATE" and answer.source == "critical:security"


# The same kinds as the classifier learned them, without the floor's words.
@pytest.mark.parametrize("text", [
    "all my files now have a weird extension and there's a note asking for bitcoin",
    "there are sign-ins from a country I've never been to on my microsoft account",
    "since opening that spreadsheet from the courier mail, strange processes eat the cpu",
])
def test_the_detector_learned_round_fours_security_kinds(detector, text):
    match = detector.learned(text)
    assert match.kind.key == "security" and match.probability > 0.5


# Traps: everyday requests in the patterns' words, which no rule may escalate.
@pytest.mark.parametrize("text", [
    "I left my laptop at home, can I use webmail today?",
    "my laptop keeps losing the wifi connection",
    "can someone unlock my account please",
    "can't find my laptop's serial number for the asset form",
    "can you install visio for everyone in my team",
    "i can't hear anyone in teams calls",
    "the coffee machine on 2 is leaking all over the floor",
    "how do I delete old files to free some space",
    "where do deleted emails go in outlook",
    "is there a way to share my calendar with the whole team",
    "the new starter for the sales team needs a laptop by monday",
    "nobody in my team can help me set up excel macros",
    # round four's rules: a prompt that fails, a call the person made, macros wanted,
    # a security review, a tool slow for me alone
    "my mfa prompt doesn't show up on my new phone",
    "I called the helpdesk and they gave me a temporary password",
    "i called and asked for a password reset",
    "how do I enable macros in excel for our budget sheet",
    "how long does the security review for a new tool take",
    "the crm is painfully slow on my laptop",
])
def test_the_patterns_leave_everyday_requests_alone(text):
    assert find_critical(text) is None


def test_no_articles_example_matches_a_rule():
    # The articles' own phrasings are everyday by definition: a rule matching one of
    # them would escalate the requests it stands for.
    for article in shipped_articles():
        for example in article.examples:
            assert find_critical(example) is None, (article.id, example)


def test_no_rule_word_is_a_common_name_or_object():
    # "robbed" would stem to "rob": Rob asking about a printer is not a theft.
    for text in ("ask Rob to look at the printer", "my coffee mug is chipped", "Robin needs a licence"):
        assert find_critical(text) is None


def test_critical_and_everyday_phrasings_weigh_the_same_in_total():
    _, labels = training_set(shipped_articles())
    weights = equal_priors(labels)
    total = Counter(labels)
    everyday = weights[NOT_CRITICAL] * total[NOT_CRITICAL]
    kinds = [kind.key for kind in KINDS]
    assert set(weights) == {NOT_CRITICAL, *kinds}
    assert sum(weights[k] * total[k] for k in kinds) == pytest.approx(everyday)
    # Each kind its equal share, however many phrasings it has.
    assert len({round(weights[k] * total[k], 9) for k in kinds}) == 1


def test_the_confidence_of_an_escalation_is_the_probability_it_is_critical(detector, agent):
    text = "I left my work laptop on the bus this morning"
    answer = agent.analyse(TicketInput(1, text))
    assert answer.confidence == detector.detect(text).probability


@pytest.mark.parametrize("text", [
    "my vpn keeps dropping", "I forgot my password", "I lost my password", "printer is out of paper",
    "I need access to the finance shared drive", "my MFA security code never arrives",
    "can someone install visio", "new hire starting monday", "my disk is full",
    "can I expense my home office chair?", "I've only got 3GB left on the c drive",
    "lost connection to the vpn twice today", "my bluetooth headset lost its pairing",
    "the printer ate my document again", "nobody can hear me when I unmute in zoom",
])
def test_everyday_requests_are_not_critical(detector, text):
    assert detector.detect(text) is None


def test_the_detector_runs_on_its_own_and_shares_the_agents_features(agent):
    alone = CriticalDetector()
    for text, _ in PARAPHRASES:
        assert alone.detect(text).kind == agent.critical.detect(text).kind
