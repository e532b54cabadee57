"""Requests a person must see now, however they are worded: the critical detector.

Four kinds: security incidents (a phishing link clicked, credentials typed into a fake
page, an account used by someone else, malware or ransomware), lost or stolen devices,
deleted or lost data, and outages that stop many people or customers.

Two signals, either one enough:

- a classifier learned from labelled examples (bot/agent/data/training.yaml) against
  the articles' own examples and the out-of-scope ones, so "my laptop got nicked from
  my bag" is caught without the word "stolen";
- word rules, the floor under what is learned: a request that says "ransomware" or
  "phishing" is escalated whatever the classifier thinks.

`CriticalDetector.detect()` runs on its own (the LLM agent calls it before its model),
and every match says in words why it was raised.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from scipy.sparse import csr_matrix

from bot.agent.articles import Article, shipped_articles
from bot.agent.classifier import TextClassifier, TextFeatures
from bot.agent.examples import training_examples
from bot.agent.textmatch import Term, contains_phrase, normalise, stems, terms

NOT_CRITICAL = "(not critical)"


@dataclass(frozen=True)
class CriticalKind:
    """One kind of critical ticket and who handles it."""

    key: str  # the label in bot/agent/data/training.yaml
    name: str
    category: str
    team: str
    phrases: tuple[tuple[str, ...], ...]
    steps: tuple[str, ...]
    # Word patterns a single phrase cannot say (see `Pattern`).
    patterns: tuple[Pattern, ...] = ()


def _phrases(*texts: str) -> tuple[tuple[str, ...], ...]:
    return tuple(stems(text) for text in texts)


@dataclass(frozen=True)
class Pattern:
    """A rule in words that a fixed phrase cannot say: each regex must match somewhere.

    The regexes run on the normalised text (`textmatch.normalise`: lowercase words, single
    spaces, apostrophes dropped: "can't" is "cant"), stop words kept, because here they
    carry the meaning: "for anyone in finance", "lost my laptop", "someone else signed in
    to my account". The reason quotes what each regex matched.
    """

    needs: tuple[re.Pattern[str], ...]

    def find(self, normalised: str) -> tuple[str, ...]:
        """Each regex's matched words, or nothing unless every regex matches."""
        found = [regex.search(normalised) for regex in self.needs]
        return tuple(match.group(0) for match in found if match) if all(found) else ()


def _words(*alternatives: str) -> str:
    return "(?:" + "|".join(alternatives) + ")"


def _near(first: str, second: str, *, within: int) -> re.Pattern[str]:
    """`first` and `second` (whole words) at most `within` words apart, in either order."""
    gap = rf"(?: \w+){{0,{within}}} "
    return re.compile(rf"\b{first}\b{gap}{second}\b|\b{second}\b{gap}{first}\b")


def _pattern(*regexes: str | re.Pattern[str]) -> Pattern:
    return Pattern(tuple(r if isinstance(r, re.Pattern) else re.compile(r) for r in regexes))


