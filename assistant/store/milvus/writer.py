"""Write a build into Milvus and switch to it; or refresh only its manifest.

A build's rows go in under a new build tag, beside the live ones that searches keep reading
(they filter on the live tags). Only when every row, the manifest and the vocabulary are
written does the pointer row switch to the new build (one upsert); then the rows it replaced
are deleted: the old versions of changed and removed documents (by their chunk id ranges, which
never repeat within a collection). A full rebuild writes into a fresh collection (the other one
of ``collection_pair`` when the live build has the same settings), so its chunk ids are a clean
build's (0, 1, ...), and the replaced collection is dropped after the switch. A build killed
before the switch leaves the previous build live; one killed after it leaves rows (or a
collection) that the next build deletes first (the manifest records rows as ``retired``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

from ...bm25 import BM25_PARAMS, bm25_tokens
from ...chunking import embedding_text
from ...config import Settings
from ...corpus import sha256_bytes
from ...errors import IndexLockedError, IndexWriteError
from ..layout import new_build_id
from ..loaded import marks_over
from ..manifest import FORMAT_VERSION, content_entry, package_version
from ..planner import BuildInput
from .client import (
    TEXT_BYTES,
    collection_pair,
    connect,
    delete_blob,
    ensure_chunks,
    ensure_meta,
    hex_terms,
    meta_name,
    put_blob,
    put_row,
    rows_in,
)
from .index import live_filter, text_key, wait_unused
from .state import POINTER, read_pointer, read_vocab

log = logging.getLogger(__name__)

INSERT_ROWS = 1000


@dataclass
class MilvusPrevious:
    """The live build an incremental build extends."""

    manifest: dict
    pointer: dict

    def close(self) -> None:
        pass


def _cut(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    return text if len(data) <= limit else data[:limit].decode("utf-8", "ignore")


def _fit_terms(terms: list[str]) -> str:
    """The hex terms, the last ones dropped if they pass Milvus's VARCHAR limit (a warning)."""
    text = hex_terms(terms)
    if len(text) <= TEXT_BYTES:
        return text
    log.warning("a chunk's BM25 terms pass %d bytes: only the first ones are indexed", TEXT_BYTES)
    return text[:TEXT_BYTES].rsplit(" ", 1)[0]


def _terms_of(client: Any, collection: str, ranges: list[tuple[int, int]]) -> list[list[str]]:
    """The BM25 terms of every chunk in the id ``ranges`` (to take them out of the vocabulary)."""
    out = []
    for first, n in ranges:
        for r in rows_in(client, collection, first, n, ["terms"]):
            out.append([bytes.fromhex(w).decode("utf-8") for w in r["terms"].split()])
    return out


def _delete_ranges(client: Any, collection: str, ranges: list[list[int]]) -> None:
    for i in range(0, len(ranges), 64):
        part = ranges[i : i + 64]
        client.delete(
            collection, filter=" or ".join(f"(id >= {a} and id < {a + n})" for a, n in part)
        )


def write_build(settings: Settings, build: BuildInput) -> tuple[str, dict]:
    """Write ``build.docs`` (with ``build.vectors``) and the ``build.kept`` documents of
    ``build.previous`` as the new live build; return its name and manifest."""
    try:
        return _write(settings, build)
    except (IndexLockedError, IndexWriteError, ValueError):
        raise
    except Exception as exc:
        if type(exc).__module__.startswith("pymilvus") or isinstance(exc, OSError):
            raise IndexWriteError(
                f"writing the index to Milvus failed ({type(exc).__name__}: {exc}); the "
                "previous index is intact: check the Milvus server or disk, then rebuild"
            ) from exc
        raise


