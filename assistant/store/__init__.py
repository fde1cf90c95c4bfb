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

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..config import Settings
from ..sources import Stored
from ..types import Passage


class IndexStore(Protocol):
    """An opened build: searched, read, and closed when a newer one replaces it."""

    manifest: dict
    size: int
    speller: Any

    @property
    def name(self) -> str: ...

    def dense_search(self, vector: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]: ...

    def lexical_search(self, query: str, n: int) -> tuple[np.ndarray, np.ndarray]: ...

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

    def open(self, settings: Settings) -> IndexStore: ...

    def write(
        self,
        settings: Settings,
        dim: int,
        model_max_tokens: int,
        docs: Sequence[Any],
        vectors: np.ndarray,
        **kwargs: Any,
    ) -> tuple[Path, dict]: ...


class FaissSqliteBackend:
    """The local folder: ``CURRENT`` + ``build-<id>/`` of FAISS, SQLite and BM25 segments."""

    def current(self, settings: Settings) -> str | None:
        from .layout import current_build

        build = current_build(settings.index_dir)
        return build.name if build else None

    def open(self, settings: Settings) -> IndexStore:
        from .loaded import load_index

        return load_index(settings)

    def write(self, settings, dim, model_max_tokens, docs, vectors, **kwargs):  # noqa: ANN001, ANN201
        from .writer import write_build

        return write_build(settings, dim, model_max_tokens, docs, vectors, **kwargs)


def backend_for(settings: Settings) -> StoreBackend:  # noqa: ARG001 - one backend so far
    return FaissSqliteBackend()


def index_status(settings: Settings | None = None) -> dict:
    from .status import index_status as _status

    return _status(settings)


__all__ = ["FaissSqliteBackend", "IndexStore", "StoreBackend", "backend_for", "index_status"]
