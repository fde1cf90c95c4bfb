"""Pure planning: from the previous build's manifest and the seed diff to what the new build
writes (documents to embed, documents kept, and the segments: linked, rewritten or merged).
Nothing here reads or writes files."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import CorruptIndexError
from ..extract import is_plain
from .layout import FIX_FULL
from .manifest import placed, segments_of


@dataclass
class DocumentRows:
    """A document to write with its chunk rows ``(start, end, n_tokens, text)``."""

    id: str
    title: str
    sha256: str
    stat: dict  # the file's facts as read: only its size is recorded (no times: a clone differs)
    rows: list[tuple[int, int, int, str]]
    format: str = "txt"
    extractor: str = ""
    pages: int | None = None
    text: str | None = None  # the extracted text, stored for formats other than plain text
    marks: tuple = ()

    def manifest_entry(self) -> dict:
        entry = {"sha256": self.sha256, "title": self.title, "size": self.stat.get("size")}
        if not is_plain(self.format):  # plain formats are told by the file name
            entry["format"] = self.format
        if self.extractor:
            entry["extractor"] = self.extractor
        if self.pages is not None:
            entry["pages"] = self.pages
        return entry


@dataclass
class BuildInput:
    """What a store writes as its next build (either store: ``StoreBackend.write``): the new
    documents' rows with ``vectors`` (one row per chunk, in order), and the documents of
    ``previous`` (the store's own handle on its live build) ``kept`` without re-embedding."""

    dim: int
    model_max_tokens: int
    docs: Sequence[DocumentRows]
    vectors: np.ndarray
    previous: Any = None
    kept: dict[str, dict] = field(default_factory=dict)  # {doc id: file facts ({"size"})}
    skipped: Sequence[tuple[str, str]] = ()
    skipped_files: dict[str, dict] = field(default_factory=dict)
    source: dict | None = None  # what the build was made from (default: the seeds folder)

    def __post_init__(self) -> None:
        self.vectors = np.ascontiguousarray(self.vectors, dtype=np.float32).reshape(-1, self.dim)
        chunks = sum(len(d.rows) for d in self.docs)
        if len(self.vectors) != chunks:
            raise ValueError(f"{len(self.vectors)} vectors for {chunks} chunks")


MERGE_FACTOR = 4  # this many segments of one size class are merged into one of the next class
MAX_SEGMENTS = 12  # beyond this, the two smallest neighbours are merged (a search visits each)


@dataclass
class OldPart:
    """Documents of a previous segment: ``ranges`` are ``(first local id, chunks, doc id)``."""

    segment: dict
    ranges: list[tuple[int, int, str]]

    @property
    def whole(self) -> bool:
        return sum(n for _, n, _ in self.ranges) == self.segment["chunks"]


@dataclass
class NewPart:
    docs: Sequence[DocumentRows]
    vectors: np.ndarray


@dataclass
class Planned:
    """A segment of the new build: its parts in order, and the old segment it links, if any."""

    parts: list[OldPart | NewPart]
    size: int
    link: dict | None = None


def plan_segments(
    manifest: dict | None,
    kept: dict[str, dict],
    docs: Sequence[DocumentRows],
    vectors: np.ndarray,
) -> list[Planned]:
    """The new build's segments: the previous ones (linked if all their documents are kept,
    else rewritten without the others), then one for ``docs``; then merges, log-structured:
    when ``MERGE_FACTOR`` trailing segments are of the same size class (chunks, in powers of
    ``MERGE_FACTOR``) or smaller, they become one. Each chunk is so rewritten about
    log4(chunks) times over the life of an index, and there are few segments to search.
    """
    items: list[Planned] = []
    if manifest is not None:
        segments = segments_of(manifest)
        ranges: dict[str, list[tuple[int, int, str]]] = {s["name"]: [] for s in segments}
        firsts = {s["name"]: first for first, s in placed(manifest)}
        for doc_id, info in manifest["documents"].items():
            name = info.get("segment", ".")
            if name not in ranges:
                raise CorruptIndexError(f"document {doc_id!r} names a missing segment; {FIX_FULL}")
            ranges[name].append((info["first_chunk"] - firsts[name], info["chunks"], doc_id))
        for s in segments:
            keep = sorted(r for r in ranges[s["name"]] if r[2] in kept)
            if not keep:
                continue
            part = OldPart(s, keep)
            whole = part.whole and len(keep) == len(ranges[s["name"]])
            items.append(Planned([part], sum(n for _, n, _ in keep), link=s if whole else None))
    if docs or not items:
        items.append(Planned([NewPart(docs, vectors)], len(vectors)))

    def size_class(n: int) -> int:
        return int(math.log(max(n, 1), MERGE_FACTOR))

    def merge(lo: int, hi: int) -> None:
        group = items[lo:hi]
        items[lo:hi] = [Planned([p for g in group for p in g.parts], sum(g.size for g in group))]

    while len(items) > 1:
        level = size_class(items[-1].size)
        run = 1
        while run < len(items) and size_class(items[-1 - run].size) <= level:
            run += 1
        if run >= MERGE_FACTOR:
            merge(len(items) - run, len(items))
        elif len(items) > MAX_SEGMENTS:
            pair = min(range(len(items) - 1), key=lambda i: items[i].size + items[i + 1].size)
            merge(pair, pair + 2)
        else:
            break
    return items
