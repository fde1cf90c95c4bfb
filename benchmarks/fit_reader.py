"""Fit the reader's models and write ``assistant/answer/weights.json``.

Run: ``.venv/bin/python -m benchmarks.fit_reader`` (about 20 minutes on 2 cores the first
time; the candidates are cached under ``.cache/bench/reader-fit/``, so a refit takes seconds).

Training data, all disjoint from what ``benchmarks/answers.py`` reports:

- match model (``benchmarks/fit_match.py``): ``--match-train`` other questions outside the
  reported sample, so that its logits are out of sample for the sentence models;
- sentence models (``shortlist``, ``sentence``): SQuAD v1.1 dev questions outside the reported
  2,000-question sample (``--train`` of them, seeded), asked against the index of the 48
  articles; every sentence of the top passages is an example, labelled 1 when it contains a
  gold answer string;
- abstention model: the same questions (labelled 1 when a candidate sentence of the retrieved
  passages holds a gold answer: the evidence answers), the questions of the 6 *tuning*
  held-out articles asked against an index without their article (labelled 0), and SQuAD 2.0
  part 1 questions of its even-numbered articles (unanswerable ones labelled 0, answerable ones
  as above); the odd-numbered articles are left for the report; and typo'd copies of
  ``--typos`` training questions (``answer_sets.with_typos``, other seeds than the report's),
  searched and read as ``ask()`` does, labelled 1 when the passages they retrieve hold a gold
  answer. Features come from the
  reader's own ranking with the sentence models just fitted, replayed on the cached candidates.

Small corpora, as a new user's: each even-numbered SQuAD 2.0 article is also indexed alone and
asked a sample of its own questions (answerable and not) and of other articles' (off-topic).

The threshold is read off the fitted model's curve on the training data: the highest one that
keeps wrongly abstained answerable questions under ``--max-false-abstain`` both in SQuAD and in
the small corpora (a corpus-size feature was tried: it let the trees tell the training sets
apart, LOO 1.000 in sample, so it is not used).
"""

from __future__ import annotations

import argparse
import json
import pickle
import random
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.answer_sets import squad2_questions, with_typos
from benchmarks.answers import article_of, loo_articles, loo_index, samples
from benchmarks.common import (
    CACHE,
    DATA,
    bench_settings,
    ensure_index,
    normalize,
    read_jsonl,
    squad2_articles,
    squad2_seeds,
    squad2_single_seeds,
    squad_seeds,
)

OUT = Path(__file__).resolve().parents[1] / "assistant" / "answer" / "weights.json"


def examples(
    questions, settings, retriever, impossible: bool = False, as_asked: bool = False
) -> list[dict]:
    """Per question: its analysis, passages and every candidate with all features (the cosine
    of every candidate, so any shortlist can be replayed), and each candidate's label.

    ``as_asked``: search and read the question as ``ask()`` does (the spelled question's
    ranking fused with the typed one's, words respelled from the passages, the cosine of the
    spelled question), for typo'd questions; otherwise the typed question alone."""
    from assistant.answer import reader, select
    from assistant.answer.question import analyze

    out = []
    for q in questions:
        k = settings.answer_passages
        if as_asked:
            question, passages = reader.read(retriever, q["text"], q["text"], k)
        else:
            question = analyze(q["text"], retriever.index)
            passages = retriever.search(q["text"], k=k)
        cands = select.candidates(question, passages) if passages else []
        reading = None
        if cands:
            vec = retriever.embed_query(question.spelled if as_asked else q["text"])
            embedder = MemoEmbedder(retriever.embedder)
            qtok = retriever.query_tokens(question.spelled)
            cos, sims, _ = select.dense_features(
                question, cands, passages, vec, qtok, embedder, None, None
            )
            for c, v, m in zip(cands, cos, sims):
                c.features["cosine"] = float(v)
                c.features["maxsim"] = float(m)
            # What the match model reads (fit_match.py): the same arrays ask() has.
            reading = {
                "q_tokens": qtok[0],
                "q_weights": select.token_weights(question, qtok[1]),
                "q_vector": vec,
                "tokens": embedder.embed_tokens([c.text for c in cands])[1],
            }
        golds = [normalize(a) for a in q["answers"]]
        labels = [int(any(g in normalize(c.text) for g in golds)) for c in cands]
        impossible_q = impossible or q.get("impossible", False)
        out.append(
            {
                "q": q,
                "question": question,
                "passages": passages,
                "cands": cands,
                "labels": labels,
                "impossible": impossible_q,
                "reading": reading,
            }
        )
    return out


