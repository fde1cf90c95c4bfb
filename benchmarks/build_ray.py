"""``benchmarks.build --ray``: the plain build against Ray builds with 1 and 2 local workers.

    .venv/bin/python -m benchmarks.build --ray [--docs N] [--ray-workers 1,2]

Each side is a full build of the same seeds into its own folder, in this process (the Ray
builds start their own local instance of as many CPUs as this machine has cores, stopped after
each build). The cores are shared out: the plain build runs torch with every core, 1 Ray
worker with every core, 2 workers with half each. "build" is ``BuildReport.seconds`` (diff,
reading, chunking, embedding, write; the plain build's model is loaded and warmed before it,
the Ray workers load theirs while the driver reads the seeds); "wall" adds the model load
(plain) or the Ray start and the workers' model loads (Ray). Each Ray index is compared with
the plain one: chunk rows (ids, documents, offsets, texts) and the largest vector difference.
"""

from __future__ import annotations

import os
import time

import numpy as np

from benchmarks.common import table


def _index(settings):
    from assistant.store.loaded import load_index

    index = load_index(settings, check_seeds=False)
    try:
        rows = index.chunk_rows(range(index.size))
        return [rows[i] for i in range(index.size)], index.vectors(range(index.size))
    finally:
        index.close()


def compare_ray(base, workers: list[int], label: str) -> None:
    from assistant.build import build_index
    from assistant.distributed import build_with_ray
    from assistant.embedders import embedder_for

    cores = os.cpu_count() or 1
    plain = base.model_copy(update={"index_dir": base.index_dir.parent / "build-bench-plain"})
    started = time.perf_counter()
    embedder = embedder_for(plain)
    embedder.embed(["a warm-up sentence about proteins and cells"] * 64, batch_size=32)
    loaded = time.perf_counter() - started
    report = build_index(plain, full=True, embedder=embedder, progress=False, wait=None)
    rows, vectors = _index(plain)
    out = [
        [
            f"plain build, torch {cores} threads",
            round(report.total_chunks / report.seconds, 1),
            1.0,
            round(report.seconds, 1),
            round(report.seconds + loaded, 1),
            "-",
            "-",
            "-",
        ]
    ]
    plain_rate = report.total_chunks / report.seconds
    for n in workers:
        threads = max(1, cores // n)
        settings = base.model_copy(
            update={"index_dir": base.index_dir.parent / f"build-bench-ray-{n}"}
        )
        started = time.perf_counter()
        got = build_with_ray(
            settings, workers=n, threads=threads, full=True, progress=False, wait=None
        )
        wall = time.perf_counter() - started
        ray_rows, ray_vectors = _index(settings)
        same = ray_rows == rows
        diff = float(np.max(np.abs(ray_vectors - vectors))) if same else float("nan")
        rate = got.total_chunks / got.seconds
        out.append(
            [
                f"Ray, {n} local worker{'s' * (n > 1)} x {threads} thread{'s' * (threads > 1)}",
                round(rate, 1),
                round(rate / plain_rate, 2),
                round(got.seconds, 1),
                round(wall, 1),
                "yes" if same else "NO",
                f"{diff:.1e}",
                " / ".join(f"{w['documents']} docs, {w['chunks']} chunks" for w in got.workers),
            ]
        )
    print(
        f"{label}: {report.documents} documents, {report.total_chunks} chunks "
        f"(batch_size={base.batch_size}); full builds, one round each"
    )
    print()
    print(
        table(
            [
                "build",
                "chunks/s",
                "x plain",
                "build (s)",
                "wall (s)",
                "same chunk ids and texts",
                "max |vector diff|",
                "per worker: embedded",
            ],
            out,
        )
    )
