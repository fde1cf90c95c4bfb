"""Questions limited to chosen documents: the names a caller gives, checked against the index.

A document is named by its path relative to the seeds folder, as ``Passage.source`` shows it
("manual.md", "notes/bread.md"); a bare file name ("bread.md") that only one document has is
accepted too. An unknown name is refused with one line that lists the close names.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from .errors import UnknownDocumentError

__all__ = ["check_sources", "close_names"]

CLOSE_SHOWN = 3  # close names listed in the error
CLOSE_CUTOFF = 60  # rapidfuzz WRatio (0-100) from which a name counts as close


def check_sources(sources: Any, known: Collection[str]) -> tuple[str, ...] | None:
    """The ids of the documents ``sources`` names, each once and in the order given; None when
    ``sources`` is None or empty (every document). ``known``: the index's document ids.

    ``sources`` is a list (or tuple, set) of names, or one name as a string. Anything else is
    a ``TypeError``; a name the index does not hold is an ``UnknownDocumentError``."""
    if sources is None:
        return None
    if isinstance(sources, str):
        sources = [sources]
    if isinstance(sources, (bytes, dict)) or not isinstance(sources, Collection):
        raise TypeError(f"sources must be a list of document names, not {type(sources).__name__}")
    out: dict[str, None] = {}
    for name in sources:
        if not isinstance(name, str):
            raise TypeError(f"a document name must be a string, not {type(name).__name__}")
        out[_resolve(name, known)] = None
    return tuple(out) or None


def _resolve(name: str, known: Collection[str]) -> str:
    if name in known:
        return name
    cleaned = name.strip().replace("\\", "/")
    while cleaned.startswith("./"):
        cleaned = cleaned[2:]
    if cleaned in known:
        return cleaned
    if cleaned and "/" not in cleaned:  # a bare file name: the one document of that name
        same = [d for d in known if d.rsplit("/", 1)[-1] == cleaned]
        if len(same) == 1:
            return same[0]
    close = close_names(cleaned, known)
    if close:
        hint = "close names: " + ", ".join(_shown(c) for c in close)
    elif known:
        n = len(known)
        some = ", ".join(_shown(d) for d in sorted(known)[:CLOSE_SHOWN])
        hint = f"no close name among the {n} indexed document{'s' if n != 1 else ''} ({some}"
        hint += ", ...)" if n > CLOSE_SHOWN else ")"
    else:
        hint = "the index holds no documents"
    raise UnknownDocumentError(f"unknown document {_shown(name)}; {hint}", name, close)


def close_names(name: str, known: Collection[str], n: int = CLOSE_SHOWN) -> tuple[str, ...]:
    """Up to ``n`` of ``known`` that look like ``name`` (typos, a missing folder or
    extension), closest first."""
    from rapidfuzz import fuzz, process

    if not name or not known:
        return ()
    found = process.extract(
        name,
        list(known),
        scorer=fuzz.WRatio,
        processor=str.lower,
        score_cutoff=CLOSE_CUTOFF,
        limit=None,
    )
    found.sort(key=lambda m: (-m[1], m[0]))
    return tuple(m[0] for m in found[:n])


def _shown(name: str) -> str:
    """A name for a one-line message: quoted, control characters and line breaks escaped,
    clipped."""
    return repr(name[:200] + ("..." if len(name) > 200 else ""))
