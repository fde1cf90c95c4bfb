"""Retrieval quality and latency on SciFact (BEIR layout, ``../shared/data/scifact``).

    .venv/bin/python -m benchmarks.retrieval                    # test split, current settings
    .venv/bin/python -m benchmarks.retrieval --split train --grid        # fusion sweep (tuning)
    .venv/bin/python -m benchmarks.retrieval --split train --bm25-grid   # BM25 k1/b/stopwords
    .venv/bin/python -m benchmarks.retrieval --hnsw [--hnsw-copies 9]    # HNSW vs exact recall@10
    .venv/bin/python -m benchmarks.retrieval --store milvus             # the same through Milvus Lite

Settings come from ``ASSISTANT_*`` variables as usual (e.g. ``ASSISTANT_EMBED_TITLES=false``)
and from the options below; the index is built once per index-shaping settings under
``.cache/bench/scifact/index-<key>/`` and reused (a re-run does not re-embed).

Quality is document-level: a document's score is its best chunk's. nDCG@10, recall@10 and
MRR@10 come from ``Retriever.ranked_chunks`` with the configured ``candidates`` per side;
recall@100 from the same call with at least ``--deep`` candidates per side, so 100 distinct
documents can be reached. Latency: ``retrieve(query, k=5)`` per query (query-vector cache
cleared, so every call embeds) against a raw ``model.encode([query])`` of the same query,
interleaved in the same process after a warm-up.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Sequence

import numpy as np

from benchmarks.common import (
    DATA,
    bench_settings,
    ensure_index,
    machine_note,
    percentiles,
    read_jsonl,
    read_qrels,
    scifact_seeds,
    table,
)

SCIFACT = DATA / "scifact"
METRICS = ["nDCG@10", "R@10", "R@100", "MRR@10"]


# --------------------------------------------------------------------------- metrics


def doc_ranking(chunk_ids: Sequence[int], chunk_doc: dict[int, str], depth: int) -> list[str]:
    """Documents in the order of their best chunk (chunk ids already ranked best first)."""
    seen: dict[str, None] = {}
    for cid in chunk_ids:
        doc = chunk_doc[cid]
        if doc not in seen:
            seen[doc] = None
            if len(seen) >= depth:
                break
    return list(seen)


def ndcg_at(ranked: Sequence[str], relevant: dict[str, int], k: int = 10) -> float:
    dcg = sum((2 ** relevant.get(d, 0) - 1) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: Sequence[str], relevant: dict[str, int], k: int) -> float:
    rel = {d for d, g in relevant.items() if g > 0}
    return len(rel & set(ranked[:k])) / len(rel) if rel else 0.0


def mrr_at(ranked: Sequence[str], relevant: dict[str, int], k: int = 10) -> float:
    for i, d in enumerate(ranked[:k]):
        if relevant.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def score_runs(
    top: dict[str, list[str]], deep: dict[str, list[str]], qrels: dict[str, dict[str, int]]
) -> dict[str, float]:
    """Mean metrics over the queries that have judgements."""
    qids = [q for q in qrels if q in top]
    return {
        "nDCG@10": float(np.mean([ndcg_at(top[q], qrels[q]) for q in qids])),
        "R@10": float(np.mean([recall_at(top[q], qrels[q], 10) for q in qids])),
        "R@100": float(np.mean([recall_at(deep[q], qrels[q], 100) for q in qids])),
        "MRR@10": float(np.mean([mrr_at(top[q], qrels[q]) for q in qids])),
    }


# --------------------------------------------------------------------------- data and index


def load_split(split: str) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    queries = {q["_id"]: q["text"] for q in read_jsonl(SCIFACT / f"queries_{split}.jsonl")}
    qrels = read_qrels(SCIFACT / "qrels" / f"{split}.tsv")
    qrels = {q: r for q, r in qrels.items() if q in queries}
    return {q: queries[q] for q in qrels}, qrels


def open_index(overrides: dict):
    """Settings, the shared embedder and a Retriever over the cached SciFact index."""
    from assistant.embedder import get_embedder
    from assistant.retrieval import Retriever

    settings = bench_settings(scifact_seeds(), **overrides)
    embedder = get_embedder(settings.model)
    report = ensure_index(settings)
    if not report.up_to_date:
        print(f"built {settings.index_dir}: {report.summary()} in {report.seconds:.0f}s")
    retriever = Retriever(settings, embedder=embedder)
    rows = retriever.index.chunk_rows(retriever.index.chunk_ids())
    chunk_doc = {cid: row[0].removesuffix(".txt") for cid, row in rows.items()}  # BEIR ids
    return settings, embedder, retriever, chunk_doc, rows


def with_settings(base, **update):
    """A Retriever on the same loaded index and query cache, with other retrieval settings."""
    from assistant.retrieval import Retriever

    other = Retriever(base.settings.model_copy(update=update), embedder=base.embedder)
    other._index, other._build_name = base.index, base._build_name
    other._query_cache = base._query_cache
    return other


def prefill_query_cache(retriever, texts: Sequence[str]) -> None:
    """Embed all queries in one batch (quality only; the latency run clears the cache)."""
    texts = [t.strip() for t in texts]
    vectors = retriever.embedder.embed(texts, batch_size=retriever.settings.batch_size)
    for text, vector in zip(texts, vectors):  # (vector, wordpieces, spans), as the cache holds
        retriever._query_cache[text] = (vector, vector[None, :], [(0, len(text))])


# --------------------------------------------------------------------------- quality


def evaluate_mode(retriever, queries, qrels, chunk_doc, deep: int) -> dict[str, float]:
    top, deep_run = {}, {}
    for qid, text in queries.items():
        hits = retriever.ranked_chunks(text, retriever.settings.candidates)
        top[qid] = doc_ranking([h.chunk_id for h in hits], chunk_doc, 10)
        if deep > retriever.settings.candidates:
            hits = retriever.ranked_chunks(text, deep)
        deep_run[qid] = doc_ranking([h.chunk_id for h in hits], chunk_doc, 100)
    return score_runs(top, deep_run, qrels)


def quality(retriever, queries, qrels, chunk_doc, deep: int) -> list[list]:
    s = retriever.settings
    rows = []
    modes = [("dense only", "dense"), ("BM25 only", "bm25")]
    label = (
        f"hybrid ({s.fusion}, k={s.rrf_k}, w={s.dense_weight})"
        if s.fusion == "rrf"
        else f"hybrid ({s.fusion}, w={s.dense_weight})"
    )
    if s.fusion not in ("dense", "bm25"):
        modes.append((label, s.fusion))
    for name, fusion in modes:
        m = evaluate_mode(with_settings(retriever, fusion=fusion), queries, qrels, chunk_doc, deep)
        rows.append([name, *[m[k] for k in METRICS]])
    return rows


# --------------------------------------------------------------------------- tuning sweeps


def candidate_lists(retriever, queries, n: int, lexical: Callable | None = None) -> dict:
    index = retriever.index
    out = {}
    for qid, text in queries.items():
        dense = index.dense_search(retriever.embed_query(text.strip()), n)
        lex = lexical(text, n) if lexical else index.lexical_search(text.strip(), n)
        out[qid] = (dense, lex)
    return out


def sweep(lists, qrels, chunk_doc, configs) -> list[tuple[dict, dict]]:
    from assistant.retrieval import fuse

    results = []
    for cfg in configs:
        c = cfg["candidates"]
        top, deep = {}, {}
        for qid, (dense, lex) in lists.items():
            hits = fuse(
                (dense[0][:c], dense[1][:c]),
                (lex[0][:c], lex[1][:c]),
                cfg["fusion"],
                cfg.get("rrf_k", 60),
                cfg.get("dense_weight", 0.5),
            )
            ranked = doc_ranking([h.chunk_id for h in hits], chunk_doc, 100)
            top[qid], deep[qid] = ranked[:10], ranked
        results.append((cfg, score_runs(top, deep, qrels)))
    return results


def fusion_grid(retriever, queries, qrels, chunk_doc) -> None:
    lists = candidate_lists(retriever, queries, 400)
    configs = []
    for c in (50, 100, 200, 400):
        configs.append({"fusion": "dense", "candidates": c})
        configs.append({"fusion": "bm25", "candidates": c})
        for k in (5, 10, 20, 40, 60, 100):
            for w in (0.3, 0.4, 0.5, 0.6, 0.7):
                configs.append({"fusion": "rrf", "candidates": c, "rrf_k": k, "dense_weight": w})
        for w in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
            configs.append({"fusion": "weighted", "candidates": c, "dense_weight": w})
    results = sweep(lists, qrels, chunk_doc, configs)
    results.sort(key=lambda r: -r[1]["nDCG@10"])
    print_sweep("fusion sweep (best first)", results, limit=40)
    best = {}
    for cfg, m in results:
        key = (cfg["fusion"], cfg["candidates"])
        best.setdefault(key, (cfg, m))
    print_sweep(
        "best per method and candidates", sorted(best.values(), key=lambda r: -r[1]["nDCG@10"])
    )


ABLATION = [
    ("BM25 only", {"fusion": "bm25", "candidates": 100}),
    ("dense only", {"fusion": "dense", "candidates": 100}),
    ("+ RRF, k=60, w=0.5, 100 candidates (old default)", {"fusion": "rrf", "candidates": 100}),
    (
        "RRF, k=5 (best RRF k on train)",
        {"fusion": "rrf", "candidates": 100, "rrf_k": 5, "dense_weight": 0.5},
    ),
    ("weighted sum, w=0.5, 100 candidates", {"fusion": "weighted", "candidates": 100}),
    (
        "weighted sum, w=0.4, 100 candidates",
        {"fusion": "weighted", "candidates": 100, "dense_weight": 0.4},
    ),
    (
        "weighted sum, w=0.4, 200 candidates (new default)",
        {"fusion": "weighted", "candidates": 200, "dense_weight": 0.4},
    ),
]


def ablation(retriever, queries, qrels, chunk_doc) -> None:
    """Each tuning step on this split (R@100 here at the step's own candidate count)."""
    lists = candidate_lists(retriever, queries, 400)
    results = sweep(lists, qrels, chunk_doc, [cfg for _, cfg in ABLATION])
    rows = [[name, *[m[k] for k in METRICS]] for (name, _), (_, m) in zip(ABLATION, results)]
    print(table(["step", *METRICS], rows))


def print_sweep(title: str, results, limit: int | None = None) -> None:
    print(f"\n{title}\n")
    rows = [
        [
            ", ".join(f"{k}={v}" for k, v in cfg.items()),
            *[m[k] for k in METRICS],
        ]
        for cfg, m in results[:limit]
    ]
    print(table(["config", *METRICS], rows))


def bm25_grid(retriever, queries, qrels, chunk_doc, rows) -> None:
    """BM25 parameters, stop words and stemming, with an in-memory bm25s index per variant."""
    import bm25s
    import Stemmer

    from assistant.chunking import embedding_text

    s = retriever.settings
    texts = [embedding_text(r[4], r[3], s.embed_titles) for _, r in sorted(rows.items())]
    stemmer = Stemmer.Stemmer("english")
    dense_lists = candidate_lists(retriever, queries, 400, lexical=lambda t, n: None)
    results = []
    for stop in ("en", None):
        for stem in (stemmer,):
            corpus_tokens = bm25s.tokenize(
                texts, stopwords=stop, stemmer=stem, return_ids=False, show_progress=False
            )
            for k1 in (0.9, 1.2, 1.5):
                for b in (0.4, 0.75, 0.9):
                    bm = bm25s.BM25(k1=k1, b=b)
                    bm.index(corpus_tokens, show_progress=False)
                    lists = {}
                    for qid, text in queries.items():
                        q = bm25s.tokenize(
                            [text],
                            stopwords=stop,
                            stemmer=stem,
                            return_ids=False,
                            show_progress=False,
                        )[0]
                        q = [t for t in q if t in bm.vocab_dict]
                        if q:
                            sc = np.asarray(bm.get_scores(q), np.float32)
                            top = np.argsort(-sc, kind="stable")[:400]
                            top = top[sc[top] > 0]
                            lex = (sc[top], top.astype(np.int64))
                        else:
                            lex = (np.zeros(0, np.float32), np.zeros(0, np.int64))
                        lists[qid] = (dense_lists[qid][0], lex)
                    name = {
                        "stopwords": stop or "none",
                        "stem": "snowball" if stem else "none",
                        "k1": k1,
                        "b": b,
                    }
                    for cfg, m in sweep(
                        lists,
                        qrels,
                        chunk_doc,
                        [
                            {"fusion": "bm25", "candidates": s.candidates},
                            {
                                "fusion": s.fusion,
                                "candidates": s.candidates,
                                "rrf_k": s.rrf_k,
                                "dense_weight": s.dense_weight,
                            },
                        ],
                    ):
                        results.append(({**name, "fusion": cfg["fusion"]}, m))
    results.sort(key=lambda r: (r[0]["fusion"], -r[1]["nDCG@10"]))
    print_sweep("BM25 variants (BM25 alone, then hybrid with the current fusion)", results)


# --------------------------------------------------------------------------- latency


def latency(retriever, queries: Sequence[str], k: int = 5, warmup: int = 20) -> list[list]:
    """p50/p95 of ``retrieve()`` and of a raw ``model.encode([query])``, interleaved."""
    from assistant import retrieval as r

    r._retrievers[retriever.settings.model_dump_json()] = retriever
    model = retriever.embedder._model
    times_retrieve, times_encode = [], []
    for i, q in enumerate(list(queries[:warmup]) + list(queries)):
        retriever._query_cache.clear()
        t0 = time.perf_counter()
        model.encode([q], normalize_embeddings=True, convert_to_numpy=True)
        t1 = time.perf_counter()
        r.retrieve(q, k=k, settings=retriever.settings)
        t2 = time.perf_counter()
        if i >= warmup:
            times_encode.append((t1 - t0) * 1000)
            times_retrieve.append((t2 - t1) * 1000)
    e50, e95 = percentiles(times_encode)
    r50, r95 = percentiles(times_retrieve)
    return [
        ["raw model.encode([query])", e50, e95, 1.0, e95 / e50, 1.0],
        [f"retrieve(query, k={k})", r50, r95, r50 / e50, r95 / e50, r95 / e95],
    ]


# --------------------------------------------------------------------------- HNSW


def hnsw_recall(retriever, queries: Sequence[str], copies: int, noise: float) -> None:
    """recall@10 of HNSW against exact search on the SciFact chunk vectors (plus noisy copies)."""
    import faiss

    index = retriever.index
    base = index.faiss.reconstruct_n(0, index.size)
    rng = np.random.default_rng(0)
    parts = [base]
    for _ in range(copies):
        noisy = base + rng.normal(0, noise, base.shape).astype(np.float32)
        parts.append(noisy / np.linalg.norm(noisy, axis=1, keepdims=True))
    vectors = np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)
    qv = retriever.embedder.embed([q.strip() for q in queries], batch_size=64)
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    t0 = time.perf_counter()
    _, truth = exact.search(qv, 10)
    exact_ms = (time.perf_counter() - t0) * 1000 / len(qv)
    cos = float(np.mean(np.sum(parts[-1] * base, axis=1))) if copies else 1.0
    print(
        f"\nHNSW vs exact: {len(vectors)} vectors ({index.size} SciFact chunks + {copies} noisy "
        f"copies, noise sigma {noise}, mean cosine copy/original {cos:.3f}), {len(qv)} queries; "
        f"exact search {exact_ms:.2f} ms/query\n"
    )
    rows = []
    for m in (16, 32):
        for ef_c in (80,):
            hnsw = faiss.IndexHNSWFlat(vectors.shape[1], m, faiss.METRIC_INNER_PRODUCT)
            hnsw.hnsw.efConstruction = ef_c
            t0 = time.perf_counter()
            hnsw.add(vectors)
            build_s = time.perf_counter() - t0
            for ef_s in (16, 32, 64, 128, 256):
                hnsw.hnsw.efSearch = ef_s
                t0 = time.perf_counter()
                _, found = hnsw.search(qv, 10)
                ms = (time.perf_counter() - t0) * 1000 / len(qv)
                recall = np.mean([len(set(found[i]) & set(truth[i])) / 10 for i in range(len(qv))])
                rows.append([m, ef_c, ef_s, float(recall), round(ms, 3), round(build_s, 1)])
    print(table(["M", "efConstruction", "efSearch", "recall@10", "ms/query", "build s"], rows))


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=["test", "train"], default="test")
    parser.add_argument("--fusion", choices=["rrf", "weighted", "dense", "bm25"])
    parser.add_argument("--rrf-k", type=int)
    parser.add_argument("--dense-weight", type=float)
    parser.add_argument("--candidates", type=int)
    parser.add_argument("--chunk-tokens", type=int)
    parser.add_argument("--chunk-overlap", type=int)
    parser.add_argument("--deep", type=int, default=400, help="candidates per side for R@100")
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument("--grid", action="store_true", help="fusion sweep on --split")
    parser.add_argument("--bm25-grid", action="store_true", help="BM25 variants on --split")
    parser.add_argument("--ablation", action="store_true", help="the tuning steps on --split")
    parser.add_argument("--hnsw", action="store_true", help="HNSW recall@10 against exact")
    parser.add_argument("--hnsw-copies", type=int, default=9)
    parser.add_argument("--hnsw-noise", type=float, default=0.02)
    parser.add_argument(
        "--store",
        choices=["faiss", "milvus"],
        help="index store (default ASSISTANT_STORE): milvus builds a Milvus Lite file in the "
        "cached index folder",
    )
    args = parser.parse_args()

    overrides = {
        k: v
        for k, v in {
            "fusion": args.fusion,
            "rrf_k": args.rrf_k,
            "dense_weight": args.dense_weight,
            "candidates": args.candidates,
            "chunk_tokens": args.chunk_tokens,
            "chunk_overlap": args.chunk_overlap,
            "store": args.store,
        }.items()
        if v is not None
    }
    queries, qrels = load_split(args.split)  # first: missing data is said before any work
    settings, _, retriever, chunk_doc, rows = open_index(overrides)
    print(
        f"SciFact {args.split} (store {settings.store}): {len(queries)} queries, "
        f"{len(chunk_doc)} chunks of "
        f"{len(set(chunk_doc.values()))} documents; chunk_tokens={settings.chunk_tokens}, "
        f"overlap={settings.chunk_overlap}, embed_titles={settings.embed_titles}, "
        f"candidates={settings.candidates}; {machine_note()}"
    )
    if args.hnsw:
        hnsw_recall(retriever, list(queries.values()), args.hnsw_copies, args.hnsw_noise)
        return
    prefill_query_cache(retriever, list(queries.values()))
    if args.grid:
        fusion_grid(retriever, queries, qrels, chunk_doc)
        return
    if args.ablation:
        ablation(retriever, queries, qrels, chunk_doc)
        return
    if args.bm25_grid:
        bm25_grid(retriever, queries, qrels, chunk_doc, rows)
        return
    print()
    print(table(["retrieval", *METRICS], quality(retriever, queries, qrels, chunk_doc, args.deep)))
    if not args.no_latency:
        print()
        print(
            table(
                [
                    "single query",
                    "p50 ms",
                    "p95 ms",
                    "p50 / encode p50",
                    "p95 / encode p50",
                    "p95 / encode p95",
                ],
                latency(retriever, list(queries.values())),
            )
        )


if __name__ == "__main__":
    main()