_DEVICE = _words(
    "laptops?", "notebook", "macbook(?: pro| air)?", "thinkpad", "surface", "computer", "pc",
    "(?:mobile |smart ?|cell ?|work |company |iphone|android)?phones?", "iphone", "mobile", "ipad",
    "tablet", "yubikey", "security key", "hardware token", "work device", "device",
)
# What follows a device when it is a part or a detail, not the device: "my phone charger".
_NOT_A_PART = (
    r"(?! (?:charger|cable|case|cover|adapter|dongle|stand|sleeve|settings?|number|password|pin|"
    r"model|serial|screen protector|signal|battery|charging)\b)"
)
_OWNER = _words("my", "our", "the", "a", "his", "her", "their", "this")
_QUALIFIER = _words("work", "company", "corporate", "office", "business", "new", "spare", "loaner", "team")
# Public places and transport: a device left there is lost; one left at home is not.
_AWAY = _words(
    "train", "bus", "tube", "tram", "taxi", "cab", "uber", "lyft", "plane", "flight", "airport",
    "station", "hotel", "restaurant", "pub", "bar", "cafe", "caf", "coffee shop", "gym",
    "conference", "venue", "event", "client site", "customer site", "park", "street", "metro",
    "subway", "ferry", "coach", "car park", "parking lot", "lounge",
)
# What a person loses when data is lost (a file, a mail archive, a project folder ...).
_DATA = _words(
    "files?", "folders?", "subfolders?", "documents?", "docs", "archives?", "pst", "emails", "mails",
    "e ?mails", "messages", "inbox", "data", "spreadsheets?", "workbooks?", "photos?", "pictures?", "images",
    "presentations?", "projects?", "records", "database", "contacts", "calendar", "notes",
    "notebooks?", "recordings", "drafts", "library", "sharepoint site", "channel",
)
_GONE = _words(
    "vanished", "disappeared", "wiped", "wiped out", "deleted", "erased", "overwritten", "gone",
    "lost", "purged", "got removed", "were removed", "was removed", "has been removed",
    "have been removed", "all missing", "went missing", "gone missing", "are missing", "is missing",
    "corrupted", "corrupt", "unreadable", "gibberish", "garbled",
)
_FAILING = _words(
    "down", "not working", "isnt working", "arent working", "stopped working", "wont", "cant",
    "cannot", "can not", "unable", "not able", "fails?", "failing", "failed", "errors?", "broken",
    "not loading", "wont load", "offline", "unreachable", "crashed", "crashing", "dead", "timing out",
    "times out", "no access", "locked out", "getting kicked", "kicked out", "not responding", "outage",
    "went down", "gone down", "is out", "are out", "stuck", "frozen", "disconnected", "dropping",
    "issues?", "problems?", "trouble", "slow", "crawling", "sluggish", "unusable", "grinding",
    "takes? (?:forever|ages|minutes)", "taking (?:forever|ages|minutes)",
    "no (?:internet|wifi|network|connection|signal|email|mail|phones?|power|access|vpn)",
    "lost (?:the )?(?:internet|wifi|network|connection|access|vpn)",
    # "nobody on the 3rd floor can print": nobody able to is itself the failure.
    # Doing what a working system allows, not "nobody in my team can help me".
    "(?:nobody|no one|noone|none of us)(?: \\w+){0,5} (?:can|could|is able to|are able to) "
    "(?:log|get|access|connect|open|print|reach|load|sign|work|send|receive|use|see|join|call|save|"
    "scan|pay|check|book|order|ship|upload|download)",
)
_GROUP = _words(
    "team", "department", "dept", "office", "floor", "company", "building", "site", "org",
    "organisation", "organization", "branch", "division", "region", "shop", "store", "warehouse",
    "call centre", "call center", "finance", "accounts", "sales", "support", "hr", "marketing",
    "engineering", "legal", "payroll", "operations", "ops", "it", "reception", "lab", "clinic",
)
# What sends a sign-in prompt.
_MFA = _words(
    "mfa", "2fa", "two factor", "2 factor", "multi factor", "duo", "okta", "okta verify", "authenticator",
    "push(?:es)?", "sign ?in (?:prompts?|requests?|approvals?|notifications?)",
    "login (?:prompts?|requests?|approvals?|notifications?)", "approval requests?", "verification codes?",
    "approve (?:prompts?|requests?)",
)
# Who is affected: more than the person writing.
_MANY = _words(
    "for (?:anyone|anybody|everyone|everybody|all of us|all users|all staff|the whole \\w+|the entire \\w+)",
    f"(?:nobody|no one|noone|none of us) (?:in|on|at|from|across) (?:the |my |our )?(?:\\w+ )?{_GROUP}",
    "(?:nobody|no one|noone) (?:here |else )?(?:can|is able to|could) (?:log|get|access|connect|open|"
    "print|reach|load|sign|work|send|use)",
    f"(?:everyone|everybody|anyone|anybody) (?:in|on|at|across|from) (?:the |my |our )?(?:\\w+ )?{_GROUP}",
    f"(?:the )?(?:whole|entire) (?:\\w+ )?{_GROUP}",
    "all (?:of )?(?:our |the )?(?:customers|clients|users|staff|employees|colleagues|stores|shops|"
    "branches|sites|offices|agents)",
    "(?:our |the |external )?(?:customers|clients|shoppers|patients|members) "
    "(?:(?:are |keep |have been )?(?:complaining|saying|reporting|telling us|calling)(?: that)?(?: they)? )?"
    "(?:cant|cannot|can not|"
    "are unable|are not able|arent able|are getting|are seeing|get|see|report|keep getting)",
    "(?:multiple|several|many|lots of|loads of|dozens of|hundreds of) (?:people|users|colleagues|"
    "teams|customers|clients|offices|sites|of us)",
    "half (?:the|of the|of) (?:office|team|floor|company|building|department)",
    "across the (?:company|office|building|org|organisation|organization|business)",
)


