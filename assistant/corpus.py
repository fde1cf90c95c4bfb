"""Find and read the seed documents; skip what is not text, and say why."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import EmptyCorpusError, ExtractError
from .extract import extractor_version, format_of, is_plain, supported_extensions
from .extract.text import markdown_marks
from .types import Document

if TYPE_CHECKING:
    from .extract.sandbox import Sandbox

log = logging.getLogger(__name__)

EXTENSIONS = supported_extensions()  # .txt .md .pdf .docx .html .htm .xhtml .epub
TITLE_MAX = 100


@dataclass
class Corpus:
    """The readable documents, and the files skipped with the reason for each."""

    documents: list[Document] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    stats: dict[str, dict] = field(default_factory=dict)  # {id: stat_signature as read}


def stat_signature(st: os.stat_result) -> dict:
    """What says a file is unchanged without reading it: its size, modification time and inode
    change time, as git compares them. An edit whose size and mtime were put back (``cp -p``,
    ``rsync -t``, ``os.utime``) still changes the ctime, which no one can set. A signature
    recorded without ``ctime_ns`` (by an older version) never matches: the file is hashed once,
    and nothing is re-embedded when its bytes are the same."""
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns}


def seed_files(root: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Every supported file under ``root`` as ``(id, path)``, sorted by id, and the files
    skipped with their reason (unsupported formats included: no file is silently ignored).

    Symlinks are followed only when they resolve inside ``root``; hidden files and folders
    (names starting with a dot) are ignored, and so is an index folder inside ``root`` (see
    ``is_index_folder``): its files are never documents. Paths are plain strings and the walk uses
    ``os.scandir`` file types, with no call per file: a folder of 37k seeds is listed in a
    fraction of a second, which every incremental build and stale check pays.
    """
    root = Path(root)
    if not root.is_dir():
        raise EmptyCorpusError(seeds_advice(root, build=False))
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
        if prefix and is_index_folder(entries):
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
                ext = os.path.splitext(name)[1].lower()
                skipped.append(
                    (
                        _printable(rel),
                        f"unsupported format ({ext or 'no extension'}); supported: "
                        + " ".join(EXTENSIONS),
                    )
                )
                continue
            if not _utf8(rel):  # would break the UTF-8 chunk store and manifest
                skipped.append((_printable(rel), "file name is not valid UTF-8; rename the file"))
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


INDEX_POINTER = "CURRENT"  # store/layout.py: the index folder's pointer to its live build
BUILD_PREFIX = "build-"  # store/layout.py: each complete build's folder


def is_index_folder(entries: list[os.DirEntry]) -> bool:
    """Whether a folder's entries are an index's (``ASSISTANT_INDEX_DIR``, see
    ``store/layout.py``): a ``CURRENT`` file beside ``build-*`` folders, or a ``build-*`` folder
    holding a ``manifest.json``. Named here, not imported, as the store imports this module."""
    builds = []
    pointer = False
    for entry in entries:
        try:
            if entry.name == INDEX_POINTER and entry.is_file(follow_symlinks=False):
                pointer = True
            elif entry.name.startswith(BUILD_PREFIX) and entry.is_dir(follow_symlinks=False):
                builds.append(entry.path)
        except OSError:
            continue
    if not builds:
        return False
    return pointer or any(os.path.isfile(os.path.join(b, "manifest.json")) for b in builds)


def _printable(name: str) -> str:
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def read_document(
    doc_id: str,
    path: Path | str,
    max_bytes: int | None = None,
    sandbox: Sandbox | None = None,
    stat_out: dict | None = None,
) -> Document | str:
    """The document, or the reason it was skipped (empty, too large, binary, not UTF-8; for
    PDF, DOCX, HTML and EPUB: whatever its extractor reports, see ``assistant.extract``).

    Plain files are read here; other formats are extracted by ``sandbox`` (a worker process
    with time and memory limits), or in this process when none is given. ``stat_out`` receives
    the file's stat signature from the same open as the bytes that were hashed: an edit made
    after this read leaves the file different from what is recorded."""
    data = read_bytes(path, max_bytes, stat_out)
    if isinstance(data, str):
        return data
    return parse_document(doc_id, str(path), data, sandbox)


def read_bytes(
    path: Path | str, max_bytes: int | None = None, stat_out: dict | None = None
) -> bytes | str:
    """The file's bytes, or the reason it is skipped (not a regular file, too large,
    unreadable); ``stat_out`` receives the stat of the same open (see ``read_document``)."""
    path = Path(path)
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):  # a FIFO would block the build forever
            return "not a regular file (a pipe, socket or device with a document's name)"
        with open(path, "rb") as handle:
            st = os.fstat(handle.fileno())
            if stat_out is not None:
                stat_out.update(stat_signature(st))
            size = st.st_size
            if max_bytes is not None and size > max_bytes:
                return f"too large ({size / 1e6:.1f} MB > {max_bytes / 1e6:.1f} MB; raise ASSISTANT_MAX_FILE_MB)"
            return handle.read()
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"


