"""Sentences, then token-budgeted chunks, with exact character offsets into the source text.

Every span here is a ``(start, end)`` pair into the original string, and every text is a slice
of it, so ``source[start:end] == chunk.text`` holds by construction rather than by repair.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from .types import Chunk, Document

if TYPE_CHECKING:
    import tiktoken

Span = tuple[int, int]
TITLE_PREFIX_CHARS = 200


def embedding_text(title: str, text: str, with_title: bool) -> str:
    """What is embedded / BM25-indexed for a chunk: its text, after its title if it lacks it."""
    if not with_title or not title:
        return text
    title = title[:TITLE_PREFIX_CHARS]
    if title in text[: len(title) + 64]:
        return text
    return f"{title}\n{text}"


# A sentence ends at . ! ? or … (possibly followed by closing quotes/brackets), then whitespace.
_END = re.compile(r"[.!?…]+[\"'”’)\]»]*(?=\s)")
_ABBREVIATIONS = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "prof",
    "sr",
    "jr",
    "st",
    "vs",
    "etc",
    "e.g",
    "i.e",
    "cf",
    "al",
    "fig",
    "figs",
    "no",
    "vol",
    "pp",
    "approx",
    "inc",
    "ltd",
    "co",
    "corp",
    "gen",
    "gov",
    "rep",
    "sen",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
}
_OPENERS = "\"'“‘([«¿¡"


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Sentence spans of ``text[start:end]``, trimmed of surrounding whitespace.

    Line breaks always end a sentence (paragraphs, list items, bylines); inside a line a
    sentence ends at terminal punctuation followed by a capital, digit or opening quote, unless
    the word before it is a known abbreviation or an initial.
    """
    end = len(text) if end is None else end
    spans: list[Span] = []
    for line_start, line_end in _lines(text, start, end):
        cut = line_start
        for match in _END.finditer(text, line_start, line_end):
            stop = match.end()
            nxt = _next_non_space(text, stop, line_end)
            if nxt is None:
                break
            following = text[nxt]
            if not (following.isupper() or following.isdigit() or following in _OPENERS):
                continue
            if text[match.start()] == "." and _is_abbreviation(text, cut, match.start()):
                continue
            spans.append((cut, stop))
            cut = nxt
        spans.append((cut, line_end))
    return [s for s in (_trim(text, a, b) for a, b in spans) if s[1] > s[0]]


def _lines(text: str, start: int, end: int) -> Iterator[Span]:
    pos = start
    while pos < end:
        newline = text.find("\n", pos, end)
        if newline == -1:
            yield pos, end
            return
        yield pos, newline
        pos = newline + 1


def _next_non_space(text: str, pos: int, end: int) -> int | None:
    while pos < end and text[pos].isspace():
        pos += 1
    return pos if pos < end else None


def _is_abbreviation(text: str, sentence_start: int, dot: int) -> bool:
    word_start = dot
    while word_start > sentence_start and not text[word_start - 1].isspace():
        word_start -= 1
    word = text[word_start:dot].lstrip(_OPENERS)
    if len(word) == 1 and word.isalpha():  # an initial: "J. K. Rowling"
        return True
    if re.fullmatch(r"(?:[A-Za-z]\.)+[A-Za-z]", word):  # U.S, e.g, Ph.D
        return True
    return word.lower() in _ABBREVIATIONS


def _trim(text: str, start: int, end: int) -> Span:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


