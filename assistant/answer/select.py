"""Candidate sentences of the retrieved passages, their features, and their fitted scores.

Two fitted models (``scorer.py``: gradient-boosted trees or logistic regressions, weights in
``weights.json``) score every sentence of the top passages as "holds the answer":

1. ``shortlist`` on cheap features (key-term coverage, the neighbours' coverage, passage rank and
   score, answer-type match, heading flag, length): picks the few sentences worth embedding;
2. ``sentence`` adds what the embedder sees, and rescores them: the cosine between question
   and sentence vectors, a word-by-word match (each question wordpiece's best cosine to the
   sentence's wordpieces, from the same forward pass, weighted by its word's IDF: "successor"
   meets "succeeded" there even when the sentence as a whole is about something else), and the
   fitted match model's reading of the same wordpieces (``match.py``: does the sentence answer,
   or only repeat the question's words).

The features are computed here, and only here: ``benchmarks/fit_reader.py`` fits the weights on
exactly what ``ask()`` computes.
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..bm25 import bm25_tokens
from ..chunking import split_sentences
from ..embedder import embed_with_tokens
from ..types import Passage
from . import entities, match
from .question import Question
from .scorer import predict

CHEAP_FEATURES = [
    "coverage",  # IDF-weighted share of the question's terms in the sentence
    "coverage_gap",  # coverage minus the best coverage among the candidates
    "context",  # best coverage of the sentences next to it
    "passage_coverage",  # coverage of the whole passage
    "bigrams",  # share of the question's adjacent term pairs found adjacent
    "rank",  # 1 / (1 + passage rank)
    "passage_score",  # passage score relative to the best passage
    "type_match",  # the question wants a number/date/name and the sentence has a new one
    "type_missing",  # the question wants one and the sentence has none
    "heading",  # a title or heading line
    "novelty",  # share of the sentence's terms that are not the question's
    "log_words",
    "short",  # under five words
]
DENSE_FEATURES = ["cosine", "cosine_gap", "maxsim", "maxsim_gap", "match", "match_gap"]
FEATURES = CHEAP_FEATURES + DENSE_FEATURES
SHORTLIST = 10  # sentences embedded per question, at most
_HEADING_END = re.compile(r"[.!?:;,\"'”’)\]]\s*$")


@dataclass
class Candidate:
    passage_index: int
    position: int  # sentence number inside its passage
    start: int  # offsets in the source document
    end: int
    text: str
    terms: set[str]
    pairs: set[tuple[str, str]] = field(default_factory=set)  # adjacent terms, in order
    features: dict[str, float] = field(default_factory=dict)
    prior: float = 0.0  # shortlist probability
    score: float = 0.0  # probability that the sentence holds the answer
    span: tuple[int, int] | None = None  # the reader model's answering phrase (offsets in text)

    def vector(self, names: list[str]) -> list[float]:
        return [self.features.get(n, 0.0) for n in names]


def is_heading(text: str, title: str) -> bool:
    """A title or heading line: a Markdown heading, or a line that does not end like a sentence
    and is the document's title or short."""
    line = text.strip()
    if not line:
        return False
    if line.startswith("#"):
        return True
    if "\n" in line or _HEADING_END.search(line):
        return False  # it ends like a sentence: a one-line document's title is its content
    return line.lower() == title.strip().lower() or len(line.split()) <= 12


def candidates(question: Question, passages: list[Passage]) -> list[Candidate]:
    """Every sentence of ``passages`` with its cheap features."""
    out: list[Candidate] = []
    spans_by_passage = [split_sentences(p.text) for p in passages]
    texts = [p.text[a:b] for p, spans in zip(passages, spans_by_passage) for a, b in spans]
    term_lists = bm25_tokens(texts) if texts else []
    k = 0
    for i, (passage, spans) in enumerate(zip(passages, spans_by_passage)):
        for j, (a, b) in enumerate(spans):
            terms = term_lists[k]
            out.append(
                Candidate(
                    i,
                    j,
                    passage.start + a,
                    passage.start + b,
                    texts[k],
                    set(terms),
                    set(zip(terms, terms[1:])),
                )
            )
            k += 1
    if not out:
        return out
    top_score = passages[0].score or 1.0
    passage_terms = [
        set().union(*(c.terms for c in out if c.passage_index == i)) for i in range(len(passages))
    ]
    bigrams = list(zip(question.terms, question.terms[1:]))
    by_place = {(c.passage_index, c.position): c for c in out}
    for c in out:
        c.features["coverage"] = question.coverage(c.terms)
    best_coverage = max(c.features["coverage"] for c in out)
    for c in out:
        f = c.features
        before = by_place.get((c.passage_index, c.position - 1))
        after = by_place.get((c.passage_index, c.position + 1))
        f["coverage_gap"] = f["coverage"] - best_coverage
        f["context"] = max(
            before.features["coverage"] if before else 0.0,
            after.features["coverage"] if after else 0.0,
        )
        f["passage_coverage"] = question.coverage(passage_terms[c.passage_index])
        f["bigrams"] = sum(b in c.pairs for b in bigrams) / len(bigrams) if bigrams else 0.0
        f["rank"] = 1.0 / (1 + c.passage_index)
        f["passage_score"] = (passages[c.passage_index].score or 0.0) / top_score
        heading = is_heading(c.text, passages[c.passage_index].title)
        f["heading"] = float(heading)
        if question.wanted:
            found = entities.spans(c.text, question.wanted, question.words)
            f["type_match"] = float(bool(found))
            f["type_missing"] = float(not found)
        words = len(c.text.split())
        new = [t for t in c.terms if t not in question.weights]
        f["novelty"] = len(new) / max(1, len(c.terms))
        f["log_words"] = math.log1p(words)
        f["short"] = float(words < 5)
    return out


