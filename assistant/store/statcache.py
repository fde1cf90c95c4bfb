"""The local stat cache: which stat signature each seed file had when its bytes were hashed, so
an unchanged file is not read again. It lives in ``<index_dir>/.cache/stat-cache.json``, which
git ignores (``.cache/``), and is never part of a build.

File times, inode change times and the like are this machine's: a clone, a copy or a checkout
gives the same bytes other ones. So a build's manifest, which may be committed, records each
file's sha256 and size only, and this side file remembers, for this machine and this seeds
folder, the stat signature (``corpus.stat_signature``) each file had when it was last hashed.
Without it (a fresh clone) every file is hashed once; an entry is used only while the file's
signature is the same, so a lost, old or concurrent write costs a hash, never a wrong answer.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from pathlib import Path

from ..config import Settings

FOLDER = ".cache"
STAT_CACHE = "stat-cache.json"
VERSION = 1


class StatCache:
    """``{doc id: {**stat signature, "sha256"}}`` of one seeds folder."""

    def __init__(self, path: Path, seeds_dir: str, files: dict | None = None) -> None:
        self.path, self.seeds_dir = path, seeds_dir
        self.files: dict[str, dict] = files or {}
        self.dirty = False

    @classmethod
    def load(cls, settings: Settings) -> StatCache:
        """The cache of ``settings.index_dir`` for ``settings.seeds_dir`` (empty when there is
        none, it is unreadable, or it is another seeds folder's)."""
        path = Path(settings.index_dir) / FOLDER / STAT_CACHE
        seeds = str(Path(settings.seeds_dir).resolve())
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError):
            data = None
        ok = (
            isinstance(data, dict)
            and data.get("version") == VERSION
            and data.get("seeds_dir") == seeds
            and isinstance(data.get("files"), dict)
        )
        return cls(path, seeds, data["files"] if ok else None)

    def sha256(self, doc_id: str, signature: dict) -> str | None:
        """The file's sha256 when it was hashed with this very stat signature, else None."""
        entry = self.files.get(doc_id)
        if not isinstance(entry, dict) or not signature:
            return None
        if {k: v for k, v in entry.items() if k != "sha256"} != signature:
            return None
        sha = entry.get("sha256")
        return sha if isinstance(sha, str) else None

    def put(self, doc_id: str, signature: dict | None, sha256: str | None) -> None:
        """Remember that the file had ``sha256`` when its stat signature was ``signature``
        (both from the same open of the file)."""
        if not signature or not sha256:
            return
        entry = {**signature, "sha256": sha256}
        if self.files.get(doc_id) != entry:
            self.files[doc_id] = entry
            self.dirty = True

    def retain(self, doc_ids: set[str]) -> None:
        """Forget files that are no longer in the seeds folder."""
        gone = [d for d in self.files if d not in doc_ids]
        for doc_id in gone:
            del self.files[doc_id]
        self.dirty = self.dirty or bool(gone)

    def save(self) -> None:
        """Write the cache if it changed; best effort (a read-only or missing index folder
        only costs hashing again next time). The index folder itself is not created here."""
        if not self.dirty or not self.path.parent.parent.is_dir():
            return
        data = {"version": VERSION, "seeds_dir": self.seeds_dir, "files": self.files}
        raw = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        tmp = self.path.with_name(f".{STAT_CACHE}.{uuid.uuid4().hex[:8]}")
        try:
            self.path.parent.mkdir(exist_ok=True)
            tmp.write_bytes(raw)
            os.replace(tmp, self.path)
            self.dirty = False
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
