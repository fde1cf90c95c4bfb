"""One build opened read-only for search: FAISS in memory, BM25 memory-mapped, chunks read
from SQLite on demand; and ``load_index``, which checks a build before opening it."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..bm25 import Bm25Stats, Speller, bm25_tokens
from ..config import Settings
from ..corpus import sha256_bytes
from ..errors import CorruptIndexError, IndexMissingError, StaleIndexError
from ..sources import Stored, register
from ..types import Passage
from .diff import diff, shown_changes
from .integrity import verify_files
from .layout import CHUNKS, FIX, FIX_FULL, current_build
from .lifecycle import Retirable
from .manifest import check_compatible, chunk_ranges, read_manifest
from .segments import Segment, open_segments

if TYPE_CHECKING:
    import faiss


def _top(parts: list[tuple[np.ndarray, np.ndarray]], n: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` best of several ``(scores, ids)`` lists, best first (ties by lower id)."""
    if len(parts) == 1:
        return parts[0]
    scores = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.float32)
    ids = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
    order = np.lexsort((ids, -scores))[:n]
    return scores[order], ids[order]


def _best(parts: list[tuple[np.ndarray, np.ndarray]], n: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` best of unsorted ``(scores, ids)`` lists, best first (ties by lower id)."""
    scores = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.float32)
    ids = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
    order = np.lexsort((ids, -scores))[:n]
    return scores[order].astype(np.float32), ids[order].astype(np.int64)


SCOPE_BLOCK = 16_384  # vectors read back at a time by a search limited to some documents


def _read_back(index: faiss.Index, ids: np.ndarray) -> np.ndarray:
    """The stored vectors of local ids ``ids`` (an IVF index gets its direct map first)."""
    try:
        return index.reconstruct_batch(ids)
    except RuntimeError:
        import faiss

        faiss.extract_index_ivf(index).make_direct_map()
        return index.reconstruct_batch(ids)


def marks_over(record: Stored | None, start: int, end: int) -> tuple:
    """The page/section marks of ``record`` in effect over ``[start, end)``: the last one at or
    before ``start`` (and the last page mark before it), then those inside."""
    if record is None or not record.marks:
        return ()
    before = [m for m in record.marks if m[0] <= start]
    head = before[-1:]
    pages = [m for m in before if m[1] is not None]
    if pages and head and head[0][1] is None:
        head = [pages[-1], head[0]]
    return tuple(head + [m for m in record.marks if start < m[0] < end])


class LoadedIndex(Retirable):
    """One build, opened read-only: FAISS in memory, chunks read from SQLite on demand.

    A search runs over every segment and merges by score; BM25 scores each segment with the
    whole build's statistics, so the ranking is the one a single index would give.
    """

    def __init__(self, build: Path, manifest: dict, segments: list[Segment]) -> None:
        super().__init__()
        self.build = build
        self.manifest = manifest
        self.segments = segments
        self._db_lock = threading.Lock()
        self._firsts = np.array([s.first for s in segments], np.int64)
        self.size = int(manifest["counts"]["chunks"])
        self._by_name = {s.name: s for s in segments}
        self._stored: dict[str, Stored | None] = {}
        self.speller = Speller([s.bm25 for s in segments])

    @property
    def name(self) -> str:
        return self.build.name

    def stored(self, doc_id: str) -> Stored | None:
        """The document's stored extraction (text for PDF/DOCX/HTML/EPUB, section marks), or
        None for a plain document without marks (and for a build older than format 4)."""
        if doc_id in self._stored:
            return self._stored[doc_id]
        info = self.manifest["documents"].get(doc_id)
        seg = self._by_name.get(info.get("segment", ".")) if info else None
        record = None
        if seg is not None and seg.has_extracted:
            with self._db_lock:
                row = seg.db.execute(
                    "SELECT text, marks, text_sha256 FROM extracted WHERE doc_id = ?", (doc_id,)
                ).fetchone()
            if (
                row is not None
                and row[0] is not None
                and sha256_bytes(row[0].encode("utf-8")) != row[2]
            ):
                raise CorruptIndexError(
                    f"{seg.path / CHUNKS}: the stored text of {doc_id!r} does not match its "
                    f"sha256; {FIX_FULL}"
                )
            if row is not None:
                record = Stored(
                    text=row[0],
                    marks=tuple((int(a), p, str(loc)) for a, p, loc in json.loads(row[1])),
                    sha256=info["sha256"],
                    size=info.get("size"),
                    mtime_ns=info.get("mtime_ns"),
                    ctime_ns=info.get("ctime_ns"),
                )
        with self._db_lock:
            if len(self._stored) > 4096:
                self._stored.clear()
            self._stored[doc_id] = record
        return record

    def with_marks(self, passage: Passage) -> Passage:
        """``passage`` with the page/section marks over its span (for its citations' locators)."""
        marks = self.marks_for(passage.source, passage.start, passage.end)
        return dataclasses.replace(passage, marks=marks) if marks else passage

    def marks_for(self, doc_id: str, start: int, end: int) -> tuple:
        """The page/section marks in effect over ``[start, end)``: the last one at or before
        ``start`` (and the last page mark before it), then those inside."""
        return marks_over(self.stored(doc_id), start, end)

    def query_terms(self, query: str) -> tuple[list[str], dict[str, str]]:
        """The BM25 terms of ``query``, misspellings corrected against the vocabulary, and the
        corrections made (``{typed: corrected}``)."""
        return self.speller.correct_all(bm25_tokens([query])[0])

    @property
    def faiss(self) -> faiss.Index:
        """The first (largest) segment's FAISS index: all of them in a one-segment build."""
        return self.segments[0].faiss

    def close(self) -> None:
        """Close the chunk stores now (searches still running on this build then fail)."""
        with self._db_lock:
            self._closed = True
            for s in self.segments:
                s.db.close()
                # Drop the memory maps too: each holds a handle to its (maybe deleted) file.
                s.bm25 = s.faiss = None
            self.speller = None

    def chunk_ids(self) -> np.ndarray:
        """Every chunk id of the build: ``0 .. size - 1``."""
        return np.arange(self.size, dtype=np.int64)

    def chunk_rows(self, ids: Iterable[int]) -> dict[int, tuple[str, int, int, str, str]]:
        """``{id: (doc_id, start, end, text, title)}`` for the given chunk ids."""
        ids = sorted({int(i) for i in ids})
        if not ids:
            return {}
        where = np.searchsorted(self._firsts, ids, side="right") - 1
        out: dict[int, tuple[str, int, int, str, str]] = {}
        for s_no in np.unique(where):
            if s_no < 0:
                continue
            seg = self.segments[int(s_no)]
            local = [i - seg.first for i, w in zip(ids, where) if w == s_no]
            marks = ",".join("?" * len(local))
            sql = (
                "SELECT c.id, c.doc_id, c.start, c.end, c.text, d.title FROM chunks c "
                f"JOIN documents d ON d.id = c.doc_id WHERE c.id IN ({marks})"
            )
            try:
                with self._db_lock:
                    rows = seg.db.execute(sql, local).fetchall()
            except sqlite3.DatabaseError as exc:
                raise CorruptIndexError(f"{seg.path / CHUNKS}: {exc}; {FIX_FULL}") from exc
            out.update({seg.first + r[0]: (r[1], r[2], r[3], r[4], r[5]) for r in rows})
        return out

    def _runs(self, docs: Collection[str]) -> list[tuple[Segment, int, int]]:
        """The chunks of documents ``docs`` as ``(segment, first, end)`` runs of local ids."""
        out = []
        for a, b in chunk_ranges(self.manifest, docs):
            while a < b:
                seg = self.segments[int(np.searchsorted(self._firsts, a, side="right") - 1)]
                end = min(b, seg.first + seg.size)
                out.append((seg, a - seg.first, end - seg.first))
                a = end
        return out

    def _dense_within(self, query: np.ndarray, n: int, docs: Collection[str]) -> tuple:
        """The ``n`` best chunks of ``docs`` for ``query``, scored exactly: their vectors are
        read back and compared one by one (an HNSW or IVF search filtered to a few documents
        would miss some of them), a block at a time."""
        parts = []
        for seg, a, b in self._runs(docs):
            for lo in range(a, b, SCOPE_BLOCK):
                ids = np.arange(lo, min(b, lo + SCOPE_BLOCK), dtype=np.int64)
                scores = _read_back(seg.faiss, ids) @ query
                if len(ids) > n:
                    keep = np.argpartition(-scores, n - 1)[:n]
                    ids, scores = ids[keep], scores[keep]
                parts.append((scores.astype(np.float32), ids + seg.first))
        return _best(parts, n)

    def dense_search(
        self, vector: np.ndarray, n: int, docs: Collection[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        n = min(n, self.size)
        if n <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        if docs is not None:
            return self._dense_within(np.asarray(vector, np.float32).reshape(-1), n, docs)
        query = vector.reshape(1, -1).astype(np.float32)
        parts = []
        for seg in self.segments:
            m = min(n, seg.size)
            if m <= 0:
                continue
            scores, ids = seg.faiss.search(query, m)
            keep = ids[0] >= 0
            parts.append((scores[0][keep], ids[0][keep] + seg.first))
        return _top(parts, n)

    def lexical_search(
        self, query: str, n: int, docs: Collection[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        n = min(n, self.size)
        if n <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        tokens = self.query_terms(query)[0]
        if docs is not None:
            return self._lexical_within(tokens, n, docs)
        if len(self.segments) == 1:
            return self.segments[0].bm25.top(tokens, n)
        stats = Bm25Stats.over([s.bm25 for s in self.segments], tokens)
        parts = []
        for seg in self.segments:
            if seg.size:
                scores, ids = seg.bm25.top(tokens, min(n, seg.size), stats)
                parts.append((scores, ids + seg.first))
        return _top(parts, n)

    def _lexical_within(self, tokens: list[str], n: int, docs: Collection[str]) -> tuple:
        """The ``n`` best chunks of ``docs`` by BM25 (scored with the whole build's statistics,
        as an unlimited search scores them), score above 0."""
        stats = (
            None
            if len(self.segments) == 1
            else Bm25Stats.over([s.bm25 for s in self.segments], tokens)
        )
        by_segment: dict[str, list[np.ndarray]] = {}
        for seg, a, b in self._runs(docs):
            by_segment.setdefault(seg.name, []).append(np.arange(a, b, dtype=np.int64))
        parts = []
        for name, runs in by_segment.items():
            seg = self._by_name[name]
            ids = np.concatenate(runs)
            scores = seg.bm25.get_scores(tokens, stats)[ids]
            keep = scores > 0
            parts.append((scores[keep], ids[keep] + seg.first))
        return _best(parts, n)

    def _query_all(self, sql: str, args: tuple = ()) -> list[tuple[Segment, tuple]]:
        out = []
        for seg in self.segments:
            try:
                with self._db_lock:
                    rows = seg.db.execute(sql, args).fetchall()
            except sqlite3.DatabaseError as exc:
                raise CorruptIndexError(f"{seg.path / CHUNKS}: {exc}; {FIX_FULL}") from exc
            out.extend((seg, r) for r in rows)
        return out

    def documents(self) -> dict[str, str]:
        """``{document id: title}`` of every document in the build."""
        return {r[0]: r[1] for _, r in self._query_all("SELECT id, title FROM documents")}

    def document_chunks(self, doc_id: str) -> dict[int, tuple[str, int, int, str, str]]:
        """``{chunk id: (doc_id, start, end, text, title)}`` of one document, in text order."""
        sql = (
            "SELECT c.id, c.doc_id, c.start, c.end, c.text, d.title FROM chunks c "
            "JOIN documents d ON d.id = c.doc_id WHERE c.doc_id = ?"
        )
        rows = self._query_all(sql, (doc_id,))
        rows.sort(key=lambda sr: sr[1][2])  # by start, across segments
        return {seg.first + r[0]: (r[1], r[2], r[3], r[4], r[5]) for seg, r in rows}

    def vectors(self, ids: Iterable[int]) -> np.ndarray:
        """The stored vectors of these chunk ids (read back from FAISS), in order."""
        import faiss

        out = []
        for cid in ids:
            s_no = int(np.searchsorted(self._firsts, int(cid), side="right") - 1)
            seg = self.segments[s_no]
            try:
                out.append(seg.faiss.reconstruct(int(cid) - seg.first))
            except RuntimeError:  # an IVF index needs its direct map first
                faiss.extract_index_ivf(seg.faiss).make_direct_map()
                out.append(seg.faiss.reconstruct(int(cid) - seg.first))
        return np.stack(out) if out else np.zeros((0, self.manifest["dim"]), np.float32)

    def document_frequencies(self, terms: Iterable[str]) -> dict[str, int]:
        """How many chunks of the build contain each term (all segments)."""
        return {t: sum(s.bm25.df(t) for s in self.segments) for t in set(terms)}


def load_index(settings: Settings, check_seeds: bool = False) -> LoadedIndex:
    """Open the live build, after checking it is complete, intact and matches ``settings``.

    A build older than the seeds is opened as it is (the retriever reports what it lacks);
    ``check_seeds=True`` refuses it with ``StaleIndexError`` instead."""
    for attempt in range(3):
        build = current_build(settings.index_dir)
        if build is None:
            from ..corpus import seeds_advice  # create the folder / add documents / build

            advice = seeds_advice(settings.seeds_dir)
            raise IndexMissingError(f"no index in {str(settings.index_dir)!r}; {advice}")
        try:
            return _load_build(settings, build, check_seeds)
        except CorruptIndexError:
            # Two builds swapped in while this one was being opened: the second removed it.
            # That is not damage; open the build that is live now.
            if attempt == 2 or current_build(settings.index_dir) == build:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _load_build(settings: Settings, build: Path, check_seeds: bool) -> LoadedIndex:
    manifest = read_manifest(build)
    check_compatible(manifest, settings)
    verify_files(build, manifest)
    if check_seeds and manifest.get("source", {}).get("kind") == "seeds":
        changes = diff(settings, manifest).changes()
        if changes:
            raise StaleIndexError(
                f"seeds changed since the index was built ({shown_changes(changes)}); {FIX}"
            )
    # read_manifest checked that the segments add up to the chunk count; opening checks each.
    loaded = LoadedIndex(build, manifest, open_segments(build, manifest))
    register(settings.seeds_dir, loaded)  # citations of PDFs etc. verify against its texts
    return loaded