def parse_document(
    doc_id: str, path: str, data: bytes, sandbox: Sandbox | None = None
) -> Document | str:
    """The document made of a file's bytes, or the reason it is skipped. ``path`` names the
    format (by its extension) and, for an extracted format, is the file the sandbox reads: a
    Ray worker passes a copy of the bytes in a temporary file of the same name."""
    fmt = format_of(Path(path).name) or "txt"
    if not data.strip():
        return "empty"
    if not is_plain(fmt):
        return _extracted(doc_id, path, fmt, data, sandbox)
    if b"\x00" in data[:8192]:
        return "binary (contains NUL bytes)"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 (bad byte at offset {exc.start})"
    return Document(
        id=doc_id,
        title=make_title(text, doc_id),
        text=text,
        sha256=sha256_bytes(data),
        format=fmt,
        marks=tuple(markdown_marks(text)) if fmt == "md" else (),
    )


def _extracted(
    doc_id: str, path: str, fmt: str, data: bytes, sandbox: Sandbox | None
) -> Document | str:
    from .extract import extract_path

    try:
        out = sandbox.extract(path, fmt) if sandbox is not None else extract_path(path, fmt)
    except ExtractError as exc:
        return str(exc)
    if not out.text.strip():
        return f"no text found in this {fmt} file"
    return Document(
        id=doc_id,
        title=trim_title(out.title or "", TITLE_MAX) or make_title(out.text, doc_id),
        text=out.text,
        sha256=sha256_bytes(data),
        format=fmt,
        extractor=extractor_version(fmt),  # as the build sees it (the worker is the same code)
        pages=out.pages,
        marks=tuple(out.marks),
        breaks=tuple(out.breaks),
    )


Parse = Callable[[list[tuple[str, str, bytes]]], list["Document | str"]]
PARSE_BATCH_BYTES = 64 << 20  # with ``parse``: at most this many bytes read ahead of it


def load_corpus(
    root: Path,
    max_bytes: int | None = None,
    require: bool = True,
    known: Callable[[str, str], Document | str | None] | None = None,
    extract_timeout: float = 60.0,
    extract_memory_mb: int = 2048,
    parse: Parse | None = None,
) -> Corpus:
    """Read every seed document under ``root``. Raises ``EmptyCorpusError`` if none is usable.

    ``known(doc_id, path)`` may return a document, or the reason it was skipped, without
    reading the file (an incremental build passes the previous build's record for files whose
    stat is unchanged). Formats other
    than plain text are extracted in a worker process, each file within ``extract_timeout``
    seconds and ``extract_memory_mb`` of memory. With ``parse``, files are read here (bytes and
    stat) and ``parse([(doc_id, path, bytes), ...])`` makes the documents, a batch at a time
    (a distributed build parses on its workers, see ``assistant.distributed``)."""
    from .extract.sandbox import Sandbox

    files, skipped = seed_files(root)
    corpus = Corpus(skipped=list(skipped))
    results: dict[str, Document | str] = {}
    pending: list[tuple[str, str, bytes]] = []
    held = [0]  # bytes in ``pending``

    def flush() -> None:
        if pending:
            results.update((item[0], out) for item, out in zip(pending, parse(pending)))
            pending.clear()
            held[0] = 0

    with Sandbox(extract_timeout, extract_memory_mb) as sandbox:
        for doc_id, path in files:
            result = known(doc_id, path) if known else None
            if result is None:
                corpus.stats[doc_id] = {}
                if parse is None:
                    result = read_document(doc_id, path, max_bytes, sandbox, corpus.stats[doc_id])
                else:
                    result = read_bytes(path, max_bytes, corpus.stats[doc_id])
                    if isinstance(result, bytes):
                        pending.append((doc_id, path, result))
                        held[0] += len(result)
                        if held[0] >= PARSE_BATCH_BYTES:
                            flush()
                        continue
            results[doc_id] = result
        flush()
    for doc_id, _path in files:
        result = results[doc_id]
        if isinstance(result, Document):
            corpus.documents.append(result)
        else:
            corpus.skipped.append((doc_id, result))
    # A build's report lists the skipped files (``assistant build`` and the web app show them
    # from it), so they are logged as warnings only when the error below refers to them.
    empty = require and not corpus.documents
    for name, reason in corpus.skipped:
        log.log(logging.WARNING if empty else logging.INFO, "skipped %s: %s", name, reason)
    if empty:
        if corpus.skipped:
            raise EmptyCorpusError(
                f"no readable documents in {_shown_folder(root)} ({len(corpus.skipped)} "
                "skipped, each with its reason above): fix or replace them, or add others"
            )
        raise EmptyCorpusError(seeds_advice(root, build=False))
    return corpus


