"""Which embedder the settings name: the torch model or its ONNX int8 export.

One choice for the build, the retriever and any worker that embeds (e.g. a Ray task), so
vectors of one index never come from two backends by accident. Tests replace
``get_embedder`` here to load the fake embedder wherever the library would load the model.
"""

from __future__ import annotations

from .config import Settings
from .embedder import Embedder, get_embedder
from .embedder_onnx import get_onnx_embedder


def embedder_for(settings: Settings) -> Embedder:
    """The shared embedder for ``settings.model`` on ``settings.embed_backend``."""
    if settings.embed_backend == "torch":
        return get_embedder(settings.model)
    return get_onnx_embedder(settings.model)
