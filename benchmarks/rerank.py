"""Reranked retrieval: the reader model orders the passages by their best sentence.

    python -m benchmarks.rerank [--n 500] [--scifact]

SQuAD v1.1 dev (the 48 articles indexed; questions from the report sample of
``benchmarks/answers.py``, so only the 29 articles the reader never fitted on): passage hit@1
and hit@3 (a gold answer string inside one of the first passages) with and without
``rerank``. With ``--scifact``: nDCG@10 on the SciFact test claims (BEIR's metric) both ways.
Latency: ``retrieve()`` p50 both ways, against a raw query encode p50, in one process.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

from benchmarks.common import (
    DATA,
    bench_settings,
    ensure_index,
    normalize,
    percentiles,
    read_jsonl,
    read_qrels,
    scifact_seeds,
    squad_seeds,
    table,
)


def _timed(retriever, query: str, k: int, rerank: bool):
    t0 = time.perf_counter()
    passages = retriever.search(query, k=k, rerank=rerank)
    return passages, (time.perf_counter() - t0) * 1000


def squad(n: int) -> list[list]:
    from assistant.retrieval import Retriever
    from benchmarks.answers import samples

    settings = bench_settings(squad_seeds())
    ensure_index(settings, progress=False)
    retriever = Retriever(settings)
    queries = read_jsonl(DATA / "squad" / "queries.jsonl")
    chosen = [queries[i] for i in samples(queries)["report"][:n]]
    rows = {False: [], True: []}
    times = {False: [], True: []}
    for q in chosen:
        golds = [normalize(a) for a in q["answers"]]
        for rerank in (False, True):
            passages, ms = _timed(retriever, q["text"], 3, rerank)
            hit = [any(g in normalize(p.text) for g in golds) for p in passages]
            rows[rerank].append((bool(hit[:1] and hit[0]), any(hit)))
            times[rerank].append(ms)
    out = []
    for rerank in (False, True):
        r = rows[rerank]
        out.append(
            [
                "reranked" if rerank else "fused (default)",
                sum(a for a, _ in r) / len(r),
                sum(b for _, b in r) / len(r),
                round(percentiles(times[rerank])[0], 1),
            ]
        )
    return out


def scifact() -> list[list]:
    from assistant.retrieval import Retriever

    settings = bench_settings(scifact_seeds())
    ensure_index(settings, progress=True)
    retriever = Retriever(settings)
    qrels = read_qrels(DATA / "scifact" / "qrels" / "test.tsv")
    queries = [q for q in read_jsonl(DATA / "scifact" / "queries_test.jsonl") if q["_id"] in qrels]
    out = []
    for rerank in (False, True):
        scores = []
        for q in queries:
            docs = []
            for p in retriever.search(q["text"], k=10, rerank=rerank):
                doc = p.source.rsplit(".", 1)[0]
                if doc not in docs:
                    docs.append(doc)
            rel = qrels[q["_id"]]
            dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(docs[:10]))
            ideal = sorted(rel.values(), reverse=True)[:10]
            idcg = sum(v / math.log2(i + 2) for i, v in enumerate(ideal))
            scores.append(dcg / idcg if idcg else 0.0)
        out.append(["reranked" if rerank else "fused (default)", sum(scores) / len(scores)])
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=500, help="SQuAD questions")
    parser.add_argument("--scifact", action="store_true", help="also SciFact nDCG@10 (slow)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    import torch

    rows = squad(args.n)
    torch.set_num_threads(args.threads)
    from assistant.config import Settings
    from benchmarks.answers import encode_p50

    enc = encode_p50(Settings(), ["How many troops took part in the parade?"] * 50)
    print(f"\n## Reranked retrieval: SQuAD v1.1 dev ({args.n} report questions, k=3)\n")
    print(
        table(
            ["retrieval", "hit@1", "hit@3", "retrieve() p50 ms"],
            [r + [] for r in rows],
        )
    )
    print(f"\nraw query encode p50: {enc:.1f} ms (same process)", file=sys.stdout)
    if args.scifact:
        print("\n## SciFact test (300 claims), nDCG@10\n")
        print(table(["retrieval", "nDCG@10"], scifact()))


if __name__ == "__main__":
    main()
