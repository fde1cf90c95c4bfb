"""Vectors of a build that has not finished, so a killed or crashed build resumes.

``index_dir/.checkpoint/`` holds one ``.npz`` file per embedded batch of documents: for each
document a key (its sha256 and extractor, the model, vector size, backend and chunk settings)
and its chunk vectors. A file is written under a temporary name and renamed, so a kill leaves
either a whole file or a leftover that is ignored. The next build takes the vectors of every
document whose key matches (and whose chunk count agrees) instead of embedding it again. The
folder is bounded (``MAX_BYTES``) and removed when a build completes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import uuid
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

FOLDER = ".checkpoint"
MAX_BYTES = 2 << 30  # beyond this much, a build stops checkpointing (it still completes)


def document_key(sha256: str, extractor: str, build_key: dict) -> str:
    """What a document's vectors depend on: its bytes, its extractor, and the build settings."""
    text = json.dumps([sha256, extractor, build_key], sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Checkpoint:
    """The checkpoint folder of one index folder."""

    def __init__(self, index_dir: Path | str) -> None:
        self.path = Path(index_dir) / FOLDER
        self._bytes = 0
        self._full = False
        # Why checkpointing stopped (a full disk, a read-only folder), said by the build's report
        # if it completes: not logged, since the build's own write then usually fails the same
        # way and says so in one line.
        self.problem: str | None = None

    def load(self) -> dict[str, np.ndarray]:
        """``{document key: vectors}`` of every complete checkpoint file (damaged ones dropped)."""
        found: dict[str, np.ndarray] = {}
        if not self.path.is_dir():
            return found
        for file in sorted(self.path.iterdir()):
            if file.name.startswith(".") or file.suffix != ".npz":
                file.unlink(missing_ok=True)  # a write cut short by a kill
                continue
            try:
                with np.load(file, allow_pickle=False) as data:
                    keys, counts, vectors = data["keys"], data["counts"], data["vectors"]
                if int(counts.sum()) != len(vectors):
                    raise ValueError("counts do not add up")
            except Exception as exc:  # noqa: BLE001 - any damage: drop the file, embed again
                log.warning("ignoring a damaged checkpoint %s (%s)", file.name, exc)
                file.unlink(missing_ok=True)
                continue
            self._bytes += file.stat().st_size
            ends = np.cumsum(counts)
            for key, end, n in zip(keys, ends, counts):
                found[str(key)] = vectors[end - n : end]
        return found

    def save(self, vectors_by_key: dict[str, np.ndarray]) -> None:
        """Checkpoint one embedded batch of documents (silently stops past ``MAX_BYTES``)."""
        if not vectors_by_key or self._full:
            return
        keys = list(vectors_by_key)
        parts = [np.asarray(vectors_by_key[k], np.float32) for k in keys]
        vectors = np.concatenate(parts)
        if self._bytes + vectors.nbytes > MAX_BYTES:
            log.warning(
                "checkpoint folder is full (%d MB): not checkpointing more", MAX_BYTES >> 20
            )
            self._full = True
            return
        name = uuid.uuid4().hex
        tmp = self.path / f".{name}.npz"
        try:
            self.path.mkdir(exist_ok=True)
            with open(tmp, "wb") as handle:
                np.savez(
                    handle,
                    keys=np.array(keys),
                    counts=np.array([len(p) for p in parts], np.int64),
                    vectors=vectors,
                )
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path / f"{name}.npz")
        except OSError as exc:  # a full disk must not stop the build itself
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)  # the space it took, for the build's own write
            log.debug("could not write a checkpoint (%s)", exc)
            self.problem = (
                f"could not write a checkpoint ({exc}): had this build been stopped, the next "
                "one would have embedded its documents again"
            )
            self._full = True
            return
        self._bytes += vectors.nbytes

    def clear(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
