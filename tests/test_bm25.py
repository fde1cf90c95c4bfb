"""BM25 postings: scores split over segments equal one index's; top() equals a full ranking."""

import numpy as np

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
