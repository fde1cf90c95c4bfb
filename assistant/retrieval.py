"""Find the passages for a question: dense FAISS search plus BM25, fused, overlaps merged."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import crossencoder
from .chunking import embedding_text
from .config import Settings
from .embedder import Embedder, embed_with_tokens
from .embedders import embedder_for
from .errors import IncompatibleIndexError
from .scope import check_sources
from .store import IndexStore, backend_for
from .store.diff import diff, shown_changes
from .types import Passage, Passages
from .validate import check_k, check_question

__all__ = ["Retriever", "ScopedRetriever", "retrieve", "fuse", "get_retriever"]


@dataclass
class _Hit:
    chunk_id: int
    score: float
    dense_score: float | None = None
    dense_rank: int | None = None
    lexical_score: float | None = None
    lexical_rank: int | None = None


def fuse(
    dense: tuple[np.ndarray, np.ndarray],
    lexical: tuple[np.ndarray, np.ndarray],
    method: str = "rrf",
    rrf_k: int = 60,
    dense_weight: float = 0.5,
) -> list[_Hit]:
    """Combine ranked ``(scores, ids)`` lists into one ranking, best first.

    ``rrf``: score = 2w/(k + dense_rank) + 2(1-w)/(k + lexical_rank) (w = 0.5 is plain RRF).
    ``weighted``: min-max normalize each side's scores over its candidates, then
    w * dense + (1 - w) * lexical; a side that missed the chunk contributes 0.
    ``dense`` / ``bm25``: one side only.
    """
    hits: dict[int, _Hit] = {}
    for rank, (score, cid) in enumerate(zip(*dense), start=1):
        hits[int(cid)] = _Hit(int(cid), 0.0, dense_score=float(score), dense_rank=rank)
    for rank, (score, cid) in enumerate(zip(*lexical), start=1):
        hit = hits.setdefault(int(cid), _Hit(int(cid), 0.0))
        hit.lexical_score, hit.lexical_rank = float(score), rank
    w = dense_weight
    if method == "rrf":
        for h in hits.values():
            h.score = (2 * w / (rrf_k + h.dense_rank) if h.dense_rank else 0.0) + (
                2 * (1 - w) / (rrf_k + h.lexical_rank) if h.lexical_rank else 0.0
            )
    elif method == "weighted":
        d_lo, d_hi = _bounds(dense[0])
        l_lo, l_hi = _bounds(lexical[0])
        for h in hits.values():
            d = (h.dense_score - d_lo) / (d_hi - d_lo) if h.dense_score is not None else 0.0
            lx = (h.lexical_score - l_lo) / (l_hi - l_lo) if h.lexical_score is not None else 0.0
            h.score = w * d + (1 - w) * lx
    elif method == "dense":
        hits = {c: h for c, h in hits.items() if h.dense_rank}
        for h in hits.values():
            h.score = h.dense_score
    elif method == "bm25":
        hits = {c: h for c, h in hits.items() if h.lexical_rank}
        for h in hits.values():
            h.score = h.lexical_score
    else:
        raise ValueError(f"unknown fusion method {method!r}")
    return sorted(hits.values(), key=lambda h: (-h.score, h.chunk_id))


def _bounds(scores: np.ndarray) -> tuple[float, float]:
    if len(scores) == 0:
        return 0.0, 1.0
    lo, hi = float(np.min(scores)), float(np.max(scores))
    return (lo, hi) if hi > lo else (lo - 1.0, hi)


MAX_MERGED = 2  # a passage joins at most two overlapping chunks, so it stays readable


def merge_overlaps(rows: list[tuple[_Hit, tuple]], k: int) -> list[Passage]:
    """Turn ranked chunk rows into at most ``k`` passages; chunks that overlap a better passage
    of the same document are merged into it, so each passage is a different piece of evidence."""
    passages: list[dict] = []
    for hit, (doc_id, start, end, text, title) in rows:
        touching = [
            p for p in passages if p["source"] == doc_id and start < p["end"] and end > p["start"]
        ]
        if len(touching) == 1 and len(touching[0]["chunk_ids"]) < MAX_MERGED:
            p = touching[0]
            if start < p["start"]:
                p["text"] = text[: p["start"] - start] + p["text"]
                p["start"] = start
            if end > p["end"]:
                p["text"] = p["text"] + text[len(text) - (end - p["end"]) :]
                p["end"] = end
            p["chunk_ids"].append(hit.chunk_id)
        elif not touching and len(passages) < k:
            passages.append(
                {
                    "text": text,
                    "source": doc_id,
                    "title": title,
                    "start": start,
                    "end": end,
                    "score": hit.score,
                    "dense_score": hit.dense_score,
                    "dense_rank": hit.dense_rank,
                    "lexical_score": hit.lexical_score,
                    "lexical_rank": hit.lexical_rank,
                    "chunk_ids": [hit.chunk_id],
                }
            )
        # otherwise: the region is already covered by better passages; drop the duplicate
    return [Passage(**{**p, "chunk_ids": tuple(p["chunk_ids"])}) for p in passages]


class Retriever:
    """Hybrid search over one index folder. Loads once; reloads when a new build is swapped in,
    and closes the replaced build once no search is using it.

    An index older than the seeds keeps answering from its last complete build; ``stale()``
    says what it does not cover yet (only an incompatible or damaged index refuses).
    """

    STALE_CHECK_SECONDS = 2.0  # how long a seeds-folder comparison is reused

    def __init__(
        self,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
        check_seeds: bool = True,
    ) -> None:
        self.settings = settings or Settings()
        self._embedder = embedder
        self.check_seeds = check_seeds
        self._lock = threading.Lock()
        self._backend = backend_for(self.settings)
        self._index: IndexStore | None = None
        self._build_name: str | None = None
        self._query_cache: OrderedDict[str, tuple] = OrderedDict()
        self._stale: tuple[float, str | None, list[str]] = (0.0, None, [])

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = embedder_for(self.settings)
        return self._embedder

    @property
    def index(self) -> IndexStore:
        """The live build, reopened if ``CURRENT`` now names another one."""
        name = self._backend.current(self.settings)
        if self._index is None or name != self._build_name:
            with self._lock:
                if self._index is None or name != self._build_name:
                    loaded = self._backend.open(self.settings)
                    dim = loaded.manifest["dim"]
                    if dim != self.embedder.dim:
                        loaded.close()
                        raise IncompatibleIndexError(
                            f"index has {dim}-d vectors, the model {self.settings.model!r} gives "
                            f"{self.embedder.dim}-d; run `assistant build --full`"
                        )
                    old, self._index, self._build_name = self._index, loaded, loaded.name
                    if old is not None:
                        old.retire()  # closed as soon as no search is using it
        return self._index

    def stale(self) -> list[str]:
        """What the seeds folder has that the served build does not (``"new: a.txt"``, ...);
        empty when up to date or when ``check_seeds`` is off. Re-checked every few seconds."""
        if not self.check_seeds:
            return []
        index = self.index
        checked, name, changes = self._stale
        if name == index.name and time.monotonic() - checked < self.STALE_CHECK_SECONDS:
            return changes
        manifest = index.manifest
        changes = []
        if manifest.get("source", {}).get("kind") == "seeds":
            changes = diff(self.settings, manifest).changes()
        self._stale = (time.monotonic(), index.name, changes)
        return changes

    def stale_message(self) -> str:
        """One line about what is not indexed yet, or ``""``."""
        changes = self.stale()
        if not changes:
            return ""
        n = len(changes)
        return (
            f"{n} document{'s are' if n != 1 else ' is'} not indexed yet "
            f"({shown_changes(changes, 3)}): answers come from the last complete build; "
            "run `assistant build`"
        )

    def embed_query(self, query: str) -> np.ndarray:
        """The query's vector (cached: follow-ups and the answer step reuse it)."""
        return self._embedded(query)[0]

    def query_tokens(self, query: str) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """The query's wordpiece vectors and their character spans, from the same forward pass
        as its vector (an embedder without ``embed_tokens`` gives the vector as one token)."""
        _, tokens, spans = self._embedded(query)
        return tokens, spans

    def _embedded(self, query: str) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
        with self._lock:
            cached = self._query_cache.get(query)
            if cached is not None:
                self._query_cache.move_to_end(query)
                return cached
        vectors, tokens, spans = embed_with_tokens(self.embedder, [query])
        entry = (vectors[0], tokens[0], spans[0])
        with self._lock:
            self._query_cache[query] = entry
            if len(self._query_cache) > 1024:
                self._query_cache.popitem(last=False)
        return entry

    def search(
        self,
        query: str,
        k: int = 5,
        rerank: bool | None = None,
        sources: Sequence[str] | None = None,
    ) -> list[Passage]:
        """The ``k`` best passages for ``query``, best first (fewer if the corpus is smaller).
        With ``rerank`` (default: the ``rerank`` setting) the best ``rerank_depth`` are read
        by the reader model and reordered by their best sentence (``crossencoder.rerank``).
        With ``sources`` (document names, see ``scope.check_sources``; empty: all), the ``k``
        best passages of those documents only; an unknown name is ``UnknownDocumentError``."""
        query = _check_query(query, k, self.settings.max_k, self.settings.max_question_chars)
        rerank = self.settings.rerank if rerank is None else rerank
        index = self.index
        with index.in_use():  # a build swapped in meanwhile closes this one only afterwards
            docs = _scope(index, sources)
            passages = self._search(
                index, query, max(k, self.settings.rerank_depth) if rerank else k, docs
            )
        if rerank:
            passages = crossencoder.rerank(query, passages)[:k]
        return Passages(passages, stale=self.stale_message())

    def scoped(self, sources: Sequence[str] | None) -> Retriever | ScopedRetriever:
        """This retriever limited to the documents ``sources`` names (checked now: an unknown
        name is ``UnknownDocumentError``); itself when ``sources`` is None or empty."""
        docs = _scope(self.index, sources)
        return self if docs is None else ScopedRetriever(self, docs)

    def _search(
        self, index: IndexStore, query: str, k: int, docs: Collection[str] | None = None
    ) -> list[Passage]:
        # The same build for ranking and rows: a swap in between would mix two builds' chunk ids.
        hits = self.ranked_chunks(query, max(self.settings.candidates, k), index=index, docs=docs)
        # Fetch rows for a growing prefix: merged overlaps may need more than k chunks.
        limit = max(2 * k, 16)
        rows: dict[int, tuple] = {}
        fetched = 0
        while True:
            prefix = hits[:limit]
            rows.update(index.chunk_rows(h.chunk_id for h in prefix[fetched:]))
            fetched = len(prefix)
            passages = merge_overlaps(
                [(h, rows[h.chunk_id]) for h in prefix if h.chunk_id in rows], k
            )
            if len(passages) >= k or limit >= len(hits):
                break
            limit *= 2
        return [index.with_marks(p) for p in passages[:k]]

    def ranked_chunks(
        self,
        query: str,
        n: int | None = None,
        index: IndexStore | None = None,
        docs: Collection[str] | None = None,
    ) -> list[_Hit]:
        """Every candidate chunk for ``query``, fused and best first (``n`` per side); with
        ``docs`` (document ids), the candidates of those documents only."""
        query = _check_query(query, 1, max_chars=self.settings.max_question_chars)
        s = self.settings
        index = index or self.index
        n = s.candidates if n is None else n
        dense = (np.zeros(0, np.float32), np.zeros(0, np.int64))
        lexical = dense
        if s.fusion != "bm25":
            dense = index.dense_search(self.embed_query(query), n, docs=docs)
        if s.fusion != "dense":
            lexical = index.lexical_search(query, n, docs=docs)
        return fuse(dense, lexical, s.fusion, s.rrf_k, s.dense_weight)

    def embedding_text(self, passage: Passage) -> str:
        return embedding_text(passage.title, passage.text, self.settings.embed_titles)


