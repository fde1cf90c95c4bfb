"""Markdown for an answer: the text, then each numbered excerpt with its quote in bold."""

from __future__ import annotations

from dataclasses import replace

from ..types import Answer, Citation


def split_quote(c: Citation) -> tuple[str, str, str]:
    """The quote as (before, answer phrase, after); the phrase is empty when not located."""
    if c.answer_start is None or c.answer_end is None:
        return c.quote, "", ""
    a, b = c.answer_start - c.start, c.answer_end - c.start
    return c.quote[:a], c.quote[a:b], c.quote[b:]


def bold_span(c: Citation) -> str:
    before, phrase, after = split_quote(c)
    return f"{before}**{phrase}**{after}" if phrase else before


def render_markdown(answer: Answer) -> str:
    """The answer followed by its numbered excerpts (quote in bold inside its passage)."""
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
                lines.append(
                    f"- {p.title} ({p.source}, chars {p.start}-{p.end}): {_clip(p.text, 200)}"
                )
        return "\n".join(lines).rstrip() + "\n"
    if answer.kind == "fact" and answer.citations:
        lines += [f"_confidence {answer.confidence:.0%}_", ""]
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
