"""The extractive reader: from a question (and the conversation) to a cited answer or an
abstention. It wires the parts; each decision lives in its own module:

- ``conversation``: whether the question leans on the turns before it, and the standalone query;
- retrieval of the raw question, fused with the standalone query's and the spelling-corrected
  question's when they differ from it (a word unknown to the index is corrected against the
  index's terms, then against the words of the passages it retrieved: ``question.respell``);
- ``summary`` for summary requests, ``metadata`` for "who wrote it / when was it published";
- ``select``: candidate sentences scored by the fitted models;
- ``abstain``: the fitted probability that the best evidence answers, against the threshold;
- ``citations``: every quote verified against its source before it is shown.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from ..config import Settings
from ..types import Answer, Passage
from . import abstain, model_reader, select
from .citations import verified_citations
from .conversation import recent_turns, standalone_query
from .metadata import metadata_candidates, metadata_question
from .question import Question, analyze, is_summary_request, respell
from .scorer import load_weights
from .summary import pick_document, summarize

log = logging.getLogger(__name__)

# The two kinds of "not found": passages about the question that do not answer it (the
# closest are shown), or nothing in the documents about it at all.
ABSTAIN_TEXT = "The documents do not contain an answer to this question."
NOT_ABOUT_TEXT = "Nothing in the documents is about this question."
ABOUT_COVERAGE = 0.5  # a passage holding this share of the question's key terms is about it
# Fitted by ``benchmarks/fit_quotes.py`` on the tuning questions (the highest answer hit with at
# most 1.5 quoted sentences per answer): a neighbour of the best sentence joins its quote at this
# share of its score; another passage's best sentence becomes a second quote at this share.
ADJACENT_RATIO = 0.15
SECOND_RATIO = 0.3
FUSE_K = 60  # reciprocal rank fusion constant for the raw and the standalone query's passages


def search(
    retriever, question: str, query: str, k: int, spelled: str | None = None
) -> list[Passage]:
    """Passages for the question; when a standalone query was made, or the speller corrected
    the question's words (``spelled``), the rankings are fused (reciprocal rank), so a question
    that did not need the conversation keeps its passages and a typo'd question also gets the
    dense match of its corrected words (the raw question's ranking stays in the fusion in case a
    correction was wrong)."""
    raw = retriever.search(question, k=k)
    others = list(dict.fromkeys(x for x in (query, spelled) if x and x != question))
    if not others:
        return raw
    rankings = [retriever.search(x, k=k) for x in others]
    scores: dict[tuple[str, int], float] = {}
    by_key: dict[tuple[str, int], Passage] = {}
    order: dict[tuple[str, int], int] = {}
    for ranking in (*rankings, raw):  # the standalone query's passages win ties: the meaning
        for r, p in enumerate(ranking, start=1):
            key = (p.source, p.start)
            scores[key] = scores.get(key, 0.0) + 1.0 / (FUSE_K + r)
            by_key.setdefault(key, p)
            order.setdefault(key, len(order))
    top = len(rankings) + 1
    out: list[Passage] = []
    for key in sorted(scores, key=lambda key: (-scores[key], order[key])):
        p = by_key[key]
        if any(o.source == p.source and p.start < o.end and p.end > o.start for o in out):
            continue  # the same evidence, cut differently by the other query
        out.append(replace(p, score=scores[key] * FUSE_K / top))  # ~1: first in all
        if len(out) == k:
            break
    return out


def answer(
    question: str,
    history: Sequence | None,
    settings: Settings,
    retriever,
) -> Answer:
    """The extractive answer to ``question`` (see the module docstring)."""
    turns = recent_turns(history)
    query = standalone_query(question, turns, retriever.index.speller.known)
    query = query[: settings.max_question_chars]  # a rewrite carries words from the history
    if is_summary_request(question):
        return _summary(question, query, turns, settings, retriever)
    q, passages = read(retriever, question, query, settings.answer_passages)
    kind = metadata_question(question)
    if kind and passages:
        picks = metadata_candidates(kind, passages, settings.seeds_dir)
        if picks:
            return _answer(
                question,
                query,
                passages,
                [(*p, None) for p in picks],
                1.0,
                1.0,
                settings,
                "metadata",
            )
    return extractive_answer(question, query, passages, retriever, settings, q)


def read(retriever, question: str, query: str, k: int) -> tuple[Question, list[Passage]]:
    """The analysed ``query`` and its ``k`` passages, as the reader reads a question: searched
    as typed and as spelled (``search``), then, when the passages spell one of its unknown
    words right, respelled and searched again."""
    q = analyze(query, retriever.index)
    passages = search(retriever, question, query, k, q.spelled)
    again = respell(q, [p.text for p in passages], retriever.index)
    if again is not None:  # a typo the passages spell right: search as the reader reads it
        q = again
        passages = search(retriever, question, query, k, q.spelled)
    return q, passages


def evidence(
    query: str, passages: list[Passage], retriever, settings: Settings, q: Question | None = None
) -> tuple[Question, list[select.Candidate], list[select.Candidate]]:
    """The analysed question, its scored shortlist of sentences (best first, headings removed
    unless the question is about the title) and every candidate sentence."""
    q = q or analyze(query, retriever.index)
    ranked, cands = select.rank(
        q,
        retriever.embed_query(q.spelled),
        retriever.query_tokens(q.spelled),
        passages,
        retriever.embedder,
        retriever._build_name,
        load_weights(),
        dense=settings.answer_scorer == "fitted",
    )
    return q, select.without_headings(q, ranked), cands


def extractive_answer(
    question: str,
    query: str,
    passages: list[Passage],
    retriever,
    settings: Settings,
    q: Question | None = None,
) -> Answer:
    """The best sentence(s) of ``passages`` for ``query``, quoted and verified, or an
    abstention when the fitted confidence is under the threshold."""
    if not passages:
        return _abstain(question, query, passages, 0.0, 0.0, about=False)
    if settings.answer_scorer == "model":
        q = q or analyze(query, retriever.index)
        ranked, cands, confidence = model_reader.read(q, passages)
        threshold = settings.model_abstain_threshold
    else:
        q, ranked, cands = evidence(query, passages, retriever, settings, q)
        confidence = (
            abstain.confidence(abstain.features(q, ranked, cands, passages), load_weights())
            if ranked
            else 0.0
        )
        threshold = settings.abstain_threshold
    best = ranked[0].score if ranked else 0.0
    if not ranked or confidence < threshold:
        return _abstain(question, query, passages, best, confidence, about=_about(q, cands))
    groups = select.quote_groups(ranked, settings.answer_sentences, ADJACENT_RATIO, SECOND_RATIO)
    picks = []
    for group in groups:
        picks.append(
            (
                passages[group[0].passage_index],
                group[0].start,
                group[-1].end,
                _span(q, group, settings.answer_scorer == "model"),
            )
        )
    return _answer(question, query, passages, picks, best, confidence, settings, "fact")


def _span(q: Question, group: list[select.Candidate], model: bool) -> tuple[int, int] | None:
    """The answering phrase of a quote, as source offsets: the reader model's span head, or
    (the fitted trees' path) the phrase of the wanted answer type."""
    for c in sorted(group, key=lambda c: -c.score):
        span = (c.start + c.span[0], c.start + c.span[1]) if c.span else None
        span = span if model else select.answer_span(q, c)
        if span:
            return span
    return None


def _about(q: Question, cands: list[select.Candidate]) -> bool:
    """Whether the passages are about the question (then "no sentence answers it" rather
    than "nothing is about it"): one of the passages read holds at least ``ABOUT_COVERAGE``
    of the question's key terms (IDF-weighted)."""
    by_passage: dict[int, set[str]] = {}
    for c in cands:
        by_passage.setdefault(c.passage_index, set()).update(c.terms)
    return any(q.coverage(terms) >= ABOUT_COVERAGE for terms in by_passage.values())


def _answer(question, query, passages, picks, evidence, confidence, settings, kind) -> Answer:
    """The answer quoting ``picks`` (each verified first), or an abstention if none verifies."""
    citations, dropped = verified_citations(picks, settings.seeds_dir)
    if not citations:
        return _abstain(
            question,
            query,
            passages,
            evidence,
            confidence,
            dropped=dropped,
            notices=["the best evidence could not be verified against the source files"],
        )
    quotes = " ".join(f"“{c.quote}” [{c.n}]" for c in citations)
    text = f"Summary of {citations[0].title}: {quotes}" if kind == "summary" else quotes
    return _reply(
        question, query, passages, evidence, confidence, dropped, [], kind, text, citations
    )


def _summary(question, query, turns, settings, retriever) -> Answer:
    """3-5 central sentences of one document (see ``summary.py``); confidence 1 when found."""
    # "What is this document about?" after a turn: the document that turn was about.
    last = turns[-1][0].strip() if turns else ""
    previous = [p.source for p in retriever.search(last, k=1)] if last else []
    doc_id = pick_document(question, retriever, previous)
    passages, picks = summarize(doc_id, retriever) if doc_id else ([], [])
    if not picks:
        return _abstain(question, query, passages, 0.0, 0.0)
    return _answer(
        question, query, passages, [(*p, None) for p in picks], 1.0, 1.0, settings, "summary"
    )


def _abstain(
    question, query, passages, evidence, confidence, dropped=0, notices=None, about=True
) -> Answer:
    text = ABSTAIN_TEXT if about else NOT_ABOUT_TEXT
    return _reply(
        question, query, passages, evidence, confidence, dropped, notices or [], text=text
    )


def _reply(
    question,
    query,
    passages,
    evidence,
    confidence,
    dropped,
    notices,
    kind="fact",
    text=None,
    citations=None,
) -> Answer:
    """An ``Answer``: quoting ``citations`` with ``text``, or (without them) an abstention."""
    return Answer(
        text=text if citations else (text or ABSTAIN_TEXT),
        citations=citations or [],
        passages=passages,
        abstained=not citations,
        query=query,
        question=question,
        evidence_score=round(evidence, 4),
        dropped_citations=dropped,
        notices=notices,
        confidence=round(confidence, 4),
        kind=kind,
    )
