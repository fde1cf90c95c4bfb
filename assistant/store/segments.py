"""Segments: each a complete small index (FAISS vectors, SQLite chunk store, BM25 postings)
over a run of chunk ids. Opened read-only for search; written once, never modified after (so
builds share them by hard links).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..bm25 import Bm25Postings, bm25_tokens
from ..chunking import embedding_text
from ..config import Settings
from ..corpus import sha256_bytes
from ..errors import CorruptIndexError
from .layout import BM25_DIR, CHUNKS, FIX_FULL, MANIFEST, SEGMENT_FILES, VECTORS, segment_file
from .manifest import placed
from .planner import OldPart, Planned


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


def open_segment(build: Path, seg: dict, first: int, dim: int) -> Segment:
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
    set_search_params(index, seg["index"])
    try:
        bm25 = Bm25Postings.load(path / BM25_DIR, mmap=True)
    except Exception as exc:
        raise CorruptIndexError(f"{path / BM25_DIR} is unreadable ({exc}); {FIX_FULL}") from exc
    if bm25.num_docs != seg["chunks"]:
        raise CorruptIndexError(f"{path / BM25_DIR} does not match the manifest; {FIX_FULL}")
    db = connect_readonly(path / CHUNKS)
    has = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'extracted'").fetchone()
    return Segment(seg["name"], first, seg["chunks"], path, index, bm25, db, has is not None)


def open_segments(build: Path, manifest: dict) -> list[Segment]:
    out: list[Segment] = []
    try:
        for first, seg in placed(manifest):
            out.append(open_segment(build, seg, first, manifest["dim"]))
    except BaseException:
        for s in out:
            s.db.close()
        raise
    return out


@dataclass
class Previous:
    """The live build an incremental build reuses; its segments are opened only when read."""

    build: Path
    manifest: dict
    opened: dict[str, Segment] = field(default_factory=dict)

    def segment(self, name: str) -> Segment:
        if name not in self.opened:
            for first, seg in placed(self.manifest):
                if seg["name"] == name:
                    self.opened[name] = open_segment(self.build, seg, first, self.manifest["dim"])
                    break
            else:
                raise CorruptIndexError(f"{self.build / MANIFEST} has no segment {name!r}")
        return self.opened[name]

    def close(self) -> None:
        for s in self.opened.values():
            s.db.close()


def set_search_params(index: Any, info: dict) -> None:
    """Query-time parameters of an approximate index, as recorded in the manifest."""
    import faiss

    params = info.get("params", {})
    if info["kind"] == "hnsw":
        index.hnsw.efSearch = int(params.get("ef_search", 128))
    elif info["kind"] == "ivf":
        faiss.extract_index_ivf(index).nprobe = int(params.get("nprobe", 1))


def connect_readonly(path: Path) -> sqlite3.Connection:
    try:
        db = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True, check_same_thread=False
        )
        db.execute("SELECT count(*) FROM documents").fetchone()
    except sqlite3.DatabaseError as exc:
        raise CorruptIndexError(f"{path} is unreadable ({exc}); {FIX_FULL}") from exc
    return db


# Extracted texts (format 4): the text citations of a PDF/DOCX/HTML/EPUB document verify
# against (NULL for plain files, which verify against the file) with its sha256, checked when
# it is read, and its page/section marks.
EXTRACTED = (
    "CREATE TABLE IF NOT EXISTS extracted (doc_id TEXT PRIMARY KEY, format TEXT NOT NULL,"
    " extractor TEXT NOT NULL, text TEXT, text_sha256 TEXT, marks TEXT NOT NULL);"
)
SCHEMA = (
    "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
    "CREATE TABLE documents (id TEXT PRIMARY KEY, title TEXT NOT NULL, sha256 TEXT NOT NULL,"
    " first_chunk INTEGER NOT NULL, n_chunks INTEGER NOT NULL);"
    "CREATE TABLE chunks (id INTEGER PRIMARY KEY, doc_id TEXT NOT NULL, start INTEGER NOT NULL,"
    ' "end" INTEGER NOT NULL, n_tokens INTEGER NOT NULL, text TEXT NOT NULL);' + EXTRACTED
)
TOKENIZE_BATCH = 50_000


def link_segment(old_build: Path, new_build: Path, name: str) -> None:
    """Carry a segment over unchanged: hard links (no bytes copied), or copies where the
    filesystem has none. Segment files are never modified once written, so sharing is safe."""
    for rel in SEGMENT_FILES:
        src, dst = old_build / segment_file(name, rel), new_build / segment_file(name, rel)
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dst)
        except OSError:
            shutil.copyfile(src, dst)


def write_segment(
    path: Path,
    item: Planned,
    previous: Previous | None,
    settings: Settings,
    dim: int,
) -> tuple[dict, dict[str, tuple[int, int]]]:
    """Write one segment from its parts; return its FAISS entry and ``{doc: (first, chunks)}``.

    When the first part is a whole previous segment (a merge), its chunk store is copied and
    appended to and its FAISS index extended, rather than rebuilt.
    """
    path.mkdir(parents=True, exist_ok=True)
    parts = item.parts
    head = parts[0] if isinstance(parts[0], OldPart) and parts[0].whole else None
    db_path = path / CHUNKS
    if head is not None and previous is not None:
        shutil.copyfile(previous.segment(head.segment["name"]).path / CHUNKS, db_path)
        db = sqlite3.connect(db_path)
        db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + EXTRACTED)
    else:
        db = sqlite3.connect(db_path)
        db.executescript(SCHEMA)
    old_docs = previous.manifest["documents"] if previous else {}
    local: dict[str, tuple[int, int]] = {}
    vector_parts: list[np.ndarray] = []
    postings: list[Bm25Postings] = []
    base = None
    row = 0
    for part in parts:
        if isinstance(part, OldPart):
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
            vector_parts.append(reconstruct(seg.faiss, part.ranges, dim))
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
    info = write_faiss(vectors, dim, settings, path / VECTORS, base=base)
    _write_bm25(Bm25Postings.concat(postings), path / BM25_DIR)
    return info, local


def reconstruct(index: Any, ranges: list[tuple[int, int, str]], dim: int) -> np.ndarray:
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


def write_faiss(
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
        index, info = new_faiss(kind, vectors, dim, settings)
    if kind == "hnsw":
        info["params"]["ef_search"] = settings.hnsw_ef_search
    elif kind == "ivf":
        info["params"]["nprobe"] = min(settings.ivf_nprobe, info["params"]["nlist"])
    set_search_params(index, info)
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


def new_faiss(kind: str, vectors: np.ndarray, dim: int, settings: Settings) -> tuple[Any, dict]:
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
