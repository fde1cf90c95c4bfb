"""Write a complete build from new document rows and the previous build's segments, then
swap it in; or refresh only the manifest's recorded file facts and skipped files."""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from ..bm25 import BM25_PARAMS
from ..config import Settings
from ..errors import CorruptIndexError, IncompatibleIndexError, IndexWriteError
from .integrity import segment_file_infos, verify_files
from .layout import (
    MANIFEST,
    SEGMENT_FILES,
    current_build,
    fsync_dir,
    fsync_tree,
    new_build_id,
    point_current,
    segment_file,
)
from .manifest import (
    FORMAT_VERSION,
    check_compatible,
    content_entry,
    package_version,
    read_manifest,
    write_manifest,
)
from .planner import BuildInput, plan_segments
from .segments import Previous, link_segment, write_segment

log = logging.getLogger(__name__)


def write_error(exc: BaseException) -> IndexWriteError:
    """A failed write (disk full, read-only folder, SQLite or FAISS I/O) as one line."""
    return IndexWriteError(
        f"writing the index failed ({type(exc).__name__}: {exc}); the previous index is "
        "intact: free space or fix the folder's permissions, then rebuild"
    )


def open_previous(settings: Settings, full: bool) -> Previous | None:
    """The last build if its vectors can be reused, else None (with the reason logged)."""
    if full:
        return None
    try:
        build = current_build(settings.index_dir)
        if build is None:
            return None
        manifest = read_manifest(build)
        check_compatible(manifest, settings)
        verify_files(build, manifest)
    except (IncompatibleIndexError, CorruptIndexError) as exc:
        log.warning("rebuilding everything: %s", exc)
        return None
    return Previous(build, manifest)


def write_build(settings: Settings, build: BuildInput) -> tuple[Path, dict]:
    """Write a complete build of ``build.docs`` (with ``build.vectors``) into
    ``settings.index_dir`` and swap it in. Used by every build, and by benchmarks/scale.py to
    write indexes from given vectors.

    With ``previous``, the documents in ``kept`` (``{id: file facts}``) are carried over from it
    without re-embedding or re-tokenizing: their chunk ids come first, in their old order, and
    ``docs`` follow. The build is a list of segments (see ``plan_segments``): a previous segment
    whose documents are all kept is hard-linked into the new build, not rewritten, and ``docs``
    become a new segment; so adding a document costs time for that document, plus an
    occasional merge of small segments.
    """
    dim, docs, vectors = build.dim, build.docs, build.vectors
    previous, kept = build.previous, build.kept
    index_dir = Path(settings.index_dir)
    build_id = new_build_id()
    tmp = index_dir / f".tmp-{build_id}"
    try:
        tmp.mkdir()
        old_docs: dict[str, dict] = previous.manifest["documents"] if previous else {}
        new_docs = {d.id: d for d in docs}
        plan = plan_segments(previous.manifest if previous else None, kept, docs, vectors)
        segments: list[dict] = []
        files: dict[str, dict] = {}
        manifest_docs: dict[str, dict] = {}
        row = 0
        for i, item in enumerate(plan):
            if item.link is not None and previous is not None:
                name, info = item.link["name"], item.link["index"]
                link_segment(previous.build, tmp, name)
                for rel in SEGMENT_FILES:
                    files[segment_file(name, rel)] = previous.manifest["files"][
                        segment_file(name, rel)
                    ]
                local = {doc_id: (first, n) for first, n, doc_id in item.parts[0].ranges}
            else:
                name = "." if i == 0 else f"seg-{build_id}-{i}"
                info, local = write_segment(tmp / name, item, previous, settings, dim)
                files.update(segment_file_infos(tmp, name))
            for doc_id, (first, n) in local.items():
                doc = new_docs.get(doc_id)
                entry = (
                    {**doc.manifest_entry(), "chunks": n}
                    if doc is not None
                    else content_entry({**old_docs[doc_id], **kept[doc_id]})
                )
                manifest_docs[doc_id] = {**entry, "first_chunk": row + first, "segment": name}
            segments.append({"name": name, "chunks": item.size, "index": info})
            row += item.size

        manifest = {
            "format": FORMAT_VERSION,
            "package_version": package_version(),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "build_id": build_id,
            "model": settings.model,
            "dim": dim,
            "backend": settings.embed_backend,
            "normalized": True,
            "model_max_tokens": build.model_max_tokens,
            "chunking": settings.chunk_params(),
            "index": segments[0]["index"],
            "segments": segments,
            "bm25": BM25_PARAMS,
            "counts": {"documents": len(manifest_docs), "chunks": row},
            "source": build.source or {"kind": "seeds", "seeds_dir": str(settings.seeds_dir)},
            "skipped": dict(build.skipped),
            "skipped_files": build.skipped_files,
            "documents": manifest_docs,
            "files": files,
        }
        write_manifest(tmp / MANIFEST, manifest)
        fsync_tree(tmp)
        final = index_dir / f"build-{build_id}"
        os.rename(tmp, final)
        fsync_dir(index_dir)
        point_current(index_dir, final.name)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, (OSError, sqlite3.Error, RuntimeError)):  # RuntimeError: FAISS I/O
            raise write_error(exc) from exc
        raise
    return final, manifest


def refresh_manifest(
    previous: Previous,
    stats: dict[str, dict],
    skipped: Sequence[tuple[str, str]],
    skipped_files: dict[str, dict],
) -> dict:
    """Rewrite only the manifest's recorded file facts (``stats``: ``{id: {"size"}}``) and
    skipped files (same content); not at all when they are the ones recorded."""
    manifest = dict(previous.manifest)
    manifest["documents"] = {
        d: {**content_entry(info), **stats.get(d, {})}
        for d, info in previous.manifest["documents"].items()
    }
    manifest["skipped"] = dict(skipped)
    manifest["skipped_files"] = skipped_files
    if manifest == previous.manifest:
        return manifest
    try:
        write_manifest(previous.build / MANIFEST, manifest)
    except OSError as exc:
        raise write_error(exc) from exc
    return manifest
