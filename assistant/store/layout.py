"""The index folder's layout: the ``CURRENT`` pointer, build folders, fsync, the build lock.

``index_dir`` (``embeddings/`` by default)::

    CURRENT               name of the live build folder; replaced atomically (os.replace)
    build-<id>/           one complete build (manifest.json and its segments)
    .tmp-<id>/            a build in progress (removed by the next build if it was killed)
    .checkpoint/          vectors of a build that did not finish (see ``checkpoint.py``)
    .lock                 held while a build runs

A build writes everything into ``.tmp-<id>/``, fsyncs it, renames it to ``build-<id>/`` and only
then points ``CURRENT`` at it: a build killed at any moment leaves ``CURRENT`` naming the
previous, complete build.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path

from ..bm25 import BM25_ARRAYS
from ..errors import CorruptIndexError, IndexLockedError

CURRENT = "CURRENT"
MANIFEST = "manifest.json"
VECTORS = "vectors.faiss"
CHUNKS = "chunks.sqlite"
BM25_DIR = "bm25"
FIX = "run `assistant build`"
FIX_FULL = "run `assistant build --full`"
SEGMENT_FILES = (
    VECTORS,
    CHUNKS,
    f"{BM25_DIR}/vocab.json",
    *(f"{BM25_DIR}/{name}.npy" for name in BM25_ARRAYS),
)


def segment_file(name: str, rel: str) -> str:
    """A segment file's path relative to the build folder (the root segment is ``"."``)."""
    return rel if name == "." else f"{name}/{rel}"


def new_build_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


def current_build(index_dir: Path) -> Path | None:
    """The live build folder named by ``CURRENT``, or None when nothing was built.

    A build can swap ``CURRENT`` and delete the folder it named between our read and our check;
    the pointer is then re-read, and only a pointer that stays on a missing folder is corrupt.
    """
    pointer = Path(index_dir) / CURRENT
    previous = None
    for _attempt in range(5):
        try:
            name = pointer.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise CorruptIndexError(f"cannot read {pointer}: {exc}; {FIX_FULL}") from exc
        if not name.startswith("build-") or "/" in name:
            break
        if (Path(index_dir) / name).is_dir():
            return Path(index_dir) / name
        if name == previous:
            break
        previous = name
    raise CorruptIndexError(f"{pointer} names a missing build {name!r}; {FIX_FULL}")


class BuildLock:
    """An exclusive lock on the index folder; refuses (or waits) when another build holds it."""

    def __init__(self, index_dir: Path, wait: float | None) -> None:
        from filelock import FileLock, Timeout

        self._timeout_error = Timeout
        self._lock = FileLock(str(Path(index_dir) / ".lock"))
        self._wait = wait

    def __enter__(self) -> BuildLock:
        try:
            self._lock.acquire(timeout=-1 if self._wait is None else self._wait)
        except self._timeout_error as exc:
            raise IndexLockedError(
                "another build is running on this index; wait for it or pass --wait"
            ) from exc
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


def point_current(index_dir: Path, name: str) -> None:
    tmp = index_dir / f".{CURRENT}.{uuid.uuid4().hex[:8]}"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(name + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, index_dir / CURRENT)
    fsync_dir(index_dir)


def remove_leftovers(index_dir: Path) -> None:
    """Delete what killed builds left behind (called under the build lock)."""
    for path in index_dir.iterdir():
        if path.name.startswith((".tmp-", f".{CURRENT}.")):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    try:
        live = current_build(index_dir)
    except CorruptIndexError:
        return
    if live is not None:
        remove_old_builds(index_dir, keep=live.name)


def remove_old_builds(index_dir: Path, keep: str) -> None:
    for path in index_dir.iterdir():
        if path.is_dir() and path.name.startswith("build-") and path.name != keep:
            shutil.rmtree(path, ignore_errors=True)


def fsync_tree(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    for path in [root, *[p for p in root.rglob("*") if p.is_dir()]]:
        fsync_dir(path)


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