# In priority order: when a request has rule words of two kinds, the first kind wins.
KINDS: tuple[CriticalKind, ...] = (
    CriticalKind(
        key="security",
        name="security incident",
        category="security",
        team="Security",
        phrases=_phrases(
            "security", "hacked", "hacker", "phishing", "phish", "ransomware", "malware",
            "virus", "trojan", "spyware", "breach", "breached", "compromised",
            "data leak", "suspicious email", "suspicious link", "suspicious login",
            "suspicious sign in", "ransom", "scam", "fake login", "fake page", "fake site",
            "fake website", "fake email", "keylogger", "spoofed", "spoofing", "impersonating",
            "impersonation", "smishing", "vishing", "identity theft",
        ),
        patterns=(
            # A leak of data, not of a coffee machine or a roof.
            _pattern(_near(
                _words("leak", "leaks", "leaked", "leaking"),
                _words(_DATA, "passwords?", "credentials", "customers?", "list", "information", "info",
                       "details", "personal", "salary", "salaries", "payroll", "source code", "secrets?",
                       "keys?", "tokens?"),
                within=4,
            )),
            # Sign-in prompts or codes the person did not start: "approve prompts and I'm
            # not even at my computer", "a code I never asked for".
            _pattern(_near(
                _words("prompts?", "push(?:es)?", "notifications?", "approvals?", "requests?", "codes?",
                       "texts?", "sms", "sign ?in", "log ?in", "login"),
                _words("not me", "wasnt me", "arent me", "isnt me", "werent me", "not mine", "arent mine",
                       "isnt mine", "werent mine", "not from me",
                       "not by me", "didnt (?:request|ask for|start|trigger|initiate|make)",
                       "did not (?:request|ask for|start|trigger|initiate|make)",
                       "never (?:requested|asked for|started|triggered|made)",
                       "(?:im|i am|i was|i wasnt|i was not) not even "
                       "(?:at|on|using|logged|logging|signing|trying)",
                       "i wasnt (?:logging|signing|trying)", "i was not (?:logging|signing|trying)",
                       "not even (?:at|on) my (?:computer|laptop|desk|pc)"),
                within=8,
            )),
            # Push fatigue: sign-in prompts in numbers or floods ("20 duo pushes in an hour",
            # "okta verify keeps bombarding me"); one prompt that fails is everyday (mfa).
            _pattern(
                rf"\b{_MFA}\b",
                r"\b(?:(?:\d{2,}|dozens?|dozen|loads|tons|lots|hundreds|tens|twenty|thirty|fifty) (?:of )?"
                r"(?:\w+ ){0,2}(?:prompts?|push(?:es)?|requests?|notifications?|approvals?|codes?|texts?|"
                r"alerts?)|"
                r"flood(?:ed|ing|s)?|spam(?:med|ming|s)?|bombard(?:ed|ing|s)?|barrage|non ?stop|"
                r"endless|nonstop)\b",
            ),
            # Someone on the phone asking for a code or a password (vishing): "a guy rang
            # saying he was IT and wanted the code from my app".
            _pattern(
                r"(?<!\bi )\b(?:called|phoned|rang|ringing|calling|texted|whatsapped)\b|"
                r"\b(?:caller|on the phone|a call|phone call)\b",
                r"\b(?:(?:ask|asks|asked|asking|wanted|wants) (?:me )?"
                r"(?:for |to (?:read|give|share|send|tell|confirm)(?: \w+){0,2} )?|"
                r"(?:gave|give|read out|read|shared|sent|told) "
                r"(?:him|her|them|the caller|the guy|the man|the woman|it) )(?:my|the|their|his|her) "
                r"(?:\w+ )?(?:codes?|passwords?|otp|pin|passcode)\b",
            ),
            # Sessions or sign-ins from devices or places the person does not know.
            _pattern(_near(
                _words("sessions?", "sign ?ins?", "signed in", "logins?", "log ?ins?", "logged in",
                       "login attempts?", "activity", "connected"),
                _words(r"(?:devices?|computers?|laptops?|phones?|locations?|countries|country|places?|"
                       r"ips?|ip address(?:es)?|browsers?|machines?) (?:that )?(?:i|we) "
                       r"(?:dont|do not|didnt|did not|never|cant|cannot) (?:own|recognise|recognize|know|"
                       r"use|have|visited|been to|identify)",
                       r"(?:unknown|unrecognised|unrecognized|unfamiliar|strange|foreign|random) "
                       r"(?:\w+ )?(?:devices?|computers?|laptops?|phones?|locations?|countries|country|"
                       r"places?|ips?|ip address(?:es)?|browsers?|machines?)"),
                within=8,
            )),
            # Macros or content enabled in a file that came by mail or download.
            _pattern(
                r"\b(?:enabled|clicked enable|allowed|turned on|said yes to|accepted) (?:the )?"
                r"(?:macros?|content|editing and content)\b",
                r"\b(?:attachment|attached|email|e mail|mail|downloaded|download|xlsm|docm|xlsb|invoice|"
                r"sender|link)\b",
            ),
            # Command windows flashing up by themselves.
            _pattern(
                r"\b(?:cmd|command prompt|command line|powershell|terminal) (?:\w+ ){0,2}"
                r"(?:windows?|boxes|box|screens?)? ?(?:\w+ ){0,2}"
                r"(?:flash(?:es|ing)?|flicker(?:s|ing)?|pop(?:s|ping)? up|keep opening|keeps opening|"
                r"opening and closing|appear(?:s|ing)?)\b",
            ),
            # A password changed by someone else: "my password was reset but I didn't do it".
            _pattern(
                r"\bpassword (?:\w+ ){0,2}(?:was|has been|got|had been|been) (?:\w+ )?"
                r"(?:changed|updated|reset)\b",
                r"\b(?:i didnt|i did not|i havent|i have not|i never|not me|wasnt me|havent touched|"
                r"did not touch|didnt touch|nobody asked|without me)\b",
            ),
            # An account used by someone else.
            _pattern(
                r"\b(?:someone|somebody|a stranger|an unknown person|another person|a hacker) (?:else )?"
                r"(?:has |had |is |was |must have |might have |may have )?(?:been )?"
                r"(?:using|used|logged into|logging into|logged in to|logging in to|logged in on|"
                r"signed into|signing into|signed in to|signing in to|signed in on|accessed|accessing|"
                r"got into|getting into|broke into|breaking into|took over|taken over|in) "
                r"(?:to )?(?:my|our)\b"
            ),
        ),
        steps=(
            "Do not click links, open attachments or enter your password anywhere "
            "until Security answers.",
            "If you think your device is infected, disconnect it from the network "
            "(Wi-Fi off, cable out) but leave it switched on.",
            "If you typed your password into a suspicious page, change it now from another device.",
            "Do not delete the suspicious email or file: Security needs it to investigate.",
        ),
    ),
    CriticalKind(
        key="lost_device",
        name="lost or stolen device",
        category="security",
        team="Security",
        phrases=_phrases(
            "stolen", "stole", "theft", "robbery", "burgled", "burglary", "pickpocketed",
            "pickpocket", "snatched",
        ),
        patterns=(
            # "lost my work phone", not "lost my phone charger".
            _pattern(
                rf"\b(?:lost|misplaced|mislaid) (?:{_OWNER} )?(?:{_QUALIFIER} )?{_DEVICE}\b{_NOT_A_PART}"
            ),
            _pattern(
                rf"\b(?:cant|cannot|can not|couldnt|could not|unable to|not able to) (?:find|locate) "
                rf"{_OWNER} (?:{_QUALIFIER} )?{_DEVICE}\b{_NOT_A_PART}"
            ),
            _pattern(rf"\b{_DEVICE} (?:is |was |has |has been |got |went |seems )?(?:missing|gone missing|"
                     rf"disappeared|vanished|nowhere to be found)\b(?! (?:a|an|the|some|its|my|drivers?|"
                     rf"updates?|apps?|files?|keys?|from the list)\b)"),
            _pattern(rf"\bleft {_OWNER} (?:{_QUALIFIER} )?{_DEVICE} (?:\w+ ){{0,3}}(?:on|in|at|behind) "
                     rf"(?:the |a |an |my )?{_AWAY}\b"),
            _pattern(r"\blast seen\b", rf"\b{_DEVICE}\b"),
        ),
        steps=(
            "Tell us when and where you last had the device, and whether it was locked.",
            "Security can lock and wipe it remotely; do not wait to see if it turns up.",
            "Change your password from another device, and tell us if anything on it "
            "was unencrypted or written down.",
            "If it was stolen, report it to the police and keep the reference number.",
        ),
    ),
    CriticalKind(
        key="data_loss",
        name="data loss",
        category="storage",
        team="Infrastructure",
        phrases=_phrases(
            "data loss", "lost data", "lost files", "files lost", "deleted files",
            "files deleted", "files disappeared", "files gone", "lost all my work",
            "folder deleted", "deleted folder",
        ),
        patterns=(
            # The data first, then what happened to it: "all my photos have vanished".
            _pattern(rf"\b{_DATA}\b(?: \w+){{0,6}} {_GONE}\b"),
            # Someone did it to the data: "I accidentally deleted the team folder", not
            # "where do deleted emails go".
            # Someone else did it: "someone wiped the team folder".
            _pattern(rf"\b(?:someone|somebody|they|it|has|have|had|must have|may have|might have) "
                     rf"(?:\w+ )?(?:deleted|wiped|erased|overwrote|removed|lost|purged)"
                     rf"(?: \w+){{0,4}} {_DATA}\b"),
            # The person did it by mistake, or wants it back: not "I deleted old files to
            # free some space".
            _pattern(rf"\bi (?:\w+ )?(?:deleted|wiped|erased|overwrote|removed|lost|purged)(?: \w+){{0,4}} "
                     rf"{_DATA}\b",
                     r"\b(?:accident|accidentally|mistake|mistakenly|wrongly|oops|by error|"
                     r"get (?:it|them) back|recover|restore|undo|undelete)"),
            _pattern(r"\blost (?:(?:all|most|half|hours?|days?|weeks?|a|an|whole|entire|full|morning|"
                     r"afternoon|evening|of|my|our|the|\d+) ){0,5}(?:work|changes|edits)\b"),
        ),
        steps=(
            "Stop working in the affected folder or drive, so nothing overwrites what "
            "can still be recovered.",
            "Check the Recycle Bin / Trash and OneDrive's or SharePoint's own recycle bin first.",
            "Note the exact path, the file names and when you last saw them; "
            "Infrastructure restores from backups by time.",
        ),
    ),
    CriticalKind(
        key="outage",
        name="outage",
        category="network",
        team="Infrastructure",
        phrases=_phrases(
            "outage", "down for everyone", "down for everybody", "everyone is down",
            "server is down", "system is down", "network is down",
            "website is down", "site is down",
        ),
        patterns=(
            # Who is affected, and that something fails: "SAP won't load for anyone in finance".
            _pattern(rf"\b{_MANY}\b", rf"\b{_FAILING}\b"),
        ),
        steps=(
            "Check the IT status page or the incidents channel: the outage may already be known.",
            "Note what is down, since when, and who is affected (your team, floor, office).",
            "Use the documented fallback for the service (webmail, phone bridge) "
            "until it is restored.",
        ),
    ),
)
KIND_BY_KEY = {kind.key: kind for kind in KINDS}

