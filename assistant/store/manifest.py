"""The build's manifest: what was built and how, checked before anything is reused or read.

``manifest.json`` records the format, model, vector size, embedding backend, encoding and
chunk settings (``BuildKey``), the segments, per-document sha256 / size / chunk count /
segment, the skipped files, per-file size and crc32, and a sha256 of its own text. Nothing
of one machine (file times, inodes: ``MACHINE_FIELDS``): a committed index stays the same in
every clone; the local stat cache (``statcache``) keeps those.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..bm25 import BM25_PARAMS
from ..config import Settings
from ..errors import CorruptIndexError, IncompatibleIndexError
from .layout import CHUNKS, FIX, FIX_FULL, MANIFEST, VECTORS, segment_file

FORMAT_VERSION = 4  # 2: BM25 as raw postings, per-block crc32; 3: segments; 4: extracted texts
READABLE_FORMATS = (2, 3, 4)  # older builds hold only plain-text documents: read as they are
DEFAULT_BACKEND = "torch"
# A file's facts of this machine only: never recorded in a manifest (a clone has other ones);
# dropped from an older build's document entries when they are carried over.
MACHINE_FIELDS = frozenset({"mtime_ns", "ctime_ns", "atime_ns", "ino", "dev"})


def content_entry(entry: dict) -> dict:
    """A document's manifest entry without ``MACHINE_FIELDS`` (an older build recorded some)."""
    return {k: v for k, v in entry.items() if k not in MACHINE_FIELDS}


@dataclass(frozen=True)
class BuildKey:
    """What decides the vectors and chunk boundaries: an index is usable only with the same."""

    model: str
    dim: int | None
    backend: str
    chunking: tuple[tuple[str, Any], ...]

    @classmethod
    def of_settings(cls, settings: Settings, dim: int | None = None) -> BuildKey:
        backend = settings.embed_backend
        return cls(settings.model, dim, backend, tuple(sorted(settings.chunk_params().items())))

    @classmethod
    def of_manifest(cls, manifest: dict) -> BuildKey:
        chunking = manifest.get("chunking", {})
        return cls(
            manifest.get("model"),
            manifest.get("dim"),
            manifest.get("backend", DEFAULT_BACKEND),
            tuple(sorted(chunking.items())) if isinstance(chunking, dict) else (),
        )

    def differences(self, built: BuildKey) -> list[str]:
        """What ``built`` (an index's key) has that this wanted key does not, in words."""
        out = []
        if built.model != self.model:
            out.append(f"model {built.model!r}, ASSISTANT_MODEL is {self.model!r}")
        if self.dim is not None and built.dim != self.dim:
            out.append(f"{built.dim}-d vectors, the model {self.model!r} gives {self.dim}-d")
        if built.backend != self.backend:
            out.append(f"embedding backend {built.backend!r}, the setting is {self.backend!r}")
        have, want = dict(built.chunking), dict(self.chunking)
        out += [f"{k} {have.get(k)!r} != {v!r}" for k, v in want.items() if have.get(k) != v]
        return out


def check_compatible(manifest: dict, settings: Settings, dim: int | None = None) -> None:
    """Raise ``IncompatibleIndexError`` when the index was built differently from ``settings``
    (model, vector size when ``dim`` is known, backend, encoding, chunk settings, BM25)."""
    if manifest.get("format") not in READABLE_FORMATS:
        raise IncompatibleIndexError(
            f"index format {manifest.get('format')} is not the supported {FORMAT_VERSION}; {FIX_FULL}"
        )
    if manifest.get("bm25", BM25_PARAMS) != BM25_PARAMS:
        raise IncompatibleIndexError(
            f"index was built with other BM25 tokenizer settings ({manifest.get('bm25')!r}); {FIX}"
        )
    diffs = BuildKey.of_settings(settings, dim).differences(BuildKey.of_manifest(manifest))
    if diffs:
        fix = FIX_FULL if dim is not None and manifest.get("dim") != dim else FIX
        raise IncompatibleIndexError(f"index was built with {'; '.join(diffs)}; {fix}")


def read_manifest(build: Path) -> dict:
    path = build / MANIFEST
    try:
        data = path.read_bytes()
        manifest = json.loads(data)
    except FileNotFoundError as exc:
        raise CorruptIndexError(f"{path} is missing; {FIX_FULL}") from exc
    except (OSError, ValueError) as exc:
        raise CorruptIndexError(f"{path} is unreadable ({exc}); {FIX_FULL}") from exc
    if not manifest_shape_ok(manifest):
        raise CorruptIndexError(f"{path} is not an assistant manifest; {FIX_FULL}")
    if "checksum" in manifest and not (
        text_checksum(data) == manifest["checksum"]
        or manifest["checksum"] == manifest_checksum(manifest)  # format 2 hashed the JSON body
    ):
        raise CorruptIndexError(f"{path} does not match its checksum (garbled?); {FIX_FULL}")
    return manifest


