"""Questions about the document itself ("Who wrote it?", "When was it published?"), answered
from its byline or date line rather than from its content."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from ..types import Passage
from .citations import source_text

_WORD = re.compile(r"[\w’'-]+")
# Pronouns that stand for the document in "Who wrote it?".
_ANAPHORA = {"it", "this", "that", "these", "those", "its"}

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


def metadata_candidates(
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
        text = source_text(Path(seeds_dir), p.source)
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
