"""Answer a question from the retrieved passages with verified, cited quotes, or abstain.

The default answer is extractive: the sentence(s) of the top passages that best answer the
question, quoted verbatim with ``[n]`` markers. Sentences are scored by the embedder (cosine to
the question), by IDF-weighted coverage of the question's key terms, and by their passage's
rank; short, precise sentences beat long ones. Every citation is checked against the source file
on disk before it is shown. When the best evidence is weak the assistant says the documents do
not answer, and shows the closest matches instead.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .chunking import split_sentences
from .config import Settings
from .corpus import source_path
from .index import bm25_tokens
from .retrieval import Retriever, _check_query, get_retriever
from .types import Answer, Citation, Passage

log = logging.getLogger(__name__)

ABSTAIN_TEXT = "The documents do not contain an answer to this question."
# Weights of the sentence score; tuned on SQuAD (benchmarks/answers.py), not on single questions.
W_DENSE, W_LEXICAL, W_RANK = 0.55, 0.45, 0.10
MAX_EMBEDDED_SENTENCES = 8
SECOND_SENTENCE_RATIO = 0.92
LONG_SENTENCE_CHARS = 400

# Words that make a question lean on the conversation before it.
_ANAPHORA = {
    "he",
    "she",
    "it",
    "they",
    "him",
    "her",
    "them",
    "his",
    "hers",
    "its",
    "their",
    "theirs",
    "that",
    "this",
    "those",
    "these",
    "there",
    "then",
    "such",
    "same",
    "former",
    "latter",
}
_FOLLOW_UP_OPENERS = ("and ", "but ", "also ", "what about", "how about", "why", "when", "where")
_WORD = re.compile(r"[\w’'-]+")
_ENTITY = re.compile(r"\b[A-Z][\w’'-]*(?:\s+[A-Z][\w’'-]*)*")


@dataclass
class _Candidate:
    passage_index: int
    start: int
    end: int
    text: str
    lexical: float
    dense: float = 0.0
    score: float = 0.0


class _SourceCache:
    """Source texts read from disk for citation checks, re-read when the file changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._texts: OrderedDict[str, tuple[tuple[int, int], str]] = OrderedDict()

    def text(self, seeds_dir: Path, doc_id: str) -> str | None:
        try:
            path = source_path(seeds_dir, doc_id)
            st = path.stat()
        except (OSError, ValueError):
            return None
        key, stamp = str(path), (st.st_size, st.st_mtime_ns)
        with self._lock:
            hit = self._texts.get(key)
            if hit and hit[0] == stamp:
                return hit[1]
        try:
            text = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        with self._lock:
            self._texts[key] = (stamp, text)
            while len(self._texts) > 256:
                self._texts.popitem(last=False)
        return text


_sources = _SourceCache()


def verify_citation(citation: Citation, seeds_dir: Path) -> bool:
    """True when the source file on disk holds exactly ``quote`` at ``[start:end]``."""
    text = _sources.text(Path(seeds_dir), citation.source)
    return (
        text is not None
        and 0 <= citation.start < citation.end <= len(text)
        and text[citation.start : citation.end] == citation.quote
        and text[citation.passage_start : citation.passage_end] == citation.passage
    )


def standalone_query(question: str, history: Sequence[tuple[str, str]] | None) -> str:
    """The question, plus the key terms of the conversation when the question leans on it.

    "and when was that?" after "How many troops marched in the parade?" becomes
    "and when was that? troops marched parade". Capitalized names from the previous answer are
    carried too, so "what did he say about China?" keeps who "he" is.
    """
    question = question.strip()
    if not history:
        return question
    words = [w.lower() for w in _WORD.findall(question)]
    content = bm25_tokens([question])[0]
    leans = (
        any(w in _ANAPHORA for w in words)
        or question.lower().startswith(_FOLLOW_UP_OPENERS)
        or len([t for t in content if t]) <= 2
    )
    if not leans:
        return question
    present = {w.lower() for w in words}
    carried: list[str] = []
    for user, reply in reversed(list(history)[-2:]):
        for term in _key_terms(user or ""):
            if term.lower() not in present and term not in carried:
                carried.append(term)
        for entity in _ENTITY.findall(_strip_markers(reply or "")):
            entity = entity.strip()
            if (
                entity.lower() not in present
                and entity not in carried
                and entity.lower() not in _ANAPHORA
                and len(entity) > 2
                and not _is_sentence_start_word(entity)
            ):
                carried.append(entity)
        if carried:
            break
    return f"{question} {' '.join(carried[:8])}".strip() if carried else question


def _key_terms(text: str) -> list[str]:
    """The words of ``text`` that carry meaning (not stop words), in order."""
    stems = bm25_tokens([text])[0]
    if not stems:
        return []
    keep: list[str] = []
    for word in _WORD.findall(text):
        if bm25_tokens([word])[0] and word.lower() not in _ANAPHORA:
            keep.append(word)
    return keep


