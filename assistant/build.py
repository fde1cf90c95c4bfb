"""Bring the index up to date with the seeds folder: diff -> extract/chunk -> embed -> write.

The seed diff (``store.diff``) says which files to read; only new and changed documents are
chunked and embedded, in batches of documents whose vectors are checkpointed
(``store.checkpoint``), so a killed build resumes; the store writes the build and swaps it in.

Who extracts, chunks and embeds is the build's ``work``: ``LocalWork`` (this process, the
plain build) or ``distributed.RayWork`` (Ray workers, one model each); the diff, the batches,
the checkpoint, the write and the report are this module's, the same for both.
"""

from __future__ import annotations

import itertools
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .chunking import Chunker, embedding_text
from .config import Settings
from .corpus import Corpus, load_corpus
from .embedder import Embedder
from .embedders import embedder_for
from .extract import is_plain
from .store import backend_for
from .store.checkpoint import Checkpoint, document_key
from .store.diff import SKIPPED, TOUCHED, UNCHANGED, SeedDiff, diff, skip_record
from .store.layout import BuildLock
from .store.planner import BuildInput, DocumentRows
from .store.statcache import StatCache
from .tokens import get_encoding
from .types import BuildReport, Chunk, Document

log = logging.getLogger(__name__)

MAX_DOC_CHUNKS = 20_000  # chunks kept of one document (about 16 MB of prose); the rest is cut
EMBED_BLOCK = 256  # at least this many chunks per embedded (and checkpointed) batch of documents

Progress = Callable[[str, int, int], None]


class Work(Protocol):
    """Who extracts, chunks and embeds the documents a build has to do."""

    parse: Callable | None  # None: the corpus is read and extracted here (``load_corpus``)

    @property
    def dim(self) -> int: ...

    @property
    def max_tokens(self) -> int: ...

    def chunk(self, docs: Sequence[Document]) -> list[tuple[list[Chunk], str | None]]:
        """Per document, its chunks and the warning of a cut, if any (``chunk_document``)."""
        ...

    def embed(self, jobs: Sequence[tuple[list[str], int]]) -> Iterator[tuple[int, np.ndarray]]:
        """Vectors of each job (texts of a batch of that many documents), as ``(job index,
        vectors)`` in any order."""
        ...

    def workers(self) -> list[dict]:
        """Per worker: what it embedded (empty for a build in this process)."""
        ...


class LocalWork:
    """The plain build: everything in this process, with one embedder."""

    parse = None

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings, self._embedder = settings, embedder

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = embedder_for(self.settings)
        return self._embedder

    @property
    def dim(self) -> int:
        return self.embedder.dim

    @property
    def max_tokens(self) -> int:
        return self.embedder.max_tokens

    def chunk(self, docs: Sequence[Document]) -> list[tuple[list[Chunk], str | None]]:
        return [chunk_document(self.settings, self.embedder, d) for d in docs]

    def embed(self, jobs: Sequence[tuple[list[str], int]]) -> Iterator[tuple[int, np.ndarray]]:
        for i, (texts, _docs) in enumerate(jobs):
            yield i, self.embedder.embed(texts, batch_size=self.settings.batch_size)

    def workers(self) -> list[dict]:
        return []


def chunk_document(
    settings: Settings, embedder: Embedder, doc: Document
) -> tuple[list[Chunk], str | None]:
    """The document's chunks, each fitting the embedder's window with its title; at most
    ``MAX_DOC_CHUNKS``, with a warning saying what was cut."""
    s = settings
    chunker = Chunker(
        get_encoding(s.encoding),
        s.chunk_tokens,
        s.chunk_overlap,
        fits=lambda t, title=doc.title: embedder.fits(embedding_text(title, t, s.embed_titles)),
        max_chunks=MAX_DOC_CHUNKS,
    )
    chunks = chunker.chunk(doc)
    if len(chunks) < MAX_DOC_CHUNKS:
        return chunks, None
    chunks = chunks[:MAX_DOC_CHUNKS]
    return chunks, (
        f"{doc.id}: only its first {MAX_DOC_CHUNKS} chunks are indexed (to character "
        f"{chunks[-1].end} of {len(doc.text)}); split the document to index the rest"
    )