class MemoEmbedder:
    """The embedder, with ``embed_tokens`` memoized by text (one memo for the whole fit): the
    SQuAD, SQuAD 2.0 and small corpora share their sentences, so each is embedded once."""

    _memo: dict[str, tuple] = {}

    def __init__(self, inner) -> None:
        self.inner, self.name = inner, inner.name

    def embed_tokens(self, texts, batch_size=32):
        missing = list(dict.fromkeys(t for t in texts if t not in self._memo))
        if missing:
            vectors, tokens, spans = self.inner.embed_tokens(missing, batch_size=64)
            for t, v, tok, sp in zip(missing, vectors, tokens, spans):
                self._memo[t] = (v, tok, sp)
        rows = [self._memo[t] for t in texts]
        return np.stack([r[0] for r in rows]), [r[1] for r in rows], [r[2] for r in rows]


def cached(name: str, make):
    """``make()``, pickled under the benchmark cache (delete the file to recompute)."""
    path = CACHE / "reader-fit" / f"{name}-reading.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    value = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(value))
    return value


def fit_logistic(x: np.ndarray, y: np.ndarray, names: list[str], c: float = 1.0) -> dict:
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=c, max_iter=2000)
    model.fit((x - mean) / scale, y)
    return {
        "features": names,
        "mean": mean.round(6).tolist(),
        "scale": scale.round(6).tolist(),
        "coef": model.coef_[0].round(6).tolist(),
        "intercept": round(float(model.intercept_[0]), 6),
    }