# "security" on its own is a security signal, but not in these everyday phrases:
# an MFA "security code" or a "security group" for a shared drive is no incident.
_BENIGN_AFTER_SECURITY = frozenset(
    stems("code codes key keys question questions group groups info settings updates review reviews "
          "training awareness questionnaire policy policies team approval check patch patches")
)


@dataclass(frozen=True)
class CriticalMatch:
    """A critical request: its kind, and what raised it."""

    kind: CriticalKind
    # The rule words found in the request (empty when only the classifier spoke).
    words: tuple[str, ...] = ()
    # The classifier's probability that the request is critical (None: rules only).
    probability: float | None = None

    @property
    def reason(self) -> str:
        """Why it was raised, in words a person reads in the "Why?"."""
        kind = self.kind
        if self.words:
            said = ", ".join(f"'{w}'" for w in self.words)
            why = f"The request mentions {said}"
        else:
            why = "The request reads like the critical examples the agent learned"
        odds = "" if self.probability is None else f" (probability critical {self.probability:.2f})"
        return f"{why}{odds}: a possible {kind.name}, escalated to {kind.team}."


def find_critical(text: str) -> CriticalMatch | None:
    """The word rules alone: the first kind whose phrases or patterns occur in the request.

    Args:
        text: the request as written.

    Returns:
        The match (without a probability), or None when no rule matches.
    """
    words = terms(text)
    normalised = normalise(text)
    sequence = tuple(t.stem for t in words)
    for kind in KINDS:
        found: list[str] = []
        for phrase in kind.phrases:
            if not contains_phrase(sequence, phrase) or _benign(sequence, phrase):
                continue
            found.append(" ".join(_surface(words, phrase)))
        for pattern in kind.patterns:
            found.extend(pattern.find(normalised))
        if found:
            return CriticalMatch(kind=kind, words=tuple(dict.fromkeys(found)))
    return None


