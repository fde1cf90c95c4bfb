"""Build, load and swap the index folder: manifest, FAISS vectors, SQLite chunk store, BM25.

Layout of ``index_dir`` (``embeddings/`` by default)::

    CURRENT               name of the live build folder; replaced atomically (os.replace)
    build-<id>/           one complete build:
        manifest.json     how it was built: format, model, dim, chunking, segments,
                          per-document sha256 and segment, per-file size and crc32
        vectors.faiss     the first segment: FAISS inner-product index (row = chunk id),
        chunks.sqlite       chunk rows (doc id, offsets, text) and documents (title, sha256),
        bm25/               BM25 postings of the same rows
        seg-<id>/         later segments, each with the same three parts, for the chunk ids
                          after the segments before it
    .tmp-<id>/            a build in progress (removed by the next build if it was killed)
    .lock                 held while a build runs

A full build is one segment. An incremental build hard-links the previous build's segments it
keeps unchanged, writes a segment for the new documents, and merges small segments now and then
(``_plan_segments``), so its cost follows what changed, not the size of the corpus.

A build writes everything into ``.tmp-<id>/``, fsyncs it, renames it to ``build-<id>/`` and only
then points ``CURRENT`` at it. A build killed at any moment leaves ``CURRENT`` pointing at the
previous, complete build, so readers never see a half-written or missing index. Segment files
are never modified after they are written, so builds can share them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import re
import shutil
import sqlite3
import stat as stat_module
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .bm25 import BM25_ARRAYS, BM25_PARAMS, Bm25Postings, Bm25Stats, Speller, bm25_tokens
from .chunking import Chunker
from .config import Settings
from .corpus import Corpus, load_corpus, seed_files, sha256_bytes
from .embedder import Embedder, get_embedder
from .errors import (
    CorruptIndexError,
    IncompatibleIndexError,
    IndexLockedError,
    IndexMissingError,
    StaleIndexError,
)
from .extract import extractor_version, format_of, is_plain
from .sources import Stored, register
from .tokens import get_encoding
from .types import BuildReport, Chunk, Document, Passage

if TYPE_CHECKING:
    import faiss

log = logging.getLogger(__name__)

FORMAT_VERSION = 4  # 2: BM25 as raw postings, per-block crc32; 3: segments; 4: extracted texts
READABLE_FORMATS = (2, 3, 4)  # older builds hold only plain-text documents: read as they are
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
VECTORS = "vectors.faiss"
CHUNKS = "chunks.sqlite"
BM25_DIR = "bm25"
TITLE_PREFIX_CHARS = 200
CHECK_BLOCK = 64 << 20  # bytes per crc32 block of an index file (blocks are checked in parallel)
FIX = "run `assistant build`"
FIX_FULL = "run `assistant build --full`"


# --------------------------------------------------------------------------- text helpers


def embedding_text(title: str, text: str, with_title: bool) -> str:
    """What is embedded / BM25-indexed for a chunk: its text, after its title if it lacks it."""
    if not with_title or not title:
        return text
    title = title[:TITLE_PREFIX_CHARS]
    if title in text[: len(title) + 64]:
        return text
    return f"{title}\n{text}"


# --------------------------------------------------------------------------- manifest


def _compat(settings: Settings, dim: int | None = None) -> dict[str, Any]:
    out = {"format": FORMAT_VERSION, "model": settings.model, "chunking": settings.chunk_params()}
    if dim is not None:
        out["dim"] = dim
    return out


def check_compatible(manifest: dict, settings: Settings) -> None:
    """Raise ``IncompatibleIndexError`` when the index was built differently from ``settings``."""
    if manifest.get("format") not in READABLE_FORMATS:
        raise IncompatibleIndexError(
            f"index format {manifest.get('format')} is not the supported {FORMAT_VERSION}; {FIX_FULL}"
        )
    if manifest.get("model") != settings.model:
        raise IncompatibleIndexError(
            f"index was built with model {manifest.get('model')!r} but ASSISTANT_MODEL is "
            f"{settings.model!r}; {FIX}"
        )
    if manifest.get("bm25", BM25_PARAMS) != BM25_PARAMS:
        raise IncompatibleIndexError(
            f"index was built with other BM25 tokenizer settings ({manifest.get('bm25')!r}); {FIX}"
        )
    built = manifest.get("chunking", {})
    wanted = settings.chunk_params()
    diffs = [f"{k} {built.get(k)!r} != {v!r}" for k, v in wanted.items() if built.get(k) != v]
    if diffs:
        raise IncompatibleIndexError(
            f"index was built with other chunk settings ({'; '.join(diffs)}); {FIX}"
        )


def seed_changes(manifest: dict, seeds_dir: Path) -> list[str]:
    """What differs between the seeds folder and the manifest (cheap: stat first, hash if needed)."""
    recorded: dict[str, dict] = manifest.get("documents", {})
    skipped = set(manifest.get("skipped", {}))
    skipped_stats: dict[str, dict] = manifest.get("skipped_files", {})
    try:
        files, walk_skipped = seed_files(seeds_dir)
    except Exception:
        return [f"seeds folder {seeds_dir} is missing"]
    changes: list[str] = [f"new: {name}" for name, _ in walk_skipped if name not in skipped]
    present = set()
    for doc_id, path in files:
        present.add(doc_id)
        info = recorded.get(doc_id)
        if info is None:
            if doc_id not in skipped:
                changes.append(f"new: {doc_id}")
            elif doc_id in skipped_stats and _stat(Path(path)) != {
                k: skipped_stats[doc_id].get(k) for k in ("size", "mtime_ns")
            }:
                changes.append(f"changed: {doc_id}")  # a skipped file was edited: retry it
            continue
        try:
            st = os.stat(path)
        except OSError:
            changes.append(f"unreadable: {doc_id}")
            continue
        if st.st_size != info.get("size") or (
            st.st_mtime_ns != info.get("mtime_ns")
            and sha256_bytes(Path(path).read_bytes()) != info["sha256"]
        ):
            changes.append(f"changed: {doc_id}")
    changes.extend(f"removed: {d}" for d in sorted(set(recorded) - present))
    return changes


# --------------------------------------------------------------------------- loading


def current_build(index_dir: Path) -> Path | None:
    """The live build folder named by ``CURRENT``, or None when nothing was built.

    A build can swap ``CURRENT`` and delete the folder it named between our read and our check;
    the pointer is then re-read, and only a pointer that stays on a missing folder is corrupt.
    """
    pointer = Path(index_dir) / CURRENT
    previous = None
    for _attempt in range(5):
        try:
            name = pointer.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise CorruptIndexError(f"cannot read {pointer}: {exc}; {FIX_FULL}") from exc
        if not name.startswith("build-") or "/" in name:
            break
        if (Path(index_dir) / name).is_dir():
            return Path(index_dir) / name
        if name == previous:
            break
        previous = name
    raise CorruptIndexError(f"{pointer} names a missing build {name!r}; {FIX_FULL}")


def read_manifest(build: Path) -> dict:
    path = build / MANIFEST
    try:
        data = path.read_bytes()
        manifest = json.loads(data)
    except FileNotFoundError as exc:
        raise CorruptIndexError(f"{path} is missing; {FIX_FULL}") from exc
    except (OSError, ValueError) as exc:
        raise CorruptIndexError(f"{path} is unreadable ({exc}); {FIX_FULL}") from exc
    if not _manifest_shape_ok(manifest):
        raise CorruptIndexError(f"{path} is not an assistant manifest; {FIX_FULL}")
    if "checksum" in manifest and not (
        _text_checksum(data) == manifest["checksum"]
        or manifest["checksum"] == _manifest_checksum(manifest)  # format 2 hashed the JSON body
    ):
        raise CorruptIndexError(f"{path} does not match its checksum (garbled?); {FIX_FULL}")
    return manifest


_CHECKSUM_FIELD = re.compile(rb'"checksum": "([0-9a-f]{64})"')
_ZEROS = "0" * 64


def _text_checksum(data: bytes) -> str | None:
    """sha256 of the manifest file's bytes with its checksum digits zeroed (how ``_write_json``
    computes it): one hash over the bytes, no re-serialization of a 380k-document manifest.
    The field can be found in the text: inside JSON strings every quote is escaped."""
    found = _CHECKSUM_FIELD.search(data)
    if found is None:
        return None
    digest = hashlib.sha256(data[: found.start(1)])
    digest.update(_ZEROS.encode())
    digest.update(data[found.end(1) :])
    return digest.hexdigest()


def _manifest_checksum(manifest: dict) -> str:
    """sha256 of the manifest without its own ``checksum`` field (a garbled value is caught)."""
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, ensure_ascii=False).encode("utf-8")
    ).hexdigest()


def _manifest_shape_ok(m: Any) -> bool:
    """The fields that loading relies on are there, with the right types."""
    if not isinstance(m, dict):
        return False
    files, counts, index = m.get("files"), m.get("counts"), m.get("index")
    if not (isinstance(counts, dict) and isinstance(counts.get("chunks"), int)):
        return False
    segments = m.get("segments", [{"name": ".", "chunks": counts["chunks"], "index": index}])
    return (
        isinstance(files, dict)
        and isinstance(segments, list)
        and len(segments) >= 1
        and all(_segment_shape_ok(s, files) for s in segments)
        and len({s["name"] for s in segments}) == len(segments)
        and sum(s["chunks"] for s in segments) == counts["chunks"]
        and all(
            isinstance(v, dict)
            and isinstance(v.get("size"), int)
            and isinstance(v.get("crc32"), list)
            and all(isinstance(c, int) for c in v["crc32"])
            for v in files.values()
        )
        and isinstance(m.get("documents"), dict)
        and isinstance(counts, dict)
        and isinstance(counts.get("chunks"), int)
        and isinstance(m.get("dim"), int)
        and isinstance(index, dict)
        and index.get("kind") in ("flat", "hnsw", "ivf")
    )


def _segment_shape_ok(s: Any, files: dict) -> bool:
    return (
        isinstance(s, dict)
        and isinstance(s.get("name"), str)
        and re.fullmatch(r"\.|seg-[0-9A-Za-z-]+", s["name"]) is not None  # no path escapes
        and isinstance(s.get("chunks"), int)
        and s["chunks"] >= 0
        and isinstance(s.get("index"), dict)
        and s["index"].get("kind") in ("flat", "hnsw", "ivf")
        and all(segment_file(s["name"], f) in files for f in (VECTORS, CHUNKS))
    )


def _verify_files(build: Path, manifest: dict) -> None:
    """Every file has its recorded size and per-block crc32 (blocks checked on all cores).

    crc32 runs at about 1 GB/s per core and catches any burst of flipped bytes, so even a 1M-chunk
    index (about 3 GB) is checked in seconds on every load: a garbled file never gives silently
    wrong results. The manifest itself carries a sha256 of its content.
    """
    jobs = []
    for rel, info in manifest["files"].items():
        path = build / rel
        try:
            size = path.stat().st_size
        except FileNotFoundError as exc:
            raise CorruptIndexError(f"{path} is missing; {FIX_FULL}") from exc
        if size != info["size"]:
            raise CorruptIndexError(
                f"{path} has {size} bytes, the manifest says {info['size']} (truncated?); {FIX_FULL}"
            )
        if len(info["crc32"]) != max(1, -(-size // CHECK_BLOCK)):
            raise CorruptIndexError(f"{path} has a wrong number of checksums; {FIX_FULL}")
        jobs += [(path, i, crc) for i, crc in enumerate(info["crc32"])]
    for path, ok in _map_blocks(lambda job: (job[0], _block_crc(job[0], job[1]) == job[2]), jobs):
        if not ok:
            raise CorruptIndexError(f"{path} does not match its checksum (garbled?); {FIX_FULL}")


def _map_blocks(fn: Callable, jobs: list) -> list:
    """``fn`` over ``jobs`` on all cores (zlib and file reads release the GIL)."""
    if len(jobs) <= 1:
        return [fn(j) for j in jobs]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(len(jobs), os.cpu_count() or 1)) as pool:
        return list(pool.map(fn, jobs))


def _block_crc(path: Path, block: int) -> int:
    import zlib

    crc = 0
    with open(path, "rb") as handle:
        handle.seek(block * CHECK_BLOCK)
        left = CHECK_BLOCK
        while left > 0:
            data = handle.read(min(left, 8 << 20))
            if not data:
                break
            crc = zlib.crc32(data, crc)
            left -= len(data)
    return crc


def _file_crcs(path: Path) -> list[int]:
    """crc32 of each ``CHECK_BLOCK`` of ``path`` (one block for an empty file)."""
    n = max(1, -(-path.stat().st_size // CHECK_BLOCK))
    return _map_blocks(lambda i: _block_crc(path, i), list(range(n)))


def segments_of(manifest: dict) -> list[dict]:
    """The build's segments in chunk-id order, each ``{"name", "chunks", "index"}``.

    A build is one or more segments, each a complete little index (vectors, chunk store, BM25
    postings) over a run of chunk ids; a format-2 build is one segment at the build's root.
    """
    segments = manifest.get("segments")
    if segments is None:
        return [{"name": ".", "chunks": manifest["counts"]["chunks"], "index": manifest["index"]}]
    return segments


def _placed(manifest: dict) -> list[tuple[int, dict]]:
    """``(first chunk id, segment)`` for each segment of the build, in order."""
    out, first = [], 0
    for seg in segments_of(manifest):
        out.append((first, seg))
        first += seg["chunks"]
    return out


def segment_file(name: str, rel: str) -> str:
    """A segment file's path relative to the build folder (the root segment is ``"."``)."""
    return rel if name == "." else f"{name}/{rel}"


