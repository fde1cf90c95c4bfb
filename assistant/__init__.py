"""assistant: answers questions about a folder of documents, citing verbatim excerpts."""

from __future__ import annotations

__version__ = "0.1.0"

from .config import Settings
from .errors import (
    AssistantError,
    ConfigError,
    CorruptIndexError,
    EmptyCorpusError,
    IncompatibleIndexError,
    IndexLockedError,
    IndexMissingError,
    LLMError,
    ModelNotFoundError,
    StaleIndexError,
    UnknownDocumentError,
)
from .types import Answer, BuildReport, Chunk, Citation, Document, Passage


def build_index(settings: Settings | None = None, *, full: bool = False, **kwargs):  # noqa: ANN201
    """Bring ``embeddings/`` up to date with ``seeds/`` (see ``assistant.build.build_index``)."""
    from .build import build_index as _build

    return _build(settings, full=full, **kwargs)


def retrieve(
    query: str,
    k: int = 5,
    settings: Settings | None = None,
    *,
    sources: list[str] | None = None,
) -> list[Passage]:
    """The ``k`` best passages for ``query``, of the documents ``sources`` names when given
    (see ``assistant.retrieval.retrieve``)."""
    from .retrieval import retrieve as _retrieve

    return _retrieve(query, k, settings, sources=sources)


def ask(
    question: str,
    history: list[tuple[str, str]] | None = None,
    settings: Settings | None = None,
    *,
    sources: list[str] | None = None,
) -> Answer:
    """Answer ``question`` with verified citations, from the documents ``sources`` names when
    given (see ``assistant.answer.ask``)."""
    from .answer import ask as _ask

    return _ask(question, history, settings, sources=sources)


def __getattr__(name: str):  # noqa: ANN202
    if name == "Retriever":
        from .retrieval import Retriever

        return Retriever
    raise AttributeError(name)


__all__ = [
    "Answer",
    "AssistantError",
    "BuildReport",
    "Chunk",
    "Citation",
    "ConfigError",
    "CorruptIndexError",
    "Document",
    "EmptyCorpusError",
    "IncompatibleIndexError",
    "IndexLockedError",
    "IndexMissingError",
    "LLMError",
    "ModelNotFoundError",
    "Passage",
    "Retriever",
    "Settings",
    "StaleIndexError",
    "UnknownDocumentError",
    "__version__",
    "ask",
    "build_index",
    "retrieve",
]