class Chunker:
    """Packs whole sentences into chunks of at most ``max_tokens`` tiktoken tokens.

    Consecutive chunks share up to ``overlap`` tokens of whole sentences. A sentence longer than
    the budget is cut at token boundaries. ``fits`` is an extra check a chunk text must pass
    (the embedder uses it to keep every chunk inside its own wordpiece window).
    """

    def __init__(
        self,
        encoding: tiktoken.Encoding,
        max_tokens: int = 200,
        overlap: int = 32,
        fits: Callable[[str], bool] | None = None,
        max_chunks: int | None = None,
    ) -> None:
        if max_tokens < 8:
            raise ValueError("max_tokens must be at least 8")
        if not 0 <= overlap < max_tokens:
            raise ValueError("overlap must be >= 0 and smaller than max_tokens")
        self.encoding = encoding
        self.max_tokens = max_tokens
        self.overlap = overlap
        self.fits = fits
        self.max_chunks = max_chunks

    def count(self, text: str) -> int:
        return len(self.encoding.encode_ordinary(text))

    def _ok(self, text: str) -> tuple[bool, int]:
        n = self.count(text)
        return (n <= self.max_tokens and (self.fits is None or self.fits(text))), n

    def spans(
        self, text: str, start: int = 0, end: int | None = None
    ) -> list[tuple[int, int, int]]:
        """``(start, end, n_tokens)`` for every chunk of ``text[start:end]``."""
        sentences = split_sentences(text, start, end)
        if not sentences:
            return []
        # One call per sentence: tiktoken's *_batch starts a thread pool per call, which costs
        # far more than encoding a few sentences.
        counts = [len(self.encoding.encode_ordinary(text[a:b])) for a, b in sentences]
        out: list[tuple[int, int, int]] = []
        i, n = 0, len(sentences)
        cap = self.max_chunks
        while i < n and (cap is None or len(out) < cap):
            j, total = i, 0
            while j < n and total + counts[j] <= self.max_tokens:
                total += counts[j]
                j += 1
            # Verify the real count (tokens can merge across sentence joins) and the extra check.
            while j > i:
                ok, real = self._ok(text[sentences[i][0] : sentences[j - 1][1]])
                if ok:
                    break
                j -= 1
            if j == i:  # one sentence alone is too long: cut it at token boundaries
                out.extend(self._split_long(text, *sentences[i]))
                i += 1
                continue
            out.append((sentences[i][0], sentences[j - 1][1], real))
            if j >= n:
                break
            k, carried = j, 0
            while k - 1 > i and carried + counts[k - 1] <= self.overlap:
                carried += counts[k - 1]
                k -= 1
            i = k
        return out

    def _split_long(self, text: str, start: int, end: int) -> list[tuple[int, int, int]]:
        """Cut one over-long sentence at token boundaries. Each piece starts from the last
        window that fitted (a run the model's window shrinks, such as 20 kB of ``<``, is not
        searched again from the full budget), and the next piece starts at least 3/4 of a
        window further on (the overlap shrinks in proportion to the window), so the work and the
        number of pieces stay proportional to the text."""
        piece = text[start:end]
        tokens = self.encoding.encode_ordinary(piece)
        _, offsets = self.encoding.decode_with_offsets(tokens)
        offsets = [min(o, len(piece)) for o in offsets] + [len(piece)]
        out: list[tuple[int, int, int]] = []
        a, fitted = 0, self.max_tokens
        while a < len(tokens) and (self.max_chunks is None or len(out) < self.max_chunks):
            width, failed = fitted, None
            while True:
                ok, real, b, s, e = self._window(piece, offsets, a, width)
                if ok or width <= 1:
                    break
                failed = width
                width = max(
                    1,
                    width * 3 // 4
                    if real <= self.max_tokens
                    else width - (real - self.max_tokens) - 1,
                )
            if ok and failed is not None and fitted == self.max_tokens:
                # The first shrink: the widest window that fits, by bisection (once per run).
                lo, hi = width, failed
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    found = self._window(piece, offsets, a, mid)
                    if found[0]:
                        lo, (ok, real, b, s, e) = mid, found
                    else:
                        hi = mid
                width = lo
            fitted = width
            if e > s:
                out.append((start + s, start + e, real))
            if b >= len(tokens):
                break
            span = b - a  # the overlap shrinks with the window, to at most a quarter of it
            a += max(1, span - min(self.overlap * span // self.max_tokens, span // 4))
        return out

    def _window(
        self, piece: str, offsets: list[int], a: int, width: int
    ) -> tuple[bool, int, int, int, int]:
        """``(fits, tokens, b, start, end)`` of the piece of ``width`` tokens from token ``a``."""
        b = min(a + width, len(offsets) - 1)
        s, e = _trim(piece, offsets[a], offsets[b])
        ok, real = self._ok(piece[s:e]) if e > s else (True, 0)
        return ok, real, b, s, e

    def chunk(self, document: Document) -> list[Chunk]:
        """The document's chunks; none straddles one of its section ``breaks``."""
        text = document.text
        bounds = sorted({0, len(text), *(b for b in document.breaks if 0 < b < len(text))})
        out: list[Chunk] = []
        for a, b in zip(bounds, bounds[1:]):
            if self.max_chunks is not None and len(out) >= self.max_chunks:
                break
            out += [
                Chunk(doc_id=document.id, start=s, end=e, text=text[s:e], n_tokens=n)
                for s, e, n in self.spans(text, a, b)
            ]
        return out if self.max_chunks is None else out[: self.max_chunks]