_CHECKSUM_FIELD = re.compile(rb'"checksum": "([0-9a-f]{64})"')
_ZEROS = "0" * 64


def text_checksum(data: bytes) -> str | None:
    """sha256 of the manifest file's bytes with its checksum digits zeroed (how ``_write_json``
    computes it): one hash over the bytes, no re-serialization of a 380k-document manifest.
    The field can be found in the text: inside JSON strings every quote is escaped."""
    found = _CHECKSUM_FIELD.search(data)
    if found is None:
        return None
    digest = hashlib.sha256(data[: found.start(1)])
    digest.update(_ZEROS.encode())
    digest.update(data[found.end(1) :])
    return digest.hexdigest()


def manifest_checksum(manifest: dict) -> str:
    """sha256 of the manifest without its own ``checksum`` field (a garbled value is caught)."""
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, ensure_ascii=False).encode("utf-8")
    ).hexdigest()


def manifest_shape_ok(m: Any) -> bool:
    """The fields that loading relies on are there, with the right types."""
    if not isinstance(m, dict):
        return False
    files, counts, index = m.get("files"), m.get("counts"), m.get("index")
    if not (isinstance(counts, dict) and isinstance(counts.get("chunks"), int)):
        return False
    segments = m.get("segments", [{"name": ".", "chunks": counts["chunks"], "index": index}])
    return (
        isinstance(files, dict)
        and isinstance(segments, list)
        and len(segments) >= 1
        and all(segment_shape_ok(s, files) for s in segments)
        and len({s["name"] for s in segments}) == len(segments)
        and sum(s["chunks"] for s in segments) == counts["chunks"]
        and all(
            isinstance(v, dict)
            and isinstance(v.get("size"), int)
            and isinstance(v.get("crc32"), list)
            and all(isinstance(c, int) for c in v["crc32"])
            for v in files.values()
        )
        and isinstance(m.get("documents"), dict)
        and isinstance(counts, dict)
        and isinstance(counts.get("chunks"), int)
        and isinstance(m.get("dim"), int)
        and isinstance(index, dict)
        and index.get("kind") in ("flat", "hnsw", "ivf")
    )


def segment_shape_ok(s: Any, files: dict) -> bool:
    return (
        isinstance(s, dict)
        and isinstance(s.get("name"), str)
        and re.fullmatch(r"\.|seg-[0-9A-Za-z-]+", s["name"]) is not None  # no path escapes
        and isinstance(s.get("chunks"), int)
        and s["chunks"] >= 0
        and isinstance(s.get("index"), dict)
        and s["index"].get("kind") in ("flat", "hnsw", "ivf")
        and all(segment_file(s["name"], f) in files for f in (VECTORS, CHUNKS))
    )


def segments_of(manifest: dict) -> list[dict]:
    """The build's segments in chunk-id order, each ``{"name", "chunks", "index"}``.

    A build is one or more segments, each a complete little index (vectors, chunk store, BM25
    postings) over a run of chunk ids; a format-2 build is one segment at the build's root.
    """
    segments = manifest.get("segments")
    if segments is None:
        return [{"name": ".", "chunks": manifest["counts"]["chunks"], "index": manifest["index"]}]
    return segments


def placed(manifest: dict) -> list[tuple[int, dict]]:
    """``(first chunk id, segment)`` for each segment of the build, in order."""
    out, first = [], 0
    for seg in segments_of(manifest):
        out.append((first, seg))
        first += seg["chunks"]
    return out


def chunk_ranges(manifest: dict, docs: Iterable[str]) -> list[tuple[int, int]]:
    """The chunk ids of documents ``docs`` as ``[first, end)`` runs, ascending, touching runs
    joined (each document's chunks are one run of ids; documents it does not hold add none)."""
    runs = []
    for doc_id in docs:
        info = manifest["documents"].get(doc_id)
        if info and info["chunks"]:
            runs.append((int(info["first_chunk"]), int(info["first_chunk"]) + int(info["chunks"])))
    out: list[tuple[int, int]] = []
    for a, b in sorted(runs):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def write_manifest(path: Path, data: dict) -> None:
    """Write a manifest atomically, setting its ``checksum`` (see ``text_checksum``)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    # Indented for people while small; compact (C encoder, ~10x faster) for 1,000+ documents.
    indent = 1 if len(data.get("documents", ())) < 1000 else None
    data["checksum"] = _ZEROS
    text = json.dumps(data, indent=indent, sort_keys=True, ensure_ascii=False) + "\n"
    raw = text.encode("utf-8")  # bytes, so the hash does not depend on newline translation
    data["checksum"] = digest = text_checksum(raw)
    raw = raw.replace(f'"checksum": "{_ZEROS}"'.encode(), f'"checksum": "{digest}"'.encode(), 1)
    with open(tmp, "wb") as handle:
        handle.write(raw)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def package_version() -> str:
    from .. import __version__

    return __version__
