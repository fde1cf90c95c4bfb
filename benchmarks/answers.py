"""Answers on SQuAD v1.1 dev: answer hit, excerpt hit, bold phrase, citation checks, latency,
abstention.

The 48 dev articles are the documents (``squad_seeds()``: one file per article, chunked by the
normal pipeline). Questions come only from the 29 articles that are not in SQuAD 2.0 dev part 2
(part 2 fitted and calibrated the reader model), as a fixed random sample:

- ``--split report`` (default): ``random.Random(4).sample`` of 2,000 of those questions
  (by their position in ``queries.jsonl``). These are the published figures.
- ``--split tune``: 1,000 other questions of the same articles (``random.Random(40)``), used to
  tune the quote-grouping ratios (``fit_quotes.py``), so the reported sample is unseen.

Per question, ``ask()`` runs once with abstention disabled; its ``confidence`` then says what
every threshold would do (``ask`` abstains exactly when ``confidence < threshold``), so the curve
and the figures at the configured ``abstain_threshold`` come from the same run. The reader
model was trained by ``benchmarks/train_reader.py`` on SQuAD v1.1 train and part 2 only.

- answer hit: a gold answer string (lower-cased, spaces collapsed) is inside a quoted sentence;
- excerpt hit: a gold answer string is inside a cited excerpt (the passage shown around a quote);
  an abstention counts as a miss for both;
- bold phrase: exact match and F1 (SQuAD's normalization) of the phrase shown in bold in the
  first quote against the gold answers, over all questions (no bold phrase scores 0);
- citation verification failures: citations dropped by ``ask`` plus any returned citation whose
  quote or passage differs from the file on disk (re-read here independently);
- latency: ``ask()``, ``retrieve()`` (``Retriever.search`` with the same k) and a raw
  ``model.encode([question])`` timed in the same process, ``ask`` and ``retrieve`` on separate
  retrievers (so neither reuses the other's cached query vector), after a warm-up on questions
  outside both samples;
- leave-one-article-out (LOO) abstention: for held-out articles (10 for ``report``, chosen by
  ``random.Random(4)``; 6 others for ``tune``), an index of the other 47 (made from a copy of the
  full index by an incremental build: only removal, nothing re-embedded) answers the held-out
  article's questions (up to ``--loo-max`` each, seeded); they should abstain.

Then, unless ``--no-extra``: SQuAD 2.0 (part 1's 16 articles, indexed on their own), typo'd questions (``answer_sets.with_typos``), follow-ups and
standalone questions after an unrelated turn, and summaries of every article
(``benchmarks/answer_extra.py``).

Run: ``.venv/bin/python -m benchmarks.answers`` (add ``--split tune`` for the tuning sample).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import shutil
import string
import sys
import time
from collections import Counter
from pathlib import Path

from benchmarks.common import (
    CACHE,
    DATA,
    add_scorer_option,
    bench_settings,
    ensure_index,
    machine_note,
    normalize,
    percentiles,
    read_jsonl,
    squad_seeds,
    table,
)

REPORT_SEED, REPORT_N = 4, 2000
TUNE_SEED, TUNE_N = 40, 1000
LOO_REPORT, LOO_TUNE = 10, 6
OFF_TOPIC = ["What is the capital of Australia?", "How do I bake sourdough bread?"]


def article_of(query: dict) -> str:
    return query["gold_doc"].rsplit("_", 1)[0]


def part2_articles() -> set[str]:
    """The SQuAD 2.0 dev part 2 articles: used to fit the reader, never reported."""
    with open(DATA / "squad2" / "dev-v2.0-part2.json", encoding="utf-8") as handle:
        return {a["title"] for a in json.load(handle)["data"]}


def samples(queries: list[dict]) -> dict[str, list[int]]:
    fitted = part2_articles()
    ids = [i for i, q in enumerate(queries) if article_of(q) not in fitted]
    report = random.Random(REPORT_SEED).sample(ids, REPORT_N)
    taken = set(report)
    tune = random.Random(TUNE_SEED).sample([i for i in ids if i not in taken], TUNE_N)
    return {"report": report, "tune": tune}


def loo_articles(queries: list[dict]) -> dict[str, list[str]]:
    fitted = part2_articles()
    articles = sorted({article_of(q) for q in queries} - fitted)
    report = random.Random(REPORT_SEED).sample(articles, LOO_REPORT)
    rest = [a for a in articles if a not in report]
    return {"report": report, "tune": random.Random(TUNE_SEED).sample(rest, LOO_TUNE)}


def hits(answer, golds: list[str]) -> tuple[bool, bool]:
    quotes = [normalize(c.quote) for c in answer.citations]
    excerpts = [normalize(c.passage) for c in answer.citations]
    return (
        any(g in q for g in golds for q in quotes),
        any(g in e for g in golds for e in excerpts),
    )


def _squad_norm(text: str) -> list[str]:
    text = "".join(ch for ch in text.lower() if ch not in string.punctuation)
    return re.sub(r"\b(a|an|the)\b", " ", text).split()


def bold_scores(answer, golds: list[str]) -> tuple[float, float]:
    """Exact match and F1 of the first quote's bold phrase against the best gold answer."""
    c = next((c for c in answer.citations if c.answer_start is not None), None)
    if answer.abstained or c is None:
        return 0.0, 0.0
    phrase = _squad_norm(c.quote[c.answer_start - c.start : c.answer_end - c.start])
    em = f1 = 0.0
    for gold in golds:
        g = _squad_norm(gold)
        em = max(em, float(phrase == g))
        common = sum((Counter(phrase) & Counter(g)).values())
        if common:
            p, r = common / len(phrase), common / len(g)
            f1 = max(f1, 2 * p * r / (p + r))
    return em, f1


