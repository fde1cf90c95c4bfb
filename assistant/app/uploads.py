"""Uploads: safe file names, size and content checks, and writing into the seeds folder."""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

from ..config import Settings
from ..documents import DocumentError, check_document, find_duplicate
from ..extract import format_of, is_plain, supported_extensions

UPLOAD_EXTENSIONS = supported_extensions()  # .txt .md .pdf .docx .html .htm .xhtml .epub
NAME_MAX = 80


class UploadError(ValueError):
    """An upload was refused; the message says why."""


NAME_BYTES = 200  # UTF-8 bytes: under the 255 of common file systems, with room for "-2"
# Names Windows reserves, with any extension (``con.txt`` cannot be created or opened there).
_RESERVED = re.compile(r"^(?:con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(?:\..*)?$", re.I)


def _name_char(ch: str) -> str:
    """Letters, marks and digits of any script, ``_``, ``-`` and ``.`` are kept; anything else
    (separators, controls, bidi overrides, shell and Windows specials, spaces) becomes ``-``."""
    if ch in "-_." or unicodedata.category(ch)[0] in "LMN":
        return ch
    return "-"


def safe_filename(name: str) -> str:
    """A plain file name for an upload: no folders, no hidden names, a supported extension.

    ``"../../etc/passwd.txt"`` becomes ``"passwd.txt"``; ``".bashrc.md"`` becomes
    ``"bashrc.md"``; ``"Überblick (2024).pdf"`` becomes ``"Überblick-2024.pdf"``: letters
    of every script are kept, other characters become ``-``. Names Windows reserves
    (``con.txt``, ``aux.md``) are refused.
    """
    base = re.split(r"[\\/]", str(name or ""))[-1]
    base = unicodedata.normalize("NFC", base).strip()
    stem, dot, ext = base.rpartition(".")
    ext = ("." + ext.lower()) if dot else ""
    if ext not in UPLOAD_EXTENSIONS:
        raise UploadError(
            f"only {' '.join(UPLOAD_EXTENSIONS)} files can be added, not {_shown(base)}"
        )
    stem = "".join(_name_char(ch) for ch in stem)
    stem = re.sub(r"\.{2,}", ".", stem)
    stem = re.sub(r"-{2,}", "-", stem).strip(".-_ ")
    while stem and (len(stem) > NAME_MAX - len(ext) or len(stem.encode()) > NAME_BYTES):
        stem = stem[:-1]
    stem = stem.rstrip(".-_ ")
    if not stem:
        stem = "document"
    if _RESERVED.match(stem):
        raise UploadError(
            f"{_shown(base)} is a name Windows reserves for a device; rename the file"
        )
    return stem + ext


def _shown(name: str) -> str:
    return repr(name[:60]) if name else "a file without a name"


def _size(n: int) -> str:
    """A size that never reads as equal to the limit it exceeds: exact bytes under 10 MB."""
    return f"{n:,} bytes" if n < 10 * 1024 * 1024 else f"{n / 1024 / 1024:.1f} MB"


def check_upload(data: bytes, max_kb: int) -> str:
    """The upload's text, or ``UploadError`` if it is too large, empty, binary or not UTF-8."""
    if len(data) > max_kb * 1024:
        raise UploadError(
            f"the file is {_size(len(data))}, over the limit of {max_kb} KB "
            f"({max_kb * 1024:,} bytes; ASSISTANT_MAX_UPLOAD_KB)"
        )
    if not data.strip():
        raise UploadError("the file is empty")
    if b"\x00" in data:
        raise UploadError("the file is binary (it contains NUL bytes), not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UploadError(
            f"the file is not UTF-8 text (bad byte at offset {exc.start}); save it as UTF-8"
        ) from exc


def save_upload(
    data: bytes, original_name: str, settings: Settings, known: dict[str, str] | None = None
) -> Path:
    """Write an accepted upload into the seeds folder under a safe, new name; return its path.

    A file identical to a seed document (same sha256; ``known`` maps ids to recorded hashes)
    is refused, naming that document.

    An existing file is never overwritten: ``notes.txt`` becomes ``notes-2.txt`` and so on.
    """
    name = safe_filename(original_name)
    fmt = format_of(name)
    if is_plain(fmt):
        check_upload(data, settings.max_upload_kb)
    else:
        if len(data) > settings.max_upload_kb * 1024:
            check_upload(data, settings.max_upload_kb)  # the size message
        try:
            check_document(data, fmt or "")
        except DocumentError as exc:
            raise UploadError(str(exc)) from exc
    duplicate = find_duplicate(data, settings, known)
    if duplicate is not None:
        raise UploadError(f"the same file is already in the documents as {duplicate}")
    root = Path(settings.seeds_dir)
    root.mkdir(parents=True, exist_ok=True)
    real_root = root.resolve()
    stem, ext = os.path.splitext(name)
    for i in range(1, 1000):
        candidate = root / (name if i == 1 else f"{stem}-{i}{ext}")
        if candidate.parent.resolve() != real_root:  # pragma: no cover - name has no separators
            raise UploadError("refused: the file name points outside the seeds folder")
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW, 0o644)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return candidate
    raise UploadError(f"too many files named like {name!r} already")


_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