def fit_trees(x: np.ndarray, y: np.ndarray, names: list[str], trees: int = 150) -> dict:
    """Gradient-boosted trees (scikit-learn's histogram GBM), exported as plain node arrays."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(
        max_iter=trees,
        learning_rate=0.1,
        max_leaf_nodes=15,
        min_samples_leaf=40,
        early_stopping=False,
        random_state=0,
    )
    model.fit(x, y)
    exported = []
    for (predictor,) in model._predictors:
        nodes = predictor.nodes
        exported.append(
            {
                "feature": np.where(nodes["is_leaf"], -1, nodes["feature_idx"]).tolist(),
                "threshold": nodes["num_threshold"].tolist(),
                "left": nodes["left"].tolist(),
                "right": nodes["right"].tolist(),
                "value": nodes["value"].round(8).tolist(),
            }
        )
    out = {
        "kind": "trees",
        "features": names,
        "baseline": float(np.ravel(model._baseline_prediction)[0]),
        "trees": exported,
    }
    from assistant.answer.scorer import predict

    check = predict(out, x[:2000])
    assert np.allclose(check, model.predict_proba(x[:2000])[:, 1], atol=1e-4), "export differs"
    return out


def decisions(exs: list[dict], weights: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Abstention features from the reader's own ranking with ``weights`` (replayed on the
    cached candidates), the label (1: the evidence holds the answer) and the top-1 hit."""
    from assistant.answer import abstain, select

    rows, labels, top_hits = [], [], []
    for e in exs:
        question, cands = e["question"], e["cands"]
        ranked = select.rank_candidates(
            cands,
            weights,
            lambda short: tuple(
                np.array([c.features[n] for c in short]) for n in ("cosine", "maxsim", "match")
            ),
        )
        keep = select.without_headings(question, ranked)
        feats = abstain.features(question, keep, cands, e["passages"])
        label = dict(zip(map(id, cands), e["labels"]))
        rows.append([feats[n] for n in abstain.ABSTAIN_FEATURES])
        labels.append(int(not e["impossible"] and any(e["labels"])))
        top_hits.append(int(not e["impossible"] and bool(keep) and label[id(keep[0])] == 1))
    return np.array(rows), np.array(labels), np.array(top_hits)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=4000, help="SQuAD v1.1 training questions")
    parser.add_argument(
        "--match-train",
        type=int,
        default=4000,
        help="other SQuAD v1.1 questions, for the match model (so its logits are out of sample "
        "for the trees)",
    )
    parser.add_argument(
        "--typos",
        type=int,
        default=1000,
        help="typo'd copies of this many training questions, for the abstention model",
    )
    parser.add_argument("--loo-max", type=int, default=100)
    parser.add_argument("--squad2-max", type=int, default=None, help="SQuAD 2.0 questions")
    parser.add_argument("--small-own", type=int, default=150, help="own questions per small corpus")
    parser.add_argument("--small-off", type=int, default=40, help="off-topic ones per small corpus")
    parser.add_argument("--model", choices=["logistic", "trees"], default="trees")
    parser.add_argument(
        "--abstain-model",
        choices=["logistic", "trees"],
        default=None,
        help="the abstention model's kind (default: --model's)",
    )
    parser.add_argument(
        "--max-false-abstain",
        type=float,
        default=0.07,
        help="highest share of answerable questions abstained, in SQuAD and in the small corpora",
    )
    parser.add_argument(
        "--abstain-only",
        action="store_true",
        help="keep the shipped sentence scorers and match model; refit the abstention model and "
        "its threshold (minutes, on the cached candidates)",
    )
    args = parser.parse_args(argv)

    import torch

    from assistant.answer.abstain import ABSTAIN_FEATURES
    from assistant.answer.match import MATCH_WEIGHTS
    from assistant.answer.match import load as load_match
    from assistant.answer.select import CHEAP_FEATURES, FEATURES
    from assistant.embedder import get_embedder
    from assistant.retrieval import Retriever

    t0 = time.perf_counter()
    queries = read_jsonl(DATA / "squad" / "queries.jsonl")
    report = set(samples(queries)["report"])
    rest = [i for i in range(len(queries)) if i not in report]
    train_ids = random.Random(7).sample(rest, min(args.train, len(rest)))
    train = [queries[i] for i in train_ids]
    others = sorted(set(rest) - set(train_ids))
    match_train = [
        queries[i] for i in random.Random(8).sample(others, min(args.match_train, len(others)))
    ]
    settings = bench_settings(squad_seeds())
    get_embedder(settings.model)
    torch.set_num_threads(2)
    ensure_index(settings, progress=False)
    retriever = Retriever(settings)
    print(f"candidates of {len(train)} questions ...", file=sys.stderr)
    ex = cached(f"squad-{args.train}", lambda: examples(train, settings, retriever))
    # Typo'd copies of training questions (benchmarks.answer_sets.with_typos, other seeds than
    # the report's), read as ask() reads them: users mistype, and a typo lowers coverage and
    # cosine the way a question the documents do not answer does.
    typo_train = [
        {**q, "text": with_typos(q["text"], seed=10_000 + k)}
        for k, q in enumerate(train[: args.typos])
    ]
    ex_typo = cached(
        f"squad-typos-{args.typos}",
        lambda: examples(typo_train, settings, retriever, as_asked=True),
    )
    held = loo_articles(queries)["tune"]

    def loo_examples() -> list[dict]:
        out = []
        for k, article in enumerate(held):
            qs = [q for q in queries if article_of(q) == article]
            qs = random.Random(100 + k).sample(qs, min(args.loo_max, len(qs)))
            loo_settings = loo_index(article, settings)
            out += examples(qs, loo_settings, Retriever(loo_settings), impossible=True)
        return out

    loo = cached(f"loo-{args.loo_max}", loo_examples)

    def squad2_examples() -> list[dict]:
        s2 = bench_settings(squad2_seeds())
        ensure_index(s2, progress=False)
        return examples(squad2_questions(0)[: args.squad2_max], s2, Retriever(s2))

    s2 = cached(f"squad2-{args.squad2_max}", squad2_examples)

    def small_examples() -> list[dict]:
        """Each even-numbered SQuAD 2.0 article indexed alone (a small corpus): a sample of its
        own questions (answerable and not) and of other articles' questions (off-topic)."""
        out = []
        titles = [a["title"] for a in squad2_articles()]
        every = squad2_questions(0)
        for k, title in enumerate(titles[0::2]):
            single = bench_settings(squad2_single_seeds(title))
            ensure_index(single, progress=False)
            own = [q for q in every if q["article"] == title]
            other = [q for q in every if q["article"] != title]
            rng = random.Random(200 + k)
            qs = rng.sample(own, min(args.small_own, len(own)))
            off = rng.sample(other, min(args.small_off, len(other)))
            r = Retriever(single)
            out += examples(qs, single, r)
            out += examples(off, single, r, impossible=True)
        return out

    small = cached(f"small-{args.small_own}-{args.small_off}", small_examples)
    ex_all = ex + [e for e in small if not e["impossible"]]
    print(f"  examples ready ({time.perf_counter() - t0:.0f}s)", file=sys.stderr)

    from benchmarks.fit_match import apply_match, fit_match

    if args.abstain_only:  # the shipped scorers and match model; only abstention is refitted
        weights = json.loads(OUT.read_text(encoding="utf-8"))
        match_fit = weights["fitted"]["match"]
    else:
        print("fitting the match model ...", file=sys.stderr)
        ex_match = cached(
            f"squad-match-{args.match_train}", lambda: examples(match_train, settings, retriever)
        )
        match_fit = fit_match(ex_match, retriever.embedder.name)
        del ex_match
    fitted_match = load_match(str(MATCH_WEIGHTS))
    for exs in (ex, ex_typo, loo, s2, small):
        apply_match(exs, fitted_match)
    for e in ex + small:  # the gaps the reader computes over its shortlist, here over all
        for name in ("cosine", "maxsim", "match"):
            best = max((c.features[name] for c in e["cands"]), default=0.0)
            for c in e["cands"]:
                c.features[f"{name}_gap"] = c.features[name] - best
    if not args.abstain_only:
        xs = np.array([c.vector(FEATURES) for e in ex_all for c in e["cands"]])
        ys = np.array([y for e in ex_all for y in e["labels"]])
        cheap = [FEATURES.index(n) for n in CHEAP_FEATURES]
        fit = fit_trees if args.model == "trees" else fit_logistic
        weights = {
            "shortlist": fit(xs[:, cheap], ys, CHEAP_FEATURES),
            "sentence": fit(xs, ys, FEATURES),
        }
        print(f"  {len(ys)} sentences, {ys.mean():.3f} positive", file=sys.stderr)

    x_a, y_a, top_a = decisions(ex, weights)
    x_t, y_t, _ = decisions(ex_typo, weights)
    x_l, y_l, _ = decisions(loo, weights)
    x_s, y_s, top_s = decisions(s2, weights)
    imp_s = np.array([e["impossible"] for e in s2])
    x_m, y_m, top_m = decisions(small, weights)
    own_m = np.array(
        [e["q"]["article"] in e["passages"][0].source if e["passages"] else False for e in small]
    )
    imp_m = np.array([e["impossible"] for e in small])
    x = np.vstack([x_a, x_t, x_l, x_s, x_m])
    y = np.concatenate([y_a, y_t, y_l, y_s, y_m])
    fit_abstain = {"trees": fit_trees, "logistic": fit_logistic}[args.abstain_model or args.model]
    weights["abstain"] = fit_abstain(x, y, ABSTAIN_FEATURES)
    print(f"  top-1 sentence hit on the training questions: {top_a.mean():.3f}", file=sys.stderr)

    from assistant.answer.scorer import predict

    p_a, p_l, p_s, p_m = (predict(weights["abstain"], m) for m in (x_a, x_l, x_s, x_m))
    ans_m = ~imp_m
    squad2_in_small = imp_m & own_m  # unanswerable questions about the indexed article
    threshold = 0.05
    curve = []
    for t in np.round(np.arange(0.05, 0.96, 0.01), 2):
        false_abstain = max(float(np.mean(p_a < t)), float(np.mean(p_m[ans_m] < t)))
        curve.append(
            (
                float(t),
                false_abstain,
                float(np.mean(p_l < t)),
                float(np.mean(p_s[imp_s] < t)),
                float(np.mean((p_s[~imp_s] >= t) & (top_s[~imp_s] == 1))),
                float(np.mean(p_m[ans_m] < t)),
                float(np.mean(p_m[squad2_in_small] < t)),
                float(np.mean(p_m[imp_m & ~own_m] < t)),
            )
        )
        if false_abstain <= args.max_false_abstain:
            threshold = float(t)
    print(
        "threshold | answerable abstained (the worse of SQuAD and small) | LOO abstained | SQuAD2 impossible abstained | "
        "SQuAD2 answerable answered, top-1 hit | small: answerable abstained | "
        "small: unanswerable abstained | small: off-topic abstained"
    )
    for row in curve:
        mark = " <- chosen" if row[0] == threshold else ""
        print(f"{row[0]:.2f}{mark} | " + " | ".join(f"{v:.3f}" for v in row[1:]))
    weights["threshold"] = threshold
    previous = weights.get("fitted", {})
    weights["fitted"] = {
        "command": "python -m benchmarks.fit_reader " + " ".join(argv or sys.argv[1:]),
        "scorers_command": previous.get("scorers_command", previous.get("command"))
        if args.abstain_only
        else None,
        "squad_v1_questions": len(train),
        "typo_questions": len(typo_train),
        "sentences": previous.get("sentences") if args.abstain_only else int(len(ys)),
        "loo_articles": held,
        "squad2_articles": "even-numbered of dev-v2.0-part1.json, together and each alone",
        "decisions": int(len(y)),
        "label": "1 when a candidate sentence of the retrieved passages holds a gold answer",
        "max_false_abstain": args.max_false_abstain,
        "match": match_fit,
    }
    OUT.write_text(json.dumps(weights, separators=(",", ":")) + "\n", encoding="utf-8")
    for name in ("shortlist", "sentence", "abstain"):
        m = weights[name]
        if "coef" in m:
            print(
                f"\n{name}: " + ", ".join(f"{f} {c:+.2f}" for f, c in zip(m["features"], m["coef"]))
            )
    print(f"\nthreshold {threshold}; wrote {OUT} ({time.perf_counter() - t0:.0f}s)")


if __name__ == "__main__":
    main()