class CriticalDetector:
    """Learned from labelled examples, with the word rules as a floor."""

    def __init__(
        self, articles: Sequence[Article] | None = None, *, features: TextFeatures | None = None
    ) -> None:
        """Fit the classifier: critical kinds against everything that is not critical.

        Args:
            articles: whose examples are the everyday requests; default the shipped ones.
            features: fitted features to share with another classifier (the knowledge
                base's); by default the detector fits its own, once per process.
        """
        articles = tuple(articles) if articles is not None else shipped_articles()
        self._classifier = _fit(articles) if features is None else _train(articles, features)

    def detect(self, text: str, *, row: csr_matrix | None = None) -> CriticalMatch | None:
        """Whether a request is critical, and which kind.

        Args:
            text: the request as the person wrote it.
            row: the text already turned into the shared features, if it was.

        Returns:
            The match, or None for an everyday request.
        """
        learned = self.learned(text, row=row)
        ruled = find_critical(text)
        if ruled is not None:
            return CriticalMatch(kind=ruled.kind, words=ruled.words, probability=learned.probability)
        # More likely critical than not: the plain Bayes decision, not a tuned cut-off.
        assert learned.probability is not None
        return learned if learned.probability > 0.5 else None

    def learned(self, text: str, *, row: csr_matrix | None = None) -> CriticalMatch:
        """What the classifier alone says: the likeliest kind and the probability of any.

        Args:
            text: the request as the person wrote it.
            row: the text already turned into the shared features, if it was.

        Returns:
            The likeliest critical kind with the probability that the request is
            critical at all (whether or not it is above one half).
        """
        ranked = self._classifier.rank(text) if row is None else self._classifier.rank_features(row)
        probability = round(sum(r.probability for r in ranked if r.label != NOT_CRITICAL), 6)
        likeliest = next(r.label for r in ranked if r.label != NOT_CRITICAL)
        return CriticalMatch(kind=KIND_BY_KEY[likeliest], probability=probability)


