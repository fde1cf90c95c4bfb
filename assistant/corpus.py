"""Find and read the seed documents; skip what is not text, and say why."""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import EmptyCorpusError
from .types import Document

log = logging.getLogger(__name__)

EXTENSIONS = (".txt", ".md")
TITLE_MAX = 100


@dataclass
class Corpus:
    """The readable documents, and the files skipped with the reason for each."""

    documents: list[Document] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def seed_files(root: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Every ``.txt``/``.md`` file under ``root`` as ``(id, path)``, sorted by id.

    Symlinks are followed only when they resolve inside ``root``; hidden files and folders
    (names starting with a dot) are ignored. Paths are plain strings and the walk uses
    ``os.scandir`` file types, with no call per file: a folder of 37k seeds is listed in a
    fraction of a second, which every incremental build and stale check pays.
    """
    root = Path(root)
    if not root.is_dir():
        raise EmptyCorpusError(
            f"seeds folder {str(root)!r} does not exist; create it and add .txt or .md files"
        )
    real_root = root.resolve()
    found: list[tuple[str, str]] = []
    skipped: list[tuple[str, str]] = []
    folders = [(str(root), "")]
    while folders:
        folder, prefix = folders.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            skipped.append((prefix or ".", f"folder unreadable ({exc.strerror or exc})"))
            continue
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            rel = prefix + name
            try:
                if entry.is_dir(follow_symlinks=False):
                    folders.append((entry.path, rel + "/"))
                    continue
                link = entry.is_symlink()
            except OSError:
                continue
            if link and os.path.isdir(entry.path):  # False for broken links and loops
                target = Path(entry.path).resolve()
                if not _inside(target, real_root):
                    skipped.append((rel, "symlink points outside the seeds folder"))
                else:  # walked by its real path elsewhere
                    skipped.append((rel, "symlinked folder (its target is indexed directly)"))
                continue
            if not name.lower().endswith(EXTENSIONS):
                continue
            if not _utf8(rel):  # would break the UTF-8 chunk store and manifest
                printable = rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                skipped.append((printable, "file name is not valid UTF-8; rename the file"))
                continue
            if link:
                try:
                    target = Path(entry.path).resolve(strict=True)
                except (OSError, RuntimeError):
                    skipped.append((rel, "broken symlink"))
                    continue
                if not _inside(target, real_root):
                    skipped.append((rel, "symlink points outside the seeds folder"))
                    continue
            found.append((rel, entry.path))
    found.sort()
    return found, skipped


def read_document(doc_id: str, path: Path | str, max_bytes: int | None = None) -> Document | str:
    """The document, or the reason it was skipped (empty, too large, binary, not UTF-8)."""
    path = Path(path)
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):  # a FIFO would block the build forever
            return "not a regular file (a pipe, socket or device with a document's name)"
        size = st.st_size
        if max_bytes is not None and size > max_bytes:
            return f"too large ({size / 1e6:.1f} MB > {max_bytes / 1e6:.1f} MB; raise ASSISTANT_MAX_FILE_MB)"
        data = path.read_bytes()
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    if not data.strip():
        return "empty"
    if b"\x00" in data[:8192]:
        return "binary (contains NUL bytes)"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 (bad byte at offset {exc.start})"
    return Document(id=doc_id, title=make_title(text, doc_id), text=text, sha256=sha256_bytes(data))


def load_corpus(
    root: Path,
    max_bytes: int | None = None,
    require: bool = True,
    known: Callable[[str, str], Document | None] | None = None,
) -> Corpus:
    """Read every seed document under ``root``. Raises ``EmptyCorpusError`` if none is usable.

    ``known(doc_id, path)`` may return a document without reading the file (an incremental
    build passes the previous build's record for files whose stat is unchanged)."""
    files, skipped = seed_files(root)
    corpus = Corpus(skipped=list(skipped))
    for doc_id, path in files:
        result = (known(doc_id, path) if known else None) or read_document(doc_id, path, max_bytes)
        if isinstance(result, Document):
            corpus.documents.append(result)
        else:
            corpus.skipped.append((doc_id, result))
    for name, reason in corpus.skipped:
        log.warning("skipped %s: %s", name, reason)
    if require and not corpus.documents:
        raise EmptyCorpusError(
            f"no readable .txt or .md documents in {str(root)!r}"
            + (f" ({len(corpus.skipped)} skipped)" if corpus.skipped else "")
        )
    return corpus


def make_title(text: str, doc_id: str) -> str:
    """The first short, meaningful line (markdown heading marks removed), else the file name."""
    for line in text.splitlines()[:5]:
        line = line.strip().lstrip("#").strip()
        if not line:
            continue
        if len(line) <= TITLE_MAX and any(ch.isalnum() for ch in line):
            return line
        break
    stem = Path(doc_id).stem
    return stem.replace("_", " ").replace("-", " ").strip() or doc_id


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def source_path(root: Path, doc_id: str) -> Path:
    """The file behind a document id, refusing ids that would escape the seeds folder."""
    path = (Path(root) / doc_id).resolve()
    if not _inside(path, Path(root).resolve()):
        raise ValueError(f"document id {doc_id!r} points outside the seeds folder")
    return path


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