def check_on_disk(answer, seeds: Path) -> int:
    """Citations whose quote or passage is not the file's text at their offsets."""
    bad = 0
    for c in answer.citations:
        text = (seeds / c.source).read_bytes().decode("utf-8")
        if text[c.start : c.end] != c.quote or text[c.passage_start : c.passage_end] != c.passage:
            bad += 1
    return bad


def run(
    questions: list[dict], settings, ask_retriever, search_retriever=None, label: str = ""
) -> list[dict]:
    from assistant.answer import ask

    open_settings = settings.model_copy(
        update={"abstain_threshold": -math.inf, "model_abstain_threshold": -math.inf}
    )
    records = []
    started = time.perf_counter()
    for n, q in enumerate(questions, start=1):
        t0 = time.perf_counter()
        answer = ask(q["text"], settings=open_settings, retriever=ask_retriever)
        t1 = time.perf_counter()
        search_s = None
        if search_retriever is not None:
            search_retriever.search(q["text"], k=settings.answer_passages)
            search_s = time.perf_counter() - t1
        golds = [normalize(a) for a in q["answers"]]
        answer_hit, excerpt_hit = hits(answer, golds)
        em, f1 = bold_scores(answer, q["answers"])
        records.append(
            {
                "id": q["_id"],
                "confidence": answer.confidence,
                "answer_hit": answer_hit,
                "excerpt_hit": excerpt_hit,
                "bold_em": em,
                "bold_f1": f1,
                "quotes": len(answer.citations),
                "quote_chars": sum(len(c.quote) for c in answer.citations),
                "failures": answer.dropped_citations + check_on_disk(answer, settings.seeds_dir),
                "ask_s": t1 - t0,
                "search_s": search_s,
            }
        )
        if n % 250 == 0:
            print(
                f"  {label} {n}/{len(questions)} {time.perf_counter() - started:.0f}s",
                file=sys.stderr,
            )
    return records


def encode_p50(settings, texts: list[str]) -> float:
    """p50 ms of a raw ``model.encode([text])`` (the model ``ask`` uses, same process)."""
    from assistant.embedder import get_embedder

    model = get_embedder(settings.model)._model
    times = []
    for text in texts:
        t0 = time.perf_counter()
        model.encode([text], normalize_embeddings=True, convert_to_numpy=True)
        times.append((time.perf_counter() - t0) * 1000)
    return percentiles(times)[0]


def loo_index(article: str, full_settings):
    """Settings for the index without ``article``: a copy of the full index, incrementally
    rebuilt on the seeds without it (only removal; the report says nothing was embedded)."""
    seeds = squad_seeds(exclude=article)
    settings = bench_settings(seeds, answer_scorer=full_settings.answer_scorer)
    target = Path(settings.index_dir)
    if not target.exists():
        shutil.copytree(
            full_settings.index_dir, target, ignore=shutil.ignore_patterns(".lock", ".tmp-*")
        )
    report = ensure_index(settings, progress=False)
    if report.embedded_chunks:
        raise SystemExit(f"LOO index for {article} embedded {report.embedded_chunks} chunks")
    return settings


