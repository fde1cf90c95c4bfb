"""Quotes as citations, and their check against the source: every citation shown is a verbatim
span of a source file at its stated offsets. Shared by the extractive reader and the LLM mode."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from pathlib import Path

from ..corpus import source_path
from ..sources import is_extracted, stored_text
from ..types import Citation, Passage

log = logging.getLogger(__name__)


class _SourceCache:
    """Source texts read from disk for citation checks, re-read when the file changes."""

    def __init__(self, limit: int = 256) -> None:
        self._lock = threading.Lock()
        self._texts: OrderedDict[str, tuple[tuple[int, int], str]] = OrderedDict()
        self.limit = limit

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
            while len(self._texts) > self.limit:
                self._texts.popitem(last=False)
        return text


_sources = _SourceCache()


def source_text(seeds_dir: Path, doc_id: str) -> str | None:
    """The text citations of ``doc_id`` are checked against (None if it cannot be read)."""
    return _sources.text(Path(seeds_dir), doc_id)


def verify_citation(citation: Citation, seeds_dir: Path) -> bool:
    """True when the source holds exactly ``quote`` at ``[start:end]`` and the passage at its
    offsets (and the answer phrase, if any, lies inside the quote)."""
    text = source_text(seeds_dir, citation.source)
    span_ok = citation.answer_start is None or (
        citation.start <= citation.answer_start < citation.answer_end <= citation.end
    )
    return (
        text is not None
        and span_ok
        and 0 <= citation.start < citation.end <= len(text)
        and text[citation.start : citation.end] == citation.quote
        and text[citation.passage_start : citation.passage_end] == citation.passage
    )


def verified_citations(
    picks: list[tuple[Passage, int, int, tuple[int, int] | None]], seeds_dir: Path
) -> tuple[list[Citation], int]:
    """Citations ``[1]``, ``[2]``, ... for ``(passage, start, end, answer span)`` picks, keeping
    only those that verify; and how many were dropped (each logged)."""
    citations: list[Citation] = []
    dropped = 0
    for passage, start, end, span in picks:
        citation = Citation.quoting(len(citations) + 1, passage, start, end, span)
        if verify_citation(citation, seeds_dir):
            citations.append(citation)
        else:
            dropped += 1
            log.warning(
                "dropped a citation that does not match %s[%d:%d]",
                citation.source,
                citation.start,
                citation.end,
            )
    return citations, dropped
