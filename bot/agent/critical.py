"""Words that mean a human must look now: security incidents, outages, data loss.

Checked before any article is ranked: a request that says "phishing" is escalated
even if it also mentions Outlook. The signals are few and explicit, so an escalation
can always name the word that caused it.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.agent.textmatch import Term, contains_phrase, stems


@dataclass(frozen=True)
class CriticalKind:
    """One kind of critical ticket and who handles it."""

    name: str
    category: str
    team: str
    phrases: tuple[tuple[str, ...], ...]
    steps: tuple[str, ...]


def _phrases(*texts: str) -> tuple[tuple[str, ...], ...]:
    return tuple(stems(text) for text in texts)


# In priority order: when a request has signals of two kinds, the first kind wins.
KINDS: tuple[CriticalKind, ...] = (
    CriticalKind(
        name="security incident",
        category="security",
        team="Security",
        phrases=_phrases(
            "security", "hacked", "hacker", "phishing", "phish", "ransomware", "malware",
            "virus", "trojan", "spyware", "breach", "breached", "compromised", "leaked",
            "leak", "suspicious email", "suspicious link", "suspicious login",
            "suspicious sign in",
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
        name="data loss",
        category="storage",
        team="Infrastructure",
        phrases=_phrases(
            "data loss", "lost data", "lost files", "files lost", "deleted files",
            "files deleted", "files disappeared", "files gone", "lost all my work",
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
        name="outage",
        category="network",
        team="Infrastructure",
        phrases=_phrases(
            "outage", "down for everyone", "down for everybody", "everyone is down",
            "whole office", "entire office", "whole company", "entire company",
            "whole team can't", "server is down", "system is down", "network is down",
        ),
        steps=(
            "Check the IT status page or the incidents channel: the outage may already be known.",
            "Note what is down, since when, and who is affected (your team, floor, office).",
            "Use the documented fallback for the service (webmail, phone bridge) "
            "until it is restored.",
        ),
    ),
)

# "security" on its own is a security signal, but not in these everyday phrases:
# an MFA "security code" or a "security group" for a shared drive is no incident.
_BENIGN_AFTER_SECURITY = frozenset(
    stems("code codes key keys question questions group groups info settings updates")
)


@dataclass(frozen=True)
class CriticalMatch:
    """The critical kind found in a request and the words that triggered it."""

    kind: CriticalKind
    words: tuple[str, ...]


def find_critical(terms: list[Term]) -> CriticalMatch | None:
    """The first critical kind whose signal occurs in the request.

    Args:
        terms: the request's terms (see `textmatch.terms`).

    Returns:
        The match, or None when the request carries no critical signal.
    """
    sequence = tuple(t.stem for t in terms)
    for kind in KINDS:
        words: list[str] = []
        for phrase in kind.phrases:
            if not contains_phrase(sequence, phrase) or _benign(sequence, phrase):
                continue
            words.append(" ".join(_surface(terms, phrase)))
        if words:
            return CriticalMatch(kind=kind, words=tuple(dict.fromkeys(words)))
    return None


def _benign(sequence: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    if phrase != ("security",):
        return False
    positions = [i for i, stem in enumerate(sequence) if stem == "security"]
    return all(
        i + 1 < len(sequence) and sequence[i + 1] in _BENIGN_AFTER_SECURITY for i in positions
    )


def _surface(terms: list[Term], phrase: tuple[str, ...]) -> list[str]:
    sequence = [t.stem for t in terms]
    width = len(phrase)
    for i in range(len(sequence) - width + 1):
        if tuple(sequence[i : i + width]) == phrase:
            return [t.surface for t in terms[i : i + width]]
    return list(phrase)
