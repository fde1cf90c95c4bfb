"""Checks of what callers pass in, shared by the Python API, the web API and the CLI, so each
refuses the same values with the same message (the web API does not convert ``"7"`` or ``2.5``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


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
