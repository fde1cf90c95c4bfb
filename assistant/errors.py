"""Typed exceptions. Each says what went wrong and how to fix it; the CLI maps them to exit codes."""

from __future__ import annotations


class AssistantError(Exception):
    """Base class: a problem the user can act on. ``exit_code`` is what the CLI returns."""

    exit_code = 1


class ConfigError(AssistantError, ValueError):
    """A setting is invalid; the message names its ``ASSISTANT_*`` variable."""

    exit_code = 2


class QuestionError(AssistantError, ValueError):
    """A question or query that cannot be searched: empty (or only control characters), or
    longer than ``ASSISTANT_MAX_QUESTION_CHARS``. Refused before anything is tokenized."""

    exit_code = 2


class UnknownDocumentError(AssistantError, ValueError):
    """A question or search limited to a document the index does not hold; the one-line
    message lists the indexed documents with close names. ``name`` is the unknown name,
    ``close`` the close names."""

    exit_code = 2

    def __init__(self, message: str, name: str = "", close: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.name, self.close = name, close


class EmptyCorpusError(AssistantError):
    """The seeds folder holds no readable document."""

    exit_code = 3


class ModelNotFoundError(AssistantError):
    """The embedding model is not installed locally (nothing is downloaded)."""

    exit_code = 3


class IndexError_(AssistantError):
    """Base for index problems (named with a trailing underscore to keep the builtin intact)."""

    exit_code = 4


class IndexMissingError(IndexError_):
    """No index has been built in the index folder."""


class StaleIndexError(IndexError_):
    """The seeds changed since the index was built."""


class IncompatibleIndexError(IndexError_):
    """The index was built with another model, encoding or chunk settings."""


class CorruptIndexError(IndexError_):
    """An index file is missing, truncated or unreadable."""


class IndexLockedError(IndexError_):
    """Another build holds the index lock."""

    exit_code = 5


class StoreUnavailableError(IndexError_):
    """The index's store (a Milvus server or Lite file) cannot be reached or opened."""


class LLMError(AssistantError):
    """The optional LLM endpoint failed; callers fall back to extractive answers."""


class ExtractError(AssistantError):
    """A document could not be turned into text; the message is the one-line skip reason."""


class NoTextLayerError(ExtractError):
    """A PDF whose pages hold no text (scanned images): it needs OCR first."""


class EncryptedDocumentError(ExtractError):
    """A password-protected document."""


class CorruptDocumentError(ExtractError):
    """A damaged, truncated or mislabelled file that its parser cannot read."""


class ExtractLimitError(ExtractError):
    """The parser ran past the time or memory limit for one file and was stopped."""


class IndexWriteError(IndexError_):
    """Writing a build failed (disk full, read-only folder, SQLite or FAISS I/O error)."""

    exit_code = 1


class DistributedBuildError(AssistantError):
    """A distributed build (``--ray``) could not run: Ray missing, its cluster unreachable, or
    a worker failed; the previous index stays live."""