def score_cheap(cands: list[Candidate], weights: dict) -> None:
    if cands:
        model = weights["shortlist"]
        probs = predict(model, np.array([c.vector(model["features"]) for c in cands]))
        for c, p in zip(cands, probs):
            c.prior = float(p)


Dense = tuple[np.ndarray, np.ndarray, np.ndarray]  # cosines, maxsims, match logits


def score_dense(cands: list[Candidate], dense: Dense, weights: dict):
    """Rescore ``cands`` with their (cosines, maxsims, match logits) to the question."""
    if not cands:
        return
    for name, values in zip(("cosine", "maxsim", "match"), dense):
        best = float(np.max(values))
        for c, v in zip(cands, values):
            c.features[name] = float(v)
            c.features[f"{name}_gap"] = float(v) - best
    model = weights["sentence"]  # its features by name: a model fitted on fewer still applies
    probs = predict(model, np.array([c.vector(model["features"]) for c in cands]))
    for c, p in zip(cands, probs):
        c.score = float(p)


def shortlist(cands: list[Candidate], n: int = SHORTLIST) -> list[Candidate]:
    return sorted(cands, key=lambda c: c.prior, reverse=True)[:n]


class SentenceVectors:
    """Sentence vectors and wordpiece vectors, embedded on demand and cached by (build,
    document, offsets). An embedder without ``embed_tokens`` (a test's fake) gets its sentence
    vector as the only "wordpiece"."""

    def __init__(self, limit: int = 5_000) -> None:
        self._cache: OrderedDict[tuple, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()
        self.limit = limit
        self.stats = {"embedded": 0, "cached": 0}

    def get(self, embedder, build: str | None, keyed: list[tuple[tuple, str]]) -> np.ndarray:
        """Vectors for ``[(key, text), ...]`` (key: source and offsets), in order."""
        vectors, _ = self.get_with_tokens(embedder, build, keyed)
        return vectors

    def get_with_tokens(
        self, embedder, build: str | None, keyed: list[tuple[tuple, str]]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Sentence vectors and each sentence's wordpiece vectors."""
        keys = [(build, *k) for k, _ in keyed]
        with self._lock:
            found = {k: self._cache[k] for k in keys if k in self._cache}
        missing = [i for i, k in enumerate(keys) if k not in found]
        self.stats["embedded"] = self.stats.get("embedded", 0) + len(missing)
        self.stats["cached"] = self.stats.get("cached", 0) + len(keys) - len(missing)
        if missing:
            vectors, tokens, _ = embed_with_tokens(embedder, [keyed[i][1] for i in missing])
            with self._lock:
                for i, vec, tok in zip(missing, vectors, tokens):
                    self._cache[keys[i]] = found[keys[i]] = (vec, tok)
                while len(self._cache) > self.limit:
                    self._cache.popitem(last=False)
        if not keys:
            return np.zeros((0, 1), np.float32), []
        return np.stack([found[k][0] for k in keys]), [found[k][1] for k in keys]


def token_weights(question: Question, spans: list[tuple[int, int]]) -> np.ndarray:
    """Each wordpiece of ``question.spelled`` weighs what its word's term weighs (0 for stop
    words); all 1 when no word carries weight."""
    words = [(m.start(), m.end(), m.group(0)) for m in re.finditer(r"\w+", question.spelled)]
    stems = bm25_tokens([w for _, _, w in words]) if words else []
    fixed = question.corrected
    out = np.zeros(len(spans))
    for i, (a, _) in enumerate(spans):
        for (ws, we, _), terms in zip(words, stems):
            if ws <= a < we and terms:
                out[i] = question.weights.get(fixed.get(terms[0], terms[0]), 0.0)
                break
    return out if out.sum() > 0 else np.ones(len(spans))


def maxsims(q_tokens: np.ndarray, weights: np.ndarray, sentence_tokens: list[np.ndarray]):
    """For each sentence: the weighted mean over question wordpieces of their best cosine to
    one of the sentence's wordpieces."""
    q = q_tokens.astype(np.float32)
    total = float(weights.sum()) or 1.0
    return np.array(
        [float((q @ t.astype(np.float32).T).max(axis=1) @ weights) / total for t in sentence_tokens]
    )


sentence_vectors = SentenceVectors()


def rank_candidates(
    cands: list[Candidate],
    weights: dict,
    dense: Callable[[list[Candidate]], Dense] | None,
) -> list[Candidate]:
    """Score ``cands`` (cheap model), shortlist them, and rescore the shortlist with the
    (cosines, maxsims, match logits) that ``dense`` gives (None: the cheap score is the
    score)."""
    score_cheap(cands, weights)
    short = shortlist(cands)
    if dense is None:
        for c in short:
            c.score = c.prior
    elif short:
        score_dense(short, dense(short), weights)
    return sorted(short, key=lambda c: c.score, reverse=True)


def rank(
    question: Question,
    query_vector: np.ndarray,
    query_tokens: tuple[np.ndarray, list[tuple[int, int]]],
    passages: list[Passage],
    embedder,
    build: str | None,
    weights: dict,
    dense: bool = True,
) -> tuple[list[Candidate], list[Candidate]]:
    """The scored shortlist, best first, and every candidate (with cheap features and priors).

    With ``dense=False`` (the ``lexical`` scorer) nothing is embedded: the shortlist model's
    probability is the score."""
    cands = candidates(question, passages)

    fitted = match.load()

    def dense_of(short: list[Candidate]) -> Dense:
        return dense_features(
            question, short, passages, query_vector, query_tokens, embedder, build, fitted
        )

    return rank_candidates(cands, weights, dense_of if dense else None), cands


def dense_features(
    question: Question,
    cands: list[Candidate],
    passages: list[Passage],
    query_vector: np.ndarray,
    query_tokens: tuple[np.ndarray, list[tuple[int, int]]],
    embedder,
    build,
    fitted: dict | None,
) -> Dense:
    """Each candidate's cosine, maxsim and match logit to the question (sentence vectors
    cached); ``query_tokens``: the wordpiece vectors and spans of ``question.spelled``
    (``Retriever.query_tokens``); ``fitted``: the match model (None, or fitted for another
    embedder: the logits are 0)."""
    keyed = [((passages[c.passage_index].source, c.start, c.end), c.text) for c in cands]
    vectors, tokens = sentence_vectors.get_with_tokens(embedder, build, keyed)
    q_tokens, spans = query_tokens
    weights = token_weights(question, spans)
    if match.applies(fitted, getattr(embedder, "name", None), q_tokens.shape[-1]):
        logits = match.scores(fitted, q_tokens, weights, query_vector, tokens)
    else:
        logits = np.zeros(len(cands), dtype=np.float32)
    return vectors @ query_vector, maxsims(q_tokens, weights, tokens), logits


def without_headings(question: Question, ranked: list[Candidate]) -> list[Candidate]:
    """A title or heading line names the topic; it answers only a question about the title."""
    return [c for c in ranked if question.about_title or not c.features.get("heading")]


def quote_groups(
    ranked: list[Candidate], max_quotes: int, adjacent_ratio: float, second_ratio: float
) -> list[list[Candidate]]:
    """The sentences to quote, as groups (one quote each, best first): the best sentence with
    its neighbours in the same passage that score at least ``adjacent_ratio`` of it (the answer
    is often the sentence right after the one that repeats the question), then the best
    sentence of each other passage that scores at least ``second_ratio`` of it, up to
    ``max_quotes`` quotes. A group is in document order, so it is one verbatim span."""
    if not ranked:
        return []
    best = ranked[0]
    group, others = [best], []
    for c in ranked[1:]:
        if c.passage_index == best.passage_index:
            if abs(c.position - best.position) == 1 and c.score >= adjacent_ratio * best.score:
                group.append(c)
        elif (
            len(others) + 1 < max_quotes
            and c.score >= second_ratio * best.score
            and all(c.passage_index != o.passage_index for o in others)
        ):
            others.append(c)
    return [sorted(group, key=lambda c: c.position)] + [[o] for o in others]


def answer_span(question: Question, cand: Candidate) -> tuple[int, int] | None:
    """The phrase of the wanted type in the sentence that sits closest to the question's terms,
    as source offsets (None when the question wants no type or the sentence has none)."""
    if not question.wanted:
        return None
    found = entities.spans(cand.text, question.wanted, question.words)
    if not found:
        return None
    words = list(re.finditer(r"\w+", cand.text))
    stems = bm25_tokens([m.group(0) for m in words])
    anchors = [m.start() for m, t in zip(words, stems) if t and t[0] in question.weights]
    if anchors:
        a, b = min(found, key=lambda s: min(abs(s[0] - x) for x in anchors))
    else:
        a, b = found[0]
    return cand.start + a, cand.start + b
