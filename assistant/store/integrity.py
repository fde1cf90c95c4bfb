"""Checksums of a build's files: size and crc32 per 64 MiB block, checked on every load."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ..errors import CorruptIndexError
from .layout import FIX_FULL, SEGMENT_FILES, segment_file

CHECK_BLOCK = 64 << 20  # bytes per crc32 block of an index file (blocks are checked in parallel)


def verify_files(build: Path, manifest: dict) -> None:
    """Every file has its recorded size and per-block crc32 (blocks checked on all cores).

    crc32 runs at about 1 GB/s per core and catches any burst of flipped bytes, so even a 1M-chunk
    index (about 3 GB) is checked in seconds on every load: a garbled file never gives silently
    wrong results. The manifest itself carries a sha256 of its content.
    """
    jobs = []
    for rel, info in manifest["files"].items():
        path = build / rel
        try:
            size = path.stat().st_size
        except FileNotFoundError as exc:
            raise CorruptIndexError(f"{path} is missing; {FIX_FULL}") from exc
        if size != info["size"]:
            raise CorruptIndexError(
                f"{path} has {size} bytes, the manifest says {info['size']} (truncated?); {FIX_FULL}"
            )
        if len(info["crc32"]) != max(1, -(-size // CHECK_BLOCK)):
            raise CorruptIndexError(f"{path} has a wrong number of checksums; {FIX_FULL}")
        jobs += [(path, i, crc) for i, crc in enumerate(info["crc32"])]
    for path, ok in map_blocks(lambda job: (job[0], block_crc(job[0], job[1]) == job[2]), jobs):
        if not ok:
            raise CorruptIndexError(f"{path} does not match its checksum (garbled?); {FIX_FULL}")


def map_blocks(fn: Callable, jobs: list) -> list:
    """``fn`` over ``jobs`` on all cores (zlib and file reads release the GIL)."""
    if len(jobs) <= 1:
        return [fn(j) for j in jobs]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(len(jobs), os.cpu_count() or 1)) as pool:
        return list(pool.map(fn, jobs))


def block_crc(path: Path, block: int) -> int:
    import zlib

    crc = 0
    with open(path, "rb") as handle:
        handle.seek(block * CHECK_BLOCK)
        left = CHECK_BLOCK
        while left > 0:
            data = handle.read(min(left, 8 << 20))
            if not data:
                break
            crc = zlib.crc32(data, crc)
            left -= len(data)
    return crc


def file_crcs(path: Path) -> list[int]:
    """crc32 of each ``CHECK_BLOCK`` of ``path`` (one block for an empty file)."""
    n = max(1, -(-path.stat().st_size // CHECK_BLOCK))
    return map_blocks(lambda i: block_crc(path, i), list(range(n)))


def segment_file_infos(build: Path, name: str) -> dict[str, dict]:
    """The manifest's ``files`` records (size, per-block crc32) of one written segment."""
    out = {}
    for rel in SEGMENT_FILES:
        path = build / segment_file(name, rel)
        out[segment_file(name, rel)] = {"size": path.stat().st_size, "crc32": file_crcs(path)}
    return out
