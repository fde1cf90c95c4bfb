"""The one comparison of the seeds folder with a build's manifest, used by the build (what to
read and embed) and by the stale check (what the index does not cover yet).

The manifest records what a file holds (sha256, size), never when or where it was written: it
may be committed, and a clone has other file times. Which stat each file had when it was last
hashed is kept beside it, in the local stat cache (``statcache``, git-ignored). Stat first,
hash only when the stat signature differs from the cached one: an unchanged folder costs one
``stat`` per file; a fresh clone (no cache) hashes each file once, and when the bytes are the
ones recorded nothing is written but the cache. The signature is size, mtime and ctime
(``corpus.stat_signature``, as git does), so an edit whose mtime was put back is still seen.
A file's cached stat always comes from the same open as the bytes that were hashed (see
``corpus.read_document``), so a file edited while a build runs differs from it and is seen as
changed by the next build. Skipped files are compared by their size and sha256 (``skip_record``)
plus the extractor and limits they were tried with.
"""

from __future__ import annotations

import hashlib
import os
import stat as stat_module
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..config import Settings
from ..corpus import seed_files, stat_signature
from ..errors import EmptyCorpusError
from ..extract import extractor_version, format_of, is_plain
from .statcache import StatCache

# A file's status against the manifest.
UNCHANGED = "unchanged"  # same stat signature as when it was last hashed (the stat cache)
TOUCHED = "touched"  # another stat (or none cached: a fresh clone), same bytes: only the cache
CHANGED = "changed"  # to read again (edited, or its extractor or the size limit changed)
NEW = "new"  # not in the manifest
SKIPPED = "skipped"  # skipped before, unchanged since: skipped again for the same reason


@dataclass
class FileState:
    doc_id: str
    path: str
    status: str
    stat: dict | None = None  # for UNCHANGED / TOUCHED: its stat signature (the stat cache's)
    reason: str = ""  # for SKIPPED: the recorded reason
    record: dict | None = None  # for SKIPPED: the manifest's record of the skip, kept as it is


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


def extract_key(settings: Settings, fmt: str) -> dict:
    """What a skip depends on besides the file: the extractor and the limits it ran under."""
    return {
        "extractor": extractor_version(fmt) if fmt and not is_plain(fmt) else "",
        "extract_limits": [settings.extract_timeout, settings.extract_memory_mb],
        "max_file_mb": settings.max_file_mb,
    }


def hash_file(path: str) -> tuple[str, dict] | None:
    """sha256 of the file and the stat signature of the same open (None if unreadable)."""
    try:
        with open(path, "rb") as handle:
            st = os.fstat(handle.fileno())
            digest = hashlib.sha256()
            while block := handle.read(1 << 20):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest(), stat_signature(st)


def skip_record(
    settings: Settings, doc_id: str, path: str, cache: StatCache, read: dict | None = None
) -> dict:
    """What a skipped file is compared by the next time (recorded in the manifest, so nothing
    of this machine's): its size and sha256, and the extractor and limits it was tried with.
    The sha256 is None for a file over the size limit (its reason depends on its size only), one
    that is not a regular file or cannot be read. ``read``: the stat signature of the read that
    decided the skip; a file that no longer has it is recorded without a size, so that the
    next build tries it again."""
    size = sha = None
    try:
        st = os.stat(path)
    except OSError:
        st = None
    if st is not None and stat_module.S_ISREG(st.st_mode):  # a FIFO would block the hash
        size = st.st_size
        if size <= int(settings.max_file_mb * 1e6):
            sha = cached_sha256(doc_id, path, st, cache)
        if read and stat_signature(st) != read:
            size = None
    return {"size": size, "sha256": sha, **extract_key(settings, format_of(doc_id) or "")}


def cached_sha256(doc_id: str, path: str, st: os.stat_result, cache: StatCache) -> str | None:
    """The file's sha256: from the stat cache while its stat signature is the cached one, else
    hashed (and cached). None if it cannot be read."""
    sha = cache.sha256(doc_id, stat_signature(st))
    if sha is not None:
        return sha
    hashed = hash_file(path)
    if hashed is None:
        return None
    cache.put(doc_id, hashed[1], hashed[0])
    return hashed[0]


def diff(settings: Settings, manifest: Mapping | None, cache: StatCache | None = None) -> SeedDiff:
    """Compare ``settings.seeds_dir`` with ``manifest`` (None: everything is new).

    ``cache``: the stat cache to use and fill (the build passes its own and saves it); without
    one, the index folder's is loaded and, if a file had to be hashed, saved again."""
    own = cache is None
    cache = StatCache.load(settings) if cache is None else cache
    out = _diff(settings, manifest or {}, cache)
    if own:
        cache.save()
    return out


def _diff(settings: Settings, manifest: Mapping, cache: StatCache) -> SeedDiff:
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
            out.files.append(_compare(doc_id, path, info, max_bytes, cache))
            continue
        attempt = tried.get(doc_id)
        # A record of an older build (a file stat, no sha256) never matches: tried again.
        if (
            attempt is not None
            and doc_id in reasons
            and skip_record(settings, doc_id, path, cache) == attempt
        ):
            out.files.append(
                FileState(doc_id, path, SKIPPED, reason=reasons[doc_id], record=attempt)
            )
            continue
        edited = attempt is not None or doc_id in reasons  # skipped before: retry it
        out.files.append(FileState(doc_id, path, CHANGED if edited else NEW))
    out.removed = sorted(set(recorded) - present)
    walked = present | {n for n, _ in out.walk_skipped}
    out.removed_skipped = sorted(set(reasons) - walked)
    return out


def _compare(doc_id: str, path: str, info: dict, max_bytes: int, cache: StatCache) -> FileState:
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
    now = stat_signature(st)
    cached = cache.sha256(doc_id, now)
    if cached is not None and cached == info.get("sha256"):
        return FileState(doc_id, path, UNCHANGED, now)
    hashed = hash_file(path)
    if hashed is None:
        return FileState(doc_id, path, CHANGED)
    cache.put(doc_id, hashed[1], hashed[0])  # what the file holds, whatever the manifest says
    if hashed[0] != info.get("sha256") or hashed[1]["size"] != st.st_size:
        return FileState(doc_id, path, CHANGED)
    return FileState(doc_id, path, TOUCHED, hashed[1])


def shown_changes(changes: list[str], n: int = 5) -> str:
    """The first ``n`` changes, then how many more."""
    more = f" and {len(changes) - n} more" if len(changes) > n else ""
    return ", ".join(changes[:n]) + more
