"""Helpers the extractors share: a text builder that records block offsets, pages and sections,
and whitespace and hyphenation clean-up."""

from __future__ import annotations

import re

from . import Extracted, Mark

_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ufffe\uffff]")


def clean_inline(text: str) -> str:
    """One line of text: control characters removed, runs of spaces collapsed, trimmed."""
    return _SPACES.sub(" ", _CONTROL.sub("", text.replace("\n", " "))).strip()


class TextBuilder:
    """Appends blocks (paragraphs, table rows, headings) and remembers where each starts.

    Blocks are separated by a blank line; ``row`` blocks (table rows) by a single newline, so
    a table stays together. Headings open a section: a break for the chunker and a mark
    ``§ Heading > Subheading`` for citations.
    """

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pos = 0
        self.marks: list[Mark] = []
        self.breaks: list[int] = []
        self.headings: list[tuple[int, str]] = []  # (level, text) of the open headings
        self._last_row = False
        self._page: int | None = None
        self._pending: int | None = None

    def _sep(self, row: bool) -> None:
        if self.parts:
            sep = "\n" if (row and self._last_row) else "\n\n"
            self.parts.append(sep)
            self.pos += len(sep)

    def block(self, text: str, row: bool = False) -> int | None:
        text = text.strip()
        if not text:
            return None
        self._sep(row)
        start = self.pos
        if self._pending is not None:
            self.marks.append((start, self._pending, f"p. {self._pending}"))
            self._pending = None
        self.parts.append(text)
        self.pos += len(text)
        self._last_row = row
        return start

    def heading(self, text: str, level: int) -> None:
        text = clean_inline(text)
        if not text:
            return
        while self.headings and self.headings[-1][0] >= level:
            self.headings.pop()
        self.headings.append((level, text))
        start = self.block(text)
        assert start is not None
        path = " > ".join(h for _, h in self.headings)
        self.breaks.append(start)
        self.marks.append((start, self._page, f"§ {path}"))

    def page(self, number: int) -> None:
        """The next block starts page ``number`` (1-based)."""
        self._page = self._pending = number
        self._last_row = False

    def result(self, title: str | None = None, pages: int | None = None) -> Extracted:
        text = "".join(self.parts)
        marks = [(min(a, len(text)), p, _short(loc, title)) for a, p, loc in self.marks]
        return Extracted(
            text=text, format="", title=title, pages=pages, marks=marks, breaks=self.breaks
        )


def _short(locator: str, title: str | None) -> str:
    """``§ Handbook > Warranty`` is shown as ``§ Warranty`` when "Handbook" is the title."""
    if title and locator.startswith(f"§ {title} > "):
        return "§ " + locator[len(f"§ {title} > ") :]
    return locator


def join_hyphenated(lines: list[str]) -> list[str]:
    """Join a word broken at a line end: ``"treat-" + "ment of"`` becomes ``"treatment of"``."""
    out: list[str] = []
    for line in lines:
        if out and re.search(r"[A-Za-z]-$", out[-1]) and re.match(r"[a-z]", line):
            out[-1] = out[-1][:-1] + line
        else:
            out.append(line)
    return out


def markdown_marks(text: str) -> list[Mark]:
    """``§ Heading > Subheading`` marks at each markdown ``#`` heading (outside code fences)."""
    marks: list[Mark] = []
    stack: list[tuple[int, str]] = []
    fenced = False
    pos = 0
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced:
            found = re.match(r"(#{1,6})\s+(.+?)\s*#*\s*$", stripped)
            if found:
                level, heading = len(found.group(1)), found.group(2).strip()
                while stack and stack[-1][0] >= level:
                    stack.pop()
                stack.append((level, heading))
                marks.append((pos + line.index("#"), None, "§ " + " > ".join(h for _, h in stack)))
        pos += len(line)
    return marks