def training_set(articles: Sequence[Article]) -> tuple[list[str], list[str]]:
    """The detector's phrasings and labels: each critical kind, and everything else.

    Everyday requests are the articles' examples, the shipped articles' too even when
    KB_SHIPPED=false leaves them out of the answers: a company's three articles alone
    would teach the detector too little of what a calm request looks like.
    """
    shipped = training_examples()
    texts = [text for _, text in shipped.critical]
    labels = [kind for kind, _ in shipped.critical]
    library = {a.id: a for a in shipped_articles()} | {a.id: a for a in articles}
    everyday = [e for article in library.values() for e in article.examples] + list(shipped.out_of_scope)
    return [*texts, *everyday], [*labels, *[NOT_CRITICAL] * len(everyday)]


@lru_cache(maxsize=4)
def _fit(articles: tuple[Article, ...]) -> TextClassifier:
    # Cached by the articles themselves, so every detector of a process shares one fit.
    texts, _ = training_set(articles)
    return _train(articles, TextFeatures(texts))


def _train(articles: tuple[Article, ...], features: TextFeatures) -> TextClassifier:
    texts, labels = training_set(articles)
    return TextClassifier(features, texts, labels, class_weight=equal_priors(labels))


def equal_priors(labels: Sequence[str]) -> dict[str, float]:
    """Weights under which critical and everyday requests count the same in total.

    How many phrasings the data files hold on each side is an accident of writing them
    (everyday ones are every article's examples, over three times the critical ones);
    unweighted, that count would act as a prior and win every doubtful request for
    "not critical". Weighted, half the weight is everyday and half critical, split
    evenly between the kinds, so `detect`'s "more likely critical than not" weighs the
    request's words alone.

    Args:
        labels: the detector's label per phrasing (NOT_CRITICAL or a kind's key).

    Returns:
        A weight per label: the phrasings of each side add up to half the total.
    """
    counts = Counter(labels)
    kinds = [label for label in counts if label != NOT_CRITICAL]
    total = len(labels)
    weights = {kind: total / (2 * len(kinds) * counts[kind]) for kind in kinds}
    weights[NOT_CRITICAL] = total / (2 * counts[NOT_CRITICAL])
    return weights


def _benign(sequence: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    if phrase != ("security",):
        return False
    positions = [i for i, stem in enumerate(sequence) if stem == "security"]
    return all(
        i + 1 < len(sequence) and sequence[i + 1] in _BENIGN_AFTER_SECURITY for i in positions
    )


def _surface(words: list[Term], phrase: tuple[str, ...]) -> list[str]:
    sequence = [t.stem for t in words]
    width = len(phrase)
    for i in range(len(sequence) - width + 1):
        if tuple(sequence[i : i + width]) == phrase:
            return [t.surface for t in words[i : i + width]]
    return list(phrase)
