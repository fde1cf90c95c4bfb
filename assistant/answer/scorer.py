"""The fitted models of the reader, applied with numpy: logistic regressions or small
gradient-boosted trees, whose parameters ship in ``weights.json``.

``benchmarks/fit_reader.py`` writes that file (the models, the chosen abstention threshold, and
what they were fitted on); this module only applies it.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

WEIGHTS = Path(__file__).with_name("weights.json")


@lru_cache(maxsize=4)
def load_weights(path: str | None = None) -> dict:
    """The fitted models (the packaged file unless ``path`` names another)."""
    return json.loads(Path(path or WEIGHTS).read_text(encoding="utf-8"))


def predict(model: dict, x: np.ndarray) -> np.ndarray:
    """P(label = 1) for each row of ``x`` (columns in ``model["features"]`` order)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    if model.get("kind") == "trees":
        logits = np.full(len(x), float(model["baseline"]))
        for tree in model["trees"]:
            logits += _tree_values(tree, x)
    else:
        z = (x - np.asarray(model["mean"])) / np.asarray(model["scale"])
        logits = z @ np.asarray(model["coef"]) + float(model["intercept"])
    return 1.0 / (1.0 + np.exp(-np.clip(logits, -40, 40)))


def _tree_values(tree: dict, x: np.ndarray) -> np.ndarray:
    """The leaf value each row of ``x`` reaches in one regression tree (arrays of nodes:
    feature, threshold, left, right, value; a leaf has feature -1)."""
    feature = np.asarray(tree["feature"])
    threshold = np.asarray(tree["threshold"])
    left, right = np.asarray(tree["left"]), np.asarray(tree["right"])
    node = np.zeros(len(x), dtype=np.int64)
    rows = np.arange(len(x))
    while True:
        inner = feature[node] >= 0
        if not inner.any():
            break
        f = np.where(inner, feature[node], 0)
        go_left = x[rows, f] <= threshold[node]
        node = np.where(inner, np.where(go_left, left[node], right[node]), node)
    return np.asarray(tree["value"])[node]