def _is_sentence_start_word(entity: str) -> bool:
    return entity in {"The", "A", "An", "In", "On", "At", "It", "This", "That", "But", "And"}


def _strip_markers(text: str) -> str:
    return re.sub(r"\[\d+\]", " ", text)


def _idf(retriever: Retriever) -> tuple[dict[str, int], np.ndarray, int]:
    """Per-term IDF from the BM25 index (document frequency = postings per term)."""
    index = retriever.index
    cached = getattr(index, "_idf_cache", None)
    if cached is not None:
        return cached
    bm25 = index.bm25
    indptr = np.asarray(bm25.scores["indptr"])
    df = np.diff(indptr).astype(np.float64)
    n = max(int(bm25.scores.get("num_docs", index.size)), 1)
    idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
    result = (bm25.vocab_dict, idf, n)
    index._idf_cache = result  # type: ignore[attr-defined]
    return result


def _lexical_scores(
    query_terms: list[str], sentences: list[str], retriever: Retriever
) -> list[float]:
    """IDF-weighted share of the question's distinct key terms that each sentence contains."""
    vocab, idf, n = _idf(retriever)
    default = math.log(1.0 + (n + 0.5) / 0.5)
    weights = {
        t: (float(idf[vocab[t]]) if t in vocab and vocab[t] < len(idf) else default)
        for t in set(query_terms)
        if t
    }
    total = sum(weights.values())
    if total <= 0:
        return [0.0] * len(sentences)
    out = []
    for terms in bm25_tokens(sentences):
        present = set(terms)
        out.append(sum(w for t, w in weights.items() if t in present) / total)
    return out


def select_sentences(
    query: str, passages: list[Passage], retriever: Retriever, settings: Settings
) -> list[_Candidate]:
    """Candidate sentences from the passages, scored, best first."""
    candidates: list[_Candidate] = []
    for i, passage in enumerate(passages):
        for a, b in split_sentences(passage.text):
            candidates.append(
                _Candidate(i, passage.start + a, passage.start + b, passage.text[a:b], 0.0)
            )
    if not candidates:
        return []
    query_terms = bm25_tokens([query])[0]
    for cand, lex in zip(
        candidates, _lexical_scores(query_terms, [c.text for c in candidates], retriever)
    ):
        cand.lexical = lex

    # Embed only the most promising sentences: the embedder is the costly part of answering.
    def prior(c: _Candidate) -> float:
        return c.lexical + W_RANK / (1 + c.passage_index)

    shortlist = sorted(candidates, key=prior, reverse=True)[:MAX_EMBEDDED_SENTENCES]
    q = retriever.embed_query(query)
    vectors = _sentence_vectors(retriever, passages, shortlist)
    for cand, vec in zip(shortlist, vectors):
        cand.dense = float(np.dot(vec, q))
    for cand in shortlist:
        length_penalty = 0.1 * max(
            0.0, (len(cand.text) - LONG_SENTENCE_CHARS) / LONG_SENTENCE_CHARS
        )
        cand.score = (
            W_DENSE * cand.dense
            + W_LEXICAL * cand.lexical
            + W_RANK / (1 + cand.passage_index)
            - length_penalty
        )
    return sorted(shortlist, key=lambda c: c.score, reverse=True)


_vector_cache: OrderedDict[tuple, np.ndarray] = OrderedDict()
_vector_lock = threading.Lock()


def _sentence_vectors(
    retriever: Retriever, passages: list[Passage], cands: list[_Candidate]
) -> np.ndarray:
    """Sentence vectors, embedded with their document title as context, cached across calls."""
    build = retriever._build_name
    keys = [(build, passages[c.passage_index].source, c.start, c.end) for c in cands]
    with _vector_lock:
        found = {k: _vector_cache[k] for k in keys if k in _vector_cache}
    missing = [i for i, k in enumerate(keys) if k not in found]
    if missing:
        texts = [cands[i].text for i in missing]
        vectors = retriever.embedder.embed(texts, batch_size=len(texts))
        with _vector_lock:
            for i, vec in zip(missing, vectors):
                _vector_cache[keys[i]] = found[keys[i]] = vec
            while len(_vector_cache) > 20_000:
                _vector_cache.popitem(last=False)
    return np.stack([found[k] for k in keys]) if keys else np.zeros((0, 1), np.float32)