def at_threshold(records: list[dict], t: float) -> dict:
    n = len(records)
    answered = [r for r in records if r["confidence"] >= t]
    return {
        "abstained": (n - len(answered)) / n,
        "answer_hit": sum(r["answer_hit"] for r in answered) / n,
        "excerpt_hit": sum(r["excerpt_hit"] for r in answered) / n,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=["report", "tune"], default="report")
    parser.add_argument("--limit", type=int, default=None, help="first N sampled questions only")
    parser.add_argument("--loo-max", type=int, default=100, help="questions per held-out article")
    parser.add_argument("--no-loo", action="store_true")
    parser.add_argument("--no-extra", action="store_true", help="skip SQuAD 2.0, typos, ...")
    parser.add_argument("--extra-n", type=int, default=500, help="questions per extra set")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1: on a shared 2-core machine, 2 threads collapse under load)",
    )
    add_scorer_option(parser)
    args = parser.parse_args(argv)

    from assistant.answer import ask
    from assistant.config import Settings
    from assistant.retrieval import Retriever

    queries = read_jsonl(DATA / "squad" / "queries.jsonl")
    chosen = [queries[i] for i in samples(queries)[args.split]][: args.limit]
    seeds = squad_seeds()
    settings = bench_settings(seeds, answer_scorer=args.scorer)
    if args.threads:
        import torch

        from assistant.embedder import get_embedder

        get_embedder(settings.model)  # loading it sets torch to all cores; override after
        torch.set_num_threads(args.threads)
    report = ensure_index(settings, progress=False)
    print(f"index: {report.summary()} ({settings.index_dir})", file=sys.stderr)
    threshold = (
        Settings().model_abstain_threshold
        if args.scorer == "model"
        else Settings().abstain_threshold
    )

    ask_r, search_r = Retriever(settings), Retriever(settings)
    in_samples = {i for ids in samples(queries).values() for i in ids}
    warm = [q for i, q in enumerate(queries) if i not in in_samples][:20]
    run(warm, settings, ask_r, search_r)
    normal = run(chosen, settings, ask_r, search_r, label="normal")

    loo: list[dict] = []
    held = loo_articles(queries)[args.split]
    if not args.no_loo:
        for k, article in enumerate(held):
            qs = [q for q in queries if article_of(q) == article]
            qs = random.Random(REPORT_SEED + k).sample(qs, min(args.loo_max, len(qs)))
            loo_settings = loo_index(article, settings)
            loo += run(qs, loo_settings, Retriever(loo_settings), label=f"loo {article}")

    n = len(normal)
    ask_p50, ask_p95 = percentiles([r["ask_s"] * 1000 for r in normal])
    ret_p50, ret_p95 = percentiles([r["search_s"] * 1000 for r in normal])
    enc_p50 = encode_p50(settings, [q["text"] for q in chosen[:300]])
    here = at_threshold(normal, threshold)
    failures = sum(r["failures"] for r in normal) + sum(r["failures"] for r in loo)
    answered = [r for r in normal if r["confidence"] >= threshold]
    print(f"\n## SQuAD v1.1 dev answers ({args.split} split, {n} questions)\n")
    print(
        f"machine: {machine_note()}, torch threads {args.threads}; abstain_threshold = {threshold}"
    )
    rows = [
        ["answer hit (gold string in the quoted sentence(s))", here["answer_hit"]],
        ["excerpt hit (gold string in a cited excerpt)", here["excerpt_hit"]],
        [
            "answer hit, answered questions only",
            sum(r["answer_hit"] for r in answered) / max(1, len(answered)),
        ],
        [
            "bold phrase exact match / F1 (abstention off)",
            f"{sum(r['bold_em'] for r in normal) / n:.3f} / {sum(r['bold_f1'] for r in normal) / n:.3f}",
        ],
        ["answerable questions abstained (wrongly)", here["abstained"]],
        ["citation verification failures", failures],
        [
            "quotes per answer (mean; a quote is a sentence with any close neighbours)",
            sum(r["quotes"] for r in answered) / max(1, len(answered)),
        ],
        [
            "quoted characters per answer (median)",
            percentiles([r["quote_chars"] for r in answered] or [0])[0],
        ],
        ["ask() p50 / p95 ms", f"{ask_p50:.1f} / {ask_p95:.1f}"],
        ["retrieve() p50 / p95 ms", f"{ret_p50:.1f} / {ret_p95:.1f}"],
        ["ask p50 / retrieve p50", round(ask_p50 / ret_p50, 2)],
        ["raw model.encode([question]) p50 ms", f"{enc_p50:.1f}"],
        [
            "ask p50 / encode p50, ask p95 / encode p50",
            f"{ask_p50 / enc_p50:.2f} / {ask_p95 / enc_p50:.2f}",
        ],
    ]
    if loo:
        loo_here = at_threshold(loo, threshold)
        rows.insert(
            4,
            [
                f"LOO questions abstained ({len(held)} articles, {len(loo)} questions)",
                loo_here["abstained"],
            ],
        )
    print(table(["metric", "value"], rows))

    if loo:
        print(
            "\nAbstention curve (threshold: LOO abstained / answerable wrongly abstained / answer hit / excerpt hit)\n"
        )
        grid = sorted({round(i / 40, 3) for i in range(1, 40)} | {threshold})
        curve = []
        for t in grid:
            a, b = at_threshold(loo, t), at_threshold(normal, t)
            if b["abstained"] > 0.5 or a["abstained"] < 0.05:
                continue
            mark = " <- chosen" if t == threshold else ""
            curve.append(
                [
                    f"{t:.2f}{mark}",
                    a["abstained"],
                    b["abstained"],
                    b["answer_hit"],
                    b["excerpt_hit"],
                ]
            )
        print(
            table(
                ["threshold", "LOO abstained", "answerable abstained", "answer hit", "excerpt hit"],
                curve,
            )
        )
        print(f"\nheld-out articles: {', '.join(held)}")

    print("\nOff-topic questions on the default seeds/:")
    for q in OFF_TOPIC:
        answer = ask(q, settings=Settings())
        print(f"- {q!r}: abstained={answer.abstained} (confidence {answer.confidence})")

    if not args.no_extra:
        from benchmarks.answer_extra import run_extra

        run_extra(queries, chosen, normal, settings, ask_r, threshold, args.extra_n)

    out = CACHE / "squad" / f"answers-{args.split}.json"
    out.write_text(json.dumps({"normal": normal, "loo": loo, "threshold": threshold}))
    print(f"\nper-question records: {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
