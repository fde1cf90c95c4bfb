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

from .bm25 import bm25_tokens
from .chunking import split_sentences
from .config import Settings
from .corpus import source_path
from .retrieval import Retriever, _check_query, get_retriever
from .sources import is_extracted, stored_text
from .types import Answer, Citation, Passage

log = logging.getLogger(__name__)

ABSTAIN_TEXT = "The documents do not contain an answer to this question."
# Weights of the sentence score, the shortlist and the evidence score. Tuned on SQuAD v1.1 dev
# questions of the *tuning* sample of benchmarks/answers.py (1,000 questions, and 6 held-out
# articles for abstention), never on the reported sample: a coordinate search over these
# constants maximizing excerpt hit + 0.3 x answer hit, with the cosine of every sentence known.
W_DENSE, W_LEXICAL, W_RANK, W_LENGTH = 0.2, 0.2, 0.05, 0.0
P_CONTEXT = 0.1  # shortlist prior: a sentence whose neighbours match the question is embedded
E_DENSE, E_LEXICAL = 0.55, 0.45  # evidence score of the best sentence (see evidence_score)
MAX_EMBEDDED_SENTENCES = 8  # sentences embedded per question (cached across questions) ...
MIN_EMBEDDED_SENTENCES = 3
SHORTLIST_MARGIN = 0.25  # ... beyond the first 3, only those this close to the best prior
SECOND_SENTENCE_MARGIN = 0.3
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
# Question words, auxiliaries and pronouns: not content to look for in a sentence. These are
# stems as ``bm25_tokens`` gives them (its English stop list is short).
_QUESTION_STOP = {
    "what",
    "which",
    "who",
    "whom",
    "whose",
    "when",
    "where",
    "why",
    "how",
    "whi",
    "mani",
    "much",
    "do",
    "doe",
    "did",
    "done",
    "has",
    "have",
    "had",
    "is",
    "are",
    "were",
    "been",
    "be",
    "can",
    "could",
    "would",
    "should",
    "may",
    "might",
    "must",
    "shall",
    "he",
    "she",
    "him",
    "her",
    "hi",
    "his",
    "i",
    "you",
    "we",
    "us",
    "our",
    "your",
    "my",
    "me",
    "about",
    "kind",
    "type",
    "name",
    "call",
    "term",
    "some",
    "one",
    "from",
    "also",
    "so",
    "than",
    "there",
    "onli",
    "veri",
    "between",
    "other",
    "after",
    "befor",
    "dure",
}
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
    position: int = 0  # sentence number inside its passage
    context: float = 0.0  # best lexical score of the sentences next to it


