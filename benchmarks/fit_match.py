"""Fit the reader's match model (``assistant/answer/match.py``) and write ``match.npz``.

Called by ``benchmarks/fit_reader.py`` (which gathers the training questions' candidate
sentences and their wordpiece vectors) before the sentence trees are fitted, since the match
logit is one of their features. The model is the torch twin of ``match.scores``; it is trained
listwise: for each question, a softmax over its candidate sentences, the loss being minus the
log of the probability given to the sentences holding a gold answer. A tenth of the training
questions (seeded) is held out to pick the epoch; the exported numpy model is checked against
the torch one.
"""

from __future__ import annotations

import copy
import random
import sys
import time

import numpy as np

from assistant.answer.match import MATCH_WEIGHTS, MAX_TOKENS, scores


def _log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def _model(dim: int, d: int):
    import torch
    from torch import nn

    class Match(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.A = nn.Linear(dim, d, bias=False)
            self.C = nn.Linear(dim, d, bias=False)
            self.W1 = nn.Linear(3 * d + 1, d)
            self.W2 = nn.Linear(3 * d + 1, d)
            self.W3 = nn.Linear(5 * d, d)
            self.w4 = nn.Linear(d, 1)
            self.tau = nn.Parameter(torch.tensor(10.0))
            self.drop = nn.Dropout(0.1)

        def forward(self, q, qmask, qw, qv, s, smask):  # noqa: ANN001, ANN201
            neg = -1e4
            e = q @ s.transpose(1, 2)  # (B, m, n)
            over_s = e.masked_fill(~smask[:, None, :], neg)
            over_q = e.masked_fill(~qmask[:, :, None], neg)
            qa, sa = self.A(q), self.A(s)
            beta = torch.softmax(self.tau * over_s, dim=2) @ sa
            alpha = torch.softmax(self.tau * over_q, dim=1).transpose(1, 2) @ qa
            eq = over_s.max(dim=2).values[..., None]
            es = over_q.max(dim=1).values[..., None]
            hq = torch.relu(self.W1(torch.cat([qa, beta, qa * beta, eq], dim=-1)))
            hs = torch.relu(self.W2(torch.cat([sa, alpha, sa * alpha, es], dim=-1)))
            hq, hs = hq * qmask[..., None], hs * smask[..., None]
            vq_idf = (qw[..., None] * hq).sum(1)
            vq_mean = hq.sum(1) / qmask.sum(1, keepdim=True)
            vs_mean = hs.sum(1) / smask.sum(1, keepdim=True)
            vs_max = hs.max(dim=1).values
            u = torch.cat([vq_idf, vq_mean, vs_mean, vs_max, self.C(qv) * vs_mean], dim=-1)
            return self.w4(self.drop(torch.relu(self.W3(self.drop(u))))).squeeze(-1)

        def export(self) -> dict[str, np.ndarray]:
            def t(x):  # noqa: ANN001, ANN202
                return x.detach().numpy().astype(np.float32)

            return {
                "A": t(self.A.weight).T,
                "C": t(self.C.weight).T,
                "W1": t(self.W1.weight).T,
                "b1": t(self.W1.bias),
                "W2": t(self.W2.weight).T,
                "b2": t(self.W2.bias),
                "W3": t(self.W3.weight).T,
                "b3": t(self.W3.bias),
                "w4": t(self.w4.weight).ravel(),
                "b4": t(self.w4.bias),
                "tau": np.array([float(self.tau.detach())], np.float32),
            }

    return Match()


def _batch(groups: list[dict]):
    """Padded tensors for the candidates of ``groups`` (each question repeated per candidate)."""
    import torch

    rows = [(g, i) for g in groups for i in range(len(g["tokens"]))]
    m = max(len(g["q_tokens"]) for g in groups)
    n = max(min(MAX_TOKENS, len(g["tokens"][i])) for g, i in rows)
    dim = groups[0]["q_tokens"].shape[1]
    q = np.zeros((len(rows), m, dim), np.float32)
    s = np.zeros((len(rows), n, dim), np.float32)
    qmask = np.zeros((len(rows), m), bool)
    smask = np.zeros((len(rows), n), bool)
    qw = np.zeros((len(rows), m), np.float32)
    qv = np.zeros((len(rows), dim), np.float32)
    for r, (g, i) in enumerate(rows):
        k = len(g["q_tokens"])
        q[r, :k] = g["q_tokens"]
        qmask[r, :k] = True
        w = np.asarray(g["q_weights"], np.float32)
        qw[r, :k] = w / (w.sum() or 1.0)
        qv[r] = g["q_vector"]
        t = g["tokens"][i][:MAX_TOKENS]
        s[r, : len(t)] = t
        smask[r, : len(t)] = True
    tensors = [torch.from_numpy(x) for x in (q, qmask, qw, qv, s, smask)]
    sizes = [len(g["tokens"]) for g in groups]
    return tensors, sizes


def _listwise(logits, sizes: list[int], labels: list[np.ndarray]):  # noqa: ANN001, ANN202
    import torch

    losses = []
    for chunk, y in zip(torch.split(logits, sizes), labels):
        pos = torch.from_numpy(y.astype(bool))
        losses.append(torch.logsumexp(chunk, 0) - torch.logsumexp(chunk[pos], 0))
    return torch.stack(losses).mean()


def fit_match(
    examples: list[dict],
    model_name: str,
    epochs: int = 12,
    d: int = 64,
    per_batch: int = 16,
    seed: int = 0,
) -> dict:
    """Train on the examples with at least one positive candidate; write ``match.npz``."""
    import torch

    torch.manual_seed(seed)
    groups = [
        {**e["reading"], "labels": np.asarray(e["labels"])}
        for e in examples
        if e["reading"] is not None and any(e["labels"]) and not all(e["labels"])
    ]
    random.Random(seed).shuffle(groups)
    n_val = len(groups) // 10
    val, train = groups[:n_val], groups[n_val:]
    dim = train[0]["q_tokens"].shape[1]
    model = _model(dim, d)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-2)
    best = (float("inf"), None, -1)
    started = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        random.Random(seed + epoch).shuffle(train)
        for i in range(0, len(train), per_batch):
            part = train[i : i + per_batch]
            tensors, sizes = _batch(part)
            loss = _listwise(model(*tensors), sizes, [g["labels"] for g in part])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            losses, top1 = [], []
            for i in range(0, len(val), 64):
                part = val[i : i + 64]
                tensors, sizes = _batch(part)
                logits = model(*tensors)
                losses.append(
                    float(_listwise(logits, sizes, [g["labels"] for g in part])) * len(part)
                )
                for chunk, g in zip(torch.split(logits, sizes), part):
                    top1.append(g["labels"][int(chunk.argmax())])
        val_loss = sum(losses) / len(val)
        _log(
            f"  match epoch {epoch + 1}: held-out loss {val_loss:.3f}, top-1 {np.mean(top1):.3f} "
            f"({time.perf_counter() - started:.0f}s)"
        )
        if val_loss < best[0]:
            best = (val_loss, copy.deepcopy(model.state_dict()), epoch + 1)
    model.load_state_dict(best[1])
    weights = model.export()
    # The numpy twin must give the torch model's logits.
    g = val[0]
    with torch.no_grad():
        tensors, _ = _batch([g])
        want = model(*tensors).numpy()
    got = scores(weights, g["q_tokens"], g["q_weights"], g["q_vector"], g["tokens"])
    assert np.allclose(got, want, atol=1e-3), f"numpy match model differs: {got} {want}"
    np.savez(MATCH_WEIGHTS, model=np.array(model_name), **weights)
    _log(
        f"  match model: epoch {best[2]} kept (held-out loss {best[0]:.3f}); wrote {MATCH_WEIGHTS}"
    )
    return {
        "questions": len(train),
        "held_out": len(val),
        "epoch": best[2],
        "held_out_loss": round(best[0], 4),
    }


def apply_match(examples: list[dict], weights: dict) -> None:
    """Set every candidate's ``match`` feature, as ``ask()`` computes it."""
    for e in examples:
        r = e["reading"]
        if r is None:
            continue
        logits = scores(weights, r["q_tokens"], r["q_weights"], r["q_vector"], r["tokens"])
        for c, v in zip(e["cands"], logits):
            c.features["match"] = float(v)
