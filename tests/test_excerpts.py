"""Excerpts and titles as readers see them (issue 25, part 8).

An excerpt's context starts and ends at a sentence or between words, never inside a word; a
title is the document's heading or a short first line, else its file name, never a clipped
sentence; an excerpt's character offsets are in its details, not its heading; the documents
table stays readable on a 360-400 px screen (the CSS is checked here, the layout in
tests/test_browser.py where Chromium is installed).
"""

from __future__ import annotations

import html
import random
import re

import pytest

from assistant import app as web
from assistant.answer.render import clip_context, render_markdown
from assistant.app.style import CSS
from assistant.cli import render_text
from assistant.corpus import display_title, name_title, parse_document
from assistant.types import Answer, Citation, Passage

WORDS = [
    "the",
    "northern",
    "beacon",
    "uses",
    "a",
    "xenon",
    "lamp",
    "that",
    "was",
    "fitted",
    "in",
    "nineteen",
    "eighty",
    "seven",
    "by",
    "a",
    "crew",
    "of",
    "volunteers",
    "who",
    "rowed",
    "out",
    "from",
    "the",
    "harbour",
    "every",
    "morning",
    "before",
    "light",
]


def _prose(rng: random.Random, words: int) -> str:
    """Sentences of random words, some ending in a full stop, the last one unfinished."""
    out = []
    for i in range(words):
        word = rng.choice(WORDS)
        out.append(word.capitalize() if i == 0 or out[-1].endswith(".") else word)
        if rng.random() < 0.08:
            out[-1] += "."
    return " ".join(out)


def _word_edges_ok(text: str, shown: str, left: bool) -> None:
    """``shown`` is ``text`` whole, or a part of it that begins (``left``) or ends between two
    words or at a sentence, marked with "…" where words were left out."""
    if shown == text:
        return
    if left:
        core = shown.removeprefix("…").lstrip()
        assert text.endswith(core), (text, shown)
        before = text[: len(text) - len(core)]
        assert not before or before[-1].isspace(), (text, shown)  # not inside a word
        if not shown.startswith("…"):  # a sentence start
            assert before.rstrip()[-1] in ".!?", (text, shown)
    else:
        core = shown.removesuffix("…").rstrip()
        assert text.startswith(core), (text, shown)
        rest = text[len(core) :]
        assert not rest or rest[0].isspace(), (text, shown)
        if not shown.endswith("…"):  # a sentence end
            assert core[-1] in ".!?", (text, shown)


def test_clip_context_never_cuts_inside_a_word():
    rng = random.Random(25)
    for _ in range(400):
        text = _prose(rng, rng.randint(1, 80))
        n = rng.randint(10, 300)
        for left in (False, True):
            shown = clip_context(text, n, left)
            _word_edges_ok(text, shown, left)
            assert len(shown) <= n + 1  # at most the window and its "…"


def test_clip_context_prefers_a_sentence_and_keeps_what_touches_the_quote():
    before = "An opening sentence that is long enough to be cut. Then the lead-in to the quote: "
    assert clip_context(before, 40, left=True) == "Then the lead-in to the quote: "
    after = ", said the keeper. She went home after the storm had passed over the island"
    assert clip_context(after, 30) == ", said the keeper."
    assert clip_context("a" * 100, 20) == "…"  # one overlong word: left out, not cut
    assert clip_context("x " + "a" * 100, 20, left=True) == "…"


# --- excerpts as the web app, Markdown and the CLI show them -------------------------------------

LEAD = (
    "Weather permitting, the crew sets out at first light and the boat reaches the island "
    "after a long crossing in which nobody speaks and everybody watches the straight, the "
    "rocks on either side and the old keeper's cottage with its green shutters closed against "
    "the spray that rises from the reef whenever the tide turns and the wind backs westerly"
)
QUOTE = "The beacon uses a xenon lamp."
TAIL = (
    " Its beam reaches forty kilometres on a clear night and is seen from the mainland "
    "coast by fishermen who steer by it through the winter months when storms are frequent "
    "and the harbour lights of the villages along the shore are hidden by rain and low cloud "
    "for days on end, so that the beacon is often the only light they see between the capes"
)


def _citation(title: str = "Field manual", source: str = "manual.pdf", **kw) -> Citation:
    passage = LEAD + " " + QUOTE + TAIL
    start = 5000 + len(LEAD) + 1
    return Citation(
        n=1, source=source, title=title, start=start, end=start + len(QUOTE), quote=QUOTE,
        passage=passage, passage_start=5000, passage_end=5000 + len(passage), **kw,
    )  # fmt: skip


def _answer(*citations: Citation) -> Answer:
    return Answer(
        text=f"{QUOTE} [1]", citations=list(citations), passages=[], abstained=False,
        query="what lamp", question="what lamp", confidence=0.9,
    )  # fmt: skip


def _context(shown: str) -> tuple[str, str]:
    """The text before and after the quote in one shown excerpt line."""
    before, after = shown.split(QUOTE)
    return before.strip(), after.strip()