def build_index(
    settings: Settings | None = None,
    *,
    full: bool = False,
    embedder: Embedder | None = None,
    progress: bool | None = None,
    wait: float | None = 0,
    on_progress: Progress | None = None,
    work: Work | None = None,
) -> BuildReport:
    """Bring the index up to date with the seeds folder, re-embedding only what changed.

    ``wait`` is how many seconds to wait for another build's lock (None: forever, 0: refuse).
    ``on_progress(stage, done, total)`` is called while embedding (the web app uses it).
    ``work`` extracts, chunks and embeds (default: ``LocalWork`` with ``embedder``).
    """
    settings = settings or Settings()
    started = time.perf_counter()
    index_dir = Path(settings.index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    progress = sys.stderr.isatty() if progress is None else progress
    backend = backend_for(settings)
    with BuildLock(index_dir, wait):
        backend.prepare(settings)
        work = work or LocalWork(settings, embedder)
        job = _Build(settings, full, work, progress, on_progress, started)
        try:
            return job.run(backend.previous(settings, full))
        finally:
            job.close()


class _Build:
    def __init__(
        self,
        settings: Settings,
        full: bool,
        work: Work,
        progress: bool,
        on_progress: Progress | None,
        started: float,
    ) -> None:
        self.settings, self.full, self.work = settings, full, work
        self.progress, self.on_progress, self.started = progress, on_progress, started
        self.previous: Any = None  # the store's previous build (``.manifest``, ``.close()``)
        self.warnings: list[str] = []

    def close(self) -> None:
        if self.previous is not None:
            self.previous.close()

    def run(self, previous: Any) -> BuildReport:
        self.previous = previous
        manifest = previous.manifest if previous else None
        cache = StatCache.load(self.settings)  # local file stats: never in the manifest
        seeds = diff(self.settings, manifest, cache)
        corpus = read_corpus(self.settings, seeds, manifest, self.work.parse)
        old_docs: dict[str, dict] = manifest["documents"] if manifest else {}
        status = {d.id: _status(d, old_docs.get(d.id)) for d in corpus.documents}
        todo = [d for d in corpus.documents if status[d.id] != "unchanged"]
        removed = sorted(set(old_docs) - set(status))
        # Stat signatures (this machine's: for the stat cache), and the file facts a manifest
        # records (its size: the same in every clone).
        stats = {**{f.doc_id: f.stat for f in seeds.files if f.stat}, **corpus.stats}
        facts = {d: {"size": (st or {}).get("size")} for d, st in stats.items()}
        skipped_files = _skipped_records(self.settings, corpus, seeds, cache)
        if previous is not None and todo and previous.manifest.get("dim") != self.work.dim:
            # The same model name now gives vectors of another size: nothing can be reused.
            log.warning(
                "rebuilding everything: the index has %s-d vectors, the model gives %d-d",
                previous.manifest.get("dim"),
                self.work.dim,
            )
            previous.close()
            return self.run(None)
        if previous is not None and not todo and not removed and not self.full:
            # Up to date: the build is not rewritten. A fresh clone's other file times only go
            # to the stat cache; the manifest is refreshed only when what it records changed
            # (skipped files, or a document's size missing from an old manifest).
            if seeds.changes() or _skips_differ(manifest, corpus, skipped_files):
                backend_for(self.settings).refresh(
                    self.settings, previous, facts, corpus.skipped, skipped_files
                )
            _remember(cache, seeds, corpus)
            total = previous.manifest["counts"]["chunks"]
            return self._report(corpus, status, removed, total, 0, up_to_date=True)
        chunks = {}
        for doc, (doc_chunks, warning) in zip(todo, self.work.chunk(todo)):
            chunks[doc.id] = doc_chunks
            if warning:
                log.warning(warning)
                self.warnings.append(warning)
        rows, vectors, resumed = self._embed(todo, chunks)
        new_docs = [
            DocumentRows(
                doc.id,
                doc.title,
                doc.sha256,
                facts.get(doc.id, {"size": None}),
                rows[doc.id],
                format=doc.format,
                extractor=doc.extractor,
                pages=doc.pages,
                text=None if is_plain(doc.format) else doc.text,
                marks=doc.marks,
            )
            for doc in todo
        ]
        kept = {
            d.id: facts.get(d.id, {"size": None})
            for d in corpus.documents
            if status[d.id] == "unchanged"
        }
        _, written = backend_for(self.settings).write(
            self.settings,
            BuildInput(
                self.work.dim,
                self.work.max_tokens,
                new_docs,
                vectors,
                previous=previous,
                kept=kept,
                skipped=corpus.skipped,
                skipped_files=skipped_files,
            ),
        )
        Checkpoint(self.settings.index_dir).clear()
        _remember(cache, seeds, corpus)
        total = written["counts"]["chunks"]
        return self._report(corpus, status, removed, total, len(vectors), resumed)

    def _embed(
        self, docs: list[Document], chunks: dict[str, list[Chunk]]
    ) -> tuple[dict, np.ndarray, int]:
        """Chunk rows per document, the vectors of all of them in order, and how many chunks
        came from the checkpoint of an interrupted build."""
        s = self.settings
        dim = self.work.dim
        build_key = {
            "model": s.model,
            "dim": dim,
            "backend": s.embed_backend,
            **s.chunk_params(),
        }
        checkpoint = Checkpoint(s.index_dir)
        cached = checkpoint.load()
        keys = {d.id: document_key(d.sha256, d.extractor, build_key) for d in docs}
        vectors: dict[str, np.ndarray] = {}
        for d in docs:
            got = cached.get(keys[d.id])
            if got is not None and len(got) == len(chunks[d.id]):
                vectors[d.id] = got
        resumed = sum(len(v) for v in vectors.values())
        total = sum(len(c) for c in chunks.values())
        if resumed:
            log.warning(
                "resuming an interrupted build: %d of %d chunks are in its checkpoint",
                resumed,
                total,
            )
        meter = _Meter(total, resumed, self.progress, self.on_progress)
        batches = _batches([d for d in docs if d.id not in vectors], chunks)
        texts = [
            [embedding_text(b.title, c.text, s.embed_titles) for b in batch for c in chunks[b.id]]
            for batch in batches
        ]
        jobs = [i for i, t in enumerate(texts) if t]
        results = self.work.embed([(texts[i], len(batches[i])) for i in jobs])
        empty = ((i, np.zeros((0, dim), np.float32)) for i, t in enumerate(texts) if not t)
        for i, out in itertools.chain(((jobs[j], out) for j, out in results), empty):
            if out.shape != (len(texts[i]), dim):
                raise ValueError(
                    f"embedder returned shape {out.shape}, expected ({len(texts[i])}, {dim})"
                )
            done, at = {}, 0
            for b in batches[i]:
                n = len(chunks[b.id])
                vectors[b.id] = done[keys[b.id]] = out[at : at + n]
                at += n
            checkpoint.save(done)
            meter.add(len(texts[i]))
        meter.close()
        if checkpoint.problem:  # said only if the build completes (else its error says it)
            self.warnings.append(checkpoint.problem)
        rows = {d.id: [(c.start, c.end, c.n_tokens, c.text) for c in chunks[d.id]] for d in docs}
        parts = [np.asarray(vectors[d.id], np.float32) for d in docs]
        matrix = np.concatenate(parts) if parts else np.zeros((0, dim), np.float32)
        return rows, matrix, resumed

    def _report(
        self,
        corpus: Corpus,
        status: dict,
        removed: list,
        total: int,
        new_chunks: int,
        resumed: int = 0,
        up_to_date: bool = False,
    ) -> BuildReport:
        counts = {k: sum(1 for v in status.values() if v == k) for k in ("new", "changed")}
        return BuildReport(
            documents=len(corpus.documents),
            new=counts["new"],
            changed=counts["changed"],
            removed=len(removed),
            unchanged=len(corpus.documents) - counts["new"] - counts["changed"],
            embedded_chunks=new_chunks - resumed,
            reused_chunks=total - new_chunks,
            total_chunks=total,
            skipped=corpus.skipped,
            seconds=time.perf_counter() - self.started,
            full=self.full and not up_to_date,
            index_dir=str(self.settings.index_dir),
            up_to_date=up_to_date,
            resumed_chunks=resumed,
            warnings=list(self.warnings),
            workers=self.work.workers(),
        )


def _batches(docs: list[Document], chunks: dict[str, list[Chunk]]) -> list[list[Document]]:
    """Documents in order, cut into batches of at least ``EMBED_BLOCK`` chunks (the last one
    may be smaller): the unit of embedding and of the checkpoint."""
    out: list[list[Document]] = [[]]
    held = 0
    for doc in docs:
        if held >= EMBED_BLOCK:
            out.append([])
            held = 0
        out[-1].append(doc)
        held += len(chunks[doc.id])
    return out if out[0] else []


def _status(doc: Document, old: dict | None) -> str:
    if old is None:
        return "new"
    same = (old["sha256"], old.get("extractor", "")) == (doc.sha256, doc.extractor)
    return "unchanged" if same else "changed"


def read_corpus(
    settings: Settings, seeds: SeedDiff, manifest: dict | None, parse: Callable | None = None
) -> Corpus:
    """The seed documents: files the diff found unchanged are not read again (their
    ``Document`` carries the recorded title and sha256 and no text, which the build does not
    need), nor are skipped files that are unchanged (same reason). Only new and changed files
    are read, each with the stat of that same read (``Corpus.stats``)."""
    recorded: dict[str, dict] = manifest["documents"] if manifest else {}
    states = {f.doc_id: f for f in seeds.files}

    def known(doc_id: str, path: str) -> Document | str | None:
        state = states.get(doc_id)
        if state is None:
            return None
        if state.status == SKIPPED:
            return state.reason
        if state.status not in (UNCHANGED, TOUCHED):
            return None
        old = recorded[doc_id]
        return Document(
            doc_id,
            old["title"],
            "",
            old["sha256"],
            format=old.get("format", "txt" if not doc_id.endswith(".md") else "md"),
            extractor=old.get("extractor", ""),
            pages=old.get("pages"),
        )

    return load_corpus(
        settings.seeds_dir,
        max_bytes=int(settings.max_file_mb * 1e6),
        known=known if manifest else None,
        extract_timeout=settings.extract_timeout,
        extract_memory_mb=settings.extract_memory_mb,
        parse=parse,
    )


def _skipped_records(
    settings: Settings, corpus: Corpus, seeds: SeedDiff, cache: StatCache
) -> dict[str, dict]:
    """Per skipped file (one the walk listed as a document): its size and sha256 as read, with
    the extractor and limits it was tried with (``skip_record``), so the next diff skips it
    again while unchanged. A file skipped again unchanged keeps its record."""
    states = {f.doc_id: f for f in seeds.files}
    out = {}
    for name, _reason in corpus.skipped:
        state = states.get(name)
        if state is None:
            continue  # skipped by the walk (unsupported format, symlink): known by its reason
        if state.status == SKIPPED and state.record is not None:
            out[name] = state.record
            continue
        out[name] = skip_record(settings, name, state.path, cache, corpus.stats.get(name))
    return out


def _remember(cache: StatCache, seeds: SeedDiff, corpus: Corpus) -> None:
    """Save the stat cache with the files read by this build (each stat signature from the
    same open as the bytes hashed), without files that left the seeds folder."""
    for doc in corpus.documents:
        cache.put(doc.id, corpus.stats.get(doc.id), doc.sha256)
    cache.retain({f.doc_id for f in seeds.files})
    cache.save()


def _skips_differ(manifest: dict | None, corpus: Corpus, records: dict) -> bool:
    manifest = manifest or {}
    return dict(corpus.skipped) != manifest.get("skipped") or records != manifest.get(
        "skipped_files"
    )


class _Meter:
    """Progress of the embedding: a tqdm bar (chunks/s, ETA) and ``on_progress`` calls."""

    def __init__(self, total: int, done: int, show: bool, on_progress: Progress | None) -> None:
        from tqdm import tqdm

        self.total, self.done, self.on_progress = total, done, on_progress
        self.bar = tqdm(total=total, initial=done, desc="embedding", unit="chunk", disable=not show)

    def add(self, n: int) -> None:
        self.done += n
        self.bar.update(n)
        if self.on_progress:
            self.on_progress("embedding", self.done, self.total)

    def close(self) -> None:
        self.bar.close()
