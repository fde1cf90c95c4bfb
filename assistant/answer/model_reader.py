"""The reader model's path (``ASSISTANT_ANSWER_SCORER=model``): the cross-encoder trained here
(``crossencoder.py``) reads the shortlist instead of the fitted trees.

The candidates are ``select.candidates``' (with their key-term coverage); the shortlist is the
``SHORTLIST`` of the best passages, a sentence holding more of the question's key terms moving
up; the model reads them in one batch; a fitted ranker (``crossencoder.RANK_FEATURES``) orders
them; a fitted calibration over ``CONFIDENCE_FEATURES`` is the confidence. Both were fitted on
held-out articles by ``benchmarks/calibrate_reader.py``. Not the default: on the benchmarks
(BENCHMARKS.md) it does not yet beat the fitted trees at declining unanswerable questions.
"""

from __future__ import annotations

import numpy as np

from ..crossencoder import default_reader, logit
from ..types import Passage
from . import select
from .question import Question

SHORTLIST = 24  # sentences the model reads per question, at most
# What the calibrated confidence reads (``crossencoder.ReaderModel.calibrated``), in order.
CONFIDENCE_FEATURES = [
    "answers_at_all",  # the model's logit that the shortlist answers (its "no answer" output)
    "best_sentence",  # the logit of the best sentence's ranked probability
    "passage_coverage",  # share of the question's key terms (IDF) in the best sentence's passage
    "window_missing",  # the heaviest key term missing from it and its neighbours, over the total
    "corpus_coverage",  # share of the question's key terms found anywhere in the index
    "evidence",  # the best sentence's answering phrase over "no phrase here" (span head)
]


def shortlist(cands: list[select.Candidate], n: int = SHORTLIST) -> list[select.Candidate]:
    """The ``n`` candidates the model reads: by passage rank, key-term coverage (its own and
    its best neighbour's) moving a sentence up by as much as one passage."""

    def key(c: select.Candidate) -> float:
        f = c.features
        return c.passage_index - f.get("coverage", 0.0) - 0.5 * f.get("context", 0.0)

    return sorted(cands, key=key)[:n]


def take_reading(short: list[select.Candidate], reading) -> None:
    """Put the model's ``reading`` of the shortlist on its candidates: each one's answering
    phrase (``span``) and phrase evidence (``features["evidence"]``)."""
    for c, span, e in zip(short, reading.spans, reading.evidence):
        c.span = span
        c.features["evidence"] = float(e)


def rank_features(
    short: list[select.Candidate], relevance: np.ndarray, passages: list[Passage]
) -> np.ndarray:
    """The ranker's features (``crossencoder.RANK_FEATURES``) of each shortlisted sentence
    (after ``take_reading``)."""
    top = passages[0].score or 1.0
    return np.array(
        [
            [
                float(z),
                c.features.get("coverage", 0.0),
                c.features.get("context", 0.0),
                1.0 / (1 + c.passage_index),
                (passages[c.passage_index].score or 0.0) / top,
                c.features.get("evidence", 0.0),
            ]
            for c, z in zip(short, relevance)
        ],
        dtype=np.float64,
    )


def confidence_features(
    q: Question, ranked: list[select.Candidate], cands: list[select.Candidate], p_answer: float
) -> np.ndarray:
    """``CONFIDENCE_FEATURES`` of a reading: the model's outputs, and which of the question's
    key terms the evidence and the whole index hold."""
    best = ranked[0]
    passage = set().union(*(c.terms for c in cands if c.passage_index == best.passage_index))
    window = set().union(
        *(
            c.terms
            for c in cands
            if c.passage_index == best.passage_index and abs(c.position - best.position) <= 1
        )
    )
    return np.array(
        [
            logit(p_answer),
            logit(best.score),
            q.coverage(passage),
            q.max_missing(window),
            q.coverage(set(q.known)),
            best.features.get("evidence", 0.0),
        ]
    )


def shortlisted(
    q: Question, passages: list[Passage]
) -> tuple[list[select.Candidate], list[select.Candidate]]:
    """Every candidate sentence of ``passages`` (headings only for a question about titles)
    and the shortlist the model reads."""
    cands = select.without_headings(q, select.candidates(q, passages))
    return cands, shortlist(cands)


def read(
    q: Question, passages: list[Passage]
) -> tuple[list[select.Candidate], list[select.Candidate], float]:
    """The shortlist ranked by the model (best first; each candidate's ``score`` its ranked
    probability and ``span`` the answering phrase, offsets into its text), every candidate,
    and the calibrated confidence."""
    cands, short = shortlisted(q, passages)
    if not short:
        return [], cands, 0.0
    reader = default_reader()
    reading = reader.read(q.spelled, [c.text for c in short])
    take_reading(short, reading)
    for c, p in zip(short, reader.ranked(rank_features(short, reading.relevance, passages))):
        c.score = float(p)
    ranked = sorted(short, key=lambda c: -c.score)
    signals = confidence_features(q, ranked, cands, reading.answer_probability)
    return ranked, cands, reader.calibrated(signals, CONFIDENCE_FEATURES)