@dataclass
class Segment:
    """One opened segment: chunk ids ``first .. first + size - 1`` of the build."""

    name: str
    first: int
    size: int
    path: Path
    faiss: Any
    bm25: Bm25Postings
    db: sqlite3.Connection
    has_extracted: bool = False


def _open_segment(build: Path, seg: dict, first: int, dim: int) -> Segment:
    """Open one segment of a verified build (FAISS read, BM25 memory-mapped, SQLite)."""
    import faiss

    path = build / seg["name"]
    vectors = path / VECTORS
    try:
        index = faiss.read_index(str(vectors))
    except RuntimeError as exc:
        raise CorruptIndexError(f"{vectors} is unreadable ({exc}); {FIX_FULL}") from exc
    if index.ntotal != seg["chunks"] or index.d != dim:
        raise CorruptIndexError(f"{vectors} does not match the manifest; {FIX_FULL}")
    _set_search_params(index, seg["index"])
    try:
        bm25 = Bm25Postings.load(path / BM25_DIR, mmap=True)
    except Exception as exc:
        raise CorruptIndexError(f"{path / BM25_DIR} is unreadable ({exc}); {FIX_FULL}") from exc
    if bm25.num_docs != seg["chunks"]:
        raise CorruptIndexError(f"{path / BM25_DIR} does not match the manifest; {FIX_FULL}")
    db = _connect_readonly(path / CHUNKS)
    has = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'extracted'").fetchone()
    return Segment(seg["name"], first, seg["chunks"], path, index, bm25, db, has is not None)


