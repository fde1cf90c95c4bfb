import numpy as np
import pytest

from assistant.build import build_index
from assistant.errors import QuestionError
from assistant.retrieval import Retriever, _Hit, fuse, merge_overlaps
from assistant.types import Passage

from .conftest import write

pytestmark = pytest.mark.stores  # runs on both stores (tests/conftest.py)


def arr(scores, ids):
    return np.array(scores, np.float32), np.array(ids, np.int64)


def test_rrf_arithmetic():
    hits = fuse(arr([0.9, 0.8], [1, 2]), arr([5.0, 4.0], [2, 3]), "rrf", rrf_k=60)
    scores = {h.chunk_id: h.score for h in hits}
    assert scores[2] == pytest.approx(1 / 62 + 1 / 61)
    assert scores[1] == pytest.approx(1 / 61)
    assert scores[3] == pytest.approx(1 / 62)
    assert [h.chunk_id for h in hits] == [2, 1, 3]
    weighted = fuse(arr([0.9], [1]), arr([5.0], [1]), "rrf", rrf_k=60, dense_weight=0.75)
    assert weighted[0].score == pytest.approx(1.5 / 61 + 0.5 / 61)


def test_weighted_fusion_normalizes_each_side():
    hits = fuse(arr([0.9, 0.5], [1, 2]), arr([10.0, 2.0], [2, 3]), "weighted", dense_weight=0.5)
    scores = {h.chunk_id: h.score for h in hits}
    assert scores[1] == pytest.approx(0.5 * 1.0)
    assert scores[2] == pytest.approx(0.5 * 0.0 + 0.5 * 1.0)
    assert scores[3] == pytest.approx(0.0)
    only_dense = fuse(arr([0.9, 0.5], [1, 2]), arr([10.0], [3]), "dense")
    assert [h.chunk_id for h in only_dense] == [1, 2]
    with pytest.raises(ValueError):
        fuse(arr([], []), arr([], []), "nope")


def test_overlapping_chunks_merge_into_one_passage():
    source = "aaaa bbbb cccc dddd eeee"
    rows = [
        (_Hit(0, 0.9), ("d", 0, 14, source[0:14], "T")),
        (_Hit(1, 0.8), ("d", 10, 24, source[10:24], "T")),
        (_Hit(2, 0.7), ("e", 0, 4, "xxxx", "U")),
        (_Hit(3, 0.6), ("d", 5, 9, source[5:9], "T")),
    ]
    passages = merge_overlaps(rows, k=5)
    assert [(p.source, p.start, p.end) for p in passages] == [("d", 0, 24), ("e", 0, 4)]
    assert passages[0].text == source and passages[0].chunk_ids == (0, 1)
    assert passages[0].score == 0.9


def built(seeded, fake_embedder):
    build_index(seeded, embedder=fake_embedder)
    return Retriever(seeded, embedder=fake_embedder)


def test_search_returns_typed_passages_with_exact_offsets(seeded, fake_embedder):
    retriever = built(seeded, fake_embedder)
    passages = retriever.search("How many troops were at the military parade?", k=3)
    assert passages and all(isinstance(p, Passage) for p in passages)
    assert any("14,000 troops" in p.text for p in passages)
    assert passages[0].dense_rank is not None and passages[0].lexical_rank is not None
    for p in passages:
        source = (seeded.seeds_dir / p.source).read_text(encoding="utf-8")
        assert source[p.start : p.end] == p.text
    # k results are k different pieces of evidence: no two overlap.
    for i, a in enumerate(passages):
        for b in passages[i + 1 :]:
            assert a.source != b.source or a.end <= b.start or b.end <= a.start


def test_bad_inputs(seeded, fake_embedder):
    retriever = built(seeded, fake_embedder)
    for bad in ["", "   \n\t"]:
        with pytest.raises(ValueError, match="empty"):
            retriever.search(bad)
    for k in [0, -3]:
        with pytest.raises(ValueError, match="positive"):
            retriever.search("troops", k=k)
    with pytest.raises(TypeError):
        retriever.search("troops", k=2.5)
    with pytest.raises(ValueError, match="at most 100 \\(ASSISTANT_MAX_K\\)"):
        retriever.search("the", k=10_000)
    everything = retriever.search("the", k=retriever.settings.max_k)
    assert 1 <= len(everything) <= retriever.index.size
    for weird in ["北京 🚀 مرحبا", "\x00\x01 troops", "\x1b[31mtroops\x1b[0m", "troops " * 285]:
        assert isinstance(retriever.search(weird, k=2), list)
    for blank in ["\x00\x01\x1b", "\x7f\x85\u200b", "\x1b" * 3]:  # as if empty
        with pytest.raises(QuestionError, match="empty"):
            retriever.search(blank)
    with pytest.raises(QuestionError, match="ASSISTANT_MAX_QUESTION_CHARS"):
        retriever.search("troops " * 300)  # 2,100 characters: over the default 2,000


def test_reloads_after_a_rebuild(seeded, fake_embedder):
    retriever = built(seeded, fake_embedder)
    assert not any("penguins" in p.text for p in retriever.search("penguins antarctica", k=5))
    write(seeded, "penguins.txt", "Penguins live in Antarctica and eat krill.")
    build_index(seeded, embedder=fake_embedder)
    assert "Penguins" in retriever.search("penguins antarctica", k=1)[0].text


def test_public_retrieve_honours_index_dir(seeded, fake_embedder, monkeypatch):
    build_index(seeded, embedder=fake_embedder)
    import assistant.embedders as embedders_mod
    import assistant.retrieval as r

    monkeypatch.setattr(embedders_mod, "get_embedder", lambda model: fake_embedder)
    monkeypatch.setattr(r, "_retrievers", {})
    from assistant import retrieve

    assert "Sourdough" in retrieve("sourdough starter", k=1)[0].text


def test_ranked_chunks_is_the_ranking_search_uses(seeded, fake_embedder):
    retriever = built(seeded, fake_embedder)
    assert seeded.fusion == "weighted"  # the default tuned on SciFact train
    hits = retriever.ranked_chunks("military parade troops")
    assert hits == sorted(hits, key=lambda h: (-h.score, h.chunk_id))
    assert all(0.0 <= h.score <= 1.0 for h in hits)  # min-max normalized, weights sum to 1
    passages = retriever.search("military parade troops", k=1)
    assert hits[0].chunk_id in passages[0].chunk_ids
    with pytest.raises(ValueError, match="empty"):
        retriever.ranked_chunks("  ")
