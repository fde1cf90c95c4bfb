"""``benchmarks/scale.py --store milvus``: the same synthetic indexes in Milvus (Lite by default,
or ``--milvus-uri http://host:19530``), measured like the embedded store, side by side.

The Milvus index of a size is written from the embedded build of that size (its chunk rows and
vectors read back, so both stores hold the same synthetic chunks and vectors) through the Milvus
backend's writer, the one the normal build uses. Measured in a fresh process: connect + open
time (``Retriever.index``), RSS, ``retrieve()`` p50/p95 against a raw ``model.encode`` of the
same queries in the same process, dense recall@10 against exact search over the same vectors,
the time of one dense and one BM25 search; then one ~1,000-word document added through
``build_index`` (the incremental path) and removed again, each timed.
"""

from __future__ import annotations

import json
import os
import shutil
import time

import numpy as np

from benchmarks.common import DATA, read_jsonl
from benchmarks.scale_data import (
    SCALE,
    exact_top10,
    interleaved,
    latencies,
    log,
    opened,
    queries,
    rss_mb,
    size_settings,
)


def milvus_settings(size: str, uri: str | None = None):

    lite = SCALE / f"{size}-milvus" / "milvus.db"
    return size_settings(size, store="milvus", milvus_uri=uri or str(lite))


def build_milvus(size: str, uri: str | None = None) -> dict:
    """Write the Milvus index of ``size`` from its embedded build (cached by build id)."""
    from assistant.store import FaissSqliteBackend
    from assistant.store.milvus import MilvusBackend
    from assistant.store.planner import BuildInput, DocumentRows

    settings = milvus_settings(size, uri)
    info_path = SCALE / f"{size}-milvus" / "build.json"
    embedded = FaissSqliteBackend().open(size_settings(size))
    source_build = embedded.name
    if info_path.exists() and uri is None:
        info = json.loads(info_path.read_text())
        if info.get("from") == source_build and MilvusBackend().current(settings):
            embedded.close()
            return info
    manifest = embedded.manifest
    docs = sorted(manifest["documents"].items(), key=lambda kv: kv[1]["first_chunk"])
    rows = {}
    for seg in embedded.segments:
        for r in seg.db.execute('SELECT id, doc_id, start, "end", n_tokens, text FROM chunks'):
            rows[seg.first + r[0]] = r[2:]
    vectors = embedded.vectors(range(embedded.size))
    out = [
        DocumentRows(
            doc_id,
            d["title"],
            d["sha256"],
            {"size": d.get("size"), "mtime_ns": d.get("mtime_ns")},
            [rows[i] for i in range(d["first_chunk"], d["first_chunk"] + d["chunks"])],
        )
        for doc_id, d in docs
    ]
    embedded.close()
    if uri is None:
        shutil.rmtree(SCALE / f"{size}-milvus", ignore_errors=True)
    started = time.perf_counter()
    _, written = MilvusBackend().write(
        settings, BuildInput(vectors.shape[1], 256, out, vectors, source=manifest.get("source"))
    )
    seconds = time.perf_counter() - started
    lite = SCALE / f"{size}-milvus"
    disk = sum(p.stat().st_size for p in lite.rglob("*") if p.is_file()) if uri is None else None
    info = {
        "from": source_build,
        "chunks": written["counts"]["chunks"],
        "build_s": seconds,
        "disk_mb": disk / 1e6 if disk is not None else None,
    }
    if uri is None:
        info_path.write_text(json.dumps(info))
    log(f"[{size} milvus] written in {seconds:.0f}s: {info}")
    return info


def measure_milvus(size: str, n_queries: int, uri: str | None = None) -> dict:
    """Run in a fresh process: connect + open, RSS, latency, recall, add one document."""

    settings = milvus_settings(size, uri)
    model, retriever, load_s, rss_model = opened(settings)
    index = retriever.index
    qs = queries(n_queries)
    enc, ret = interleaved(model, retriever, qs)
    rss_after, hwm = rss_mb()
    qv = np.stack([retriever.embed_query(q) for q in qs]).astype(np.float32)
    truth = exact_top10(size, qv)
    found, dense_t, bm25_t = [], [], []
    for q, v in zip(qs, qv):
        t = time.perf_counter()
        found.append(index.dense_search(v, 10)[1])
        dense_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        index.lexical_search(q, settings.candidates)
        bm25_t.append(time.perf_counter() - t)
    recall = float(np.mean([len(set(f.tolist()) & set(t)) / 10 for f, t in zip(found, truth)]))
    out = {
        "load_s": load_s,
        "rss_model_mb": rss_model,
        "rss_after_mb": rss_after,
        "hwm_mb": hwm,
        **latencies(enc, ret),
        "recall10": recall,
        "dense_ms": float(np.mean(dense_t) * 1000),
        "bm25_ms": float(np.mean(bm25_t) * 1000),
        "kind": "milvus FLAT/IP + BM25 function",
        "params": {},
        "sweep": [],
    }
    if (settings.seeds_dir).is_dir():
        out.update(add_one(settings, retriever))
    return out


