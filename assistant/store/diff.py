"""The one comparison of the seeds folder with a build's manifest, used by the build (what to
read and embed) and by the stale check (what the index does not cover yet).

Stat first, hash only when the stat differs: an unchanged folder costs one ``stat`` per file.
A file's recorded stat always comes from the same open as the bytes that were hashed (see
``corpus.read_document``), so a file edited while a build runs differs from its record and is
seen as changed by the next build. Skipped files are compared by the same rule: their stat,
plus the extractor and limits they were tried with.
"""

from __future__ import annotations

import hashlib
import os
import stat as stat_module
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..config import Settings
from ..corpus import seed_files
from ..errors import EmptyCorpusError
from ..extract import extractor_version, format_of, is_plain

# A file's status against the manifest.
UNCHANGED = "unchanged"  # same stat as recorded
TOUCHED = "touched"  # another mtime, same bytes (sha256): only the recorded stat is refreshed
CHANGED = "changed"  # to read again (edited, or its extractor or the size limit changed)
NEW = "new"  # not in the manifest
SKIPPED = "skipped"  # skipped before, unchanged since: skipped again for the same reason


@dataclass
class FileState:
    doc_id: str
    path: str
    status: str
    stat: dict | None = None  # for UNCHANGED / TOUCHED / SKIPPED: the stat to record
    reason: str = ""  # for SKIPPED: the recorded reason


@dataclass
class SeedDiff:
    """Every file of the seeds walk with its status, and what the manifest has that is gone."""

    files: list[FileState] = field(default_factory=list)
    walk_skipped: list[tuple[str, str]] = field(default_factory=list)
    new_walk_skipped: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    removed_skipped: list[str] = field(default_factory=list)
    missing: str | None = None  # the seeds folder is missing: why

    def of(self, *statuses: str) -> list[FileState]:
        return [f for f in self.files if f.status in statuses]

    def changes(self) -> list[str]:
        """What the build does not reflect, one ``"kind: name"`` each (empty: up to date)."""
        if self.missing:
            return [self.missing]
        out = [f"new: {name}" for name in self.new_walk_skipped]
        out += [f"{f.status}: {f.doc_id}" for f in self.files if f.status in (NEW, CHANGED)]
        out += [f"removed: {d}" for d in self.removed]
        out += [f"removed: {d}" for d in self.removed_skipped]
        return out

    def pending(self) -> int:
        """How many documents the index lacks or has an old version of (new, changed, removed)."""
        return len(self.of(NEW, CHANGED)) + len(self.removed) + len(self.new_walk_skipped)

    def manifest_only(self) -> bool:
        """Only recorded stats are out of date (touched files): no document to read."""
        return not self.changes() and bool(self.of(TOUCHED))


def extract_key(settings: Settings, fmt: str) -> dict:
    """What a skip depends on besides the file: the extractor and the limits it ran under."""
    return {
        "extractor": extractor_version(fmt) if fmt and not is_plain(fmt) else "",
        "extract_limits": [settings.extract_timeout, settings.extract_memory_mb],
        "max_file_mb": settings.max_file_mb,
    }


def hash_file(path: str) -> tuple[str, dict] | None:
    """sha256 of the file and the stat of the same open (None if unreadable)."""
    try:
        with open(path, "rb") as handle:
            st = os.fstat(handle.fileno())
            digest = hashlib.sha256()
            while block := handle.read(1 << 20):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest(), {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def diff(settings: Settings, manifest: Mapping | None) -> SeedDiff:
    """Compare ``settings.seeds_dir`` with ``manifest`` (None: everything is new)."""
    manifest = manifest or {}
    recorded: Mapping[str, dict] = manifest.get("documents", {})
    reasons: Mapping[str, str] = manifest.get("skipped", {})
    tried: Mapping[str, dict] = manifest.get("skipped_files", {})
    out = SeedDiff()
    try:
        files, out.walk_skipped = seed_files(settings.seeds_dir)
    except EmptyCorpusError:
        out.missing = f"seeds folder {settings.seeds_dir} is missing"
        out.removed = sorted(recorded)
        return out
    max_bytes = int(settings.max_file_mb * 1e6)
    out.new_walk_skipped = [n for n, r in out.walk_skipped if reasons.get(n) != r]
    present = set()
    for doc_id, path in files:
        present.add(doc_id)
        info = recorded.get(doc_id)
        if info is not None:
            out.files.append(_compare(doc_id, path, info, max_bytes))
            continue
        attempt = tried.get(doc_id)
        if attempt is not None and doc_id in reasons:
            now = {**_stat(path), **extract_key(settings, format_of(doc_id) or "")}
            if now == attempt:
                out.files.append(FileState(doc_id, path, SKIPPED, attempt, reasons[doc_id]))
                continue
        edited = attempt is not None or doc_id in reasons  # skipped before: retry it
        out.files.append(FileState(doc_id, path, CHANGED if edited else NEW))
    out.removed = sorted(set(recorded) - present)
    walked = present | {n for n, _ in out.walk_skipped}
    out.removed_skipped = sorted(set(reasons) - walked)
    return out


def _compare(doc_id: str, path: str, info: dict, max_bytes: int) -> FileState:
    try:
        st = os.stat(path)
    except OSError:
        return FileState(doc_id, path, CHANGED)
    fmt = format_of(doc_id) or "txt"
    if (
        not stat_module.S_ISREG(st.st_mode)
        or st.st_size > max_bytes
        or st.st_size != info.get("size")
        or info.get("extractor", "") != (extractor_version(fmt) if not is_plain(fmt) else "")
    ):
        return FileState(doc_id, path, CHANGED)
    now = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if st.st_mtime_ns == info.get("mtime_ns"):
        return FileState(doc_id, path, UNCHANGED, now)
    hashed = hash_file(path)
    if hashed is None or hashed[0] != info.get("sha256") or hashed[1]["size"] != st.st_size:
        return FileState(doc_id, path, CHANGED)
    return FileState(doc_id, path, TOUCHED, hashed[1])


def _stat(path: str) -> dict:
    try:
        st = os.stat(path)
    except OSError:
        return {"size": None, "mtime_ns": None}
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def shown_changes(changes: list[str], n: int = 5) -> str:
    """The first ``n`` changes, then how many more."""
    more = f" and {len(changes) - n} more" if len(changes) > n else ""
    return ", ".join(changes[:n]) + more
