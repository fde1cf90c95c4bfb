"""Shared benchmark plumbing: the public data sets as seed folders, cached indexes, timing.

Data is read from ``../shared/data`` (never copied into the project); documents are written as
plain files under ``.cache/bench/`` (gitignored) so they go through the normal pipeline, and the
index built for a benchmark is kept there, keyed by the settings that decide its content, so a
re-run does not re-embed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import statistics
import sys
from pathlib import Path
from typing import NoReturn, TextIO

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ASSISTANT_BENCH_DATA", REPO.parent / "shared" / "data"))
CACHE = Path(os.environ.get("ASSISTANT_BENCH_CACHE", REPO / ".cache" / "bench"))


def missing_data(path: Path) -> NoReturn:
    """Exit with one line naming the benchmark data that is not there (no traceback)."""
    where = f" (no folder {DATA})" if not DATA.is_dir() else ""
    sys.exit(
        f"benchmark data not found: {path}{where}; the benchmarks read the public data sets "
        "(scifact/, squad/, squad2/; see BENCHMARKS.md) from ../shared/data, or from the "
        "folder ASSISTANT_BENCH_DATA names"
    )


def open_data(path: Path) -> TextIO:
    """``path`` opened for reading (UTF-8); a missing file of the benchmark data (under
    ``DATA``) exits with one line naming it instead of a ``FileNotFoundError`` traceback."""
    try:
        return open(path, encoding="utf-8")
    except FileNotFoundError:
        if Path(path).resolve().is_relative_to(DATA.resolve()):
            missing_data(Path(path))
        raise


def read_jsonl(path: Path) -> list[dict]:
    with open_data(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with open_data(path) as handle:
        next(handle)
        for line in handle:
            qid, did, score = line.rstrip("\n").split("\t")
            qrels.setdefault(qid, {})[did] = int(score)
    return qrels


def _write_if_changed(path: Path, text: str) -> None:
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def scifact_seeds() -> Path:
    """SciFact's 5,183 abstracts as ``<doc id>.txt`` files: title line, blank line, abstract."""
    root = CACHE / "scifact" / "seeds"
    done = root / ".complete"
    if done.exists():
        return root
    for row in read_jsonl(DATA / "scifact" / "corpus.jsonl"):
        _write_if_changed(root / f"{row['_id']}.txt", f"{row['title']}\n\n{row['text']}\n")
    done.write_text("ok")
    return root


def squad_articles() -> dict[str, list[dict]]:
    """SQuAD v1.1 dev paragraphs grouped by article, in order."""
    articles: dict[str, list[dict]] = {}
    for row in read_jsonl(DATA / "squad" / "corpus.jsonl"):
        article = row["_id"].rsplit("_", 1)[0]
        articles.setdefault(article, []).append(row)
    return articles


def squad_seeds(exclude: str | None = None) -> Path:
    """The 48 SQuAD dev articles as ``<article>.txt`` files (title, then its paragraphs);
    ``exclude`` leaves one article out (for the leave-one-article-out abstention run)."""
    name = "all" if exclude is None else f"without-{exclude}"
    root = CACHE / "squad" / name / "seeds"
    done = root / ".complete"
    if done.exists():
        return root
    for article, paragraphs in squad_articles().items():
        if article == exclude:
            continue
        title = paragraphs[0]["title"].replace("_", " ")
        body = "\n\n".join(p["text"].strip() for p in paragraphs)
        _write_if_changed(root / f"{article}.txt", f"{title}\n\n{body}\n")
    done.write_text("ok")
    return root


def index_dir_for(seeds: Path, settings_fields: dict) -> Path:
    """A cache folder for the index of ``seeds`` under these settings (content-keyed)."""
    key = hashlib.sha256(
        json.dumps(settings_fields, sort_keys=True, default=str).encode()
    ).hexdigest()[:12]
    return seeds.parent / f"index-{key}"


def add_scorer_option(parser) -> None:
    """``--scorer``: which reader a benchmark asks with (``ASSISTANT_ANSWER_SCORER``)."""
    parser.add_argument(
        "--scorer",
        choices=["fitted", "model"],
        default="fitted",
        help="the reader: the fitted trees (default) or the reader model trained here",
    )