def add_one(settings, retriever, words: int = 1000) -> dict:
    """Add one ~``words``-word document through ``build_index`` on a hard-linked copy of the
    seeds (the Milvus collection itself is extended), then remove it; both builds timed."""
    from assistant.build import build_index

    work = SCALE / "100k-milvus-seeds"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(settings.seeds_dir, work, copy_function=os.link)
    settings = settings.model_copy(update={"seeds_dir": work})
    paragraphs = [r["text"] for r in read_jsonl(DATA / "squad" / "corpus.jsonl")[500:]]
    body, n = [], 0
    while n < words:
        body.append(paragraphs[len(body) % len(paragraphs)])
        n += len(body[-1].split())
    path = work / f"added-{int(time.time())}.txt"
    path.write_text("Added document\n\n" + "\n\n".join(body) + "\n", "utf-8")
    embedder = retriever.embedder
    spent = {"embed": 0.0}

    class Timed:
        name, dim, max_tokens = embedder.name, embedder.dim, embedder.max_tokens
        fits = staticmethod(embedder.fits)

        def embed(self, texts, batch_size=32, progress=False):
            t = time.perf_counter()
            out = embedder.embed(texts, batch_size=batch_size)
            spent["embed"] += time.perf_counter() - t
            return out

    added = build_index(settings, embedder=Timed(), progress=False, wait=None)
    search = time.perf_counter()  # the first search reopens the index on the new build
    retriever.search("Added document " + body[0][:80], k=1)
    reload_s = time.perf_counter() - search
    found = path.name in retriever.index.manifest["documents"]
    path.unlink()
    removed = build_index(settings, embedder=Timed(), progress=False, wait=None)
    shutil.rmtree(work, ignore_errors=True)
    return {
        "add_s": added.seconds,
        "add_embed_s": spent["embed"],
        "add_chunks": added.embedded_chunks,
        "add_in_manifest": found,
        "add_first_search_s": reload_s,
        "remove_s": removed.seconds,
    }


def side_by_side(sizes, builds, results, mbuilds, mresults) -> list[list]:
    """One row per store and size, for the table in BENCHMARKS.md."""
    rows = []
    for s in sizes:
        for store, b, r in (
            ("embedded", builds[s], results[s]),
            ("milvus lite", mbuilds[s], mresults[s]),
        ):
            kind = r["kind"] if store == "milvus lite" else f"faiss {r['kind']}"
            add = r.get("add_s")
            rows.append(
                [
                    store,
                    f"{b['chunks']:,}",
                    kind,
                    round(b["build_s"], 1),
                    round(r["load_s"], 2),
                    round(r["rss_after_mb"]),
                    f"{r['retrieve_p50']:.1f} / {r['retrieve_p95']:.1f}",
                    f"{r['encode_p50']:.1f}",
                    f"{r['retrieve_p50'] / r['encode_p50']:.1f} / "
                    f"{r['retrieve_p95'] / r['encode_p50']:.1f}",
                    f"{r['dense_ms']:.1f} / {r['bm25_ms']:.1f}",
                    round(r["recall10"], 3),
                    "-" if add is None else f"{add:.1f} ({r['add_embed_s']:.1f} embedding)",
                ]
            )
    return rows


HEADERS = [
    "store",
    "chunks",
    "index",
    "write s (no embedding)",
    "load / connect s",
    "RSS MB",
    "retrieve p50 / p95 ms",
    "encode p50 ms",
    "retrieve / encode p50 (p50, p95)",
    "dense / BM25 ms",
    "recall@10 vs exact",
    "add 1 document s",
]