def _scope(index: IndexStore, sources: Sequence[str] | None) -> tuple[str, ...] | None:
    """The document ids ``sources`` names in ``index`` (None: every document)."""
    known = index.manifest["documents"]
    docs = check_sources(sources, known)
    return None if docs is not None and len(docs) == len(known) else docs


class ScopedRetriever:
    """A ``Retriever`` limited to some documents (``Retriever.scoped``): its searches return
    passages of those documents only and its ``index`` lists only them (so a summary picks one
    of them); everything else (the loaded build, the embedder, the query cache, the stale
    check) is the shared retriever's. ``ask(..., sources=...)`` answers through one."""

    def __init__(self, base: Retriever, docs: tuple[str, ...]) -> None:
        self.base, self.sources = base, docs

    def __getattr__(self, name: str) -> Any:
        return getattr(self.base, name)

    @property
    def index(self) -> IndexStore:
        return _ScopedIndex(self.base.index, self.sources)  # type: ignore[return-value]

    def scoped(self, sources: Sequence[str] | None) -> Retriever | ScopedRetriever:
        return self.base.scoped(sources) if sources else self

    def search(
        self,
        query: str,
        k: int = 5,
        rerank: bool | None = None,
        sources: Sequence[str] | None = None,
    ) -> list[Passage]:
        return self.base.search(query, k, rerank, sources or self.sources)

    def ranked_chunks(
        self,
        query: str,
        n: int | None = None,
        index: IndexStore | None = None,
        docs: Collection[str] | None = None,
    ) -> list[_Hit]:
        return self.base.ranked_chunks(query, n, index, self.sources if docs is None else docs)


