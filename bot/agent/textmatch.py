"""Tokenising and stemming shared by the classifier's word features and the critical rules.

Examples, rules and people's requests go through the same `terms()`, so whatever the
crude stemmer does to a word it does on both sides: "disconnecting", "disconnected" and
"disconnects" all meet "disconnect".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Words that say nothing about which IT problem it is. Kept out of both sides, so a
# phrase such as "can't log in" still matches "I cant log in" (both become "log").
STOP_WORDS = frozenset(
    """
    a about after again all also am an and any are as at be because been before being
    but by can cannot cant could did didnt do does doesnt doing dont for from get gets
    getting got had has have having he hello help her hi him his how i if im in into is
    isnt it its ive just keep keeps kept may me might must my myself need needs no not
    now of on or our out please really she should so some something still than thank
    thanks that the their them then there these they this those thx to today too try
    trying up us very was wasnt we were what when where which while who why will with
    wont would yes yet you your
    """.split()
)

# Negations say what did *not* happen ("emails I didn't send", "a prompt I did not
# request", "wasn't me"): the rules drop them with the other stop words, but the
# classifier keeps them as features (see `terms(keep_negations=True)`).
NEGATIONS = frozenset("cannot cant didnt doesnt dont isnt no not wasnt wont".split())

_APOSTROPHES = re.compile(r"['’`]")
# Hyphens inside words join them: "wi-fi" -> "wifi", "e-mail" -> "email".
_INNER_HYPHEN = re.compile(r"(?<=[a-z0-9])-(?=[a-z0-9])")
_WORD = re.compile(r"[a-z0-9]+")
_UNDOUBLE = re.compile(r"([b-df-hj-kmnp-rt-y])\1$")  # jamm -> jam, but keep "ll"/"ss"/"zz"


@dataclass(frozen=True)
class Term:
    """One meaningful word: its stem (for matching) and how it was written (for people)."""

    stem: str
    surface: str


def stem(word: str) -> str:
    """A deliberately small stemmer: plurals, -ing, -ed and a final -e.

    Args:
        word: one lowercase word.

    Returns:
        The stem; words of three letters or fewer, and numbers, are kept as they are.
    """
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith(("ss", "us", "is")):
        pass
    elif word.endswith(("ches", "shes", "xes", "zes")):
        word = word[:-2]
    elif word.endswith("s"):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = _UNDOUBLE.sub(r"\1", word[: -len(suffix)])
            break
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]
    return word


def normalise(text: str) -> str:
    """Lowercase words separated by single spaces: apostrophes dropped, hyphens joined.

    Args:
        text: any text.

    Returns:
        "My Wi-Fi can't connect!" becomes "my wifi cant connect".
    """
    lowered = _INNER_HYPHEN.sub("", _APOSTROPHES.sub("", text.lower()))
    return " ".join(_WORD.findall(lowered))


def terms(text: str, *, keep_negations: bool = False) -> list[Term]:
    """The meaningful words of a text, in order, stop words dropped.

    Args:
        text: any text (a request, an example, a rule).
        keep_negations: keep the stop words in `NEGATIONS` ("not", "didnt", ...).

    Returns:
        The terms, in the order they appear.
    """
    dropped = STOP_WORDS - NEGATIONS if keep_negations else STOP_WORDS
    return [Term(stem(w), w) for w in normalise(text).split() if w not in dropped]


def stems(text: str, *, keep_negations: bool = False) -> tuple[str, ...]:
    """Just the stems of `terms(text)`."""
    return tuple(t.stem for t in terms(text, keep_negations=keep_negations))


def contains_phrase(haystack: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    """Whether `phrase` occurs as a contiguous run of stems in `haystack`."""
    if not phrase or len(phrase) > len(haystack):
        return False
    width = len(phrase)
    return any(haystack[i : i + width] == phrase for i in range(len(haystack) - width + 1))
