"""Extractive summaries: "Summarize the article", "What is this document about?".

The document is the one the question names (its title), else the one the conversation last
cited, else the best match for the question. Its chunk vectors (read back from the index) give
its centroid; maximal marginal relevance picks central, mutually different chunks, and in them
the sentences closest to the centroid, again by MMR; 3 to 5 sentences, quoted in document order.
"""

from __future__ import annotations

import numpy as np

from ..chunking import split_sentences
from ..types import Passage
from .question import _SUMMARY, content_terms
from .select import is_heading, sentence_vectors

MIN_SENTENCES, MAX_SENTENCES = 3, 5
MMR_LAMBDA = 0.7  # relevance (closeness to the centroid) against novelty
MIN_WORDS = 6


def topic_of(question: str) -> str:
    """The question without its summary wording: what, if anything, it names."""
    return _SUMMARY.sub(" ", question).strip(" ?.!")


def pick_document(question: str, retriever, history_sources: list[str]) -> str | None:
    """The document to summarize, or None when the index has none."""
    index = retriever.index
    docs = index.documents()
    if not docs:
        return None
    topic = topic_of(question)
    terms = set(content_terms(topic))
    if terms:
        named = [
            (len(terms & set(content_terms(f"{title} {doc_id}"))), doc_id)
            for doc_id, title in docs.items()
        ]
        best = max(named)
        if best[0] * 2 >= len(terms):
            return best[1]
    for source in history_sources:
        if source in docs and not terms:
            return source
    if len(docs) == 1:
        return next(iter(docs))
    passages = retriever.search(topic if terms else question, k=3)
    return passages[0].source if passages else next(iter(docs))


def _mmr(
    vectors: np.ndarray, target: np.ndarray, n: int, exclude: set[int] = frozenset()
) -> list[int]:
    """Indices of ``n`` rows of ``vectors``: close to ``target`` and different from each other."""
    relevance = vectors @ target
    chosen: list[int] = []
    while len(chosen) < min(n, len(vectors)):
        best, best_value = None, -np.inf
        for i in range(len(vectors)):
            if i in chosen or i in exclude:
                continue
            redundancy = max((float(vectors[i] @ vectors[j]) for j in chosen), default=0.0)
            value = MMR_LAMBDA * relevance[i] - (1 - MMR_LAMBDA) * redundancy
            if value > best_value:
                best, best_value = i, value
        if best is None:
            break
        chosen.append(best)
    return chosen


def summarize(doc_id: str, retriever) -> tuple[list[Passage], list[tuple[Passage, int, int]]]:
    """The document's chosen chunks (as passages) and its summary sentences as
    ``(passage, start, end)``, in document order."""
    index = retriever.index
    rows = index.document_chunks(doc_id)
    if not rows:
        return [], []
    ids = list(rows)
    chunk_vectors = index.vectors(ids)
    centroid = chunk_vectors.mean(axis=0)
    centroid /= np.linalg.norm(centroid) or 1.0
    chosen_chunks = sorted(_mmr(chunk_vectors, centroid, MAX_SENTENCES))
    passages, sentences = [], []
    for i in chosen_chunks:
        source, start, end, text, title = rows[ids[i]]
        passage = Passage(
            text,
            source,
            title,
            start,
            end,
            score=float(chunk_vectors[i] @ centroid),
            chunk_ids=(ids[i],),
        )
        passages.append(passage)
        for a, b in split_sentences(text):
            sentence = text[a:b]
            if len(sentence.split()) >= MIN_WORDS and not is_heading(sentence, title):
                sentences.append((len(passages) - 1, start + a, start + b, sentence))
    # Overlapping chunks repeat sentences: keep each span once.
    sentences = list({(s[1], s[2]): s for s in sentences}.values())
    if not sentences:
        return passages, []
    keyed = [((passages[p].source, a, b), text) for p, a, b, text in sentences]
    vectors = sentence_vectors.get(retriever.embedder, retriever._build_name, keyed)
    n = max(MIN_SENTENCES, min(MAX_SENTENCES, len(chosen_chunks)))
    picked = sorted(_mmr(vectors, centroid, n), key=lambda k: sentences[k][1])
    return passages, [(passages[sentences[k][0]], sentences[k][1], sentences[k][2]) for k in picked]
