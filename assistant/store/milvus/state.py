"""The live build's pointer, manifest and vocabulary as stored in the metadata collection."""

from __future__ import annotations

import json
from typing import Any

from ...errors import CorruptIndexError
from ..layout import FIX_FULL
from .client import get_blob, get_row

POINTER = "pointer"


def read_pointer(client: Any, meta: str) -> dict | None:
    """``{"collection", "build", "manifest", "vocab"}`` of the live build, or None."""
    raw = get_row(client, meta, POINTER)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise CorruptIndexError(f"the Milvus pointer row is unreadable; {FIX_FULL}") from exc


def read_manifest(client: Any, meta: str, pointer: dict) -> dict:
    raw = get_blob(client, meta, pointer["manifest"])
    if raw is None:
        raise CorruptIndexError(f"Milvus has no manifest for build {pointer['build']}; {FIX_FULL}")
    try:
        manifest = json.loads(raw)
    except ValueError as exc:
        raise CorruptIndexError(
            f"the manifest in Milvus is unreadable ({exc}); {FIX_FULL}"
        ) from exc
    if not isinstance(manifest, dict) or manifest.get("build_id") != pointer["build"]:
        raise CorruptIndexError(
            f"the manifest in Milvus is not build {pointer['build']}; {FIX_FULL}"
        )
    return manifest


def read_vocab(client: Any, meta: str, pointer: dict) -> dict[str, int]:
    raw = get_blob(client, meta, pointer["vocab"])
    if raw is None:
        raise CorruptIndexError(
            f"Milvus has no vocabulary for build {pointer['build']}; {FIX_FULL}"
        )
    return json.loads(raw)
