"""The typo, follow-up and standalone sets of ``benchmarks.answers`` on their own (minutes, not
the hour of the full run), for changes to the conversation and spelling parts of the reader.

The same sets and the same hit rule as ``benchmarks/answer_extra.py``: the first ``--n``
reported SQuAD questions clean and with ``answer_sets.with_typos``; ``answer_sets.follow_ups``
pairs (the second question's shared name replaced by "it"/"its", asked with the first question
and its answer as history); and standalone questions asked after a question about another
article (their answer must not change).

Run: ``.venv/bin/python -m benchmarks.answer_quick [--n 300] [--sets typos,followups,standalone]``
"""

from __future__ import annotations

import argparse

from benchmarks.answer_extra import _hit, standalone_same
from benchmarks.answer_sets import follow_ups, with_typos
from benchmarks.answers import DATA, samples
from benchmarks.common import bench_settings, ensure_index, read_jsonl, squad_seeds, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="questions (or pairs) per set")
    parser.add_argument("--sets", default="typos,followups,standalone")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    sets = {s.strip() for s in args.sets.split(",")}

    import torch

    from assistant.answer import ask
    from assistant.embedder import get_embedder
    from assistant.retrieval import Retriever

    queries = read_jsonl(DATA / "squad" / "queries.jsonl")
    chosen = [queries[i] for i in samples(queries)["report"]]
    settings = bench_settings(squad_seeds())
    get_embedder(settings.model)
    torch.set_num_threads(args.threads)
    ensure_index(settings, progress=False)
    r = Retriever(settings)

    def hit(question: str, golds: list[str], history=None) -> bool:
        return _hit(ask(question, history=history, settings=settings, retriever=r), golds)

    rows = []
    if "typos" in sets:
        qs = chosen[: args.n]
        clean = sum(hit(q["text"], q["answers"]) for q in qs) / len(qs)
        typo = sum(hit(with_typos(q["text"], seed=k), q["answers"]) for k, q in enumerate(qs))
        rows += [["clean questions: answer hit", clean], ["with typos: answer hit", typo / len(qs)]]
    if "followups" in sets:
        pairs = follow_ups(queries, args.n)
        got = 0
        for first, second in pairs:
            a1 = ask(first["text"], settings=settings, retriever=r)
            got += hit(second["text"], second["answers"], [(first["text"], a1.text)])
        rows.append([f"follow-ups ({len(pairs)} pairs): answer hit", got / len(pairs)])
    if "standalone" in sets:
        same = standalone_same(chosen[: args.n], chosen, settings, r)
        rows.append(["standalone after an unrelated turn: same answer", same])
    print(table(["set", "value"], rows))


if __name__ == "__main__":
    main()
