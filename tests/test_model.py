"""Tests with the real packaged model (marked `model`; offline, a few seconds each)."""

import json

import pytest

from assistant.build import build_index
from assistant.chunking import Chunker, embedding_text
from assistant.config import Settings
from assistant.corpus import load_corpus
from assistant.embedder import get_embedder
from assistant.retrieval import Retriever
from assistant.store.diff import diff
from assistant.store.layout import current_build
from assistant.store.manifest import read_manifest
from assistant.tokens import get_encoding

from .conftest import REPO, SEED

pytestmark = pytest.mark.model
SCIFACT = REPO.parent / "shared" / "data" / "scifact" / "corpus.jsonl"


@pytest.fixture(scope="module")
def embedder():
    return get_embedder(Settings().model)


def _chunker(embedder, title, s):
    return Chunker(
        get_encoding(s.encoding),
        s.chunk_tokens,
        s.chunk_overlap,
        fits=lambda t: embedder.fits(embedding_text(title, t, s.embed_titles)),
    )


def test_seed_chunks_fit_the_model_window(embedder):
    s = Settings()
    corpus = load_corpus(SEED.parent)
    for doc in corpus.documents:
        for c in _chunker(embedder, doc.title, s).chunk(doc):
            assert doc.text[c.start : c.end] == c.text
            assert embedder.count_tokens(embedding_text(doc.title, c.text, s.embed_titles)) <= 256


@pytest.mark.skipif(not SCIFACT.exists(), reason="../shared/data/scifact not present")
def test_scifact_chunks_fit_the_model_window(embedder):
    from assistant.types import Document

    s = Settings()
    n = 0
    with open(SCIFACT, encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            text = f"{row['title']}\n\n{row['text']}"
            doc = Document(row["_id"], row["title"], text, "x")
            for c in _chunker(embedder, doc.title, s).chunk(doc):
                assert text[c.start : c.end] == c.text
                assert (
                    embedder.count_tokens(embedding_text(doc.title, c.text, s.embed_titles))
                    <= embedder.max_tokens
                )
                n += 1
    assert n > 5183


def test_parade_question_finds_the_troops_passage(tmp_path, embedder):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "news.txt").write_text(SEED.read_text(encoding="utf-8"), encoding="utf-8")
    s = Settings(seeds_dir=seeds, index_dir=tmp_path / "emb")
    build_index(s)
    retriever = Retriever(s)
    top = retriever.search("How many troops took part in the parade?", k=3)
    assert "14,000 troops" in top[0].text
    from assistant.answer import ask

    answer = ask("How many troops took part in the parade?", settings=s, retriever=retriever)
    assert not answer.abstained and "14,000" in answer.citations[0].quote
    for q in ["What is the capital of Australia?", "How do I bake sourdough bread?"]:
        assert ask(q, settings=s, retriever=retriever).abstained, q


def test_committed_index_is_current_with_seeds():
    """embeddings/ is committed so a fresh clone starts at once; it must match seeds/."""
    s = Settings(seeds_dir=REPO / "seeds", index_dir=REPO / "embeddings")
    build = current_build(s.index_dir)
    assert build is not None, "embeddings/ is empty: run `assistant build`"
    manifest = read_manifest(build)
    assert manifest["model"] == s.model and manifest["chunking"] == s.chunk_params()
    corpus = load_corpus(s.seeds_dir)
    assert {d.id: d.sha256 for d in corpus.documents} == {
        k: v["sha256"] for k, v in manifest["documents"].items()
    }, "embeddings/ is stale against seeds/: run `assistant build` and commit embeddings/"
    assert not diff(s, manifest).changes()


def test_wordpiece_vectors_come_from_the_same_pass_as_the_sentence_vector(embedder):
    texts = ["Who succeeded Kim as leader?", "Kim named his sister as his successor in 2026."]
    vectors, tokens, spans = embedder.embed_tokens(texts)
    assert abs(vectors - embedder.embed(texts)).max() < 1e-5
    assert [texts[0][a:b] for a, b in spans[0]] == ["Who", "succeeded", "Kim", "as", "leader", "?"]
    assert all(len(t) == len(s) for t, s in zip(tokens, spans))


def test_word_by_word_match_meets_a_reworded_answer(embedder):
    """The question's "succeeded" finds the sentence's "successor" (maxsim): both sentences
    share "chairman", neither has "succeed", so word overlap cannot tell them apart."""
    import numpy as np

    from assistant.answer.question import Question
    from assistant.answer.select import maxsims, token_weights

    question = "Who succeeded the chairman?"
    sentences = [
        "The chairman spoke to the board about the budget for next year.",
        "Maria Lopez was named the chairman's successor in May.",
    ]
    q = Question(question, ["succeed", "chairman"], {"succeed": 2.0, "chairman": 1.0})
    _, (q_tokens,), (spans,) = embedder.embed_tokens([question])
    _, tokens, _ = embedder.embed_tokens(sentences)
    weights = token_weights(q, spans)
    assert weights[0] == 0 and weights[1] == 2.0  # "who" is no term, "succeeded" is
    sims = maxsims(q_tokens, weights, tokens)
    assert np.argmax(sims) == 1


def test_the_reader_model_meets_a_reworded_answer():
    """The question's "succeeded" finds the sentence's "successor": both sentences share
    "chairman", neither has "succeed", so word overlap cannot tell them apart."""
    from assistant.crossencoder import default_reader

    sentences = [
        "The chairman spoke to the board about the budget for next year.",
        "Maria Lopez was named the chairman's successor in May.",
    ]
    reading = default_reader().read("Who succeeded the chairman?", sentences)
    assert reading.relevance[1] > reading.relevance[0]
    a, b = reading.spans[1]
    assert "Maria Lopez" in sentences[1][a:b]