def ask(
    question: str,
    history: Sequence[tuple[str, str]] | None = None,
    settings: Settings | None = None,
    retriever: Retriever | None = None,
) -> Answer:
    """Answer ``question`` (with the conversation so far in ``history``) from the index."""
    settings = settings or (retriever.settings if retriever else Settings())
    retriever = retriever or get_retriever(settings)
    question = _check_query(question, 1)
    query = standalone_query(question, history)
    passages = retriever.search(query, k=settings.answer_passages)
    answer = extractive_answer(question, query, passages, retriever, settings)
    if settings.llm_enabled and not answer.abstained:
        from .llm import generate_answer

        answer = generate_answer(answer, settings)
    return answer


def ask_stream(
    question: str,
    history: Sequence[tuple[str, str]] | None = None,
    settings: Settings | None = None,
    retriever: Retriever | None = None,
) -> Iterator[tuple[str, Answer | None]]:
    """Yield ``(text_so_far, None)`` while the answer is produced, then ``(text, Answer)``.

    Extractive answers are computed at once and revealed a few words at a time, so the chat
    shows the same streaming behaviour as the optional LLM mode.
    """
    answer = ask(question, history, settings, retriever)
    words = answer.text.split(" ")
    for i in range(1, len(words), 4):
        yield " ".join(words[:i]), None
    yield answer.text, answer


def extractive_answer(
    question: str, query: str, passages: list[Passage], retriever: Retriever, settings: Settings
) -> Answer:
    """The quoted best sentence(s) with verified citations, or an abstention."""
    ranked = select_sentences(query, passages, retriever, settings) if passages else []
    evidence = ranked[0].score if ranked else 0.0
    if not ranked or evidence < settings.abstain_threshold:
        return Answer(
            text=ABSTAIN_TEXT,
            citations=[],
            passages=passages,
            abstained=True,
            query=query,
            question=question,
            evidence_score=round(evidence, 4),
        )
    chosen = [ranked[0]]
    for cand in ranked[1:]:
        if len(chosen) >= settings.answer_sentences:
            break
        if cand.score >= SECOND_SENTENCE_RATIO * ranked[0].score and cand.lexical > 0:
            chosen.append(cand)
    chosen.sort(key=lambda c: (c.passage_index, c.start))
    citations, dropped = [], 0
    for cand in chosen:
        passage = passages[cand.passage_index]
        citation = Citation(
            n=len(citations) + 1,
            source=passage.source,
            title=passage.title,
            start=cand.start,
            end=cand.end,
            quote=cand.text,
            passage=passage.text,
            passage_start=passage.start,
            passage_end=passage.end,
        )
        if verify_citation(citation, settings.seeds_dir):
            citations.append(citation)
        else:
            dropped += 1
            log.warning(
                "dropped a citation that does not match %s[%d:%d]",
                citation.source,
                citation.start,
                citation.end,
            )
    if not citations:
        return Answer(
            text=ABSTAIN_TEXT,
            citations=[],
            passages=passages,
            abstained=True,
            query=query,
            question=question,
            evidence_score=round(evidence, 4),
            dropped_citations=dropped,
            notices=["the best evidence could not be verified against the source files"],
        )
    text = " ".join(f"“{c.quote}” [{c.n}]" for c in citations)
    return Answer(
        text=text,
        citations=citations,
        passages=passages,
        abstained=False,
        query=query,
        question=question,
        evidence_score=round(evidence, 4),
        dropped_citations=dropped,
    )


def render_markdown(answer: Answer) -> str:
    """The answer followed by its numbered excerpts (quote in bold inside its passage)."""
    lines = [answer.text, ""]
    if answer.query and answer.query != answer.question:
        lines += [f"_searched for: {answer.query}_", ""]
    for notice in answer.notices:
        lines += [f"> note: {notice}", ""]
    if answer.abstained:
        if answer.passages:
            lines.append("Closest matches:")
            for p in answer.passages[:3]:
                lines.append(
                    f"- {p.title} ({p.source}, chars {p.start}-{p.end}): {_clip(p.text, 200)}"
                )
        return "\n".join(lines).rstrip() + "\n"
    for c in answer.citations:
        a, b = c.start - c.passage_start, c.end - c.passage_start
        context = f"{_clip(c.passage[:a], 240, left=True)}**{c.quote}**{_clip(c.passage[b:], 240)}"
        lines.append(f"[{c.n}] {c.title} ({c.source}, chars {c.start}-{c.end})")
        lines.append(f"    {' '.join(context.split())}")
    return "\n".join(lines).rstrip() + "\n"


def _clip(text: str, n: int, left: bool = False) -> str:
    if len(text) <= n:
        return text
    return "…" + text[-n:] if left else text[:n] + "…"


def with_notice(answer: Answer, notice: str) -> Answer:
    return replace(answer, notices=[*answer.notices, notice])


__all__ = [
    "ask",
    "ask_stream",
    "extractive_answer",
    "render_markdown",
    "standalone_query",
    "verify_citation",
]
