"""What a question asks for: its key terms (typos corrected against the index), their weights,
the type of answer it wants, and whether it asks for a summary or about the title.

The words that carry no content are scikit-learn's English stop-word list and NLTK's (as bm25s
ships it: "does", "did" are only in that one), with question words, auxiliaries and pronouns
among them, not a list of our own; the answer types are the English
question phrases that name them ("how many", "when", "who", "where").
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from typing import Protocol

from ..bm25 import Speller, bm25_tokens

# Question phrase -> the kind of phrase that answers it.
_WANTS = [
    (
        "number",
        re.compile(
            r"\bhow\s+(?:many|much|long|far|old|large|big|tall|high|often|fast)\b|\b(?:what|which)\s+(?:number|percentage|percent|amount|price|cost|size|age)\b",
            re.I,
        ),
    ),
    (
        "date",
        re.compile(
            r"\bwhen\b|\b(?:what|which)\s+(?:year|date|day|month|decade|century|time)\b|\bhow\s+long\s+ago\b",
            re.I,
        ),
    ),
    (
        "name",
        re.compile(
            r"\bwho(?:m|se)?\b|\bwhere\b|\b(?:what|which)\s+(?:country|city|state|town|place|company|organization|team|person|name)\b",
            re.I,
        ),
    ),
]
_ABOUT_TITLE = re.compile(r"\b(?:title|headline|heading|called|named)\b", re.I)
# Requests for an overview of a document rather than one fact in it.
_SUMMARY = re.compile(
    r"\b(?:summari[sz]e|summary|summarise|overview|outline|recap|tl;?\s*dr|gist|main\s+points?|"
    r"key\s+(?:points?|takeaways?|facts)|highlights)\b|"
    r"\bwhat\s+(?:is|are|was|'s)\s+(?:this|that|these|those|the|it)\b.*\babout\s*\??\s*$|"
    r"^\s*what\s+(?:is|was)\s+it\s+about\b",
    re.I,
)


class Vocabulary(Protocol):
    """What the question needs from the index: corrections and document frequencies."""

    size: int

    def query_terms(self, query: str) -> tuple[list[str], dict[str, str]]: ...

    def document_frequencies(self, terms: object) -> dict[str, int]: ...


@lru_cache(maxsize=1)
def _stop_stems() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN_PLUS
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    words = sorted(set(ENGLISH_STOP_WORDS) | set(STOPWORDS_EN_PLUS))
    return frozenset(t for terms in bm25_tokens(words) for t in terms)


def content_terms(text: str) -> list[str]:
    """Stemmed terms of ``text`` that carry content (stop words dropped), in order."""
    stop = _stop_stems()
    return [t for t in bm25_tokens([text])[0] if t not in stop]


def wanted_type(text: str) -> str | None:
    """``number``, ``date`` or ``name`` when the question phrase asks for one."""
    return _wanted(text)[0]


def _wanted(text: str) -> tuple[str | None, str]:
    """The wanted answer type and the question without the phrase that asks for it (the
    "long" of "how long" names the type of the answer, not a word to find)."""
    for kind, pattern in _WANTS:
        m = pattern.search(text)
        if m:
            return kind, text[: m.start()] + " " + text[m.end() :]
    return None, text


def is_summary_request(text: str) -> bool:
    return bool(_SUMMARY.search(text))


def idf(n: int, df: int) -> float:
    return math.log(1.0 + (n - df + 0.5) / (df + 0.5))


@dataclass(frozen=True)
class Question:
    """A question, analysed once and shared by selection, abstention and summaries."""

    text: str
    terms: list[str]  # distinct content terms, corrected
    weights: dict[str, float]  # IDF of each term in the index (unknown terms weigh the most)
    corrected: dict[str, str] = field(default_factory=dict)
    wanted: str | None = None
    about_title: bool = False
    words: frozenset[str] = frozenset()  # lower-cased words of the question, as typed
    known: frozenset[str] = frozenset()  # terms found somewhere in the index
    respelled: bool = False  # ``text`` already holds the corrections (``respell``)

    @cached_property
    def spelled(self) -> str:
        """The question with each word the speller corrected replaced by its correction: what
        the word-by-word match reads (a typo's wordpieces match nothing)."""
        if not self.corrected or self.respelled:
            return self.text
        out, last = [], 0
        for m in re.finditer(r"\w+", self.text):
            terms = bm25_tokens([m.group(0)])[0]
            if terms and terms[0] in self.corrected:
                out += [self.text[last : m.start()], self.corrected[terms[0]]]
                last = m.end()
        return "".join(out) + self.text[last:]

    @property
    def total_weight(self) -> float:
        return sum(self.weights.values())

    def coverage(self, present: set[str]) -> float:
        """IDF-weighted share of the question's terms in ``present``."""
        total = self.total_weight
        return sum(w for t, w in self.weights.items() if t in present) / total if total else 0.0

    def max_missing(self, present: set[str]) -> float:
        """The largest weight among the terms missing from ``present``, over the total."""
        total = self.total_weight
        missing = [w for t, w in self.weights.items() if t not in present]
        return max(missing) / total if missing and total else 0.0


def analyze(text: str, vocabulary: Vocabulary) -> Question:
    """Terms (typos corrected by the index's speller), their IDF, and the wanted answer type."""
    wanted, rest = _wanted(text)
    raw = list(dict.fromkeys(content_terms(rest)))
    corrected_all, corrected = vocabulary.query_terms(" ".join(raw)) if raw else ([], {})
    terms = list(dict.fromkeys(corrected_all))
    n = max(vocabulary.size, 1)
    dfs = vocabulary.document_frequencies(terms)
    weights = {t: idf(n, dfs.get(t, 0)) for t in terms}
    return Question(
        text=text,
        terms=terms,
        weights=weights,
        corrected=corrected,
        wanted=wanted,
        about_title=bool(_ABOUT_TITLE.search(text)),
        words=frozenset(w.lower() for w in re.findall(r"\w+", text)),
        known=frozenset(t for t in terms if dfs.get(t, 0) > 0),
    )


MIN_RESPELL = Speller.MIN_CHARS  # as the index's speller: shorter words, numbers never change


def respell(q: Question, texts: Sequence[str], vocabulary: Vocabulary) -> Question | None:
    """``q`` with each typed word the index does not know replaced by the closest word of the
    retrieved passages ``texts`` (edit distance 1, 2 from 7 letters; the most frequent in them
    among the closest), or None when no word changes.

    The index's speller corrects stems, which misses a typo that breaks the suffix the stemmer
    strips ("construtcion" is not within reach of "construct") and picks between equally close
    terms by corpus frequency ("Lther": "other"). The passages retrieved for the typed question
    hold the words as written, in context, so "construction" and "Luther" are there to match;
    the corrected question then reads like one typed right (for the word-by-word match and the
    second search). Words the passages do not hold keep the index speller's correction.
    """
    from rapidfuzz import process
    from rapidfuzz.distance import OSA

    unknown = set(q.corrected) | {t for t in q.terms if t not in q.known}
    typed = [
        m
        for m in re.finditer(r"\w+", q.text)
        if len(m.group(0)) >= MIN_RESPELL
        and not any(ch.isdigit() for ch in m.group(0))
        and set(bm25_tokens([m.group(0)])[0]) & unknown
    ]
    if not typed:
        return None
    counts = Counter(
        w.lower()
        for text in texts
        for w in re.findall(r"\w+", text)
        if len(w) >= MIN_RESPELL - 1 and not any(ch.isdigit() for ch in w)
    )
    choices = list(counts)
    fixes: dict[str, str] = {}
    for m in typed:
        word = m.group(0).lower()
        limit = Speller.max_edits(word)
        found = process.extract(word, choices, scorer=OSA.distance, score_cutoff=limit, limit=8)
        if found:
            best = min(found, key=lambda f: (f[1], -counts[f[0]], f[0]))[0]
            if best != word:
                fixes[m.group(0)] = best
    if not fixes:
        return None
    out, last = [], 0
    for m in typed:
        fixed = fixes.get(m.group(0))
        if fixed and m.group(0)[0].isupper():
            fixed = fixed[0].upper() + fixed[1:]
        stems = bm25_tokens([m.group(0)])[0]
        fixed = fixed or (q.corrected.get(stems[0]) if stems else None)  # the index's, else
        if fixed:
            out += [q.text[last : m.start()], fixed]
            last = m.end()
    again = analyze("".join(out) + q.text[last:], vocabulary)
    corrected = dict(q.corrected)
    for typed_word, fixed in fixes.items():
        before, after = bm25_tokens([typed_word])[0], bm25_tokens([fixed])[0]
        if before and after:
            corrected[before[0]] = after[0]
    # ``corrected`` still says which typed terms were replaced (an abstention feature); the
    # text already holds the corrections, so ``spelled`` is the text itself.
    return replace(again, corrected=corrected, words=q.words | again.words, respelled=True)
