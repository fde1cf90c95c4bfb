"""BM25 postings: scores split over segments equal one index's; top() equals a full ranking."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant import bm25
from assistant.bm25 import Bm25Postings, Bm25Stats, bm25_tokens

TEXTS = [
    "Penguins live in Antarctica and eat krill.",
    "Krill are small crustaceans eaten by whales and penguins.",
    "The parade featured more than 14,000 troops.",
    "Troops marched; penguins did not march in the parade.",
    "Sourdough bread needs a starter and a long rise.",
    "Whales sing; penguins squawk; troops shout in parades.",
    "A long parade of krill-eating whales.",
]
QUERIES = ["penguins krill", "troops parade march", "bread starter", "whales", "long parade"]


def test_segments_scored_with_corpus_stats_rank_like_one_index():
    tokens = bm25_tokens(TEXTS)
    whole = Bm25Postings.empty().appended(tokens)
    cuts = [0, 2, 3, len(TEXTS)]
    parts = [Bm25Postings.empty().appended(tokens[a:b]) for a, b in zip(cuts, cuts[1:])]
    for query in QUERIES:
        q = bm25_tokens([query])[0]
        stats = Bm25Stats.over(parts, q)
        joined = np.concatenate([p.get_scores(q, stats) for p in parts])
        np.testing.assert_allclose(joined, whole.get_scores(q), rtol=1e-5, atol=1e-6)
        # and top() of each part, offset and merged, gives the same ranking as the whole
        found = []
        for a, p in zip(cuts, parts):
            scores, ids = p.top(q, 3, stats)
            found += [(float(s), int(i) + a) for s, i in zip(scores, ids)]
        found.sort(key=lambda x: (-x[0], x[1]))
        scores, ids = whole.top(q, 3)
        np.testing.assert_allclose([s for s, _ in found[:3]], scores, rtol=1e-5)


def _zipf_corpus(
    rng: np.random.Generator, n_docs: int, vocab: int, skew: float = 1.1
) -> list[list[str]]:
    """Token lists over a Zipf-like vocabulary: a few terms in most chunks, many rare ones."""
    weights = 1.0 / np.arange(1, vocab + 1) ** skew
    weights /= weights.sum()
    shortest = int(rng.integers(0, 30))  # long shortest chunks make the score bounds tight
    lengths = rng.integers(shortest, shortest + int(rng.integers(1, 40)), n_docs)
    return [[f"w{i}" for i in rng.choice(vocab, size=k, p=weights)] for k in lengths]


def _check_top(postings: Bm25Postings, q: list[str], n: int, stats=None, offset: int = 0):
    """top() equals ranking get_scores() fully: the same scores, the same ids above the cut."""
    full = postings.get_scores(q, stats)
    scores, ids = postings.top(q, n, stats)
    positive = np.flatnonzero(full > 0)
    expected = np.sort(full[positive])[::-1][:n]
    assert len(ids) == len(expected) == len(set(ids.tolist()))
    assert scores.dtype == np.float32 and ids.dtype == np.int64
    np.testing.assert_allclose(scores, expected, rtol=1e-5)
    np.testing.assert_allclose(scores, full[ids], rtol=1e-5)
    assert np.all(np.diff(scores) <= 0)
    if len(ids):
        # every chunk clearly above the n-th score is in; ties at the cut may go either way
        cut = expected[-1] * (1 + 1e-5)
        assert set(np.flatnonzero(full > cut).tolist()) <= set(ids.tolist())
    return [(float(s), int(i) + offset) for s, i in zip(scores, ids)]


@pytest.mark.parametrize("lookup_cost", [0, 16, 10**9], ids=["search", "default", "scan"])
def test_top_equals_full_ranking_on_random_corpora(monkeypatch, lookup_cost):
    # The terms read after theta rose: binary search for candidates, or one pass over postings.
    monkeypatch.setattr(bm25, "_LOOKUP_COST", lookup_cost)
    looked_up = []  # calls that scored only some of a term's postings: pruning took place
    part = Bm25Postings._part

    def spy(self, term, ids, tf, norm):
        looked_up.append(len(ids) < term.hi - term.lo)
        return part(self, term, ids, tf, norm)

    monkeypatch.setattr(Bm25Postings, "_part", spy)
    rng = np.random.default_rng(1)
    for _ in range(30):
        skew = float(rng.uniform(0.5, 1.5))
        tokens = _zipf_corpus(rng, int(rng.integers(1, 1500)), int(rng.integers(2, 300)), skew)
        whole = Bm25Postings.empty().appended(tokens)
        cuts = np.unique(np.concatenate([[0, len(tokens)], rng.integers(0, len(tokens), 2)]))
        parts = [Bm25Postings.empty().appended(tokens[a:b]) for a, b in zip(cuts, cuts[1:])]
        for _ in range(5):
            # Mostly the corpus's terms, some repeated, sometimes one it lacks.
            q = [f"w{int(x) - 1}" for x in rng.zipf(1.2, int(rng.integers(1, 16))) if x < 400]
            n = int(rng.choice([1, 3, 10, 50, 200]))
            best = _check_top(whole, q, n)
            stats = Bm25Stats.over(parts, q)
            merged = []
            for a, p in zip(cuts, parts):
                merged += _check_top(p, q, n, stats, offset=int(a))
            merged.sort(key=lambda x: (-x[0], x[1]))
            np.testing.assert_allclose([s for s, _ in merged[:n]], [s for s, _ in best], rtol=1e-5)
    assert any(looked_up) and not all(looked_up)


@settings(max_examples=200, deadline=None)
@given(
    docs=st.lists(st.lists(st.sampled_from("abcdefgh"), max_size=12), min_size=1, max_size=40),
    query=st.lists(st.sampled_from("abcdefghxy"), max_size=6),
    n=st.integers(0, 45),
)
def test_top_equals_full_ranking_on_small_corpora(docs, query, n):
    postings = Bm25Postings.empty().appended(docs)
    if n == 0:
        scores, ids = postings.top(query, n)
        assert len(scores) == len(ids) == 0
        return
    _check_top(postings, query, n)
    half = len(docs) // 2
    parts = [Bm25Postings.empty().appended(docs[:half]), Bm25Postings.empty().appended(docs[half:])]
    stats = Bm25Stats.over(parts, query)
    _check_top(parts[1], query, n, stats)


def test_top_leaves_its_scratch_clean():
    rng = np.random.default_rng(2)
    postings = Bm25Postings.empty().appended(_zipf_corpus(rng, 500, 50))
    for q in (["w0", "w1", "w7"], ["w3"], ["w0", "w0", "w20"]):
        first = postings.top(q, 5)
        again = postings.top(q, 5)
        np.testing.assert_array_equal(first[1], again[1])
    assert all(not np.any(acc) for acc in postings._pool)
