"""Calibrate the reader model's "answers at all" probability, and choose the threshold, on
held-out articles read exactly as ``ask()`` reads them.

    python -m benchmarks.calibrate_reader            # writes calibration + threshold to the card

The documents are articles no training step saw: the held-out SQuAD v1.1 train articles
(``reader_data.split_train``) and part 2's calibration articles (``split_part2``). Some
held-out train articles are indexed and their questions asked (answerable); the others are
left out of the index and their questions asked too (nothing answers them: what a question
about a missing document meets); part 2's calibration articles are indexed and both their
answerable and their unanswerable questions asked (on topic, not answered).

Every question is read as ``ask()`` reads it (search, shortlist, the model over the shortlist).
Then two logistic regressions are fitted: the **ranker** (which shortlisted sentence holds the
answer, from the model's logit, key-term coverage and the passage's rank and score:
``crossencoder.RANK_FEATURES``) and the **calibration** ("the top sentence holds the answer",
from the model's probability that the shortlist answers at all and the top sentence's ranked
probability). The threshold is the highest at which at most ``--max-lost`` of the right
answers are declined.
Nothing here is a reported figure (``benchmarks/answers.py`` reports on other articles).
"""

from __future__ import annotations

import argparse
import json
import random
import sys

import numpy as np

from assistant import crossencoder as reader_model
from benchmarks import reader_data as rd
from benchmarks.common import CACHE, bench_settings, ensure_index, normalize, table

INDEXED_TRAIN = 16  # of the held-out train articles; the rest are asked about but not indexed


def _write_seeds(name: str, articles: list[dict]):
    root = CACHE / "reader-cal" / name / "seeds"
    root.mkdir(parents=True, exist_ok=True)
    for article in articles:
        title = article["title"].replace("_", " ")
        body = "\n\n".join(p["context"].strip() for p in article["paragraphs"])
        path = root / f"{article['title'][:80]}.txt"
        text = f"{title}\n\n{body}\n"
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    return root


def questions(articles: list[dict], per_article: int, rng: random.Random, kind: str):
    out = []
    for article in articles:
        qas = [qa for p in article["paragraphs"] for qa in p["qas"]]
        for qa in rng.sample(qas, min(per_article, len(qas))):
            impossible = qa.get("is_impossible", False) or kind == "missing"
            answers = [a["text"] for a in qa.get("answers", [])]
            out.append(
                {
                    "q": qa["question"],
                    "answers": answers,
                    "impossible": impossible,
                    "kind": "impossible" if qa.get("is_impossible") else kind,
                }
            )
    return out


