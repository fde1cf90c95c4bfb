"""Markdown for an answer: the text, then each numbered excerpt with its quote in bold."""

from __future__ import annotations

import re
from dataclasses import replace

from ..chunking import split_sentences
from ..corpus import display_title
from ..types import Answer, Citation

_SPACE = re.compile(r"\s")


def split_quote(c: Citation) -> tuple[str, str, str]:
    """The quote as (before, answer phrase, after); the phrase is empty when not located."""
    if c.answer_start is None or c.answer_end is None:
        return c.quote, "", ""
    a, b = c.answer_start - c.start, c.answer_end - c.start
    return c.quote[:a], c.quote[a:b], c.quote[b:]


def bold_span(c: Citation) -> str:
    before, phrase, after = split_quote(c)
    return f"{before}**{phrase}**{after}" if phrase else before


def clip_context(text: str, n: int, left: bool = False) -> str:
    """``text``, the context after a quote (or before it, ``left``), in about ``n`` characters.

    Whole when it fits; else cut at a sentence boundary in the outer half of the window (no
    mark: a sentence is a natural edge), else between two words with "…" where text was left
    out: never inside a word. What touches the quote is kept as it is."""
    if len(text) <= n:
        return text
    if left:
        cut = len(text) - n  # keep text[cut:] at most
        for start, _end in split_sentences(text):
            if cut <= start <= cut + n // 2:
                return text[start:]
        if not text[cut - 1].isspace():  # cut inside a word: start after it
            space = _SPACE.search(text, cut)
            if space is None:  # one overlong word before the quote: leave it out
                return "…"
            cut = space.start()
        tail = text[cut:].lstrip()
        return "…" + tail if tail else "… "
    ends = [end for _start, end in split_sentences(text) if n // 2 <= end <= n]
    if ends:
        return text[: ends[-1]]
    if text[n].isspace():
        cut = n
    else:  # the last space in the window; none: one overlong word after the quote, left out
        cut = max((m.start() for m in _SPACE.finditer(text, 0, n)), default=0)
    head = text[:cut].rstrip()
    if head:
        return head + "…"
    return " …" if text[:1].isspace() else "…"


def render_markdown(answer: Answer) -> str:
    """The answer followed by its numbered excerpts (quote in bold inside its passage). An
    excerpt's heading names the document and the place (``p. 17``); its character offsets are
    in ``answer.citations`` (and ``--json``), not shown here."""
    text = answer.text
    if answer.mode == "extractive" and answer.kind == "fact" and not answer.abstained:
        text = " ".join(f"“{bold_span(c)}” [{c.n}]" for c in answer.citations)
    lines = [text, ""]
    if answer.query and answer.query != answer.question:
        lines += [f"_searched for: {answer.query}_", ""]
    for notice in answer.notices:
        lines += [f"> note: {notice}", ""]
    if answer.abstained:
        if answer.passages:
            lines.append("Closest matches:")
            for p in answer.passages[:3]:
                title = display_title(p.title, p.source)
                body = " ".join(clip_context(p.text, 200).split())
                lines.append(f"- {title} ({p.source}): {body}")
        return "\n".join(lines).rstrip() + "\n"
    if answer.kind == "fact" and answer.citations:
        lines += [f"_confidence {answer.confidence:.0%}_", ""]
    for c in answer.citations:
        a, b = c.start - c.passage_start, c.end - c.passage_start
        before = clip_context(c.passage[:a], 240, left=True)
        context = f"{before}**{c.quote}**{clip_context(c.passage[b:], 240)}"
        where = f", {c.locator}" if c.locator else ""  # ", p. 17" for a PDF
        lines.append(f"[{c.n}] {display_title(c.title, c.source)} ({c.source}{where})")
        lines.append(f"    {' '.join(context.split())}")
    return "\n".join(lines).rstrip() + "\n"


def with_notice(answer: Answer, notice: str) -> Answer:
    return replace(answer, notices=[*answer.notices, notice])
