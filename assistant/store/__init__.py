"""The index store: a build of FAISS vectors, SQLite chunk rows and BM25 postings per segment.

``IndexStore`` is what retrieval and answers use of an opened build; ``FaissSqliteBackend``
opens and writes this folder layout. Another backend (a server, a cluster) plugs in by giving
the same two interfaces, without touching retrieval or answers.

Modules: ``layout`` (CURRENT pointer, fsync, lock), ``manifest`` (typed checks of model, vector
size, backend, encoding and chunk settings), ``integrity`` (checksums), ``segments`` (one
segment: open, write), ``planner`` (pure: what a build writes), ``diff`` (seeds against a
manifest, for the build and the stale check alike), ``checkpoint`` (resumable builds),
``loaded`` (an opened build), ``writer`` (write a build and swap it in), ``status``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..config import Settings
from ..sources import Stored
from ..types import Passage
from .planner import BuildInput


class IndexStore(Protocol):
    """An opened build: searched, read, and closed when a newer one replaces it."""

    manifest: dict
    size: int
    speller: Any

    @property
    def name(self) -> str: ...

    def dense_search(
        self, vector: np.ndarray, n: int, docs: Collection[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` best ``(scores, chunk ids)`` by inner product, best first; with ``docs``
        (document ids), the ``n`` best chunks of those documents only, exactly."""
        ...

    def lexical_search(
        self, query: str, n: int, docs: Collection[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` best ``(scores, chunk ids)`` by BM25 (score above 0), best first; with
        ``docs``, of those documents' chunks only (scored with the whole build's statistics)."""
        ...

    def chunk_ids(self) -> np.ndarray:
        """Every chunk id of the build, ascending (``0 .. size - 1`` in the embedded store; a
        store that keeps rows across builds, as Milvus does, has gaps)."""
        ...

    def chunk_rows(self, ids: Iterable[int]) -> dict[int, tuple[str, int, int, str, str]]: ...

    def document_chunks(self, doc_id: str) -> dict[int, tuple[str, int, int, str, str]]: ...

    def documents(self) -> dict[str, str]: ...

    def vectors(self, ids: Iterable[int]) -> np.ndarray: ...

    def document_frequencies(self, terms: Iterable[str]) -> dict[str, int]: ...

    def query_terms(self, query: str) -> tuple[list[str], dict[str, str]]: ...

    def stored(self, doc_id: str) -> Stored | None: ...

    def with_marks(self, passage: Passage) -> Passage: ...

    def in_use(self) -> AbstractContextManager[Any]: ...

    def retire(self) -> None: ...

    def close(self) -> None: ...


class StoreBackend(Protocol):
    """Opens the live build and writes new ones."""

    def current(self, settings: Settings) -> str | None:
        """The live build's name (a change means: open it again)."""
        ...

    def open(self, settings: Settings, check_seeds: bool = False) -> IndexStore: ...

    def previous(self, settings: Settings, full: bool) -> Any:
        """The live build an incremental build extends (``.manifest``, ``.close()``), or None."""
        ...

    def prepare(self, settings: Settings) -> None:
        """Tidy what killed builds left (called under the build lock, before a build)."""
        ...

    def write(self, settings: Settings, build: BuildInput) -> tuple[Path | str, dict]: ...

    def refresh(
        self, settings: Settings, previous: Any, stats: dict, skipped: Any, skipped_files: dict
    ) -> dict:
        """Rewrite only the live manifest's file facts (``{id: {"size"}}``: no file times,
        which stay in the local stat cache) and skipped files; nothing when they are the same."""
        ...

    def status(self, settings: Settings) -> tuple[str, dict] | None:
        """The live build's name and manifest (no model loaded), or None."""
        ...


class FaissSqliteBackend:
    """The local folder: ``CURRENT`` + ``build-<id>/`` of FAISS, SQLite and BM25 segments."""

    def current(self, settings: Settings) -> str | None:
        from .layout import current_build

        build = current_build(settings.index_dir)
        return build.name if build else None

    def open(self, settings: Settings, check_seeds: bool = False) -> IndexStore:
        from .loaded import load_index

        return load_index(settings, check_seeds)

    def previous(self, settings: Settings, full: bool) -> Any:
        from .writer import open_previous

        return open_previous(settings, full)

    def prepare(self, settings: Settings) -> None:
        from .layout import remove_leftovers

        remove_leftovers(Path(settings.index_dir))

    def write(self, settings: Settings, build: BuildInput) -> tuple[Path, dict]:
        from .layout import remove_old_builds
        from .writer import write_build

        final, manifest = write_build(settings, build)
        remove_old_builds(Path(settings.index_dir), keep=final.name)
        return final, manifest

    def refresh(self, settings, previous, stats, skipped, skipped_files):  # noqa: ANN001, ANN201, ARG002
        from .writer import refresh_manifest

        return refresh_manifest(previous, stats, skipped, skipped_files)

    def status(self, settings: Settings) -> tuple[str, dict] | None:
        from .layout import current_build
        from .manifest import read_manifest

        build = current_build(settings.index_dir)
        return (build.name, read_manifest(build)) if build else None


def backend_for(settings: Settings) -> StoreBackend:
    """The store ``ASSISTANT_STORE`` names: the embedded folder, or Milvus."""
    if settings.store == "milvus":
        from .milvus import MilvusBackend

        return MilvusBackend()
    return FaissSqliteBackend()


def open_index(settings: Settings, check_seeds: bool = False) -> IndexStore:
    """Open the live build of whichever store the settings name."""
    return backend_for(settings).open(settings, check_seeds)


def index_status(settings: Settings | None = None) -> dict:
    from .status import index_status as _status

    return _status(settings)


__all__ = [
    "FaissSqliteBackend",
    "IndexStore",
    "StoreBackend",
    "backend_for",
    "index_status",
    "open_index",
]
