"""Scale: build, size, load, memory, latency and ANN recall at about 10k, 100k and 1M chunks.

    .venv/bin/python -m benchmarks.scale [--sizes 10k,100k,1m] [--queries 200]
    .venv/bin/python -m benchmarks.scale --store milvus --sizes 100k --queries 50  # side by side

The 10k index is real text: SQuAD dev articles and SciFact abstracts, chunked and embedded by the
normal build (their cached benchmark builds are read back: chunk rows from chunks.sqlite, vectors
with ``reconstruct_n``). 100k and 1M are SYNTHETIC: the 13.7k real chunks repeated with
variations (copy r > 0 drops about 10% of the words and takes in a few words of another chunk)
for the text/BM25 side, and for the dense side the real vector of the chunk plus Gaussian noise
(norm ``--noise``), renormalized. Every index is written by ``assistant.store.writer.write_build``, the
writer the normal build uses; build time excludes embedding. Indexes are cached under
``.cache/bench/scale/``.

Each size is then measured in a fresh subprocess: load time (``Retriever.index``, which checks
every file's checksum), RSS after loading and querying, ``retrieve()`` p50/p95 (query embedding,
dense + BM25 + fusion + chunk rows) against a raw ``model.encode([query])`` of the same queries
in the same process, and recall@10 of the index's dense search against exact search. At 100k,
one ~1,000-word document is added through ``build_index`` (the incremental path) and timed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from benchmarks.common import REPO, machine_note, table
from benchmarks.scale_data import (
    build,
    exact_top10,
    interleaved,
    latencies,
    log,
    opened,
    queries,
    rss_mb,
    size_settings,
)
from benchmarks.scale_extra import incremental, print_incremental, quantization
from benchmarks.scale_milvus import HEADERS, build_milvus, measure_milvus, side_by_side


def measure(size: str, n_queries: int, nprobes: list[int]) -> dict:
    """Run in a fresh process: load, RSS, latency, recall."""
    import faiss

    faiss.omp_set_num_threads(1)
    settings = size_settings(size)
    rss0, _ = rss_mb()
    model, retriever, load_s, rss_model = opened(settings)
    index = retriever.index
    rss_loaded, _ = rss_mb()
    qs = queries(n_queries)
    enc, ret = interleaved(model, retriever, qs)
    rss_after, hwm = rss_mb()
    qv = np.stack([retriever.embed_query(q) for q in qs]).astype(np.float32)
    truth = exact_top10(size, qv)
    faiss.omp_set_num_threads(1)
    kind = index.manifest["index"]["kind"]

    def recall(found):
        return float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)]))

    def dense_ms():
        t = time.perf_counter()
        for v in qv:
            index.faiss.search(v.reshape(1, -1), settings.candidates)
        return (time.perf_counter() - t) / len(qv) * 1000

    sweep = []
    if kind == "ivf":
        ivf = faiss.extract_index_ivf(index.faiss)
        chosen = ivf.nprobe
        for p in nprobes:
            ivf.nprobe = p
            _, found = index.faiss.search(qv, 10)
            sweep.append((p, recall(found), dense_ms()))
        ivf.nprobe = chosen
    _, found = index.faiss.search(qv, 10)
    bm = time.perf_counter()
    for q in qs:
        index.lexical_search(q, settings.candidates)
    bm25_ms = (time.perf_counter() - bm) / len(qs) * 1000
    return {
        "load_s": load_s,
        "rss_start_mb": rss0,
        "rss_model_mb": rss_model,
        "rss_loaded_mb": rss_loaded,
        "rss_after_mb": rss_after,
        "hwm_mb": hwm,
        **latencies(enc, ret),
        "recall10": recall(found),
        "dense_ms": dense_ms(),
        "bm25_ms": bm25_ms,
        "kind": kind,
        "params": index.manifest["index"]["params"],
        "sweep": sweep,
    }


def _subprocess(args: list[str]) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.scale", *args]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{cmd} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10k,100k,1m")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--noise", type=float, default=0.5)
    parser.add_argument("--nprobes", default="4,8,16,32,64")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--measure-milvus", help=argparse.SUPPRESS)
    parser.add_argument(
        "--store",
        choices=["faiss", "milvus"],
        default="faiss",
        help="milvus: also write each size into Milvus and print both stores side by side "
        "(benchmarks/scale_milvus.py)",
    )
    parser.add_argument("--milvus-uri", help="a Milvus server instead of a Lite file per size")
    parser.add_argument("--adds", type=int, default=8, help="documents added at 100k")
    parser.add_argument(
        "--incremental", action="store_true", help="only the add-one-document timing at 100k"
    )
    parser.add_argument(
        "--quantization", action="store_true", help="int8 encoder: speed and SciFact nDCG@10"
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    nprobes = [int(x) for x in args.nprobes.split(",")]
    if args.measure:
        print(json.dumps(measure(args.measure, args.queries, nprobes)))
        return
    if args.measure_milvus:
        print(json.dumps(measure_milvus(args.measure_milvus, args.queries, args.milvus_uri)))
        return
    if args.incremental:
        inc = incremental(adds=args.adds)
        print_incremental(inc)
        print(json.dumps(inc))  # last: the parent process reads this line
        return
    if args.quantization:
        result = quantization()
        print(json.dumps(result))
        f, q = (float(np.median(result["speed"][k])) for k in ("float", "int8"))
        print(
            f"int8 dynamic quantization: {q:.1f} vs {f:.1f} chunks/s ({q / f:.2f}x) on the same "
            f"{len(result['speed']['float'])}x512 SciFact chunks; dense-only SciFact test nDCG@10 "
            f"{result['ndcg_int8']:.4f} vs {result['ndcg_float']:.4f} "
            f"({result['ndcg_int8'] - result['ndcg_float']:+.4f})"
        )
        return

    sizes = args.sizes.split(",")
    builds = {s: build(s, args.noise) for s in sizes}
    results = {}
    for s in sizes:
        log(f"[{s}] measuring in a fresh process")
        results[s] = _subprocess(
            ["--measure", s, "--queries", str(args.queries), "--nprobes", args.nprobes]
        )
        log(f"[{s}] {results[s]}")
    inc = None
    if "100k" in sizes:
        inc = _subprocess(["--incremental", "--adds", str(args.adds)])
        log(f"[incremental] {inc}")
    if args.store == "milvus":
        milvus_side(args, sizes, builds, results, inc)
        return

    print(
        f"Machine: {machine_note()}; {args.queries} queries (SciFact test claims and SQuAD "
        "questions alternating), k=5, one query at a time, FAISS on 1 thread."
    )
    for s in sizes:
        print(f"- {s}: {builds[s]['what']}")
    print()
    rows = []
    for s in sizes:
        b, r = builds[s], results[s]
        params = ", ".join(f"{k}={v}" for k, v in r["params"].items())
        rows.append(
            [
                f"{b['chunks']:,}",
                f"{r['kind']} {params}".strip(),
                round(b["build_s"], 1),
                round(b["disk_mb"]),
                round(r["load_s"], 2),
                round(r["rss_after_mb"]),
                f"{r['retrieve_p50']:.1f} / {r['retrieve_p95']:.1f}",
                f"{r['encode_p50']:.1f}",
                f"{r['retrieve_p50'] / r['encode_p50']:.2f} / {r['retrieve_p95'] / r['encode_p50']:.2f}",
                f"{r['dense_ms']:.2f} / {r['bm25_ms']:.2f}",
                round(r["recall10"], 3),
            ]
        )
    print(
        table(
            [
                "chunks",
                "index",
                "build s (no embedding)",
                "disk MB",
                "load s",
                "RSS MB",
                "retrieve p50 / p95 ms",
                "encode p50 ms",
                "retrieve / encode p50 (p50, p95)",
                "dense / BM25 ms",
                "recall@10 vs exact",
            ],
            rows,
        )
    )
    for s in sizes:
        if results[s]["sweep"]:
            print()
            print(
                f"IVF nprobe sweep at {builds[s]['chunks']:,} chunks "
                f"(nlist={results[s]['params'].get('nlist')}):"
            )
            print(
                table(
                    ["nprobe", "recall@10 vs exact", "dense search ms"],
                    [[p, round(rc, 3), round(ms, 2)] for p, rc, ms in results[s]["sweep"]],
                )
            )
    if inc:
        print()
        print_incremental(inc)
    print()
    print(
        "RSS: process after loading the model and the index and answering the queries "
        "(MB); peak (VmHWM): "
        + ", ".join(f"{s} {results[s]['hwm_mb']:.0f}" for s in sizes)
        + "; model alone: "
        + f"{results[sizes[0]]['rss_model_mb']:.0f}."
    )


def milvus_side(args, sizes, builds, results, inc) -> None:
    """Write and measure each size in Milvus too; print both stores in one table."""
    from assistant.store.milvus.client import close_all

    mbuilds, mresults = {}, {}
    for s in sizes:
        mbuilds[s] = build_milvus(s, args.milvus_uri)
        close_all()  # Milvus Lite serves one process at a time: the measuring one opens it
        log(f"[{s} milvus] measuring in a fresh process")
        extra = ["--milvus-uri", args.milvus_uri] if args.milvus_uri else []
        mresults[s] = _subprocess(["--measure-milvus", s, "--queries", str(args.queries), *extra])
        log(f"[{s} milvus] {mresults[s]}")
    if inc:
        first = inc["adds"][0]
        results["100k"].update(add_s=first["seconds"], add_embed_s=first["embed_s"])
    where = args.milvus_uri or "Milvus Lite (milvus-lite, in the process, one file per size)"
    print(
        f"Machine: {machine_note()}; {args.queries} queries (SciFact test claims and SQuAD "
        f"questions alternating), k=5, one query at a time; Milvus: {where}."
    )
    for s in sizes:
        print(f"- {s}: {builds[s]['what']}")
    print()
    print(table(HEADERS, side_by_side(sizes, builds, results, mbuilds, mresults)))
    print(json.dumps({"embedded": results, "milvus": mresults, "milvus_builds": mbuilds}))


if __name__ == "__main__":
    main()
