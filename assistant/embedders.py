"""Which embedder the settings name: the torch model or its ONNX int8 export.

One choice for the build, the retriever and any worker that embeds (e.g. a Ray task), so
vectors of one index never come from two backends by accident. Tests replace
``get_embedder`` here to load the fake embedder wherever the library would load the model.
"""

from __future__ import annotations

import threading

from .config import Settings
from .embedder import Embedder, SentenceTransformerEmbedder, get_embedder
from .embedder_onnx import get_onnx_embedder

_private: dict[str, Embedder] = {}
_private_lock = threading.Lock()


def embedder_for(settings: Settings) -> Embedder:
    """The shared embedder for ``settings.model`` on ``settings.embed_backend``."""
    if settings.embed_backend == "torch":
        return get_embedder(settings.model)
    return get_onnx_embedder(settings.model)


def build_embedder(settings: Settings) -> Embedder:
    """The embedder of the web app's background builds: for the torch model, a second copy of
    it (about 90 MB) with its own lock, so that the chat's query encodes never wait behind a
    build's batches; otherwise (ONNX, a test's fake) the shared one."""
    shared = embedder_for(settings)
    if not isinstance(shared, SentenceTransformerEmbedder):
        return shared
    with _private_lock:
        if settings.model not in _private:
            _private[settings.model] = SentenceTransformerEmbedder(settings.model)
        return _private[settings.model]
