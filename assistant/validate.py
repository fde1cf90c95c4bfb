"""Checks of what callers pass in, shared by the Python API, the web API and the CLI, so each
refuses the same values with the same message (the web API does not convert ``"7"`` or ``2.5``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from .errors import ConfigError, QuestionError

# C0 and C1 control characters other than tab and line breaks: replaced by spaces in a query.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def check_k(k: Any, max_k: int | None = None) -> int:
    """``k`` itself when it is a whole number from 1 to ``max_k``; else TypeError / ValueError."""
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"k must be an integer, not {type(k).__name__} ({k!r:.40})")
    if k <= 0:
        raise ValueError(f"k must be a positive integer, got {k}")
    if max_k is not None and k > max_k:
        raise ValueError(f"k must be at most {max_k} (ASSISTANT_MAX_K), got {k}")
    return k


def check_history(history: Any) -> list[tuple[str, str]]:
    """The conversation so far as ``(question, answer)`` pairs.

    Accepted: None, or a list of ``[question, answer]`` pairs (lists or tuples of two strings)
    or ``{"question": ..., "answer": ...}`` dicts. Anything else is refused, naming the item."""
    if history is None:
        return []
    if isinstance(history, (str, bytes)) or not isinstance(history, Sequence):
        raise TypeError(
            f"history must be a list of [question, answer] pairs, not {type(history).__name__}"
        )
    pairs: list[tuple[str, str]] = []
    for i, item in enumerate(history):
        if isinstance(item, dict) and set(item) <= {"question", "answer"} and "question" in item:
            pair = (item.get("question"), item.get("answer", ""))
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            pair = (item[0], item[1])
        else:
            raise ValueError(
                f"history item {i} must be a [question, answer] pair, got {item!r:.80}"
            )
        if not all(isinstance(x, str) for x in pair):
            raise TypeError(f"history item {i}: the question and the answer must be strings")
        pairs.append((pair[0], pair[1]))
    return pairs


def default_max_question_chars() -> int:
    """``ASSISTANT_MAX_QUESTION_CHARS`` as the environment sets it (the field's default when
    the environment holds an invalid setting: that is reported where the settings are read)."""
    from .config import Settings

    try:
        return Settings().max_question_chars
    except ConfigError:
        return Settings.model_fields["max_question_chars"].default


def check_question(question: Any, max_chars: int | None = None, what: str = "query") -> str:
    """``question`` made safe to search: lone surrogates replaced, control characters turned
    into spaces, stripped. Refused with ``QuestionError`` (one line) when it is longer than
    ``max_chars`` (``ASSISTANT_MAX_QUESTION_CHARS`` when None), checked first, before any
    pass over the text, so a 5 MB question costs next to nothing; or when nothing visible is left (empty, blank, or
    only control or format characters); ``TypeError`` when it is not a string."""
    if not isinstance(question, str):
        raise TypeError(f"{what} must be a string, not {type(question).__name__}")
    limit = default_max_question_chars() if max_chars is None else max_chars
    cleaned = question.strip()  # in C, and only the ends unless it is all blank
    if len(cleaned) > limit:
        raise QuestionError(
            f"{what} is too long ({len(cleaned):,} characters; at most {limit:,}, "
            "ASSISTANT_MAX_QUESTION_CHARS): ask a shorter question"
        )
    if _SURROGATE.search(cleaned):  # lone surrogates (JSON "\\ud800" decodes to one) break
        # the model's tokenizer: pairs become their character, lone ones U+FFFD
        cleaned = cleaned.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    cleaned = _CONTROL.sub(" ", cleaned).strip()
    if not any(_visible(ch) for ch in cleaned):
        raise QuestionError(f"{what} is empty: ask about something in the documents")
    return cleaned


def _visible(ch: str) -> bool:
    """Not whitespace, and not an invisible control or format character (zero-width space,
    joiners, direction marks)."""
    return not ch.isspace() and unicodedata.category(ch) not in ("Cc", "Cf")
