"""A cheap tagger for the phrases that answer "how many", "when" and "who/where" questions:
numbers and amounts, dates, and capitalized names, as character spans of a sentence.

Regular expressions over digits, numerals, calendar words and capitalization; closed classes of
English, not lists fitted to a data set. A phrase that the question itself contains ("in 2019"
in "How many ... in 2019?") does not count as an answer.
"""

from __future__ import annotations

import re

_NUMERAL = (
    r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
    r"sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|"
    r"ninety|hundred|thousand|million|billion|trillion|dozen|half|once|twice"
)
_MONTH = (
    r"January|February|March|April|May|June|July|August|September|October|November|December|"
    r"Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"
)
_WEEKDAY = r"Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"
_NUMBER = re.compile(
    rf"(?:[$€£¥₩]\s?)?\b\d[\d,.]*(?:\s?(?:%|percent|per\s+cent))?"
    rf"(?:\s(?:{_NUMERAL}))?\b|\b(?:{_NUMERAL})(?:[\s-](?:{_NUMERAL}))*\b",
    re.I,
)
_DATE = re.compile(
    rf"\b(?:(?:\d{{1,2}}\s+)?(?:{_MONTH})\.?(?:\s+\d{{1,2}})?(?:,?\s+\d{{4}})?|"
    rf"(?:{_WEEKDAY})|\d{{4}}-\d{{2}}-\d{{2}}|\d{{1,2}}/\d{{1,2}}/\d{{2,4}}|"
    rf"(?:1\d{{3}}|20\d{{2}})s?|\d{{1,2}}(?:st|nd|rd|th)\s+century|"
    rf"(?:yesterday|today|tomorrow|tonight))\b"
)
_NAME = re.compile(
    r"\b[A-Z][\w'’.-]*(?:\s+(?:of|de|van|von|the|al|bin|da|del|la|le)?\s*[A-Z][\w'’.-]*)*"
)

PATTERNS = {"number": _NUMBER, "date": _DATE, "name": _NAME}


def spans(text: str, kind: str, exclude: frozenset[str] = frozenset()) -> list[tuple[int, int]]:
    """``(start, end)`` of the ``kind`` phrases of ``text`` whose words are not all in
    ``exclude`` (the question's own words, lower-cased); a name that opens the sentence counts
    only when it has two words or more (a capital there may just start the sentence)."""
    out = []
    for m in PATTERNS[kind].finditer(text):
        phrase = m.group(0).strip()
        if not phrase:
            continue
        words = [w.lower() for w in re.findall(r"\w+", phrase)]
        if words and all(w in exclude for w in words):
            continue
        if kind == "name" and m.start() == _first_word(text) and len(phrase.split()) < 2:
            continue
        a = m.start() + (len(m.group(0)) - len(m.group(0).lstrip()))
        out.append((a, a + len(phrase)))
    return out


def _first_word(text: str) -> int:
    m = re.search(r"\w", text)
    return m.start() if m else 0


def has_type(text: str, kind: str, exclude: frozenset[str] = frozenset()) -> bool:
    return bool(spans(text, kind, exclude))
