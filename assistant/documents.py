"""The documents in the seeds folder as the web app manages them: accept an upload (any
supported format, refusing a file identical to one already there), delete one, and find the
file behind a document id for the download route, which serves seed documents and nothing else.

No Gradio here: the app calls these and renders what they return.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Any

from .config import Settings
from .corpus import seed_files
from .extract import format_of

MEDIA_TYPES = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "html": "text/plain; charset=utf-8",  # shown as source, never rendered as a page of ours
    "epub": "application/epub+zip",
    "txt": "text/plain; charset=utf-8",
    "md": "text/plain; charset=utf-8",
}
_MAGIC = {"pdf": (b"%PDF-",), "docx": (b"PK\x03\x04",), "epub": (b"PK\x03\x04",)}


class DocumentError(ValueError):
    """An upload or a deletion was refused; the message says why."""


def check_document(data: bytes, fmt: str) -> None:
    """A non-text upload must at least look like its format (the build reports the rest)."""
    if not data.strip():
        raise DocumentError("the file is empty")
    magic = _MAGIC.get(fmt)
    if magic and not data.startswith(magic):
        raise DocumentError(f"the file does not look like a .{fmt} file")


def seed_documents(settings: Settings) -> dict[str, str]:
    """``{document id: path}`` of every supported file in the seeds folder."""
    try:
        files, _ = seed_files(Path(settings.seeds_dir))
    except Exception:
        return {}
    return dict(files)


def find_duplicate(
    data: bytes, settings: Settings, known: dict[str, str] | None = None
) -> str | None:
    """The id of a seed document with exactly these bytes, or None.

    ``known`` (``{id: sha256}``, from the index manifest) saves hashing the files whose
    recorded size still matches; the others are hashed from disk."""
    digest = hashlib.sha256(data).hexdigest()
    known = known or {}
    for doc_id, path in sorted(seed_documents(settings).items()):
        try:
            size = os.stat(path).st_size
        except OSError:
            continue
        if size != len(data):
            continue
        recorded = known.get(doc_id)
        if recorded is not None and recorded != digest:
            continue
        if hashlib.sha256(Path(path).read_bytes()).hexdigest() == digest:
            return doc_id
    return None


def document_file(doc_id: str, settings: Settings) -> tuple[Path, str] | None:
    """The file and media type behind a seed document id, or None when ``doc_id`` is not
    exactly one of the seed documents (so no other path can be reached through it)."""
    path = seed_documents(settings).get(doc_id)
    if path is None:
        return None
    real = Path(path).resolve()
    try:
        real.relative_to(Path(settings.seeds_dir).resolve())
        if not stat.S_ISREG(real.stat().st_mode):
            return None
    except (OSError, ValueError):
        return None
    return real, MEDIA_TYPES.get(format_of(doc_id) or "", "application/octet-stream")


def delete_document(doc_id: str, settings: Settings) -> Path:
    """Remove a seed document's file (only an exact seed document id; symlinks are unlinked,
    never their targets). The caller rebuilds the index afterwards."""
    path = seed_documents(settings).get(doc_id or "")
    if path is None:
        raise DocumentError(f"no document {doc_id!r} in the seeds folder")
    Path(path).unlink()
    return Path(path)


def add_document_route(app: Any, settings: Settings, prefix: str = "/document") -> None:
    """Add ``document_route`` first among the routes of a running Starlette ``app`` (the web
    app gives it to the app before the server starts: see ``app.server.launch``)."""
    app.router.routes.insert(0, document_route(settings, prefix))


def document_route(settings: Settings, prefix: str = "/document") -> Any:
    """``GET <prefix>/<id>`` on the web app (a Starlette route): a seed document's file,
    nothing else.

    The id must be exactly one of the seed documents (``documents.document_file``): no path is
    built from the request, so ``..``, absolute paths and other files cannot be reached. PDFs
    are served inline (the browser's viewer honours ``#page=N``); other formats as downloads.
    """
    from starlette.responses import FileResponse, PlainTextResponse
    from starlette.routing import Route

    async def serve(request: Any) -> Any:
        found = document_file(request.path_params["doc_id"], settings)
        if found is None:
            return PlainTextResponse("not a document of this assistant", status_code=404)
        path, media_type = found
        inline = media_type == "application/pdf"
        return FileResponse(
            path,
            media_type=media_type,
            filename=path.name,
            content_disposition_type="inline" if inline else "attachment",
            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"},
        )

    return Route(prefix + "/{doc_id:path}", serve, methods=["GET"])
