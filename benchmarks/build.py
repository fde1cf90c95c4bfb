"""Build throughput on SciFact: a full ``build_index`` against a raw encode, per embed backend.

    .venv/bin/python -m benchmarks.build [--rounds 1] [--batch-size 32] [--docs N]
    .venv/bin/python -m benchmarks.build --backends torch,onnx-int8   # side by side + nDCG@10
    .venv/bin/python -m benchmarks.build --ray [--docs N]   # plain vs Ray with 1 and 2 workers

Both sides run in this process with the same loaded model and batch size, after a warm-up:
the build (corpus reading, chunking with the token checks, embedding, SQLite, FAISS, BM25,
fsync, swap) is timed end to end, and the raw side encodes exactly the texts the build embedded
(each chunk with its title prefix) in one ``model.encode`` call. With ``--rounds N`` the two
alternate N times and the medians are compared. Peak memory is the process's peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import numpy as np

from benchmarks.common import bench_settings, machine_note, scifact_seeds, table


def _rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024, peak
    return float("nan"), peak


def chunk_texts(settings) -> list[str]:
    """What the build embedded: every chunk's text after its title prefix, in index order."""
    from assistant.chunking import embedding_text
    from assistant.store.loaded import load_index

    index = load_index(settings, check_seeds=False)
    rows = index.chunk_rows(range(index.size))
    index.close()
    return [embedding_text(r[4], r[3], settings.embed_titles) for _, r in sorted(rows.items())]


def time_chunking(settings, embedder) -> tuple[float, int]:
    """Seconds to read and chunk the corpus alone (tiktoken + the model-window check)."""
    from assistant.chunking import Chunker, embedding_text
    from assistant.corpus import load_corpus
    from assistant.tokens import get_encoding

    started = time.perf_counter()
    corpus = load_corpus(settings.seeds_dir)
    encoding = get_encoding(settings.encoding)
    n = 0
    for doc in corpus.documents:
        chunker = Chunker(
            encoding,
            settings.chunk_tokens,
            settings.chunk_overlap,
            fits=lambda t, title=doc.title: embedder.fits(
                embedding_text(title, t, settings.embed_titles)
            ),
        )
        n += len(chunker.chunk(doc))
    return time.perf_counter() - started, n


def subset_seeds(n: int):
    """The first ``n`` SciFact documents (by id) as their own seeds folder."""
    full = scifact_seeds()
    root = full.parent / f"subset-{n}" / "seeds"
    if not (root / ".complete").exists():
        root.mkdir(parents=True, exist_ok=True)
        for path in sorted(full.glob("*.txt"))[:n]:
            (root / path.name).write_bytes(path.read_bytes())
        (root / ".complete").write_text("ok")
    return root


