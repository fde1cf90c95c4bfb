"""The same sentence-transformers model run by ONNX Runtime, int8 dynamically quantized.

``ASSISTANT_EMBED_BACKEND=onnx-int8``: on first use the packaged model is exported in this
process (``torch.onnx.export`` of its transformer, then ``onnxruntime``'s per-channel
``quantize_dynamic``) into a cache folder; afterwards only ``onnxruntime`` and ``tokenizers``
run: the model's own ``tokenizer.json``, mean pooling over the attention mask, L2 norm (what
the sentence-transformers model does). Needs ``pip install onnxruntime onnx`` (the ``onnx``
extra). The backend is recorded in the manifest: vectors of two backends never mix.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from .embedder import resolve_model_path
from .errors import ModelNotFoundError

BACKENDS = ("torch", "onnx-int8")
EXPORT_VERSION = 1  # bump when the export or quantization recipe changes


def cache_dir(model_path: Path) -> Path:
    """Where the exported files of this model folder live (keyed by its files' sizes/mtimes)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "assistant" / "onnx"
    stamp = [EXPORT_VERSION] + sorted(
        (p.name, p.stat().st_size, p.stat().st_mtime_ns)
        for p in model_path.iterdir()
        if p.is_file()
    )
    key = hashlib.sha256(json.dumps([str(model_path), stamp]).encode()).hexdigest()[:16]
    return base / f"{model_path.name}-{key}"


def export_int8(model_path: Path, out_dir: Path) -> Path:
    """Export the model's transformer to ONNX and quantize it (int8, per channel), once."""
    target = out_dir / "model_int8.onnx"
    if target.exists():
        return target
    out_dir.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock

    with FileLock(str(out_dir / ".lock")):
        if target.exists():
            return target
        import torch
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(str(model_path), device="cpu", local_files_only=True)
        inner = st[0].auto_model.eval()

        class Hidden(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001, ANN201
                return self.inner(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    token_type_ids=token_type_ids,
                ).last_hidden_state

        names = ["input_ids", "attention_mask", "token_type_ids"]
        sample = st.tokenizer(
            ["a sample", "another sample sentence"], padding=True, return_tensors="pt"
        )
        fp32 = out_dir / f".model-{os.getpid()}.onnx"
        tmp = out_dir / f".model_int8-{os.getpid()}.onnx"
        with torch.no_grad():
            torch.onnx.export(
                Hidden().eval(),
                tuple(sample[n] for n in names),
                str(fp32),
                input_names=names,
                output_names=["hidden"],
                dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "hidden"]},
                opset_version=17,
                dynamo=False,
            )
        quantize_dynamic(str(fp32), str(tmp), per_channel=True, weight_type=QuantType.QInt8)
        fp32.unlink(missing_ok=True)
        os.replace(tmp, target)
    return target


class OnnxEmbedder:
    """The ``Embedder`` protocol over an int8 ONNX export of a sentence-transformers model."""

    backend = "onnx-int8"

    def __init__(self, model: str) -> None:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ModelNotFoundError(
                "ASSISTANT_EMBED_BACKEND=onnx-int8 needs onnxruntime and onnx: "
                "pip install onnxruntime onnx (or set ASSISTANT_EMBED_BACKEND=torch)"
            ) from exc
        path = resolve_model_path(model)
        self.name = model
        config = json.loads((path / "sentence_bert_config.json").read_text(encoding="utf-8"))
        self.max_tokens = int(config.get("max_seq_length", 256))
        self.dim = int(
            json.loads((path / "config.json").read_text(encoding="utf-8"))["hidden_size"]
        )
        onnx_file = export_int8(path, cache_dir(path))
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, os.cpu_count() or 1)
        self._session = ort.InferenceSession(
            str(onnx_file), options, providers=["CPUExecutionProvider"]
        )
        self._counter = Tokenizer.from_file(str(path / "tokenizer.json"))
        self._counter.no_truncation()
        self._counter.no_padding()
        self._tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self._tokenizer.enable_truncation(self.max_tokens)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        # The session and both tokenizers are shared by every thread of the process: each use
        # is made under this lock (as in ``SentenceTransformerEmbedder``).
        self._lock = threading.RLock()

    def embed(
        self, texts: Sequence[str], batch_size: int = 32, progress: bool = False
    ) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # batches of like lengths
        with self._lock:
            for i in range(0, len(texts), batch_size):
                idx = order[i : i + batch_size]
                encoded = self._tokenizer.encode_batch([texts[j] for j in idx])
                feed = {
                    "input_ids": np.array([e.ids for e in encoded], np.int64),
                    "attention_mask": np.array([e.attention_mask for e in encoded], np.int64),
                    "token_type_ids": np.array([e.type_ids for e in encoded], np.int64),
                }
                hidden = self._session.run(None, feed)[0]
                mask = feed["attention_mask"][..., None].astype(np.float32)
                pooled = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
                out[idx] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return out

    def fits(self, text: str) -> bool:
        with self._lock:
            ids = self._counter.encode(text).ids
        return len(ids) <= self.max_tokens


@lru_cache(maxsize=2)
def get_onnx_embedder(model: str) -> OnnxEmbedder:
    return OnnxEmbedder(model)