def _write(settings: Settings, build: BuildInput) -> tuple[str, dict]:
    dim, docs, vectors = build.dim, build.docs, build.vectors
    previous, kept = build.previous, build.kept
    client = connect(settings)
    meta = meta_name(settings)
    ensure_meta(client, meta)
    pointer = read_pointer(client, meta)
    if previous is not None and (pointer or {}).get("build") != previous.pointer.get("build"):
        raise IndexLockedError(
            "another build was swapped in meanwhile; run `assistant build` again"
        )
    live = previous.manifest if previous is not None else None
    if live is None and pointer is not None:
        from .state import read_manifest

        live = read_manifest(client, meta, pointer)
    pair = collection_pair(settings, dim)
    live_name = live["milvus"]["collection"] if live is not None else None
    # An incremental build adds to the live collection; a full one writes a fresh collection
    # (the pair's other one when the live build has these settings), so that its chunk ids are
    # a clean build's: 0, 1, ... The live build stays searchable until the switch.
    same = previous is not None and live_name in pair
    if previous is not None and not same:  # build.py passes a previous build only if compatible
        raise ValueError("the previous build is in another collection: build with full=True")
    name = live_name if same else pair[1] if live_name == pair[0] else pair[0]
    # Rows of killed builds first: everything not live (or the whole collection if not live).
    for other in pair:
        if other not in (name, live_name) and client.has_collection(other):
            client.drop_collection(other)  # left by a full rebuild killed before its switch
    if same:
        ensure_chunks(client, name, dim)
        client.delete(name, filter=f"not ({live_filter(live)})")
        _delete_ranges(client, name, live.get("retired", []))
    else:
        if client.has_collection(name):
            client.drop_collection(name)
        ensure_chunks(client, name, dim)
    reuse = previous is not None
    old_docs = previous.manifest["documents"] if reuse else {}
    kept = {d: stat for d, stat in kept.items() if d in old_docs}
    tag = new_build_id()
    next_id = int(live.get("next_id", 0)) if same else 0

    dfs: dict[str, int] = dict(read_vocab(client, meta, previous.pointer)) if reuse else {}
    gone = [(info["first_chunk"], info["chunks"]) for d, info in old_docs.items() if d not in kept]
    for terms in _terms_of(client, name, gone) if reuse else []:
        for t in set(terms):
            dfs[t] -= 1

    manifest_docs: dict[str, dict] = {
        d: content_entry({**old_docs[d], **facts}) for d, facts in kept.items()
    }
    at = 0
    batch: list[dict] = []
    for doc in docs:
        texts = [embedding_text(doc.title, r[3], settings.embed_titles) for r in doc.rows]
        token_lists = bm25_tokens(texts) if texts else []
        record = SimpleNamespace(marks=tuple(tuple(m) for m in doc.marks))
        title = _cut(doc.title, 4096)
        for i, (start, end, n_tokens, text) in enumerate(doc.rows):
            if len(text.encode("utf-8")) > TEXT_BYTES:
                raise IndexWriteError(
                    f"{doc.id}: a chunk of more than {TEXT_BYTES} bytes does not fit Milvus; "
                    "lower ASSISTANT_CHUNK_TOKENS"
                )
            terms = token_lists[i]
            for t in set(terms):
                dfs[t] = dfs.get(t, 0) + 1
            locator = json.dumps(list(marks_over(record, start, end)), ensure_ascii=False)
            batch.append(
                {
                    "id": next_id + at + i,
                    "doc_id": doc.id,
                    "build": tag,
                    "start": int(start),
                    "end": int(end),
                    "n_tokens": int(n_tokens),
                    "text": text,
                    "title": title,
                    "locator": locator if len(locator.encode("utf-8")) <= 4096 else "[]",
                    "terms": _fit_terms(terms),
                    "dense": vectors[at + i].tolist(),
                }
            )
            if len(batch) >= INSERT_ROWS:
                client.insert(name, batch)
                batch = []
        entry = {**doc.manifest_entry(), "chunks": len(doc.rows)}
        entry.update(first_chunk=next_id + at, build=tag)
        if doc.text is not None or doc.marks:
            payload = {
                "text": doc.text,
                "text_sha256": None if doc.text is None else sha256_bytes(doc.text.encode("utf-8")),
                "marks": list(doc.marks),
            }
            put_blob(client, meta, text_key(tag, doc.id), json.dumps(payload, ensure_ascii=False))
            entry["stored"] = True
        manifest_docs[doc.id] = entry
        at += len(doc.rows)
    if batch:
        client.insert(name, batch)
    client.flush(name)

    retired = [[a, n] for a, n in gone if n]
    manifest = {
        "format": FORMAT_VERSION,
        "store": "milvus",
        "package_version": package_version(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "build_id": tag,
        "milvus": {"collection": name},
        "model": settings.model,
        "dim": dim,
        "backend": settings.embed_backend,
        "normalized": True,
        "model_max_tokens": build.model_max_tokens,
        "chunking": settings.chunk_params(),
        "index": {"kind": "flat", "metric": "inner_product", "params": {}},
        "bm25": BM25_PARAMS,
        "counts": {
            "documents": len(manifest_docs),
            "chunks": sum(d["chunks"] for d in manifest_docs.values()),
        },
        "source": build.source or {"kind": "seeds", "seeds_dir": str(settings.seeds_dir)},
        "skipped": dict(build.skipped),
        "skipped_files": build.skipped_files,
        "documents": manifest_docs,
        "next_id": next_id + at,
        "retired": retired,
    }
    vocab_key, manifest_key = f"vocab:{tag}", f"manifest:{tag}:0"
    # Terms of removed chunks stay known with a count of 0, as in the embedded store's
    # postings: the speller does not "correct" a word that the documents used to have.
    put_blob(client, meta, vocab_key, json.dumps(dfs, ensure_ascii=False))
    put_blob(client, meta, manifest_key, json.dumps(manifest, ensure_ascii=False))
    client.flush(meta)
    if read_pointer(client, meta) != pointer:
        raise IndexLockedError(
            "another build was swapped in meanwhile; run `assistant build` again"
        )
    new_pointer = {"collection": name, "build": tag, "manifest": manifest_key, "vocab": vocab_key}
    put_row(client, meta, POINTER, json.dumps(new_pointer))  # the switch
    client.flush(meta)
    _after_switch(client, meta, manifest, live, pointer)
    return tag, manifest


def _after_switch(
    client: Any, meta: str, manifest: dict, live: dict | None, pointer: dict | None
) -> None:
    """Delete what the new build replaced (failures here only leave rows the next build deletes)."""
    name = manifest["milvus"]["collection"]
    try:
        if live is not None and live["milvus"]["collection"] != name:
            wait_unused(live["milvus"]["collection"])  # searches begun before the switch
            client.drop_collection(live["milvus"]["collection"])
        else:
            client.delete(name, filter=f"not ({live_filter(manifest)})")
            _delete_ranges(client, name, manifest["retired"])
        if live is not None and pointer is not None:
            for doc_id, info in live["documents"].items():
                now = manifest["documents"].get(doc_id)
                if info.get("stored") and (now is None or now["build"] != info["build"]):
                    delete_blob(client, meta, text_key(info["build"], doc_id))
            delete_blob(client, meta, pointer["manifest"])
            delete_blob(client, meta, pointer["vocab"])
    except Exception as exc:  # noqa: BLE001 - the new build is live; the next build tidies up
        log.warning("could not delete the replaced build's rows yet (%s)", exc)


def refresh_manifest(
    previous: MilvusPrevious, settings: Settings, stats, skipped, skipped_files
) -> dict:  # noqa: ANN001, E501
    """Rewrite only the manifest's recorded file facts (``{id: {"size"}}``) and skipped files
    (same rows); not at all when they are the ones recorded."""
    manifest = dict(previous.manifest)
    manifest["documents"] = {
        d: {**content_entry(info), **stats.get(d, {})}
        for d, info in previous.manifest["documents"].items()
    }
    manifest["skipped"] = dict(skipped)
    manifest["skipped_files"] = skipped_files
    if manifest == previous.manifest:
        return manifest
    client = connect(settings)
    meta = meta_name(settings)
    old_key = previous.pointer["manifest"]
    tag, rev = old_key.rsplit(":", 1)
    key = f"{tag}:{int(rev) + 1}"
    put_blob(client, meta, key, json.dumps(manifest, ensure_ascii=False))
    client.flush(meta)
    put_row(client, meta, POINTER, json.dumps({**previous.pointer, "manifest": key}))
    client.flush(meta)
    delete_blob(client, meta, old_key)
    return manifest