def quality(settings, embedder) -> dict[str, float]:
    """SciFact test nDCG@10 of the built index, dense only and hybrid (the settings' fusion)."""
    from assistant.retrieval import Retriever
    from benchmarks.retrieval import evaluate_mode, load_split, prefill_query_cache, with_settings

    queries, qrels = load_split("test")
    retriever = Retriever(settings, embedder=embedder, check_seeds=False)
    rows = retriever.index.chunk_rows(range(retriever.index.size))
    chunk_doc = {cid: row[0].removesuffix(".txt") for cid, row in rows.items()}
    prefill_query_cache(retriever, list(queries.values()))
    out = {}
    for name, fusion in (("dense", "dense"), ("hybrid", settings.fusion)):
        m = evaluate_mode(with_settings(retriever, fusion=fusion), queries, qrels, chunk_doc, 0)
        out[name] = m["nDCG@10"]
    retriever.index.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="alternate the sides N times")
    parser.add_argument(
        "--docs", type=int, default=0, help="only the first N SciFact documents (0: all)"
    )
    parser.add_argument("--batch-size", type=int, default=None, help="default: the setting")
    parser.add_argument(
        "--backends",
        default="torch",
        help="comma-separated embed backends built side by side, e.g. torch,onnx-int8 "
        "(each gets a full build, a raw encode and, on all of SciFact, nDCG@10)",
    )
    parser.add_argument(
        "--quality-only",
        action="store_true",
        help="no timing: nDCG@10 and cosine of each backend's full-SciFact index left by an "
        "earlier run (built first if missing or stale)",
    )
    parser.add_argument(
        "--ray",
        action="store_true",
        help="instead: the plain build against Ray builds with --ray-workers local workers "
        "(benchmarks/build_ray.py)",
    )
    parser.add_argument("--ray-workers", default="1,2", help="with --ray: e.g. 1,2")
    args = parser.parse_args()

    from assistant.build import build_index
    from assistant.embedders import embedder_for

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    seeds = scifact_seeds() if not args.docs else subset_seeds(args.docs)
    overrides = {"batch_size": args.batch_size} if args.batch_size else {}
    base = bench_settings(seeds, **overrides)
    if args.ray:
        from benchmarks.build_ray import compare_ray

        label = f"SciFact{' (first ' + str(args.docs) + ' documents)' if args.docs else ''}"
        compare_ray(
            base, [int(n) for n in args.ray_workers.split(",")], f"{label}; {machine_note()}"
        )
        return
    rss_start, _ = _rss_mb()
    side: dict[str, dict] = {}
    for backend in backends:
        # Its own folder: a full rebuild here never swaps the index other benchmarks are reading.
        settings = base.model_copy(
            update={
                "embed_backend": backend,
                "index_dir": base.index_dir.parent / f"build-bench-{backend}",
            }
        )
        embedder = embedder_for(settings)
        warm = ["a warm-up sentence about proteins and cells"] * (settings.batch_size * 2)
        embedder.embed(warm, batch_size=settings.batch_size)
        side[backend] = {
            "settings": settings,
            "embedder": embedder,
            "builds": [],
            "raws": [],
            "texts": [],
            "report": None,
        }
    rss_model, _ = _rss_mb()
    if args.quality_only:
        for one in side.values():
            build_index(one["settings"], embedder=one["embedder"], progress=False, wait=None)
        compare(side, backends, full_corpus=not args.docs)
        return
    first = side[backends[0]]
    chunk_seconds, n_chunked = time_chunking(first["settings"], first["embedder"])
    peak_build = 0.0

    def run_build(one: dict) -> None:
        nonlocal peak_build
        report = build_index(
            one["settings"], full=True, embedder=one["embedder"], progress=False, wait=None
        )
        one["report"] = report
        if not one["texts"]:
            one["texts"].extend(chunk_texts(one["settings"]))
        assert report.total_chunks == len(one["texts"]) == n_chunked
        one["builds"].append(report.total_chunks / report.seconds)
        peak_build = max(peak_build, _rss_mb()[1])

    def run_raw(one: dict) -> None:
        started = time.perf_counter()
        one["embedder"].embed(one["texts"], batch_size=one["settings"].batch_size)
        one["raws"].append(len(one["texts"]) / (time.perf_counter() - started))

    for round_no in range(args.rounds):
        # Alternate the order, so warm-up and drift favour no side.
        order = backends if round_no % 2 == 0 else backends[::-1]
        for backend in order:
            steps = (run_build, run_raw) if round_no % 2 == 0 else (run_raw, run_build)
            for step in steps:
                step(side[backend])
    _, peak_end = _rss_mb()
    report = first["report"]
    build_rate = statistics.median(first["builds"])
    raw_rate = statistics.median(first["raws"])
    print(
        f"SciFact{' (first ' + str(args.docs) + ' documents)' if args.docs else ''}: "
        f"{report.documents} documents, {report.total_chunks} chunks "
        f"(chunk_tokens={base.chunk_tokens}, overlap={base.chunk_overlap}, "
        f"batch_size={base.batch_size}); {machine_note()}"
    )
    print()
    print(
        table(
            ["measure", "value"],
            [
                [f"full build, {backends[0]} (chunks/s)", round(build_rate, 1)],
                ["raw encode of the same texts (chunks/s)", round(raw_rate, 1)],
                ["build / raw", round(build_rate / raw_rate, 3)],
                ["full build time (s)", round(report.total_chunks / build_rate, 1)],
                ["reading + chunking alone (s)", round(chunk_seconds, 1)],
                [f"RSS after loading the model{'s' * (len(backends) > 1)} (MB)", round(rss_model)],
                ["peak RSS during the builds (MB)", round(peak_build, 0)],
                ["peak RSS incl. the raw encodes (MB)", round(peak_end, 0)],
                ["RSS of the bare interpreter + imports (MB)", round(rss_start, 0)],
            ],
        )
    )
    if len(backends) > 1:
        compare(side, backends, full_corpus=not args.docs)
    if args.rounds > 1:
        print()
        for backend in backends:
            one = side[backend]
            pairs = [(round(b, 1), round(r, 1)) for b, r in zip(one["builds"], one["raws"])]
            print(f"rounds of {backend} (build, raw chunks/s):", pairs)


def compare(side: dict, backends: list[str], full_corpus: bool) -> None:
    """Side by side: each backend's build chunks/s, its ratio to the first, its vectors' cosine
    to the first's, and (on all of SciFact, where the qrels are meaningful) nDCG@10."""
    from assistant.store.loaded import load_index

    ref = side[backends[0]]
    ref_index = load_index(ref["settings"], check_seeds=False)
    ref_vectors = ref_index.vectors(range(ref_index.size))
    ref_index.close()
    rows = []
    for backend in backends:
        one = side[backend]
        index = load_index(one["settings"], check_seeds=False)
        vectors = index.vectors(range(index.size))
        index.close()
        cosine = float(np.mean(np.sum(vectors * ref_vectors, axis=1)))
        timed = bool(one["builds"])
        rate = statistics.median(one["builds"]) if timed else 0.0
        ndcg = quality(one["settings"], one["embedder"]) if full_corpus else {}
        rows.append(
            [
                backend,
                round(rate, 1) if timed else "-",
                round(rate / statistics.median(ref["builds"]), 2) if timed else "-",
                round(statistics.median(one["raws"]), 1) if timed else "-",
                round(cosine, 4),
                round(ndcg["dense"], 4) if ndcg else "-",
                round(ndcg["hybrid"], 4) if ndcg else "-",
            ]
        )
    print()
    print(
        table(
            [
                "backend",
                "build chunks/s",
                f"x {backends[0]}",
                "raw chunks/s",
                f"cosine to {backends[0]}",
                "nDCG@10 dense",
                "nDCG@10 hybrid",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
