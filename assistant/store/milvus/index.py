"""One Milvus build opened for search: the ``IndexStore`` over a chunk collection.

The live rows are those whose ``build`` tag is the one the manifest records for their document:
searches filter on the build tags the manifest names (rows of a build still being written, or
of one that failed, are never seen) and drop any row of a document the manifest says another
build wrote (the old version of a changed document, between the pointer switch and its delete).
A search limited to some documents adds their runs of chunk ids to that filter.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import weakref
from collections.abc import Collection, Iterable
from typing import Any

import numpy as np

from ...bm25 import Speller, bm25_tokens
from ...corpus import sha256_bytes
from ...errors import CorruptIndexError
from ...sources import Stored
from ...types import Passage
from ..layout import FIX_FULL
from ..lifecycle import Retirable
from ..loaded import marks_over
from ..manifest import chunk_ranges
from .client import MAX_QUERY, get_blob, hex_terms, rows_in

ROW_FIELDS = ["doc_id", "start", "end", "text", "title"]


class Vocabulary:
    """The build's BM25 vocabulary with document frequencies, shaped like one segment's
    postings for the speller (``vocab``, ``vocab_dict``, ``df``)."""

    def __init__(self, dfs: dict[str, int]) -> None:
        self.vocab = list(dfs)
        self.vocab_dict = dfs

    def df(self, term: str) -> int:
        return int(self.vocab_dict.get(term, 0))


def text_key(tag: str, doc_id: str) -> str:
    return f"text:{tag}:{hashlib_hex(doc_id)}"


def hashlib_hex(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def live_filter(manifest: dict) -> str:
    tags = sorted({info["build"] for info in manifest["documents"].values()})
    return "build in [" + ", ".join(f'"{t}"' for t in tags) + "]"


_OPENED: weakref.WeakSet[MilvusIndex] = weakref.WeakSet()


def wait_unused(collection: str, timeout: float = 60.0) -> None:
    """Wait (at most ``timeout`` seconds) until no search of this process reads a build in
    ``collection``: a full rebuild drops the collection it replaced only then."""
    deadline = time.monotonic() + timeout
    while any(i.collection == collection and i.busy for i in list(_OPENED)):
        if time.monotonic() > deadline:
            return
        time.sleep(0.05)


class MilvusIndex(Retirable):
    """An opened Milvus build (see the module docstring)."""

    def __init__(self, client: Any, meta: str, manifest: dict, vocab: dict[str, int]) -> None:
        super().__init__()
        self.client, self.meta, self.manifest = client, meta, manifest
        self.collection = manifest["milvus"]["collection"]
        self.size = int(manifest["counts"]["chunks"])
        self.vocabulary = Vocabulary(vocab)
        self.speller = Speller([self.vocabulary])
        self._live = live_filter(manifest)
        self._owner = {d: info["build"] for d, info in manifest["documents"].items()}
        self._lock = threading.Lock()
        self._stored: dict[str, Stored | None] = {}
        _OPENED.add(self)

    @property
    def name(self) -> str:
        return self.manifest["build_id"]

    # ---- search

    def _search(
        self, data: list, field: str, n: int, sign: float, docs: Collection[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        n = min(n, self.size)
        where = self._live
        if docs is not None:  # only these documents' chunks: each document is a run of ids
            runs = chunk_ranges(self.manifest, docs)
            n = min(n, sum(b - a for a, b in runs))
            ranges = " or ".join(f"(id >= {a} and id < {b})" for a, b in runs)
            where = f"{where} and ({ranges})"
        if n <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        limit = min(n + 16, MAX_QUERY)
        while True:
            hits = self.client.search(
                self.collection,
                data=data,
                anns_field=field,
                limit=limit,
                filter=where,
                output_fields=["doc_id", "build"],
            )[0]
            kept = [
                h for h in hits if self._owner.get(h["entity"]["doc_id"]) == h["entity"]["build"]
            ]
            if len(kept) >= n or len(hits) < limit or limit >= MAX_QUERY:
                break
            limit = min(limit * 4, MAX_QUERY)
        kept = kept[:n]
        scores = np.array([sign * h["distance"] for h in kept], np.float32)
        ids = np.array([h["id"] for h in kept], np.int64)
        order = np.lexsort((ids, -scores))  # ties by lower id, as the embedded store
        return scores[order], ids[order]

    def dense_search(
        self, vector: np.ndarray, n: int, docs: Collection[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        query = np.asarray(vector, np.float32).reshape(-1).tolist()
        return self._search([query], "dense", n, 1.0, docs)

    def lexical_search(
        self, query: str, n: int, docs: Collection[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        terms = [t for t in self.query_terms(query)[0] if t in self.vocabulary.vocab_dict]
        if not terms:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        # Milvus Lite reports BM25 as a negative distance (best first): the score is its negation.
        scores, ids = self._search([hex_terms(terms)], "sparse", n, -1.0, docs)
        keep = scores > 0
        return scores[keep], ids[keep]

    def query_terms(self, query: str) -> tuple[list[str], dict[str, str]]:
        return self.speller.correct_all(bm25_tokens([query])[0])

    def document_frequencies(self, terms: Iterable[str]) -> dict[str, int]:
        return {t: self.vocabulary.df(t) for t in set(terms)}

    # ---- rows

    def chunk_ids(self) -> np.ndarray:
        """Every live chunk id, ascending: each document's run of ids (kept across builds)."""
        runs = sorted((i["first_chunk"], i["chunks"]) for i in self.manifest["documents"].values())
        parts = [np.arange(a, a + n, dtype=np.int64) for a, n in runs]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def chunk_rows(self, ids: Iterable[int]) -> dict[int, tuple[str, int, int, str, str]]:
        ids = sorted({int(i) for i in ids})
        out: dict[int, tuple[str, int, int, str, str]] = {}
        for i in range(0, len(ids), 1024):
            rows = self.client.query(
                self.collection, ids=ids[i : i + 1024], output_fields=[*ROW_FIELDS, "build"]
            )
            for r in rows:
                if self._owner.get(r["doc_id"]) == r["build"]:
                    out[int(r["id"])] = (r["doc_id"], r["start"], r["end"], r["text"], r["title"])
        return out

    def document_chunks(self, doc_id: str) -> dict[int, tuple[str, int, int, str, str]]:
        info = self.manifest["documents"].get(doc_id)
        if info is None:
            return {}
        first, n = info["first_chunk"], info["chunks"]
        rows = rows_in(self.client, self.collection, first, n, ROW_FIELDS)
        rows.sort(key=lambda r: r["start"])
        return {
            int(r["id"]): (r["doc_id"], r["start"], r["end"], r["text"], r["title"]) for r in rows
        }

    def documents(self) -> dict[str, str]:
        return {d: info["title"] for d, info in self.manifest["documents"].items()}

    def vectors(self, ids: Iterable[int]) -> np.ndarray:
        ids = [int(i) for i in ids]
        found: dict[int, list[float]] = {}
        for i in range(0, len(ids), 1024):
            for r in self.client.query(
                self.collection, ids=ids[i : i + 1024], output_fields=["dense"]
            ):
                found[int(r["id"])] = r["dense"]
        if not ids:
            return np.zeros((0, self.manifest["dim"]), np.float32)
        return np.array([found[i] for i in ids], np.float32)

    # ---- extracted texts and marks

    def stored(self, doc_id: str) -> Stored | None:
        with self._lock:
            if doc_id in self._stored:
                return self._stored[doc_id]
        info = self.manifest["documents"].get(doc_id)
        record = None
        if info is not None and info.get("stored"):
            raw = get_blob(self.client, self.meta, text_key(info["build"], doc_id))
            if raw is None:
                raise CorruptIndexError(f"Milvus lost the stored text of {doc_id!r}; {FIX_FULL}")
            data = json.loads(raw)
            text = data["text"]
            if text is not None and sha256_bytes(text.encode("utf-8")) != data["text_sha256"]:
                raise CorruptIndexError(
                    f"the stored text of {doc_id!r} does not match its sha256; {FIX_FULL}"
                )
            record = Stored(
                text=text,
                marks=tuple((int(a), p, str(loc)) for a, p, loc in data["marks"]),
                sha256=info["sha256"],
                size=info.get("size"),
                mtime_ns=info.get("mtime_ns"),
                ctime_ns=info.get("ctime_ns"),
            )
        with self._lock:
            if len(self._stored) > 4096:
                self._stored.clear()
            self._stored[doc_id] = record
        return record

    def with_marks(self, passage: Passage) -> Passage:
        marks = marks_over(self.stored(passage.source), passage.start, passage.end)
        return dataclasses.replace(passage, marks=marks) if marks else passage

    # ---- life cycle

    def close(self) -> None:
        """Forget this build (the client stays open: other builds and processes share it)."""
        self._closed = True
        self.speller = None
