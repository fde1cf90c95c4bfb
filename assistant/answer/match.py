"""A small fitted model that reads a question and a sentence word by word: does the sentence
answer the question, or only repeat its words?

It works on the wordpiece vectors the embedder already gives for the question and for each
shortlisted sentence (nothing more is embedded), in the manner of decomposable attention
(Parikh et al., 2016): every question wordpiece is compared with the sentence content it
aligns to, and every sentence wordpiece with the question content it aligns to, so the model
sees both what of the question the sentence covers and what the sentence adds (a sentence that
restates the question adds nothing; the one after it that holds the answer does). Its
parameters (about 100k numbers) are fitted by ``benchmarks/fit_match.py`` on SQuAD questions
outside the reported sample and ship in ``match.npz``; the output is one feature of the
sentence model (``select.py``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

MATCH_WEIGHTS = Path(__file__).with_name("match.npz")
MAX_TOKENS = 64  # wordpieces of a sentence read (the fit pads or cuts to this)


@lru_cache(maxsize=2)
def load(path: str | None = None) -> dict | None:
    """The fitted parameters (and ``model``: the embedder they were fitted on), or None when
    the file is missing (then the feature is 0)."""
    p = Path(path) if path else MATCH_WEIGHTS
    if not p.exists():
        return None
    with np.load(p) as data:
        out: dict = {k: data[k].astype(np.float32) for k in data.files if k != "model"}
        out["model"] = str(data["model"])
    return out


def applies(w: dict | None, embedder_name: str | None, dim: int) -> bool:
    """The model reads wordpiece vectors of the embedder it was fitted on, and no other."""
    return w is not None and w["model"] == embedder_name and w["A"].shape[0] == dim


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    x = x - x.max(axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def scores(
    w: dict[str, np.ndarray],
    q_tokens: np.ndarray,
    q_weights: np.ndarray,
    q_vector: np.ndarray,
    sentence_tokens: list[np.ndarray],
) -> np.ndarray:
    """One logit per sentence: higher when it answers the question. ``q_weights`` weigh the
    question's wordpieces (their words' IDF; ``select.token_weights``)."""
    q = q_tokens.astype(np.float32)
    qw = np.asarray(q_weights, dtype=np.float32)
    qw = qw / (qw.sum() or 1.0)
    qa = q @ w["A"]  # (m, d)
    qc = (q_vector.astype(np.float32) @ w["C"]).ravel()  # (d,)
    tau = float(w["tau"].ravel()[0])
    out = []
    for tokens in sentence_tokens:
        s = tokens[:MAX_TOKENS].astype(np.float32)
        sa = s @ w["A"]  # (n, d)
        e = q @ s.T  # (m, n) cosines
        beta = _softmax(tau * e, axis=1) @ sa  # each question wordpiece's aligned sentence part
        alpha = _softmax(tau * e, axis=0).T @ qa  # each sentence wordpiece's aligned question part
        hq = _relu(
            np.hstack([qa, beta, qa * beta, e.max(axis=1, keepdims=True)]) @ w["W1"] + w["b1"]
        )
        hs = _relu(np.hstack([sa, alpha, sa * alpha, e.max(axis=0)[:, None]]) @ w["W2"] + w["b2"])
        vs_mean = hs.mean(axis=0)
        u = np.concatenate([qw @ hq, hq.mean(axis=0), vs_mean, hs.max(axis=0), qc * vs_mean])
        out.append(
            float(_relu(u @ w["W3"] + w["b3"]) @ w["w4"].ravel() + float(w["b4"].ravel()[0]))
        )
    return np.array(out, dtype=np.float32)
