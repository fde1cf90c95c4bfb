"""Fit the reader's two quote ratios (``ADJACENT_RATIO``, ``SECOND_RATIO`` in
``assistant/answer/reader.py``) on the tuning questions.

The scored shortlist of every question of ``benchmarks.answers``' tuning split (1,000 SQuAD v1.1
dev questions outside the reported sample) is computed once by the reader itself
(``reader.search`` and ``reader.evidence``), then ``select.quote_groups`` is applied for every
pair of ratios on a grid. The pair kept is the one with the highest answer hit (a gold string in
a quote) among those quoting at most ``--budget`` sentences per answer on average: each extra
sentence makes the answer longer to read, so the budget is what a reader pays for the hit.

Run: ``.venv/bin/python -m benchmarks.fit_quotes`` (prints the grid and the pair; a few minutes).
"""

from __future__ import annotations

import argparse
import pickle
import sys
from types import SimpleNamespace

from benchmarks.answers import samples
from benchmarks.common import (
    CACHE,
    DATA,
    bench_settings,
    ensure_index,
    normalize,
    read_jsonl,
    squad_seeds,
)

GRID = [0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 1.01]  # 1.01: never


def shortlists(n: int, threads: int) -> list[dict]:
    """Per tuning question: the shortlist as plain records and its passages' gold flags."""
    path = CACHE / "quotes" / f"tune-{n}.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    import torch

    from assistant.answer import reader
    from assistant.answer.question import analyze
    from assistant.embedder import get_embedder
    from assistant.retrieval import Retriever

    queries = read_jsonl(DATA / "squad" / "queries.jsonl")
    chosen = [queries[i] for i in samples(queries)["tune"]][:n]
    settings = bench_settings(squad_seeds())
    get_embedder(settings.model)
    torch.set_num_threads(threads)
    ensure_index(settings, progress=False)
    retriever = Retriever(settings)
    rows = []
    for k, q in enumerate(chosen, start=1):
        golds = [normalize(g) for g in q["answers"]]
        question = analyze(q["text"], retriever.index)  # as ask() does, without a history
        passages = reader.search(
            retriever, q["text"], q["text"], settings.answer_passages, question.spelled
        )
        _, ranked, _ = reader.evidence(q["text"], passages, retriever, settings, question)
        rows.append(
            {
                "ranked": [
                    {
                        "passage_index": c.passage_index,
                        "position": c.position,
                        "score": c.score,
                        "gold": any(g in normalize(c.text) for g in golds),
                    }
                    for c in ranked
                ],
            }
        )
        if k % 200 == 0:
            print(f"  {k}/{len(chosen)}", file=sys.stderr)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(rows))
    return rows


def evaluate(rows: list[dict], max_quotes: int, adjacent: float, second: float) -> dict:
    from assistant.answer.select import quote_groups

    hit = sentences = quotes = 0
    for row in rows:
        ranked = [SimpleNamespace(**c) for c in row["ranked"]]
        groups = quote_groups(ranked, max_quotes, adjacent, second)
        hit += any(c.gold for g in groups for c in g)
        sentences += sum(len(g) for g in groups)
        quotes += len(groups)
    n = len(rows) or 1
    return {"answer_hit": hit / n, "sentences": sentences / n, "quotes": quotes / n}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="tuning questions")
    parser.add_argument("--budget", type=float, default=1.5, help="quoted sentences per answer")
    parser.add_argument("--max-quotes", type=int, default=2, help="ASSISTANT_ANSWER_SENTENCES")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    rows = shortlists(args.n, args.threads)
    print(f"{len(rows)} tuning questions; answer hit / sentences per answer")
    print("adjacent \\ second " + " ".join(f"{s:>12}" for s in GRID))
    best = None
    for a in GRID:
        cells = []
        for s in GRID:
            r = evaluate(rows, args.max_quotes, a, s)
            cells.append(f"{r['answer_hit']:.3f}/{r['sentences']:.2f}")
            if r["sentences"] <= args.budget and (best is None or r["answer_hit"] > best[0]):
                best = (r["answer_hit"], r["sentences"], a, s)
        print(f"{a:>17} " + " ".join(f"{c:>12}" for c in cells))
    if best:
        hit, sents, a, s = best
        print(
            f"kept: ADJACENT_RATIO = {a}, SECOND_RATIO = {s} "
            f"(answer hit {hit:.3f}, {sents:.2f} sentences per answer)"
        )


if __name__ == "__main__":
    main()
