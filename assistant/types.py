"""Frozen dataclasses with plain fields: what flows between the modules and out to callers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Document:
    """A seed file, decoded or extracted. ``id`` is its path relative to the seeds folder.

    ``sha256`` is the file's; for an extracted format (PDF, DOCX, HTML, EPUB) ``text`` is what
    its ``extractor`` made of it, and ``marks`` say where pages and sections start:
    ``(offset, page or None, locator)``. Chunks do not straddle the offsets in ``breaks``.
    """

    id: str
    title: str
    text: str
    sha256: str
    format: str = "txt"
    extractor: str = ""
    pages: int | None = None
    marks: tuple[tuple[int, int | None, str], ...] = ()
    breaks: tuple[int, ...] = ()


@dataclass(frozen=True)
class Chunk:
    """A token-budgeted span of a document: ``document.text[start:end] == text``."""

    doc_id: str
    start: int
    end: int
    text: str
    n_tokens: int


@dataclass(frozen=True)
class Passage:
    """A retrieved piece of evidence, with the scores that put it where it is."""

    text: str
    source: str
    title: str
    start: int
    end: int
    score: float
    dense_score: float | None = None
    dense_rank: int | None = None
    lexical_score: float | None = None
    lexical_rank: int | None = None
    chunk_ids: tuple[int, ...] = ()
    marks: tuple[tuple[int, int | None, str], ...] = ()  # pages/sections in effect, see Document

    def where(self, offset: int | None = None) -> tuple[int | None, str | None]:
        """``(page, locator)`` at ``offset`` (default: the passage start), from ``marks``."""
        return locate(self.marks, self.start if offset is None else offset)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Citation:
    """A verbatim quote: ``source_text[start:end] == quote``, checked before it is shown.

    The source text is the file on disk for ``.txt``/``.md``, else the text the build extracted
    and stored. ``page`` is the PDF page the quote starts on; ``locator`` what to show: "p. 4",
    "§ Warranty > Claims".
    """

    n: int
    source: str
    title: str
    start: int
    end: int
    quote: str
    passage: str
    passage_start: int
    passage_end: int
    page: int | None = None
    locator: str | None = None
    answer_start: int | None = None  # the answering phrase inside the quote, when located
    answer_end: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def quoting(
        cls, n: int, passage: Passage, start: int, end: int, span: tuple[int, int] | None = None
    ) -> Citation:
        """Citation ``[n]`` of the source span ``[start:end]``, which lies inside ``passage``
        (``span``: the answering phrase, as source offsets inside the quote)."""
        return cls(
            n=n,
            source=passage.source,
            title=passage.title,
            start=start,
            end=end,
            quote=passage.text[start - passage.start : end - passage.start],
            passage=passage.text,
            passage_start=passage.start,
            passage_end=passage.end,
            page=passage.where(start)[0],
            locator=passage.where(start)[1],
            answer_start=span[0] if span else None,
            answer_end=span[1] if span else None,
        )


def locate(
    marks: tuple[tuple[int, int | None, str], ...], offset: int
) -> tuple[int | None, str | None]:
    """The page and locator in effect at ``offset``: the last mark at or before it (a page
    mark gives both; a section mark keeps the page of the page mark before it)."""
    page, locator = None, None
    for at, mark_page, mark_locator in marks:
        if at > offset:
            break
        page = mark_page if mark_page is not None else page
        locator = mark_locator
    if locator and locator.startswith("§") and page is not None:
        locator = f"p. {page}, {locator}"
    return page, locator


@dataclass(frozen=True)
class Answer:
    """What the assistant says: markdown ``text`` with ``[n]`` markers that refer to ``citations``."""

    text: str
    citations: list[Citation]
    passages: list[Passage]
    abstained: bool
    query: str
    question: str = ""
    evidence_score: float = 0.0  # the abstention model's input summary: the best sentence score
    mode: str = "extractive"
    notices: list[str] = field(default_factory=list)
    dropped_citations: int = 0
    confidence: float = 0.0  # fitted probability (0-1) that the quoted evidence answers
    kind: str = "fact"  # "fact", "summary" or "metadata"
    stale: str = ""  # when the seeds changed since the build: what is not indexed yet

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BuildReport:
    """What a build did, in numbers."""

    documents: int
    new: int
    changed: int
    removed: int
    unchanged: int
    embedded_chunks: int
    reused_chunks: int
    total_chunks: int
    skipped: list[tuple[str, str]]
    seconds: float
    full: bool
    index_dir: str
    up_to_date: bool = False
    resumed_chunks: int = 0  # vectors taken from the checkpoint of an interrupted build
    warnings: list[str] = field(default_factory=list)
    # A distributed build (``assistant build --ray``): per worker, what it embedded
    # ({"worker", "node", "pid", "documents", "chunks"}); empty for a build in one process.
    workers: list[dict] = field(default_factory=list)

    def summary(self) -> str:
        text = (
            f"{counted(self.documents, 'document')}: {self.new} new, {self.changed} changed, "
            f"{self.removed} removed, {self.unchanged} unchanged; "
            f"embedded {self.embedded_chunks} chunks, reused {self.reused_chunks}"
        )
        if self.resumed_chunks:
            text += f", {self.resumed_chunks} from the checkpoint of an interrupted build"
        if self.up_to_date:
            text += " (index already up to date)"
        return text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``"1 document"``, ``"3 documents"``."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


class Passages(list):
    """``retrieve()``'s result: a list of ``Passage``, with ``stale`` saying what the build
    answering it does not cover yet (``""`` when up to date)."""

    def __init__(self, passages: Any = (), stale: str = "") -> None:
        super().__init__(passages)
        self.stale = stale