@pytest.mark.parametrize("budget", [60, 100, 240])
def test_excerpt_context_starts_and_ends_at_words(budget, monkeypatch):
    """The passage around the quote is cut where a naive cut falls mid-word ("…traight")."""
    monkeypatch.setattr("assistant.app.render.CONTEXT_CHARS", budget)
    c = _citation(page=3, locator="p. 3")
    html_passage = re.search(r'<div class="passage">(.*?)</div>', web.render_citation(c))[1]
    html_passage = html.unescape(re.sub(r"<[^>]+>", "", html_passage))
    markdown = render_markdown(_answer(c)).splitlines()[-1].replace("**", "")
    text = render_text(_answer(c)).splitlines()[-1]
    for shown in (html_passage, markdown, text):
        before, after = _context(shown)
        assert before.startswith("…") and after.endswith("…")  # clipped on both sides
        _word_edges_ok(LEAD + " ", before + " ", left=True)
        _word_edges_ok(TAIL.strip(), after, left=False)


def test_offsets_only_in_the_excerpt_details():
    c = _citation(page=17, locator="p. 17")
    rendered = web.render_citation(c)
    summary, body = rendered.split("</summary>")
    assert "chars" not in summary and "manual.pdf · p. 17" in summary
    details = body.split('<div class="files">')[1]
    assert '<span class="offsets"' in details and f"chars {c.start}-{c.end}" in details
    match = web.render_match(
        Passage(text=LEAD, source="a.txt", title="A", start=7, end=90, score=0.1)
    )
    summary, body = match.split("</summary>")
    assert "chars" not in summary and "chars 7-90" in body.split('<div class="files">')[1]
    # Markdown and the terminal: the heading names the file and the page; offsets stay in the
    # Python objects (and ``--json``).
    for out in (render_markdown(_answer(c)), render_text(_answer(c))):
        assert "[1] Field manual (manual.pdf, p. 17)" in out and "chars" not in out
    assert _answer(c).to_dict()["citations"][0]["start"] == c.start


# --- titles --------------------------------------------------------------------------------------

LONG_FIRST = (
    "Kim Jong Un, offering closing remarks at a twice-a-decade party conclave, left the door "
    "open for talks with the U.S. while presenting an ultimatum.\nMore text follows here.\n"
)


@pytest.mark.parametrize(
    "name, text, title",
    [
        ("guide.md", "# Lighthouse keeping\n\nThe lamp is lit at dusk.\n", "Lighthouse keeping"),
        ("notes.txt", "Quill Island lighthouse\n\nIt was painted teal in 1987.\n",
         "Quill Island lighthouse"),
        ("kim-jong-un-party-congress.txt", LONG_FIRST, "Kim jong un party congress"),
        ("field_notes-2024.txt", "x" * 300 + "\nmore\n", "Field notes 2024"),
        ("Quill-Island-notes.txt", "w" * 300 + "\n", "Quill Island notes"),
    ],
)  # fmt: skip
def test_title_is_heading_or_short_first_line_else_the_file_name(name, text, title):
    doc = parse_document(name, name, text.encode())
    assert display_title(doc.title, doc.id) == title
    assert "…" not in display_title(doc.title, doc.id)


def test_a_clipped_title_is_never_shown_on_excerpts_or_in_the_documents_table():
    doc = parse_document("kim-jong-un-party-congress.txt", "k.txt", LONG_FIRST.encode())
    assert not isinstance(doc, str), doc
    assert doc.title.endswith("…")  # stored as before: it is part of the embedded text
    c = _citation(title=doc.title, source=doc.id)
    shown = [web.render_citation(c), render_markdown(_answer(c)), render_text(_answer(c))]
    info = {"built": True, "documents": {doc.id: {"title": doc.title, "chunks": 5}}}
    shown.append(web.render_documents(info))
    for out in shown:
        assert "Kim jong un party congress" in out and doc.title not in out
        assert "offering closing remarks" not in out
    assert name_title("notes/my_long-file.txt") == "My long file"
    assert name_title("Annual-Report.pdf") == "Annual Report"


# --- the documents table on a narrow screen ------------------------------------------------------


def test_documents_table_scrolls_instead_of_breaking_headers_letter_by_letter():
    info = {
        "built": True,
        "documents": {"a-very-long-file-name-without-spaces.txt": {"title": "T", "chunks": 1}},
    }
    html = web.render_documents(info)
    assert '<div class="docs-scroll"><table class="docs-table">' in html
    css = " ".join(CSS.split())
    assert ".docs .docs-scroll { overflow-x: auto;" in css
    assert ".docs .docs-table th { white-space: nowrap; }" in css
    # Gradio's Markdown sets overflow-wrap: anywhere; the table's cells undo it.
    cells = re.search(r"\.docs \.docs-table td, \.docs \.docs-table th \{([^}]*)\}", css)[1]
    assert "word-break: normal" in cells and "overflow-wrap: normal" in cells
    assert "@media (max-width: 480px)" in css
