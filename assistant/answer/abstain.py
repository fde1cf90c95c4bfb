"""The decision to answer or abstain: a fitted probability that the best evidence answers.

A fitted model (gradient-boosted trees, ``scorer.predict``) over what the reader knows after
ranking (the best sentence's fitted score and cosine, how much of the question the evidence and
the whole corpus cover, the weight of the most informative term the evidence lacks, the
question's numbers, dates and names the evidence does not mention, a missing answer type, typo
corrections), fitted
by ``benchmarks/fit_reader.py`` on answerable SQuAD questions against questions about an
article left out of the index and SQuAD 2.0's unanswerable ones. ``Answer.confidence`` is this
probability; the assistant abstains below ``ASSISTANT_ABSTAIN_THRESHOLD``.
"""

from __future__ import annotations

import math
import re

import numpy as np

from ..bm25 import Speller
from ..types import Passage
from .entities import PATTERNS
from .question import Question
from .scorer import predict
from .select import Candidate

ABSTAIN_FEATURES = [
    "best_score",  # the chosen sentence's fitted probability
    "score_gap",  # its lead over the runner-up
    "best_cosine",
    "best_coverage",
    "max_coverage",  # the best coverage of any candidate sentence
    "passage_coverage",  # coverage of the chosen sentence's passage
    "corpus_coverage",  # IDF-weighted share of the question's terms found in the index at all
    "max_missing",  # weight of the heaviest term the chosen passage lacks
    "top_dense",  # best dense (cosine) score among the passages
    "type_missing",  # the question wants a number/date/name the chosen sentence lacks
    "corrected",  # share of terms replaced by the speller
    "log_terms",
    "window_missing",  # weight of the heaviest term the chosen sentence and its neighbours lack
    "figures_missing",  # share of the question's numbers and dates those sentences lack
    "names_missing",  # share of the words of the question's names those sentences lack
]


def features(
    question: Question,
    ranked: list[Candidate],
    cands: list[Candidate],
    passages: list[Passage],
) -> dict[str, float]:
    if not ranked:
        return {name: 0.0 for name in ABSTAIN_FEATURES}
    best = ranked[0]
    passage_terms = set().union(*(c.terms for c in cands if c.passage_index == best.passage_index))
    dense = [p.dense_score for p in passages if p.dense_score is not None]
    window = [  # the chosen sentence and its neighbours, as a quote group can hold them
        c
        for c in cands
        if c.passage_index == best.passage_index and abs(c.position - best.position) <= 1
    ]
    n_terms = len(question.terms)
    return {
        "best_score": best.score,
        "score_gap": best.score - (ranked[1].score if len(ranked) > 1 else 0.0),
        "best_cosine": best.features.get("cosine", 0.0),
        "best_coverage": best.features.get("coverage", 0.0),
        "max_coverage": max(c.features.get("coverage", 0.0) for c in cands),
        "passage_coverage": best.features.get("passage_coverage", 0.0),
        "corpus_coverage": question.coverage(set(question.known)),
        "max_missing": question.max_missing(passage_terms),
        "top_dense": max(dense) if dense else 0.0,
        "type_missing": best.features.get("type_missing", 0.0),
        "corrected": len(question.corrected) / n_terms if n_terms else 0.0,
        "log_terms": math.log1p(n_terms),
        "window_missing": question.max_missing(set().union(*(c.terms for c in window))),
        **_phrases_missing(question.text, " ".join(c.text for c in window)),
    }


def _phrases_missing(text: str, evidence: str) -> dict[str, float]:
    """How much of what the question pins down (a year, an amount, a month, a name) the
    evidence (the chosen sentence and its neighbours) does not mention: a question about another
    year or another name than the text's reads much like an answerable one by term overlap
    alone, and a passage often names the month or the person somewhere else."""
    passage = evidence.lower().replace(",", "")
    figures = [
        m.group(0).lower().replace(",", "")
        for kind in ("number", "date")
        for m in PATTERNS[kind].finditer(text)
    ]
    names = [
        w.lower()
        for m in PATTERNS["name"].finditer(text)
        if m.start() > 0  # the question's first word is capitalized anyway
        for w in re.findall(r"\w+", m.group(0))
        if len(w) > 1 and w[0].isupper()
    ]
    words = set(re.findall(r"\w+", passage))
    return {
        "figures_missing": sum(f not in passage for f in figures) / len(figures)
        if figures
        else 0.0,
        "names_missing": sum(not _mentioned(w, words) for w in names) / len(names)
        if names
        else 0.0,
    }


def _mentioned(name: str, words: set[str]) -> bool:
    """``name`` (a lower-cased word of the question) is among ``words``, or within the index
    speller's edit distance of one of them: "Newcastlle" is a typo of the passage's
    "Newcastle", not another town; shorter words must match exactly ("Ann" is not "Anna")."""
    if name in words:
        return True
    if len(name) < Speller.MIN_CHARS:
        return False
    from rapidfuzz import process
    from rapidfuzz.distance import OSA

    limit = Speller.max_edits(name)
    near = [w for w in words if abs(len(w) - len(name)) <= limit]
    return process.extractOne(name, near, scorer=OSA.distance, score_cutoff=limit) is not None


def confidence(feats: dict[str, float], weights: dict) -> float:
    """P(the best evidence answers the question), from the fitted ``abstain`` model."""
    x = np.array([[feats.get(n, 0.0) for n in ABSTAIN_FEATURES]])
    return float(predict(weights["abstain"], x)[0])