def _open_segments(build: Path, manifest: dict) -> list[Segment]:
    out: list[Segment] = []
    try:
        for first, seg in _placed(manifest):
            out.append(_open_segment(build, seg, first, manifest["dim"]))
    except BaseException:
        for s in out:
            s.db.close()
        raise
    return out


def _top(parts: list[tuple[np.ndarray, np.ndarray]], n: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` best of several ``(scores, ids)`` lists, best first (ties by lower id)."""
    if len(parts) == 1:
        return parts[0]
    scores = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.float32)
    ids = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
    order = np.lexsort((ids, -scores))[:n]
    return scores[order], ids[order]


class LoadedIndex:
    """One build, opened read-only: FAISS in memory, chunks read from SQLite on demand.

    A search runs over every segment and merges by score; BM25 scores each segment with the
    whole build's statistics, so the ranking is the one a single index would give.
    """

    def __init__(self, build: Path, manifest: dict, segments: list[Segment]) -> None:
        self.build = build
        self.manifest = manifest
        self.segments = segments
        self._db_lock = threading.Lock()
        self._firsts = np.array([s.first for s in segments], np.int64)
        self.size = int(manifest["counts"]["chunks"])
        self._by_name = {s.name: s for s in segments}
        self._stored: dict[str, Stored | None] = {}
        self.speller = Speller([s.bm25 for s in segments])

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
        record = self.stored(doc_id)
        if record is None or not record.marks:
            return ()
        before = [m for m in record.marks if m[0] <= start]
        head = before[-1:]
        pages = [m for m in before if m[1] is not None]
        if pages and head and head[0][1] is None:
            head = [pages[-1], head[0]]
        return tuple(head + [m for m in record.marks if start < m[0] < end])

    def query_terms(self, query: str) -> tuple[list[str], dict[str, str]]:
        """The BM25 terms of ``query``, misspellings corrected against the vocabulary, and the
        corrections made (``{typed: corrected}``)."""
        return self.speller.correct_all(bm25_tokens([query])[0])

    @property
    def faiss(self) -> faiss.Index:
        """The first (largest) segment's FAISS index: all of them in a one-segment build."""
        return self.segments[0].faiss

    def close(self) -> None:
        with self._db_lock:
            for s in self.segments:
                s.db.close()

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

    def dense_search(self, vector: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        n = min(n, self.size)
        if n <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
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

    def lexical_search(self, query: str, n: int) -> tuple[np.ndarray, np.ndarray]:
        n = min(n, self.size)
        if n <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        tokens = self.query_terms(query)[0]
        if len(self.segments) == 1:
            return self.segments[0].bm25.top(tokens, n)
        stats = Bm25Stats.over([s.bm25 for s in self.segments], tokens)
        parts = []
        for seg in self.segments:
            if seg.size:
                scores, ids = seg.bm25.top(tokens, min(n, seg.size), stats)
                parts.append((scores, ids + seg.first))
        return _top(parts, n)

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


def load_index(settings: Settings, check_seeds: bool = True) -> LoadedIndex:
    """Open the live build, after checking it is complete, intact and matches ``settings``."""
    for attempt in range(3):
        build = current_build(settings.index_dir)
        if build is None:
            from .corpus import seeds_advice  # create the folder / add documents / build

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
    _verify_files(build, manifest)
    if check_seeds and manifest.get("source", {}).get("kind") == "seeds":
        changes = seed_changes(manifest, settings.seeds_dir)
        if changes:
            shown = ", ".join(changes[:5]) + (
                f" and {len(changes) - 5} more" if len(changes) > 5 else ""
            )
            raise StaleIndexError(f"seeds changed since the index was built ({shown}); {FIX}")
    # read_manifest checked that the segments add up to the chunk count; opening checks each.
    loaded = LoadedIndex(build, manifest, _open_segments(build, manifest))
    register(settings.seeds_dir, loaded)  # citations of PDFs etc. verify against its texts
    return loaded


def _set_search_params(index: Any, info: dict) -> None:
    """Query-time parameters of an approximate index, as recorded in the manifest."""
    import faiss

    params = info.get("params", {})
    if info["kind"] == "hnsw":
        index.hnsw.efSearch = int(params.get("ef_search", 128))
    elif info["kind"] == "ivf":
        faiss.extract_index_ivf(index).nprobe = int(params.get("nprobe", 1))


def _connect_readonly(path: Path) -> sqlite3.Connection:
    try:
        db = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True, check_same_thread=False
        )
        db.execute("SELECT count(*) FROM documents").fetchone()
    except sqlite3.DatabaseError as exc:
        raise CorruptIndexError(f"{path} is unreadable ({exc}); {FIX_FULL}") from exc
    return db


# --------------------------------------------------------------------------- building


@dataclass
class _Previous:
    """The live build an incremental build reuses; its segments are opened only when read."""

    build: Path
    manifest: dict
    opened: dict[str, Segment] = field(default_factory=dict)

    def segment(self, name: str) -> Segment:
        if name not in self.opened:
            for first, seg in _placed(self.manifest):
                if seg["name"] == name:
                    self.opened[name] = _open_segment(self.build, seg, first, self.manifest["dim"])
                    break
            else:
                raise CorruptIndexError(f"{self.build / MANIFEST} has no segment {name!r}")
        return self.opened[name]

    def close(self) -> None:
        for s in self.opened.values():
            s.db.close()


def _open_previous(settings: Settings, full: bool) -> _Previous | None:
    """The last build if its vectors can be reused, else None (with the reason logged)."""
    if full:
        return None
    try:
        build = current_build(settings.index_dir)
        if build is None:
            return None
        manifest = read_manifest(build)
        check_compatible(manifest, settings)
        _verify_files(build, manifest)
    except (IncompatibleIndexError, CorruptIndexError) as exc:
        log.warning("rebuilding everything: %s", exc)
        return None
    return _Previous(build, manifest)


class _BuildLock:
    """An exclusive lock on the index folder; refuses (or waits) when another build holds it."""

    def __init__(self, index_dir: Path, wait: float | None) -> None:
        from filelock import FileLock, Timeout

        self._timeout_error = Timeout
        self._lock = FileLock(str(Path(index_dir) / ".lock"))
        self._wait = wait

    def __enter__(self) -> _BuildLock:
        try:
            self._lock.acquire(timeout=-1 if self._wait is None else self._wait)
        except self._timeout_error as exc:
            raise IndexLockedError(
                "another build is running on this index; wait for it or pass --wait"
            ) from exc
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


def build_index(
    settings: Settings | None = None,
    *,
    full: bool = False,
    embedder: Embedder | None = None,
    progress: bool | None = None,
    wait: float | None = 0,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> BuildReport:
    """Bring the index up to date with the seeds folder, re-embedding only what changed.

    ``wait`` is how many seconds to wait for another build's lock (None: forever, 0: refuse).
    ``on_progress(stage, done, total)`` is called while embedding (the web app uses it).
    """
    settings = settings or Settings()
    started = time.perf_counter()
    index_dir = Path(settings.index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    progress = sys.stderr.isatty() if progress is None else progress
    with _BuildLock(index_dir, wait):
        _remove_leftovers(index_dir)
        previous = _open_previous(settings, full)
        try:
            stats: dict[str, dict] = {}
            corpus = _read_corpus(settings, previous, stats)
            embedder = embedder or get_embedder(settings.model)
            report = _build(
                settings,
                corpus.documents,
                corpus.skipped,
                embedder,
                previous,
                progress,
                on_progress,
                started,
                full,
                stats,
            )
        finally:
            if previous is not None:
                previous.close()
        return report


def _read_corpus(
    settings: Settings, previous: _Previous | None, stats: dict[str, dict] | None = None
) -> Corpus:
    """The seed documents. A file whose size and mtime match the previous build's record is
    not read again (the same stat-first rule as the stale check): its ``Document`` carries the
    recorded title and sha256 and no text, which the build does not need for unchanged files.
    So an incremental build reads only new and changed files."""
    max_bytes = int(settings.max_file_mb * 1e6)
    limits = {
        "extract_timeout": settings.extract_timeout,
        "extract_memory_mb": settings.extract_memory_mb,
    }
    if previous is None:
        return load_corpus(settings.seeds_dir, max_bytes=max_bytes, **limits)
    recorded: dict[str, dict] = previous.manifest["documents"]

    tried: dict[str, dict] = previous.manifest.get("skipped_files", {})
    reasons: dict[str, str] = previous.manifest.get("skipped", {})

    def known(doc_id: str, path: str) -> Document | str | None:
        old = recorded.get(doc_id)
        if old is None:
            fmt = format_of(doc_id) or ""
            attempt = tried.get(doc_id)
            if attempt is None or is_plain(fmt) or doc_id not in reasons:
                return None
            same = {**_stat(Path(path)), **_extract_key(settings, fmt)} == attempt
            return reasons[doc_id] if same else None  # skipped before, unchanged: same reason
        try:
            st = os.stat(path)
        except OSError:
            return None
        if not (
            stat_module.S_ISREG(st.st_mode)
            and st.st_size == old.get("size")
            and st.st_mtime_ns == old.get("mtime_ns")
            and st.st_size <= max_bytes
        ):
            return None
        fmt = format_of(doc_id) or "txt"
        if old.get("extractor", "") != extractor_version(fmt):  # a new extractor: re-extract
            return None
        if stats is not None:
            stats[doc_id] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
        return Document(
            doc_id,
            old["title"],
            "",
            old["sha256"],
            format=old.get("format", fmt),
            extractor=old.get("extractor", ""),
            pages=old.get("pages"),
        )

    return load_corpus(settings.seeds_dir, max_bytes=max_bytes, known=known, **limits)


def _build(
    settings: Settings,
    documents: list[Document],
    skipped: list[tuple[str, str]],
    embedder: Embedder,
    previous: _Previous | None,
    progress: bool,
    on_progress: Callable[[str, int, int], None] | None,
    started: float,
    full: bool,
    stats: dict[str, dict] | None = None,
) -> BuildReport:
    old_docs: dict[str, dict] = previous.manifest["documents"] if previous else {}
    if previous and previous.manifest.get("dim") != embedder.dim:
        previous = None
        old_docs = {}
    status = {}
    for doc in documents:
        old = old_docs.get(doc.id)
        same = old is not None and (old["sha256"], old.get("extractor", "")) == (
            doc.sha256,
            doc.extractor,
        )
        status[doc.id] = "new" if old is None else ("unchanged" if same else "changed")
    removed = sorted(set(old_docs) - {d.id for d in documents})
    counts = {k: sum(1 for v in status.values() if v == k) for k in ("new", "changed", "unchanged")}

    seeds_dir = Path(settings.seeds_dir)
    if previous and not removed and counts["unchanged"] == len(documents) and not full:
        # Nothing to embed. Refresh the recorded file stats so the stale check stays cheap.
        if _stats_changed(previous.manifest, seeds_dir, documents) or (
            dict(skipped) != previous.manifest.get("skipped")
            or _skipped_files(settings, skipped) != previous.manifest.get("skipped_files")
        ):
            _refresh_manifest(settings, previous, seeds_dir, documents, skipped)
        total = previous.manifest["counts"]["chunks"]
        return BuildReport(
            documents=len(documents),
            new=0,
            changed=0,
            removed=0,
            unchanged=len(documents),
            embedded_chunks=0,
            reused_chunks=total,
            total_chunks=total,
            skipped=skipped,
            seconds=time.perf_counter() - started,
            full=False,
            index_dir=str(settings.index_dir),
            up_to_date=True,
        )

    encoding = get_encoding(settings.encoding)
    # Chunk what is new or changed; every chunk must fit the embedder's window with its title.
    new_chunks: dict[str, list[Chunk]] = {}
    for doc in documents:
        if status[doc.id] == "unchanged":
            continue
        title = doc.title
        chunker = Chunker(
            encoding,
            settings.chunk_tokens,
            settings.chunk_overlap,
            fits=lambda t, title=title: embedder.fits(
                embedding_text(title, t, settings.embed_titles)
            ),
        )
        new_chunks[doc.id] = chunker.chunk(doc)

    to_embed = [
        embedding_text(doc.title, c.text, settings.embed_titles)
        for doc in documents
        for c in new_chunks.get(doc.id, [])
    ]
    new_vectors = _embed_all(embedder, to_embed, settings.batch_size, progress, on_progress)

    new_docs: list[DocumentRows] = [
        DocumentRows(
            doc.id,
            doc.title,
            doc.sha256,
            _stat(seeds_dir / doc.id),
            [(c.start, c.end, c.n_tokens, c.text) for c in new_chunks[doc.id]],
            format=doc.format,
            extractor=doc.extractor,
            pages=doc.pages,
            text=None if is_plain(doc.format) else doc.text,
            marks=doc.marks,
        )
        for doc in documents
        if status[doc.id] != "unchanged"
    ]
    stats = stats or {}
    kept = {
        d.id: stats.get(d.id) or _stat(seeds_dir / d.id)
        for d in documents
        if status[d.id] == "unchanged"
    }
    index_dir = Path(settings.index_dir)
    final, manifest = write_build(
        settings,
        embedder.dim,
        embedder.max_tokens,
        new_docs,
        new_vectors,
        previous=previous,
        kept=kept,
        skipped=skipped,
    )
    _remove_old_builds(index_dir, keep=final.name)
    row = manifest["counts"]["chunks"]
    return BuildReport(
        documents=len(documents),
        new=counts["new"],
        changed=counts["changed"],
        removed=len(removed),
        unchanged=counts["unchanged"],
        embedded_chunks=len(to_embed),
        reused_chunks=row - len(to_embed),
        total_chunks=row,
        skipped=skipped,
        seconds=time.perf_counter() - started,
        full=full,
        index_dir=str(index_dir),
    )


@dataclass
class DocumentRows:
    """A document to write with its chunk rows ``(start, end, n_tokens, text)``."""

    id: str
    title: str
    sha256: str
    stat: dict
    rows: list[tuple[int, int, int, str]]
    format: str = "txt"
    extractor: str = ""
    pages: int | None = None
    text: str | None = None  # the extracted text, stored for formats other than plain text
    marks: tuple = ()

    def manifest_entry(self) -> dict:
        entry = {"sha256": self.sha256, "title": self.title, **self.stat}
        if not is_plain(self.format):  # plain formats are told by the file name
            entry["format"] = self.format
        if self.extractor:
            entry["extractor"] = self.extractor
        if self.pages is not None:
            entry["pages"] = self.pages
        return entry


# Extracted texts (format 4): the text citations of a PDF/DOCX/HTML/EPUB document verify
# against (NULL for plain files, which verify against the file) with its sha256, checked when
# it is read, and its page/section marks.
_EXTRACTED = (
    "CREATE TABLE IF NOT EXISTS extracted (doc_id TEXT PRIMARY KEY, format TEXT NOT NULL,"
    " extractor TEXT NOT NULL, text TEXT, text_sha256 TEXT, marks TEXT NOT NULL);"
)
_SCHEMA = (
    "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
    "CREATE TABLE documents (id TEXT PRIMARY KEY, title TEXT NOT NULL, sha256 TEXT NOT NULL,"
    " first_chunk INTEGER NOT NULL, n_chunks INTEGER NOT NULL);"
    "CREATE TABLE chunks (id INTEGER PRIMARY KEY, doc_id TEXT NOT NULL, start INTEGER NOT NULL,"
    ' "end" INTEGER NOT NULL, n_tokens INTEGER NOT NULL, text TEXT NOT NULL);' + _EXTRACTED
)
TOKENIZE_BATCH = 50_000


def write_build(
    settings: Settings,
    dim: int,
    model_max_tokens: int,
    docs: Sequence[DocumentRows],
    vectors: np.ndarray,
    *,
    previous: _Previous | None = None,
    kept: dict[str, dict] | None = None,
    skipped: Sequence[tuple[str, str]] = (),
    source: dict | None = None,
) -> tuple[Path, dict]:
    """Write a complete build of ``docs`` (``vectors``: one row per chunk, in order) into
    ``settings.index_dir`` and swap it in. Used by every build, and by benchmarks/scale.py to
    write indexes from given vectors.

    With ``previous``, the documents in ``kept`` (``{id: file stat}``) are carried over from it
    without re-embedding or re-tokenizing: their chunk ids come first, in their old order, and
    ``docs`` follow. The build is a list of segments (see ``_plan_segments``): a previous segment
    whose documents are all kept is hard-linked into the new build, not rewritten, and ``docs``
    become a new segment; so adding a document costs time for that document, plus an
    occasional merge of small segments.
    """
    kept = kept or {}
    vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, dim)
    if len(vectors) != sum(len(d.rows) for d in docs):
        raise ValueError(f"{len(vectors)} vectors for {sum(len(d.rows) for d in docs)} chunks")
    index_dir = Path(settings.index_dir)
    build_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    tmp = index_dir / f".tmp-{build_id}"
    tmp.mkdir()
    try:
        old_docs: dict[str, dict] = previous.manifest["documents"] if previous else {}
        new_docs = {d.id: d for d in docs}
        plan = _plan_segments(previous.manifest if previous else None, kept, docs, vectors)
        segments: list[dict] = []
        files: dict[str, dict] = {}
        manifest_docs: dict[str, dict] = {}
        row = 0
        for i, item in enumerate(plan):
            if item.link is not None and previous is not None:
                name, info = item.link["name"], item.link["index"]
                _link_segment(previous.build, tmp, name)
                for rel in SEGMENT_FILES:
                    files[segment_file(name, rel)] = previous.manifest["files"][
                        segment_file(name, rel)
                    ]
                local = {doc_id: (first, n) for first, n, doc_id in item.parts[0].ranges}
            else:
                name = "." if i == 0 else f"seg-{build_id}-{i}"
                info, local = _write_segment(tmp / name, item, previous, settings, dim)
                files.update(_segment_file_infos(tmp, name))
            for doc_id, (first, n) in local.items():
                doc = new_docs.get(doc_id)
                entry = (
                    {**doc.manifest_entry(), "chunks": n}
                    if doc is not None
                    else {**old_docs[doc_id], **kept[doc_id]}
                )
                manifest_docs[doc_id] = {**entry, "first_chunk": row + first, "segment": name}
            segments.append({"name": name, "chunks": item.size, "index": info})
            row += item.size

        manifest = {
            "format": FORMAT_VERSION,
            "package_version": _package_version(),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "build_id": build_id,
            "model": settings.model,
            "dim": dim,
            "normalized": True,
            "model_max_tokens": model_max_tokens,
            "chunking": settings.chunk_params(),
            "index": segments[0]["index"],
            "segments": segments,
            "bm25": BM25_PARAMS,
            "counts": {"documents": len(manifest_docs), "chunks": row},
            "source": source or {"kind": "seeds", "seeds_dir": str(settings.seeds_dir)},
            "skipped": dict(skipped),
            "skipped_files": _skipped_files(settings, skipped),
            "documents": manifest_docs,
            "files": files,
        }
        _write_json(tmp / MANIFEST, manifest)
        _fsync_tree(tmp)
        final = index_dir / f"build-{build_id}"
        os.rename(tmp, final)
        _fsync_dir(index_dir)
        _point_current(index_dir, final.name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final, manifest


SEGMENT_FILES = (
    VECTORS,
    CHUNKS,
    f"{BM25_DIR}/vocab.json",
    *(f"{BM25_DIR}/{name}.npy" for name in BM25_ARRAYS),
)
MERGE_FACTOR = 4  # this many segments of one size class are merged into one of the next class
MAX_SEGMENTS = 12  # beyond this, the two smallest neighbours are merged (a search visits each)


@dataclass
class _OldPart:
    """Documents of a previous segment: ``ranges`` are ``(first local id, chunks, doc id)``."""

    segment: dict
    ranges: list[tuple[int, int, str]]

    @property
    def whole(self) -> bool:
        return sum(n for _, n, _ in self.ranges) == self.segment["chunks"]


@dataclass
class _NewPart:
    docs: Sequence[DocumentRows]
    vectors: np.ndarray


@dataclass
class _Planned:
    """A segment of the new build: its parts in order, and the old segment it links, if any."""

    parts: list[_OldPart | _NewPart]
    size: int
    link: dict | None = None


def _plan_segments(
    manifest: dict | None,
    kept: dict[str, dict],
    docs: Sequence[DocumentRows],
    vectors: np.ndarray,
) -> list[_Planned]:
    """The new build's segments: the previous ones (linked if all their documents are kept,
    else rewritten without the others), then one for ``docs``; then merges, log-structured:
    when ``MERGE_FACTOR`` trailing segments are of the same size class (chunks, in powers of
    ``MERGE_FACTOR``) or smaller, they become one. Each chunk is so rewritten about
    log4(chunks) times over the life of an index, and there are few segments to search.
    """
    items: list[_Planned] = []
    if manifest is not None:
        segments = segments_of(manifest)
        ranges: dict[str, list[tuple[int, int, str]]] = {s["name"]: [] for s in segments}
        firsts = {s["name"]: first for first, s in _placed(manifest)}
        for doc_id, info in manifest["documents"].items():
            name = info.get("segment", ".")
            if name not in ranges:
                raise CorruptIndexError(f"document {doc_id!r} names a missing segment; {FIX_FULL}")
            ranges[name].append((info["first_chunk"] - firsts[name], info["chunks"], doc_id))
        for s in segments:
            keep = sorted(r for r in ranges[s["name"]] if r[2] in kept)
            if not keep:
                continue
            part = _OldPart(s, keep)
            whole = part.whole and len(keep) == len(ranges[s["name"]])
            items.append(_Planned([part], sum(n for _, n, _ in keep), link=s if whole else None))
    if docs or not items:
        items.append(_Planned([_NewPart(docs, vectors)], len(vectors)))

    def size_class(n: int) -> int:
        return int(math.log(max(n, 1), MERGE_FACTOR))

    def merge(lo: int, hi: int) -> None:
        group = items[lo:hi]
        items[lo:hi] = [_Planned([p for g in group for p in g.parts], sum(g.size for g in group))]

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


def _link_segment(old_build: Path, new_build: Path, name: str) -> None:
    """Carry a segment over unchanged: hard links (no bytes copied), or copies where the
    filesystem has none. Segment files are never modified once written, so sharing is safe."""
    for rel in SEGMENT_FILES:
        src, dst = old_build / segment_file(name, rel), new_build / segment_file(name, rel)
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dst)
        except OSError:
            shutil.copyfile(src, dst)


def _write_segment(
    path: Path,
    item: _Planned,
    previous: _Previous | None,
    settings: Settings,
    dim: int,
) -> tuple[dict, dict[str, tuple[int, int]]]:
    """Write one segment from its parts; return its FAISS entry and ``{doc: (first, chunks)}``.

    When the first part is a whole previous segment (a merge), its chunk store is copied and
    appended to and its FAISS index extended, rather than rebuilt.
    """
    path.mkdir(parents=True, exist_ok=True)
    parts = item.parts
    head = parts[0] if isinstance(parts[0], _OldPart) and parts[0].whole else None
    db_path = path / CHUNKS
    if head is not None and previous is not None:
        shutil.copyfile(previous.segment(head.segment["name"]).path / CHUNKS, db_path)
        db = sqlite3.connect(db_path)
        db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + _EXTRACTED)
    else:
        db = sqlite3.connect(db_path)
        db.executescript(_SCHEMA)
    old_docs = previous.manifest["documents"] if previous else {}
    local: dict[str, tuple[int, int]] = {}
    vector_parts: list[np.ndarray] = []
    postings: list[Bm25Postings] = []
    base = None
    row = 0
    for part in parts:
        if isinstance(part, _OldPart):
            assert previous is not None
            seg = previous.segment(part.segment["name"])
            if part is head:
                local.update({doc_id: (first, n) for first, n, doc_id in part.ranges})
                base = (seg.faiss, part.segment["index"])
                postings.append(seg.bm25)
                row = seg.size
                continue
            db.execute("ATTACH DATABASE ? AS old", (str(seg.path / CHUNKS),))
            for first, n, doc_id in part.ranges:
                done = db.execute(
                    'INSERT INTO chunks SELECT id + ?, doc_id, start, "end", n_tokens, text '
                    "FROM old.chunks WHERE id >= ? AND id < ? ORDER BY id",
                    (row - first, first, first + n),
                ).rowcount
                if done != n:
                    raise CorruptIndexError(
                        f"previous chunk store lost rows of {doc_id}; {FIX_FULL}"
                    )
                old = old_docs[doc_id]
                db.execute(
                    "INSERT INTO documents VALUES (?, ?, ?, ?, ?)",
                    (doc_id, old["title"], old["sha256"], row, n),
                )
                if seg.has_extracted:
                    db.execute(
                        "INSERT INTO extracted SELECT * FROM old.extracted WHERE doc_id = ?",
                        (doc_id,),
                    )
                local[doc_id] = (row, n)
                row += n
            db.commit()
            db.execute("DETACH DATABASE old")
            ids = np.concatenate([np.arange(f, f + n) for f, n, _ in part.ranges] or [[]])
            vector_parts.append(_reconstruct(seg.faiss, part.ranges, dim))
            postings.append(seg.bm25 if part.whole else seg.bm25.kept(ids.astype(np.int64)))
        else:
            texts: list[str] = []
            for doc in part.docs:
                n = len(doc.rows)
                db.executemany(
                    'INSERT INTO chunks (id, doc_id, start, "end", n_tokens, text) '
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [(row + i, doc.id, *r) for i, r in enumerate(doc.rows)],
                )
                db.execute(
                    "INSERT INTO documents VALUES (?, ?, ?, ?, ?)",
                    (doc.id, doc.title, doc.sha256, row, n),
                )
                if doc.text is not None or doc.marks:
                    db.execute(
                        "INSERT INTO extracted VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            doc.id,
                            doc.format,
                            doc.extractor,
                            doc.text,
                            None if doc.text is None else sha256_bytes(doc.text.encode("utf-8")),
                            json.dumps(doc.marks),
                        ),
                    )
                texts.extend(
                    embedding_text(doc.title, r[3], settings.embed_titles) for r in doc.rows
                )
                local[doc.id] = (row, n)
                row += n
            fresh = Bm25Postings.empty()
            for i in range(0, len(texts), TOKENIZE_BATCH):
                fresh = fresh.appended(bm25_tokens(texts[i : i + TOKENIZE_BATCH]))
            postings.append(fresh)
            vector_parts.append(part.vectors)
    db.commit()
    db.close()
    vectors = np.concatenate(vector_parts) if vector_parts else np.zeros((0, dim), np.float32)
    info = _write_faiss(vectors, dim, settings, path / VECTORS, base=base)
    _write_bm25(Bm25Postings.concat(postings), path / BM25_DIR)
    return info, local


def _reconstruct(index: Any, ranges: list[tuple[int, int, str]], dim: int) -> np.ndarray:
    """The stored vectors of the chunk ``ranges``, one ``reconstruct_n`` per contiguous run."""
    runs: list[list[int]] = []
    for first, n, _ in ranges:
        if runs and runs[-1][0] + runs[-1][1] == first:
            runs[-1][1] += n
        elif n:
            runs.append([first, n])
    if not runs:
        return np.zeros((0, dim), np.float32)
    return np.concatenate([index.reconstruct_n(first, n) for first, n in runs])


def _embed_all(
    embedder: Embedder,
    texts: list[str],
    batch_size: int,
    progress: bool,
    on_progress: Callable[[str, int, int], None] | None,
) -> np.ndarray:
    """Embed in blocks so a progress bar (and ``on_progress``) can follow along.

    Texts are sorted by length over the whole list (longest first) before they are cut into
    blocks, and the vectors are put back in input order afterwards: every batch then pads to
    texts of nearly the same length, as one big ``encode`` call would (sentence-transformers
    sorts only within a call), so embedding in blocks costs no throughput.
    """
    from tqdm import tqdm

    if not texts:
        return np.zeros((0, embedder.dim), np.float32)
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    block = max(batch_size * 8, 256)
    out: list[np.ndarray] = []
    with tqdm(total=len(texts), desc="embedding", unit="chunk", disable=not progress) as bar:
        for i in range(0, len(texts), block):
            part = [texts[j] for j in order[i : i + block]]
            out.append(embedder.embed(part, batch_size=batch_size))
            bar.update(len(part))
            if on_progress:
                on_progress("embedding", min(i + block, len(texts)), len(texts))
    done = np.concatenate(out)
    if done.shape != (len(texts), embedder.dim):
        raise ValueError(
            f"embedder returned shape {done.shape}, expected ({len(texts)}, {embedder.dim})"
        )
    vectors = np.empty((len(texts), embedder.dim), np.float32)
    vectors[order] = done
    return vectors


def _write_faiss(
    vectors: np.ndarray,
    dim: int,
    settings: Settings,
    path: Path,
    base: tuple[Any, dict] | None = None,
) -> dict:
    """Write the vector index; return its manifest entry (kind and parameters).

    Exact search below ``ann_threshold`` chunks, else the approximate ``ann_kind``. ``base`` is a
    previous build's ``(index, manifest entry)`` whose rows come before ``vectors``: it is
    extended in place when it is still the right kind (an IVF keeps its lists until the corpus
    has grown 4x past what it was trained on), else its vectors are re-indexed.
    """
    import faiss

    n_total = len(vectors) + (base[0].ntotal if base else 0)
    kind = "flat" if n_total < settings.ann_threshold else settings.ann_kind
    index = None
    if base is not None:
        b_index, b_info = base
        params = b_info.get("params", {})
        if b_info["kind"] == kind and (
            kind == "flat"
            or (kind == "ivf" and n_total <= 4 * params.get("trained_on", 0))
            or (kind == "hnsw" and params.get("m") == settings.hnsw_m)
        ):
            index, info = b_index, {**b_info, "params": dict(params)}
        elif b_index.ntotal:
            vectors = np.concatenate([b_index.reconstruct_n(0, b_index.ntotal), vectors])
    if index is None:
        index, info = _new_faiss(kind, vectors, dim, settings)
    if kind == "hnsw":
        info["params"]["ef_search"] = settings.hnsw_ef_search
    elif kind == "ivf":
        info["params"]["nprobe"] = min(settings.ivf_nprobe, info["params"]["nlist"])
    _set_search_params(index, info)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    faiss.write_index(index, str(path))
    return info


def _write_bm25(postings: Bm25Postings, path: Path) -> None:
    postings.save(path)


def ivf_nlist(n: int, settings: Settings) -> int:
    """IVF lists for ``n`` chunks: the setting, or sqrt(n) rounded to a power of two."""
    if settings.ivf_nlist:
        return max(1, min(settings.ivf_nlist, n))
    return int(2 ** round(np.log2(max(np.sqrt(max(n, 1)), 1))))


def _new_faiss(kind: str, vectors: np.ndarray, dim: int, settings: Settings) -> tuple[Any, dict]:
    import faiss

    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = settings.hnsw_ef_construction
        params = {"m": settings.hnsw_m, "ef_construction": settings.hnsw_ef_construction}
    elif kind == "ivf":
        n = len(vectors)
        nlist = ivf_nlist(n, settings)
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.niter = 10
        rng = np.random.default_rng(0)
        sample = vectors[np.sort(rng.choice(n, min(n, 40 * nlist), replace=False))]
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
        index.set_direct_map_type(faiss.DirectMap.Array)  # reconstruct_n for incremental builds
        params = {"nlist": nlist, "trained_on": n}
    else:
        index = faiss.IndexFlatIP(dim)
        params = {}
    return index, {"kind": kind, "metric": "inner_product", "params": params}


def _refresh_manifest(
    settings: Settings,
    previous: _Previous,
    seeds_dir: Path,
    documents: list[Document],
    skipped: list[tuple[str, str]],
) -> None:
    """Rewrite only the manifest's file stats (same content), atomically."""
    manifest = dict(previous.manifest)
    manifest["documents"] = {
        d.id: {**previous.manifest["documents"][d.id], **_stat(seeds_dir / d.id)} for d in documents
    }
    manifest["skipped"] = dict(skipped)
    manifest["skipped_files"] = _skipped_files(settings, skipped)
    _write_json(previous.build / MANIFEST, manifest)


def _skipped_files(settings: Settings, skipped: Sequence[tuple[str, str]]) -> dict[str, dict]:
    """File stats of the skipped files, with the extractor and limits they were tried with:
    an unchanged file is not extracted again (a parser that hangs costs its timeout once, not
    at every build), and an edited one makes the index stale."""
    out = {}
    for name, _reason in skipped:
        path = Path(settings.seeds_dir) / name
        if not path.is_file():
            continue
        out[name] = {**_stat(path), **_extract_key(settings, format_of(name) or "")}
    return out


def _extract_key(settings: Settings, fmt: str) -> dict:
    return {
        "extractor": extractor_version(fmt) if fmt and not is_plain(fmt) else "",
        "extract_limits": [settings.extract_timeout, settings.extract_memory_mb],
    }


def _stats_changed(manifest: dict, seeds_dir: Path, documents: list[Document]) -> bool:
    return any(
        {k: manifest["documents"][d.id].get(k) for k in ("size", "mtime_ns")}
        != _stat(seeds_dir / d.id)
        for d in documents
    )


def _stat(path: Path) -> dict:
    try:
        st = path.stat()
    except OSError:
        return {"size": None, "mtime_ns": None}
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _point_current(index_dir: Path, name: str) -> None:
    tmp = index_dir / f".{CURRENT}.{uuid.uuid4().hex[:8]}"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(name + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, index_dir / CURRENT)
    _fsync_dir(index_dir)


def _remove_leftovers(index_dir: Path) -> None:
    """Delete what killed builds left behind (called under the build lock)."""
    for path in index_dir.iterdir():
        if path.name.startswith((".tmp-", f".{CURRENT}.")):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    try:
        live = current_build(index_dir)
    except CorruptIndexError:
        return
    if live is not None:
        _remove_old_builds(index_dir, keep=live.name)


def _remove_old_builds(index_dir: Path, keep: str) -> None:
    for path in index_dir.iterdir():
        if path.is_dir() and path.name.startswith("build-") and path.name != keep:
            shutil.rmtree(path, ignore_errors=True)


def _write_json(path: Path, data: dict) -> None:
    """Write a manifest atomically, setting its ``checksum`` (see ``_text_checksum``)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    # Indented for people while small; compact (C encoder, ~10x faster) for 1,000+ documents.
    indent = 1 if len(data.get("documents", ())) < 1000 else None
    data["checksum"] = _ZEROS
    text = json.dumps(data, indent=indent, sort_keys=True, ensure_ascii=False) + "\n"
    raw = text.encode("utf-8")  # bytes, so the hash does not depend on newline translation
    data["checksum"] = digest = _text_checksum(raw)
    raw = raw.replace(f'"checksum": "{_ZEROS}"'.encode(), f'"checksum": "{digest}"'.encode(), 1)
    with open(tmp, "wb") as handle:
        handle.write(raw)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _segment_file_infos(build: Path, name: str) -> dict[str, dict]:
    """The manifest's ``files`` records (size, per-block crc32) of one written segment."""
    out = {}
    for rel in SEGMENT_FILES:
        path = build / segment_file(name, rel)
        out[segment_file(name, rel)] = {"size": path.stat().st_size, "crc32": _file_crcs(path)}
    return out


def _fsync_tree(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    for path in [root, *[p for p in root.rglob("*") if p.is_dir()]]:
        _fsync_dir(path)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _package_version() -> str:
    from . import __version__

    return __version__


def index_status(settings: Settings | None = None) -> dict:
    """A summary of the live index for the CLI and the web app (no model is loaded)."""
    settings = settings or Settings()
    build = current_build(settings.index_dir)
    if build is None:
        return {"built": False, "index_dir": str(settings.index_dir)}
    manifest = read_manifest(build)
    changes = seed_changes(manifest, settings.seeds_dir)
    return {
        "built": True,
        "index_dir": str(settings.index_dir),
        "build": build.name,
        "created": manifest["created"],
        "model": manifest["model"],
        "dim": manifest["dim"],
        "index": manifest["index"]["kind"],
        "segments": [s["chunks"] for s in segments_of(manifest)],
        "chunks": manifest["counts"]["chunks"],
        "documents": {
            k: {
                "title": v["title"],
                "chunks": v["chunks"],
                "format": v.get("format") or format_of(k) or "txt",
                "pages": v.get("pages"),
                "sha256": v["sha256"],
            }
            for k, v in manifest["documents"].items()
        },
        "skipped": dict(manifest.get("skipped", {})),
        "stale": bool(changes),
        "changes": changes,
    }