TITLE_CHARS = 80  # a title longer than this is cut at a word (or a clause) and ends in "…"
# A date or dateline that opens a news text ("date 2026-02-26 SEOUL—"): not part of its title.
_OPENING = re.compile(
    r"^\s*(?:(?:date|dated|published|updated|posted)\s*[:\-–—]?\s*\d{4}-\d{2}-\d{2}\s*)?"
    r"(?:[A-Z][A-Z.' -]{1,40}(?:,\s*[A-Z][A-Za-z.' -]{1,30})?\s*(?:—|–|--)\s*)?"
)
_SENTENCE_END = re.compile(r"(?<![A-Z])(?<!\b[A-Z][a-z])[.!?][\"”’)]?(?=\s+[\"“‘(]?[A-Z0-9])")


def _shown_folder(root: Path) -> str:
    return str(Path(root).expanduser().resolve())


def seeds_advice(root: Path, build: bool = True) -> str:
    """What to do when there is nothing to index: the advice that works for this seeds folder
    (create it, add documents to it, or point ASSISTANT_SEEDS_DIR elsewhere), then build."""
    then = "; then run `assistant build`" if build else ""
    root = Path(root)
    kinds = ", ".join(EXTENSIONS[:-1]) + " or " + EXTENSIONS[-1]
    if not root.is_dir():
        return (
            f"the seeds folder {_shown_folder(root)} does not exist: create it and put your "
            f"documents ({kinds}) in it, or set ASSISTANT_SEEDS_DIR to the folder that holds "
            f"them{then}"
        )
    try:
        files, _ = seed_files(root)
    except (OSError, EmptyCorpusError):
        files = []
    if not files:
        return (
            f"the seeds folder {_shown_folder(root)} holds no documents: add files ({kinds}) "
            f"to it, or set ASSISTANT_SEEDS_DIR to the folder that holds them{then}"
        )
    return "run `assistant build`"


def make_title(text: str, doc_id: str) -> str:
    """A title from the document: its first line when that is a heading or short line, else the
    first sentence, cut at a word; the file name only when the text offers neither."""
    for line in text.splitlines()[:20]:
        line = line.strip()
        if not line:
            continue
        heading = line.startswith("#")
        line = line.lstrip("#").strip().rstrip("#").strip()
        if not heading:
            line = _OPENING.sub("", line, count=1).strip() or line
            end = _SENTENCE_END.search(line)
            if end:  # the first sentence, without its full stop
                line = line[: end.start() + (0 if line[end.start()] == "." else 1)]
        title = trim_title(line.rstrip(". ")) if any(ch.isalnum() for ch in line) else ""
        if title:
            return title
        if heading:
            continue
        break
    stem = Path(doc_id).stem
    return stem.replace("_", " ").replace("-", " ").strip() or doc_id


def name_title(doc_id: str) -> str:
    """A title made of the file name: ``notes/my_long-file.txt`` -> "My long file"."""
    words = " ".join(Path(doc_id).stem.replace("_", " ").replace("-", " ").split())
    if not words:
        return doc_id
    return words[0].upper() + words[1:] if words.islower() else words


def display_title(title: str, doc_id: str) -> str:
    """The title readers see: the document's heading or short first line, else its file name
    (``name_title``); never a clipped sentence.

    The stored title (``make_title``) is part of every chunk's embedded and BM25 text when
    ``embed_titles`` is on, so changing it would make built indexes (the committed one too)
    stale. The rule is therefore applied here, to what is shown: a stored title cut with "…"
    (the old rule's clipped first sentence, or a clipped overlong heading) shows as the file
    name, and so does the old rule's own file-name fallback, prettified."""
    shown = " ".join(str(title or "").split())
    stem = " ".join(Path(doc_id).stem.replace("_", " ").replace("-", " ").split())
    if not shown or shown.endswith("…") or shown == stem:
        return name_title(doc_id)
    return shown


def trim_title(title: str, limit: int = TITLE_CHARS) -> str:
    """``title`` on one line, at most ``limit`` characters: cut after a clause (comma, colon,
    dash) or else a whole word, never inside one, and marked with "…"; "" when it is one
    overlong word (no title at all)."""
    title = " ".join(title.split())
    if len(title) <= limit:
        return title
    head = title[: limit - 1]
    clause = max(head.rfind(sep) for sep in (", ", "; ", ": ", " — ", " – "))
    if clause >= limit // 2:
        head = head[:clause]
    elif title[limit - 1] != " ":
        if " " not in head:
            return ""
        head = head[: head.rfind(" ")]
    return head.rstrip(" ,;:—–-") + "…"


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