class _SourceCache:
    """Source texts read from disk for citation checks, re-read when the file changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._texts: OrderedDict[str, tuple[tuple[int, int], str]] = OrderedDict()

    def text(self, seeds_dir: Path, doc_id: str) -> str | None:
        if is_extracted(doc_id):  # PDF, DOCX, HTML...: the text the build stored
            return stored_text(seeds_dir, doc_id)
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


_PERSON_PRONOUNS = {"he", "she", "him", "her", "his", "hers", "they", "them", "their", "theirs"}
_NOT_NAMES = {
    "The",
    "A",
    "An",
    "In",
    "On",
    "At",
    "It",
    "This",
    "That",
    "These",
    "Those",
    "But",
    "And",
    "Or",
    "If",
    "When",
    "Where",
    "What",
    "Who",
    "Why",
    "How",
    "Which",
    "Then",
    "There",
    "Their",
    "He",
    "She",
    "They",
    "We",
    "I",
    "You",
    "His",
    "Her",
    "Its",
    "Our",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
}


def standalone_query(question: str, history: Sequence[tuple[str, str]] | None) -> str:
    """The question, plus what it refers to in the conversation when it leans on it.

    A question leans on the conversation when it has a pronoun or "that"/"there"/"then", opens
    like a continuation ("and ...", "what about ..."), or has at most two content words. Then:

    - "and when was that?" after "How many troops marched in the parade?" carries the previous
      question's key terms: "and when was that? troops marched parade";
    - a person pronoun ("what did he say about China?") carries the names of the previous turn
      (from the question, else the leading names of the answer), so who "he" is stays known.

    Earlier turns are used when the last one has nothing to carry (a chain of follow-ups).
    """
    question = question.strip()
    if not history:
        return question
    words = [w.lower() for w in _WORD.findall(question)]
    content = [t for t in _content_terms(question) if t]
    leans = (
        any(w in _ANAPHORA for w in words)
        or question.lower().startswith(_FOLLOW_UP_OPENERS)
        or len(content) <= 2
    )
    if not leans:
        return question
    present = {w.lower() for w in words}
    person = any(w in _PERSON_PRONOUNS for w in words)
    carried: list[str] = []

    def carry(term: str) -> None:
        have = present | {w.lower() for c in carried for w in c.split()}
        if any(w.lower() not in have for w in term.split()):
            carried.append(term)

    for user, reply in reversed(list(history)[-3:]):
        user, reply = user or "", _strip_markers(reply or "")
        names = _names(user)
        if person:  # the first name asked about, else the answer's main name
            for name in (names and [_first(user, names)]) or _names(reply)[:1]:
                carry(name)
            if len(content) <= 1:  # "what did he say?": the topic is carried too
                for term in _key_terms(user):
                    carry(term)
        else:
            for term in _key_terms(user):
                carry(term)
            for name in names:
                carry(name)
        if carried:
            break
    return f"{question} {' '.join(carried[:8])}".strip() if carried else question


def _names(text: str) -> list[str]:
    """Capitalized names in ``text`` (not sentence openers, pronouns, days or months), longest
    and most frequent first."""
    counts: dict[str, int] = {}
    order: list[str] = []
    for match in _ENTITY.finditer(text):
        parts = match.group(0).split()
        while parts and parts[0] in _NOT_NAMES:
            parts = parts[1:]
        name = " ".join(parts).strip("’'-")
        if len(name) < 3 or name.lower() in _ANAPHORA or name.isupper() and len(name) > 6:
            continue
        if name not in counts:
            order.append(name)
        counts[name] = counts.get(name, 0) + 1
    return sorted(order, key=lambda n: (-len(n.split()), -counts[n], order.index(n)))


def _first(text: str, names: list[str]) -> str:
    return min(names, key=lambda n: text.find(n))


def _content_terms(text: str) -> list[str]:
    """Stemmed terms of ``text`` without question words, auxiliaries and pronouns."""
    return [t for t in bm25_tokens([text])[0] if t not in _QUESTION_STOP]


def _key_terms(text: str) -> list[str]:
    """The words of ``text`` that carry meaning (not stop words), in order."""
    stems = bm25_tokens([text])[0]
    if not stems:
        return []
    keep: list[str] = []
    for word in _WORD.findall(text):
        if _content_terms(word) and word.lower() not in _ANAPHORA:
            keep.append(word)
    return keep


def _is_sentence_start_word(entity: str) -> bool:
    return entity in {"The", "A", "An", "In", "On", "At", "It", "This", "That", "But", "And"}


def _strip_markers(text: str) -> str:
    return re.sub(r"\[\d+\]", " ", text)


# --------------------------------------------------------------------------- metadata questions

# Questions about the document itself rather than its content: who wrote it, when it was dated.
_AUTHOR_Q = re.compile(
    r"\b(?:who\s+(?:wrote|writes|authored|penned|reported|filed)|author|byline|written\s+by|"
    r"writer|reporter|journalist|correspondent)\b",
    re.I,
)
_DATE_Q = re.compile(
    r"\b(?:published|publication|posted|dated|dateline|released|issued|written|filed)\b|"
    r"\b(?:what|which)\s+(?:is\s+|was\s+)?(?:the\s+)?date\b|\bwhen\s+(?:is|was)\s+(?:it|this)\b",
    re.I,
)
# Words that only say "this document": an authorship/date question with nothing else in it is
# about the document, not about its content ("Who wrote it?" vs "Who wrote the anthem?").
_META_WORDS = {
    "who",
    "whom",
    "wrote",
    "write",
    "writes",
    "written",
    "author",
    "authors",
    "authored",
    "byline",
    "writer",
    "reporter",
    "journalist",
    "correspondent",
    "reported",
    "filed",
    "penned",
    "it",
    "this",
    "that",
    "article",
    "story",
    "piece",
    "document",
    "report",
    "text",
    "post",
    "news",
    "the",
    "a",
    "an",
    "is",
    "was",
    "were",
    "did",
    "does",
    "do",
    "of",
    "what",
    "which",
    "when",
    "date",
    "dated",
    "published",
    "publication",
    "posted",
    "released",
    "issued",
    "dateline",
    "on",
    "by",
    "and",
    "s",
    "'s",
    "whose",
    "name",
    "names",
    "tell",
    "me",
    "please",
}
_EMAIL = r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
_NAME = r"[A-Z][\w.'’-]+(?:\s+(?:[A-Z][\w.'’-]+|de|van|von|da|al|bin))*"
_BYLINE = re.compile(
    rf"^\s*(?:(?:written|reported|reporting|compiled|edited)\s+by|by|write\s+to|contact|"
    rf"authors?\s*:|byline\s*:)\s+{_NAME}(?:(?:\s*,\s*|\s+and\s+){_NAME})*"
    rf"(?:\s+at\s+{_EMAIL})?[.\s]*$|^\s*{_NAME}\s*(?:[,|/–—-]\s*)?{_EMAIL}\s*$",
    re.I,
)
_DATE_VALUE = (
    r"(?:\d{4}-\d{2}-\d{2}(?:[T ][\d:]+Z?)?|\d{1,2}\s+[A-Z][a-z]+\.?\s+\d{4}|"
    r"[A-Z][a-z]+\.?\s+\d{1,2},?\s+\d{4}|\d{1,2}/\d{1,2}/\d{2,4})"
)
_DATE_LINE = re.compile(
    rf"^\s*(?:(?:date|dated|published|updated|posted|dateline)\s*[:\-–—]?\s*{_DATE_VALUE}|"
    rf"{_DATE_VALUE}\s*$)",
    re.I,
)
META_EVIDENCE = 1.0  # a metadata line that matches a metadata question is strong evidence


def metadata_question(question: str) -> str | None:
    """``"author"`` or ``"date"`` when the question asks who wrote / when the document was dated,
    with no other content words (so it is about the document, not a topic in it)."""
    words = [w.lower() for w in _WORD.findall(question)]
    if any(w not in _META_WORDS and w not in _ANAPHORA for w in words):
        return None
    if _AUTHOR_Q.search(question):
        return "author"
    if _DATE_Q.search(question):
        return "date"
    return None


def metadata_spans(text: str, kind: str) -> list[tuple[int, int, int, int]]:
    """``(start, end, line_start, line_end)`` of byline (``author``) or date (``date``) lines of
    ``text``: the matched part of the line is the quote, the line is its context."""
    spans = []
    pattern = _BYLINE if kind == "author" else _DATE_LINE
    pos = 0
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        if body.strip() and (kind == "date" or len(body) <= 200):
            m = pattern.search(body)
            if m:
                a = m.start() + (len(m.group(0)) - len(m.group(0).lstrip()))
                b = m.end() - (len(m.group(0)) - len(m.group(0).rstrip()))
                if b > a:
                    spans.append((pos + a, pos + b, pos, pos + len(body)))
        pos += len(line)
    return spans


def _metadata_candidates(
    kind: str, passages: list[Passage], seeds_dir: Path
) -> list[tuple[Passage, int, int]]:
    """Byline/date lines of the documents of the top passages, as ``(passage, start, end)``
    where the passage is the line (and the line before it) read from the file on disk."""
    out: list[tuple[Passage, int, int]] = []
    seen: set[str] = set()
    for p in passages:
        if p.source in seen:
            continue
        seen.add(p.source)
        text = _sources.text(Path(seeds_dir), p.source)
        if not text:
            continue
        spans = metadata_spans(text, kind)
        # Bylines usually close an article and dates open it: prefer those ends.
        spans.sort(key=lambda s: -s[0] if kind == "author" else s[0])
        for start, end, line_start, line_end in spans[:1]:
            context_start = text.rfind("\n", 0, max(0, line_start - 1)) + 1
            if line_start - context_start > 300:
                context_start = line_start
            passage = replace(
                p,
                text=text[context_start:line_end],
                start=context_start,
                end=line_end,
                chunk_ids=(),
            )
            out.append((passage, start, end))
        if out:
            break
    return out


def _lexical_scores(
    query_terms: list[str], sentences: list[str], retriever: Retriever
) -> list[float]:
    """IDF-weighted share of the question's distinct key terms that each sentence contains."""
    index = retriever.index
    n = max(index.size, 1)
    weights = {
        t: math.log(1.0 + (n - df + 0.5) / (df + 0.5))
        for t, df in index.document_frequencies(t for t in query_terms if t).items()
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
    """Candidate sentences from the passages, scored, best first (the embedded shortlist)."""
    return _select(query, passages, retriever)[0]


def _select(
    query: str, passages: list[Passage], retriever: Retriever
) -> tuple[list[_Candidate], list[_Candidate]]:
    """The scored shortlist, best first, and every candidate sentence (with cheap features)."""
    candidates: list[_Candidate] = []
    for i, passage in enumerate(passages):
        spans = split_sentences(passage.text)
        for j, (a, b) in enumerate(spans):
            candidates.append(
                _Candidate(i, passage.start + a, passage.start + b, passage.text[a:b], 0.0)
            )
            candidates[-1].position = j
    if not candidates:
        return [], []
    lexical = _lexical_scores(_content_terms(query), [c.text for c in candidates], retriever)
    for cand, lex in zip(candidates, lexical):
        cand.lexical = lex
    by_place = {(c.passage_index, c.position): c for c in candidates}
    for cand in candidates:
        before = by_place.get((cand.passage_index, cand.position - 1))
        after = by_place.get((cand.passage_index, cand.position + 1))
        cand.context = max(before.lexical if before else 0.0, after.lexical if after else 0.0)

    # Embed only the most promising sentences: the embedder is the costly part of answering.
    # At most MAX_EMBEDDED_SENTENCES, only those whose prior is close to the best one, and
    # never fewer than MIN_EMBEDDED_SENTENCES (so a second passage can be quoted).
    ordered = sorted(candidates, key=_prior, reverse=True)
    top = _prior(ordered[0])
    shortlist = [
        c
        for i, c in enumerate(ordered[:MAX_EMBEDDED_SENTENCES])
        if i < MIN_EMBEDDED_SENTENCES or _prior(c) >= top - SHORTLIST_MARGIN
    ]
    q = retriever.embed_query(query)
    vectors = _sentence_vectors(retriever, passages, shortlist)
    for cand, vec in zip(shortlist, vectors):
        cand.dense = float(np.dot(vec, q))
        cand.score = _score(cand)
    return sorted(shortlist, key=lambda c: c.score, reverse=True), candidates


def _prior(c: _Candidate) -> float:
    """Cheap score that picks the sentences worth embedding."""
    return c.lexical + P_CONTEXT * c.context + W_RANK / (1 + c.passage_index) - _length_penalty(c)


def _length_penalty(c: _Candidate) -> float:
    return W_LENGTH * max(0.0, (len(c.text) - LONG_SENTENCE_CHARS) / LONG_SENTENCE_CHARS)


def _score(c: _Candidate) -> float:
    """How well the sentence answers: meaning (cosine to the question), IDF-weighted coverage
    of the question's key terms, passage rank, minus a penalty for very long sentences."""
    return (
        W_DENSE * c.dense
        + W_LEXICAL * c.lexical
        + W_RANK / (1 + c.passage_index)
        - _length_penalty(c)
    )


def evidence_score(best: _Candidate) -> float:
    """How strongly the corpus supports an answer: the best sentence's cosine to the question
    and its coverage of the question's key terms (rank and answer type left out)."""
    return E_DENSE * best.dense + E_LEXICAL * best.lexical


_vector_cache: OrderedDict[tuple, np.ndarray] = OrderedDict()
_vector_lock = threading.Lock()
stats: dict[str, int] = {}  # sentences embedded vs. served from the cache (benchmarks read it)


def _sentence_vectors(
    retriever: Retriever, passages: list[Passage], cands: list[_Candidate]
) -> np.ndarray:
    """Sentence vectors, embedded with their document title as context, cached across calls."""
    build = retriever._build_name
    keys = [(build, passages[c.passage_index].source, c.start, c.end) for c in cands]
    with _vector_lock:
        found = {k: _vector_cache[k] for k in keys if k in _vector_cache}
    missing = [i for i, k in enumerate(keys) if k not in found]
    stats["embedded"] = stats.get("embedded", 0) + len(missing)
    stats["cached"] = stats.get("cached", 0) + len(keys) - len(missing)
    if missing:
        texts = [cands[i].text for i in missing]
        vectors = retriever.embedder.embed(texts, batch_size=len(texts))
        with _vector_lock:
            for i, vec in zip(missing, vectors):
                _vector_cache[keys[i]] = found[keys[i]] = vec
            while len(_vector_cache) > 20_000:
                _vector_cache.popitem(last=False)
    return np.stack([found[k] for k in keys]) if keys else np.zeros((0, 1), np.float32)


def _prepare(
    question: str,
    history: Sequence[tuple[str, str]] | None,
    settings: Settings | None,
    retriever: Retriever | None,
) -> tuple[Settings, Answer]:
    settings = settings or (retriever.settings if retriever else Settings())
    retriever = retriever or get_retriever(settings)
    question = _check_query(question, 1)
    query = standalone_query(question, history)
    passages = retriever.search(query, k=settings.answer_passages)
    return settings, extractive_answer(question, query, passages, retriever, settings)


def ask(
    question: str,
    history: Sequence[tuple[str, str]] | None = None,
    settings: Settings | None = None,
    retriever: Retriever | None = None,
) -> Answer:
    """Answer ``question`` (with the conversation so far in ``history``) from the index.

    ``history`` is a list of ``(user, assistant)`` turns; a question that leans on them ("and
    when was that?") is searched as a standalone query built from them (``Answer.query``).
    With an LLM endpoint configured, the LLM writes the answer from the same passages.
    """
    settings, answer = _prepare(question, history, settings, retriever)
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

    With an LLM endpoint, the LLM's text is yielded as its tokens arrive. Extractive answers are
    computed at once and revealed a few words at a time, so the chat behaves the same way.
    """
    settings, answer = _prepare(question, history, settings, retriever)
    if settings.llm_enabled and not answer.abstained:
        from .llm import stream_answer

        yield from stream_answer(answer, settings)
        return
    words = answer.text.split(" ")
    for i in range(1, len(words), 4):
        yield " ".join(words[:i]), None
    yield answer.text, answer


def extractive_answer(
    question: str, query: str, passages: list[Passage], retriever: Retriever, settings: Settings
) -> Answer:
    """The quoted best sentence(s) with verified citations, or an abstention."""
    picks: list[tuple[Passage, int, int]] = []
    evidence = 0.0
    kind = metadata_question(question)
    if kind and passages:
        picks = _metadata_candidates(kind, passages, settings.seeds_dir)
        evidence = META_EVIDENCE if picks else 0.0
    if not picks:
        ranked = _select(query, passages, retriever)[0] if passages else []
        evidence = evidence_score(ranked[0]) if ranked else 0.0
        if ranked and evidence >= settings.abstain_threshold:
            chosen = _choose(ranked, settings.answer_sentences)
            picks = [(passages[c.passage_index], c.start, c.end) for c in chosen]
    if not picks:
        return _abstain(question, query, passages, evidence)
    citations, dropped = [], 0
    for passage, start, end in picks:
        citation = Citation.quoting(len(citations) + 1, passage, start, end)
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
        return _abstain(
            question,
            query,
            passages,
            evidence,
            dropped=dropped,
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


def _choose(ranked: list[_Candidate], limit: int) -> list[_Candidate]:
    """The best sentence, plus (up to ``limit``) the best ones from other passages within
    ``SECOND_SENTENCE_MARGIN`` of it; best first.

    A second quote from another passage covers the frequent case where the best-matching
    sentence sits in a passage next to, not in, the one that answers; within one passage the
    excerpt shown around the quote already gives the neighbouring sentences."""
    best = ranked[0]
    chosen = [best]
    for cand in ranked[1:]:
        if len(chosen) >= limit:
            break
        if (
            cand.score >= best.score - SECOND_SENTENCE_MARGIN
            and cand.lexical > 0
            and all(cand.passage_index != c.passage_index for c in chosen)
        ):
            chosen.append(cand)
    return chosen


def _abstain(
    question: str,
    query: str,
    passages: list[Passage],
    evidence: float,
    dropped: int = 0,
    notices: list[str] | None = None,
) -> Answer:
    return Answer(
        text=ABSTAIN_TEXT,
        citations=[],
        passages=passages,
        abstained=True,
        query=query,
        question=question,
        evidence_score=round(evidence, 4),
        dropped_citations=dropped,
        notices=notices or [],
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
        where = f"{c.locator}, " if c.locator else ""  # "p. 17, " for a PDF
        lines.append(f"[{c.n}] {c.title} ({c.source}, {where}chars {c.start}-{c.end})")
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