def bench_settings(seeds: Path, **overrides):
    """Settings for a benchmark: seeds and a cached index folder keyed by what shapes the index."""
    from assistant.config import Settings

    base = Settings(seeds_dir=seeds, index_dir=seeds.parent / "index-tmp", **overrides)
    keyed = {
        "model": base.model,
        **base.chunk_params(),
        "ann_threshold": base.ann_threshold,
        "hnsw": [base.hnsw_m, base.hnsw_ef_construction],
    }
    return base.model_copy(update={"index_dir": index_dir_for(seeds, keyed)})


def ensure_index(settings, progress: bool = True):
    """Build (incrementally; a no-op when up to date) and return the report."""
    from assistant.build import build_index

    if settings.store == "milvus":
        reuse_embedded_vectors(settings)
    return build_index(settings, progress=progress, wait=None)


def reuse_embedded_vectors(settings) -> int:
    """Before a first Milvus build of a corpus that the embedded store already holds (same
    folder, same model and chunk settings): put the embedded build's vectors into the build's
    checkpoint, so the Milvus build resumes from them instead of embedding the corpus again (the
    same model gives the same vectors; the build still reads, chunks and writes everything, and
    takes a document's vectors only if its chunk count matches). Returns the chunks reused."""
    import numpy as np

    from assistant.store import FaissSqliteBackend, backend_for
    from assistant.store.checkpoint import Checkpoint, document_key

    if backend_for(settings).current(settings) is not None:
        return 0
    embedded = settings.model_copy(update={"store": "faiss"})
    try:
        index = FaissSqliteBackend().open(embedded)
    except Exception:  # noqa: BLE001 - no embedded build to reuse
        return 0
    manifest = index.manifest
    key = {
        "model": manifest["model"],
        "dim": manifest["dim"],
        "backend": manifest.get("backend", "torch"),
        **manifest["chunking"],
    }
    checkpoint, done, total = Checkpoint(settings.index_dir), {}, 0
    for info in manifest["documents"].values():
        first, n = info["first_chunk"], info["chunks"]
        vectors = index.vectors(range(first, first + n)).astype(np.float32)
        done[document_key(info["sha256"], info.get("extractor", ""), key)] = vectors
        total += n
        if len(done) >= 512:
            checkpoint.save(done)
            done = {}
    checkpoint.save(done)
    index.close()
    print(f"reusing the embedded build's vectors of {total} chunks (checkpoint)")
    return total


def percentiles(values: list[float]) -> tuple[float, float]:
    """p50 and p95 of ``values``."""
    ordered = sorted(values)
    p50 = statistics.median(ordered)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return p50, p95


def table(headers: list[str], rows: list[list]) -> str:
    """A markdown table."""

    def cell(v) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_note() -> str:
    import platform

    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


_WS = re.compile(r"\s+")


def normalize(text: str) -> str:
    return _WS.sub(" ", text).strip().lower()


def squad2_articles() -> list[dict]:
    """The 16 articles of the shared SQuAD 2.0 dev part 1, in the official JSON layout."""
    with open_data(DATA / "squad2" / "dev-v2.0-part1.json") as handle:
        return json.load(handle)["data"]


def squad2_seeds() -> Path:
    """The SQuAD 2.0 part-1 articles as ``<article>.txt`` files (title, then its paragraphs)."""
    root = CACHE / "squad2" / "all" / "seeds"
    done = root / ".complete"
    if done.exists():
        return root
    for article in squad2_articles():
        title = article["title"].replace("_", " ")
        body = "\n\n".join(p["context"].strip() for p in article["paragraphs"])
        _write_if_changed(root / f"{article['title']}.txt", f"{title}\n\n{body}\n")
    done.write_text("ok")
    return root


def squad2_single_seeds(title: str) -> Path:
    """One SQuAD 2.0 part-1 article alone as a seeds folder: a small corpus, as a new user's."""
    root = CACHE / "squad2" / f"single-{title}" / "seeds"
    done = root / ".complete"
    if done.exists():
        return root
    for article in squad2_articles():
        if article["title"] == title:
            body = "\n\n".join(p["context"].strip() for p in article["paragraphs"])
            _write_if_changed(root / f"{title}.txt", f"{title.replace('_', ' ')}\n\n{body}\n")
    done.write_text("ok")
    return root
