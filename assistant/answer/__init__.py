"""Answer a question from the retrieved passages with verified, cited quotes, or abstain.

The default answer is extractive (no LLM, no network): the reader in ``reader.py`` quotes the
sentence(s) of the top passages that fitted models score as holding the answer, each checked
against its source, or abstains when the fitted confidence is too low. With an OpenAI-compatible
endpoint configured, ``llm.py`` writes the answer from the same passages.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

from ..config import Settings
from ..retrieval import Retriever, _check_query, get_retriever
from ..types import Answer
from ..validate import check_history
from .citations import verify_citation
from .conversation import standalone_query
from .llm import generate_answer, stream_answer
from .metadata import metadata_question, metadata_spans
from .reader import ABSTAIN_TEXT, answer, extractive_answer
from .render import render_markdown, with_notice
from .select import sentence_vectors

stats = sentence_vectors.stats  # sentences embedded vs. served from the cache (benchmarks)


def _prepare(
    question: str,
    history: Sequence | None,
    settings: Settings | None,
    retriever: Retriever | None,
    sources: Sequence[str] | None = None,
) -> tuple[Settings, Answer]:
    settings = settings or (retriever.settings if retriever else Settings())
    retriever = retriever or get_retriever(settings)
    question = _check_query(question, 1, max_chars=settings.max_question_chars)
    if sources is not None:  # every search the reader makes stays in these documents
        retriever = retriever.scoped(sources)
    with retriever.index.in_use():  # a build swapped in meanwhile closes this one afterwards
        result = answer(question, check_history(history), settings, retriever)
    stale = retriever.stale_message()  # the build answering lacks recent seed changes
    return settings, (dataclasses.replace(result, stale=stale) if stale else result)


def ask(
    question: str,
    history: Sequence[tuple[str, str]] | None = None,
    settings: Settings | None = None,
    retriever: Retriever | None = None,
    sources: Sequence[str] | None = None,
) -> Answer:
    """Answer ``question`` (with the conversation so far in ``history``) from the index.

    ``history`` is a list of ``(user, assistant)`` turns; a question that leans on them ("and
    when was that?") is also searched as a standalone query built from them (``Answer.query``).
    ``sources`` limits the answer to these documents (names relative to the seeds folder, as
    ``Passage.source`` shows them; None or empty: all): every passage and quote comes from
    them, and an unknown name raises ``UnknownDocumentError``, listing the close names.
    With an LLM endpoint configured, the LLM writes the answer from the same passages.
    """
    settings, result = _prepare(question, history, settings, retriever, sources)
    if settings.llm_enabled and not result.abstained and result.kind == "fact":
        result = generate_answer(result, settings)
    return result


def ask_stream(
    question: str,
    history: Sequence[tuple[str, str]] | None = None,
    settings: Settings | None = None,
    retriever: Retriever | None = None,
    sources: Sequence[str] | None = None,
) -> Iterator[tuple[str, Answer | None]]:
    """Yield ``(text_so_far, None)`` while the answer is produced, then ``(text, Answer)``.

    With an LLM endpoint, the LLM's text is yielded as its tokens arrive. Extractive answers are
    computed at once and revealed a few words at a time, so the chat behaves the same way.
    ``sources``: as in ``ask``.
    """
    settings, result = _prepare(question, history, settings, retriever, sources)
    if settings.llm_enabled and not result.abstained and result.kind == "fact":
        yield from stream_answer(result, settings)
        return
    words = result.text.split(" ")
    for i in range(1, len(words), 4):
        yield " ".join(words[:i]), None
    yield result.text, result


__all__ = [
    "ABSTAIN_TEXT",
    "ask",
    "ask_stream",
    "extractive_answer",
    "metadata_question",
    "metadata_spans",
    "render_markdown",
    "standalone_query",
    "stats",
    "verify_citation",
    "with_notice",
]