class _ScopedIndex:
    """An opened build seen through a scope: searches and ``documents()`` cover the scope's
    documents only; everything else is the build's (``unscoped``)."""

    def __init__(self, index: IndexStore, docs: tuple[str, ...]) -> None:
        self.unscoped, self.sources = index, docs

    def __getattr__(self, name: str) -> Any:
        return getattr(self.unscoped, name)

    def dense_search(
        self, vector: np.ndarray, n: int, docs: Collection[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        return self.unscoped.dense_search(vector, n, docs=self.sources if docs is None else docs)

    def lexical_search(
        self, query: str, n: int, docs: Collection[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        return self.unscoped.lexical_search(query, n, docs=self.sources if docs is None else docs)

    def documents(self) -> dict[str, str]:
        return {d: t for d, t in self.unscoped.documents().items() if d in self.sources}


def _check_query(query: str, k: int, max_k: int | None = None, max_chars: int | None = None) -> str:
    """``query`` cleaned for searching (see ``validate.check_question``), after checking ``k``.
    A query over ``max_chars`` (``ASSISTANT_MAX_QUESTION_CHARS`` when None), empty, or made
    only of control characters is refused with ``QuestionError`` before anything tokenizes it."""
    if not isinstance(query, str):
        raise TypeError(f"query must be a string, not {type(query).__name__}")
    check_k(k, max_k)
    return check_question(query, max_chars, "query")


_retrievers: dict[str, Retriever] = {}
_retrievers_lock = threading.Lock()


def get_retriever(settings: Settings | None = None) -> Retriever:
    """The shared ``Retriever`` for these settings (one per process and settings)."""
    settings = settings or Settings()
    key = settings.model_dump_json()
    with _retrievers_lock:
        retriever = _retrievers.get(key)
        if retriever is None:
            retriever = _retrievers[key] = Retriever(settings)
        return retriever


def retrieve(
    query: str,
    k: int = 5,
    settings: Settings | None = None,
    rerank: bool | None = None,
    sources: Sequence[str] | None = None,
) -> list[Passage]:
    """The ``k`` best passages for ``query`` from the index in ``ASSISTANT_INDEX_DIR``;
    ``rerank`` orders them by the reader model (default: the ``rerank`` setting). ``sources``
    limits them to these documents (names relative to the seeds folder, as ``Passage.source``
    shows them; None or empty: all); an unknown name raises ``UnknownDocumentError``, whose
    message lists the close names."""
    return get_retriever(settings).search(query, k, rerank, sources)
