"""Build throughput on SciFact: a full ``build_index`` against a raw ``model.encode``.

    .venv/bin/python -m benchmarks.build [--rounds 1] [--batch-size 32]

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="alternate build/raw N times")
    parser.add_argument(
        "--docs", type=int, default=0, help="only the first N SciFact documents (0: all)"
    )
    parser.add_argument("--batch-size", type=int, default=None, help="default: the setting")
    args = parser.parse_args()

    from assistant.build import build_index
    from assistant.embedder import get_embedder

    seeds = scifact_seeds() if not args.docs else subset_seeds(args.docs)
    overrides = {"batch_size": args.batch_size} if args.batch_size else {}
    # Its own folder: a full rebuild here never swaps the index other benchmarks are reading.
    settings = bench_settings(seeds, **overrides)
    settings = settings.model_copy(update={"index_dir": settings.index_dir.parent / "build-bench"})
    rss_start, _ = _rss_mb()
    embedder = get_embedder(settings.model)
    model = embedder._model
    warm = ["a warm-up sentence about proteins and cells"] * (settings.batch_size * 2)
    model.encode(warm, batch_size=settings.batch_size, normalize_embeddings=True)
    rss_model, _ = _rss_mb()

    chunk_seconds, n_chunked = time_chunking(settings, embedder)
    builds: list[float] = []
    raws: list[float] = []
    peak_build = 0.0
    texts: list[str] = []  # read back from the first build (round 0 builds first)

    def run_build():
        nonlocal report, peak_build
        report = build_index(settings, full=True, embedder=embedder, progress=False, wait=None)
        if not texts:
            texts.extend(chunk_texts(settings))
        assert report.total_chunks == len(texts) == n_chunked
        builds.append(report.total_chunks / report.seconds)
        peak_build = max(peak_build, _rss_mb()[1])

    def run_raw():
        started = time.perf_counter()
        model.encode(
            texts,
            batch_size=settings.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        raws.append(len(texts) / (time.perf_counter() - started))

    report = None
    for round_no in range(args.rounds):
        # Alternate which goes first, so warm-up and drift favour neither.
        for run in (run_build, run_raw) if round_no % 2 == 0 else (run_raw, run_build):
            run()
    build_rate, raw_rate = statistics.median(builds), statistics.median(raws)
    _, peak_end = _rss_mb()

    print(
        f"SciFact{' (first ' + str(args.docs) + ' documents)' if args.docs else ''}: "
        f"{report.documents} documents, {report.total_chunks} chunks "
        f"(chunk_tokens={settings.chunk_tokens}, overlap={settings.chunk_overlap}, "
        f"batch_size={settings.batch_size}); {machine_note()}"
    )
    print()
    print(
        table(
            ["measure", "value"],
            [
                ["full build (chunks/s)", round(build_rate, 1)],
                ["raw model.encode of the same texts (chunks/s)", round(raw_rate, 1)],
                ["build / raw", round(build_rate / raw_rate, 3)],
                ["full build time (s)", round(report.total_chunks / build_rate, 1)],
                ["reading + chunking alone (s)", round(chunk_seconds, 1)],
                ["RSS after loading the model (MB)", round(rss_model, 0)],
                ["peak RSS during the build (MB)", round(peak_build, 0)],
                ["peak RSS incl. the raw encode (MB)", round(peak_end, 0)],
                ["RSS of the bare interpreter + imports (MB)", round(rss_start, 0)],
            ],
        )
    )
    if args.rounds > 1:
        print()
        print(
            "rounds (build, raw chunks/s):",
            [(round(b, 1), round(r, 1)) for b, r in zip(builds, raws)],
        )


if __name__ == "__main__":
    main()