def read_all(asked: list[dict], retriever, settings) -> list[dict]:
    """Each question read as ``ask()`` reads it (search, shortlist, the model over it), with
    the ranker's features and labels of every shortlisted sentence."""
    from assistant.answer import model_reader as M
    from assistant.answer import reader as R

    model = reader_model.default_reader()
    rows = []
    for i, item in enumerate(asked, start=1):
        q, passages = R.read(retriever, item["q"], item["q"], settings.answer_passages)
        cands, short = M.shortlisted(q, passages)
        if not short:
            continue
        reading = model.read(q.spelled, [c.text for c in short])
        M.take_reading(short, reading)
        golds = [normalize(g) for g in item["answers"]]
        labels = [any(g in normalize(c.text) for g in golds) for c in short]
        rows.append(
            {
                **item,
                "x": M.rank_features(short, reading.relevance, passages),
                "y": np.array(labels, dtype=int),
                "p": reading.answer_probability,
                "reading": (q, short, cands),
            }
        )
        if i % 100 == 0:
            print(f"  {i}/{len(asked)}", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=13, help="the training run's seed")
    parser.add_argument("--per-article", type=int, default=25)
    parser.add_argument("--max-lost", type=float, default=0.03)
    parser.add_argument("--dry-run", action="store_true", help="print, do not write the card")
    args = parser.parse_args(argv)

    from sklearn.linear_model import LogisticRegression

    from assistant.answer import model_reader as M
    from assistant.retrieval import Retriever

    rng = random.Random(args.seed + 5)
    _, held = rd.split_train(args.seed)
    _, cal = rd.split_part2(args.seed)
    indexed, missing = held[:INDEXED_TRAIN], held[INDEXED_TRAIN:]
    seeds = _write_seeds(f"seed{args.seed}", indexed + cal)
    settings = bench_settings(seeds)
    ensure_index(settings, progress=True)
    retriever = Retriever(settings)
    asked = (
        questions(indexed, args.per_article, rng, "answerable")
        + questions(missing, args.per_article, rng, "missing")
        + questions(cal, 2 * args.per_article, rng, "answerable")
    )
    model = reader_model.default_reader()
    model.card = {k: v for k, v in model.card.items() if k not in ("ranker", "calibration")}
    rows = read_all(asked, retriever, settings)

    # 1. the ranker: which shortlisted sentence holds the answer (answerable questions)
    train = [r for r in rows if not r["impossible"]]
    x = np.vstack([r["x"] for r in train])
    y = np.concatenate([r["y"] for r in train])
    ranker = LogisticRegression(C=1.0, max_iter=1000).fit(x, y)
    coef, intercept = ranker.coef_[0].tolist(), float(ranker.intercept_[0])
    top1 = {"model alone": [], "ranker": []}
    signals, right = [], []
    for r in rows:
        ranked = ranker.predict_proba(r["x"])[:, 1]
        pick = int(np.argmax(ranked))
        right.append(bool(not r["impossible"] and r["y"][pick]))
        if not r["impossible"] and r["y"].any():
            top1["ranker"].append(bool(r["y"][pick]))
            top1["model alone"].append(bool(r["y"][int(np.argmax(r["x"][:, 0]))]))
        q, short, cands = r["reading"]
        for cand, p in zip(short, ranked):
            cand.score = float(p)
        order = sorted(short, key=lambda cand: -cand.score)
        signals.append(M.confidence_features(q, order, cands, r["p"]))

    # 2. the calibration: is the top sentence right, from the answer-level signals
    z = np.vstack(signals)
    target = np.array(right, dtype=int)
    cal_fit = LogisticRegression(C=10.0, max_iter=1000).fit(z, target)
    cal_coef, b = cal_fit.coef_[0].tolist(), float(cal_fit.intercept_[0])
    cal_p = cal_fit.predict_proba(z)[:, 1]
    right_p = cal_p[target == 1]
    none = {k: cal_p[[r["kind"] == k for r in rows]] for k in ("missing", "impossible")}
    curve, threshold = [], 0.0
    for t in np.round(np.arange(0.01, 0.96, 0.01), 2):
        lost = float(np.mean(right_p < t))
        if lost <= args.max_lost:
            threshold = float(t)
        curve.append([float(t), lost, *(float(np.mean(v < t)) for v in none.values())])
    print(f"\n{len(rows)} questions read; ranker coef {np.round(coef, 3).tolist()}")
    for name, hits in top1.items():
        print(f"top-1 sentence holds the answer ({name}): {np.mean(hits):.3f} of {len(hits)}")
    print(f"calibration {dict(zip(M.CONFIDENCE_FEATURES, np.round(cal_coef, 3)))}, b={b:.3f}")
    print(f"threshold {threshold}\n")
    shown = [r for r in curve if round(r[0] * 100) % 5 == 0 or r[0] == threshold]
    print(
        table(
            [
                "threshold",
                "right answers declined",
                "missing-article declined",
                "part 2 unanswerable declined",
            ],
            shown,
        )
    )
    if args.dry_run:
        return
    card = json.loads(reader_model.CARD.read_text(encoding="utf-8"))
    card["ranker"] = {
        "features": reader_model.RANK_FEATURES,
        "coef": [round(v, 6) for v in coef],
        "intercept": round(intercept, 6),
    }
    card["calibration"] = {
        "features": M.CONFIDENCE_FEATURES,
        "coef": [round(v, 6) for v in cal_coef],
        "intercept": round(b, 6),
    }
    card["threshold"] = threshold
    card["calibration_run"] = {
        "command": "python -m benchmarks.calibrate_reader",
        "questions": {
            k: sum(r["kind"] == k for r in rows) for k in ("answerable", "missing", "impossible")
        },
        "top1": {k: round(float(np.mean(v)), 4) for k, v in top1.items()},
        "rule": f"highest threshold declining at most {args.max_lost} of the right answers",
        "curve": [[round(v, 4) for v in r] for r in curve],
    }
    reader_model.CARD.write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
    print(f"\nwrote {reader_model.CARD}: set abstain_threshold's default to {threshold}")


if __name__ == "__main__":
    main()
