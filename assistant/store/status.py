"""A summary of the live index for the CLI and the web app (no model is loaded)."""

from __future__ import annotations

from ..config import Settings
from ..extract import format_of
from . import backend_for
from .diff import diff
from .manifest import segments_of


def index_status(settings: Settings | None = None) -> dict:
    """A summary of the live index for the CLI and the web app (no model is loaded)."""
    settings = settings or Settings()
    live = backend_for(settings).status(settings)
    where = {"store": settings.store, "index_dir": str(settings.index_dir)}
    if settings.store == "milvus":
        where["milvus_uri"] = settings.milvus_target
    if live is None:
        return {"built": False, **where}
    name, manifest = live
    seeds = diff(settings, manifest)
    changes = seeds.changes()
    return {
        "built": True,
        **where,
        "build": name,
        "created": manifest["created"],
        "model": manifest["model"],
        "dim": manifest["dim"],
        "index": manifest["index"]["kind"],
        "segments": [s["chunks"] for s in segments_of(manifest)],
        "chunks": manifest["counts"]["chunks"],
        "documents": {
            k: {
                "title": v["title"],
                "chunks": v["chunks"],
                "format": v.get("format") or format_of(k) or "txt",
                "pages": v.get("pages"),
                "sha256": v["sha256"],
            }
            for k, v in manifest["documents"].items()
        },
        "skipped": dict(manifest.get("skipped", {})),
        "stale": bool(changes),
        "changes": changes,
        "pending": seeds.pending(),  # documents not indexed yet (new, changed, removed)
        "backend": manifest.get("backend", "torch"),
    }
