"""Which text a citation is verified against, and where to find it.

- ``.txt``/``.md``: the file on disk, as before (``file[start:end] == quote``).
- PDF, DOCX, HTML, EPUB: the text the build extracted and stored in the index (``extracted``
  table of the chunk store), as long as the file on disk is still the one it was extracted
  from (same size, mtime and ctime, or same sha256). A changed or deleted file fails verification,
  as a changed text file does.

An index registers itself here when it is loaded (``register``), keyed by its seeds folder, so
the answer step can verify a citation knowing only the seeds folder and the document id.
"""

from __future__ import annotations

import hashlib
import os
import threading
import weakref
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from .corpus import source_path
from .extract import format_of, is_plain
from .types import Answer


@dataclass(frozen=True)
class Stored:
    """A document's stored extraction, with the file facts it was made from."""

    text: str | None
    marks: tuple[tuple[int, int | None, str], ...]
    sha256: str
    size: int | None
    mtime_ns: int | None
    ctime_ns: int | None = None  # None in an index built before ctimes were recorded


class Store(Protocol):
    def stored(self, doc_id: str) -> Stored | None: ...


_lock = threading.Lock()
_stores: dict[str, list[weakref.ref]] = {}
_hashes: dict[tuple[str, int, int, int], str] = {}


def register(seeds_dir: Path | str, store: Store) -> None:
    """Make ``store`` (a loaded index) the first place to look for this seeds folder's texts."""
    key = _key(seeds_dir)
    with _lock:
        refs = [r for r in _stores.get(key, []) if r() is not None and r() is not store]
        _stores[key] = [weakref.ref(store), *refs][:8]


def is_extracted(doc_id: str) -> bool:
    """True when the document's citations verify against stored text, not the file."""
    fmt = format_of(doc_id)
    return fmt is not None and not is_plain(fmt)


def stored_text(seeds_dir: Path | str, doc_id: str) -> str | None:
    """The extracted text a citation of ``doc_id`` must match, or None when no loaded index
    holds it for the file now on disk."""
    try:
        path = source_path(Path(seeds_dir), doc_id)
        st = path.stat()
    except (OSError, ValueError):
        return None
    with _lock:
        stores = [r() for r in _stores.get(_key(seeds_dir), [])]
    for store in stores:
        if store is None:
            continue
        try:
            record = store.stored(doc_id)
        except Exception:  # a closed index: try the next one
            continue
        if record is None or record.text is None:
            continue
        same_stat = (st.st_size, st.st_mtime_ns, st.st_ctime_ns) == (
            record.size,
            record.mtime_ns,
            record.ctime_ns,
        )
        if same_stat or _sha256(path, st) == record.sha256:
            return record.text
    return None


def source_text(seeds_dir: Path | str, doc_id: str) -> str | None:
    """The text that ``doc_id``'s citations verify against (see the module docstring)."""
    if is_extracted(doc_id):
        return stored_text(seeds_dir, doc_id)
    try:
        return source_path(Path(seeds_dir), doc_id).read_bytes().decode("utf-8")
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def outdated_sources(answer: Answer, seeds_dir: Path | str) -> set[str]:
    """Sources of an abstention's closest matches whose file no longer holds the text shown
    (edited or removed since the build). Citations need no such check: they are verified."""
    if not answer.abstained:
        return set()
    out = set()
    for p in answer.passages[:3]:
        text = source_text(seeds_dir, p.source)
        if text is None or text[p.start : p.end] != p.text:
            out.add(p.source)
    return out


def with_outdated_notice(answer: Answer, outdated: set[str]) -> Answer:
    """The answer with a notice naming the sources whose shown text is out of date."""
    if not outdated:
        return answer
    notice = (
        f"{', '.join(sorted(outdated))} changed since the index was built: the closest matches "
        "show the old text; rebuild the index (Build the index, or `assistant build`)"
    )
    return replace(answer, notices=[*answer.notices, notice])


def _sha256(path: Path, st: os.stat_result) -> str:
    key = (str(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    with _lock:
        if key in _hashes:
            return _hashes[key]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with _lock:
        _hashes[key] = digest
        while len(_hashes) > 1024:
            _hashes.pop(next(iter(_hashes)))
    return digest


def _key(seeds_dir: Path | str) -> str:
    return str(Path(seeds_dir).resolve())
