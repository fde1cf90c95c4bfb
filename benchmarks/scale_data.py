"""The scale benchmark's indexes and the measuring helpers its two stores share.

``benchmarks/scale.py`` writes and measures the embedded store, ``benchmarks/scale_milvus.py``
the same sizes in Milvus; both read their data, queries and timings from here (see the
docstring of ``benchmarks/scale.py`` for what the synthetic sizes are).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import sys
import time

import numpy as np

from benchmarks.common import CACHE, DATA, percentiles, read_jsonl

SCALE = CACHE / "scale"
SIZES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def rss_mb() -> tuple[float, float]:
    out = {}
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024
    return out.get("VmRSS", float("nan")), out.get("VmHWM", float("nan"))


# --------------------------------------------------------------------------- real base data


def base_data() -> tuple[list[dict], np.ndarray]:
    """The real chunks (SQuAD first, then SciFact) as documents, and their vectors in order."""
    cached = SCALE / "base.json"
    if cached.exists():
        return json.loads(cached.read_text()), np.load(SCALE / "base.npy")
    import faiss

    from benchmarks.common import bench_settings, scifact_seeds, squad_seeds

    docs: list[dict] = []
    parts = []
    for name, seeds in (("squad", squad_seeds()), ("scifact", scifact_seeds())):
        # Any cached build of these seeds with the default chunking (the format may be older).
        base = bench_settings(seeds)
        wanted = (base.chunk_params(), base.model, "torch")
        build = None
        # index-* (benchmarks.retrieval/answers) or build-bench-* (benchmarks.build) caches.
        for pointer in sorted(seeds.parent.glob("*/CURRENT")):
            candidate = pointer.parent / pointer.read_text().strip()
            manifest = json.loads((candidate / "manifest.json").read_text())
            got = (manifest["chunking"], manifest["model"], manifest.get("backend", "torch"))
            if got == wanted and manifest["counts"]["documents"] == len(list(seeds.glob("*.txt"))):
                build = candidate
        if build is None:
            raise SystemExit(f"no cached build of {seeds}: run benchmarks.retrieval first")
        db = sqlite3.connect(build / "chunks.sqlite")
        rows = db.execute('SELECT id, doc_id, start, "end", n_tokens, text FROM chunks ORDER BY id')
        titles = dict(db.execute("SELECT id, title FROM documents"))
        index = faiss.read_index(str(build / "vectors.faiss"))
        parts.append(index.reconstruct_n(0, index.ntotal))
        by_doc: dict[str, dict] = {}
        for _, doc_id, start, end, n_tokens, text in rows:
            d = by_doc.setdefault(
                doc_id, {"id": f"{name}/{doc_id}", "title": titles[doc_id], "rows": []}
            )
            d["rows"].append([start, end, n_tokens, text])
        docs.extend(by_doc.values())
        db.close()
    vectors = np.concatenate(parts).astype(np.float32)
    assert sum(len(d["rows"]) for d in docs) == len(vectors)
    SCALE.mkdir(parents=True, exist_ok=True)
    np.save(SCALE / "base.npy", vectors)
    cached.write_text(json.dumps(docs))
    return docs, vectors


def _vary(text: str, other: str, rng: np.random.Generator) -> str:
    words = text.split(" ")
    keep = rng.random(len(words)) > 0.1
    words = [w for w, k in zip(words, keep) if k] or words[:1]
    extra = other.split(" ")
    for _ in range(3):
        words.insert(int(rng.integers(0, len(words) + 1)), extra[int(rng.integers(0, len(extra)))])
    return " ".join(words)


def synthetic(size: str, noise: float):
    """``(docs as [id, title, [(text, n_tokens)]], vectors)`` for a size."""
    docs, vectors = base_data()
    n_target = SIZES[size]
    out_docs = []
    out_vecs = []
    if size == "10k":
        total = 0
        offset = 0
        for d in docs:
            if total >= n_target:
                break
            rows = d["rows"]
            out_docs.append((d["id"], d["title"], [(r[3], r[2]) for r in rows]))
            out_vecs.append(vectors[offset : offset + len(rows)])
            offset += len(rows)
            total += len(rows)
        # SQuAD comes first, then SciFact in order: offsets follow the list.
        return out_docs, np.concatenate(out_vecs), "real text and vectors"
    texts = [r[3] for d in docs for r in d["rows"]]
    n_base = len(vectors)
    copies = -(-n_target // n_base)
    rng = np.random.default_rng(7)
    total = 0
    for r in range(copies):
        offset = 0
        for d in docs:
            rows = d["rows"]
            if total >= n_target:
                break
            if r == 0:
                chunk_texts = [(row[3], row[2]) for row in rows]
            else:
                chunk_texts = [
                    (_vary(row[3], texts[int(rng.integers(0, n_base))], rng), row[2])
                    for row in rows
                ]
            out_docs.append((f"copy{r:03d}/{d['id']}", d["title"], chunk_texts))
            v = vectors[offset : offset + len(rows)]
            if r:
                v = v + rng.standard_normal(v.shape, dtype=np.float32) * (
                    noise / np.sqrt(v.shape[1])
                )
                v /= np.linalg.norm(v, axis=1, keepdims=True)
            out_vecs.append(v.astype(np.float32))
            offset += len(rows)
            total += len(rows)
    what = (
        f"SYNTHETIC: {n_base:,} real chunks x {copies} with word-level variations; vectors = "
        f"real + Gaussian noise of norm {noise}, renormalized"
    )
    return out_docs, np.concatenate(out_vecs), what


# --------------------------------------------------------------------------- building


def size_settings(size: str, **over):
    from assistant.config import Settings

    root = SCALE / size
    return Settings(seeds_dir=root / "seeds", index_dir=root / "index", **over)


def build(size: str, noise: float) -> dict:
    """Write the index for ``size`` (cached) and return its build info."""
    import faiss

    from assistant.corpus import sha256_bytes
    from assistant.store.manifest import FORMAT_VERSION, READABLE_FORMATS
    from assistant.store.planner import BuildInput, DocumentRows
    from assistant.store.writer import write_build

    settings = size_settings(size)
    info_path = SCALE / size / "build.json"
    key = {
        "format": FORMAT_VERSION,
        "noise": noise,
        "ann": settings.ann_kind,
        "threshold": settings.ann_threshold,
        "nlist": settings.ivf_nlist,
    }
    if info_path.exists():
        info = json.loads(info_path.read_text())
        cached = dict(info.get("key", {}))
        # An index of an older format that this version still reads is measured as it is.
        if cached.pop("format", None) in READABLE_FORMATS and cached == {
            k: v for k, v in key.items() if k != "format"
        }:
            return info
    faiss.omp_set_num_threads(2)
    t0 = time.perf_counter()
    docs, vectors, what = synthetic(size, noise)
    log(f"[{size}] generated {len(vectors):,} chunks in {time.perf_counter() - t0:.0f}s")
    root = SCALE / size
    shutil.rmtree(root, ignore_errors=True)
    seeds = root / "seeds"
    rows: list[DocumentRows] = []
    # The 100k index is backed by seed files so that `build_index` can extend it incrementally.
    with_seeds = size == "100k"
    for doc_id, title, chunks in docs:
        text = ""
        spans = []
        for chunk, n_tokens in chunks:
            if text:
                text += "\n\n"
            spans.append((len(text), len(text) + len(chunk), n_tokens, chunk))
            text += chunk
        stat = {"size": None, "mtime_ns": None}
        digest = hashlib.sha256(text.encode()).hexdigest()
        if with_seeds:
            path = seeds / f"{doc_id}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{title}\n\n{text}", encoding="utf-8")
            data = path.read_bytes()
            digest = sha256_bytes(data)
            st = path.stat()
            stat = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
            shift = len(title) + 2
            spans = [(s + shift, e + shift, n, c) for s, e, n, c in spans]
        rows.append(DocumentRows(f"{doc_id}.txt", title, digest, stat, spans))
    settings.index_dir.mkdir(parents=True, exist_ok=True)
    source = None if with_seeds else {"kind": "synthetic", "what": what}
    started = time.perf_counter()
    built = BuildInput(vectors.shape[1], 256, rows, vectors, source=source)
    final, manifest = write_build(settings, built)
    seconds = time.perf_counter() - started
    disk = sum(p.stat().st_size for p in final.rglob("*") if p.is_file())
    info = {
        "key": key,
        "what": what,
        "chunks": manifest["counts"]["chunks"],
        "documents": manifest["counts"]["documents"],
        "build_s": seconds,
        "disk_mb": disk / 1e6,
        "index": manifest["index"],
        "files_mb": {k: v["size"] / 1e6 for k, v in manifest["files"].items()},
    }
    np.save(SCALE / size / "vectors.npy", vectors)  # for exact ground truth
    info_path.write_text(json.dumps(info, indent=1))
    log(f"[{size}] written in {seconds:.0f}s: {info}")
    return info


# --------------------------------------------------------------------------- measuring


def queries(n: int) -> list[str]:
    sci = [q["text"] for q in read_jsonl(DATA / "scifact" / "queries_test.jsonl")]
    squad = [q["text"] for q in read_jsonl(DATA / "squad" / "queries.jsonl")[::50]]
    out = []
    for a, b in zip(sci, squad):
        out += [a, b]
    return out[:n]


def interleaved(model, retriever, qs: list[str]) -> tuple[list[float], list[float]]:
    """Milliseconds of a raw ``model.encode([q])`` and of ``retriever.search(q)`` per query,
    the two interleaved (alternating which goes first) after a warm-up search."""
    retriever.search("warm up query about cells", k=5)
    enc, ret = [], []
    for i, q in enumerate(qs):
        for which in (0, 1) if i % 2 else (1, 0):
            t = time.perf_counter()
            if which == 0:
                model.encode([q], normalize_embeddings=True, convert_to_numpy=True)
            else:
                retriever.search(q, k=5)
            (enc if which == 0 else ret).append((time.perf_counter() - t) * 1000)
    return enc, ret


def latencies(enc: list[float], ret: list[float]) -> dict[str, float]:
    """p50 and p95 of the encode and retrieve milliseconds (``interleaved``)."""
    (enc50, enc95), (r50, r95) = percentiles(enc), percentiles(ret)
    return {"encode_p50": enc50, "encode_p95": enc95, "retrieve_p50": r50, "retrieve_p95": r95}


def exact_top10(size: str, qv: np.ndarray) -> np.ndarray:
    """The exact top-10 chunk ids of each query vector over the size's synthetic vectors (the
    ground truth of dense recall@10)."""
    import faiss

    vectors = np.load(SCALE / size / "vectors.npy", mmap_mode="r")
    exact = faiss.IndexFlatIP(vectors.shape[1])
    for i in range(0, len(vectors), 200_000):
        exact.add(np.ascontiguousarray(vectors[i : i + 200_000]))
    faiss.omp_set_num_threads(2)
    _, truth = exact.search(qv, 10)
    return truth


def opened(settings):
    """``(model, retriever, load seconds, RSS MB with the model loaded)``: the model warmed
    up, then the index opened and timed."""
    from assistant.embedder import get_embedder
    from assistant.retrieval import Retriever

    embedder = get_embedder(settings.model)
    model = embedder._model
    model.encode(["warm up the model"], normalize_embeddings=True)
    rss_model, _ = rss_mb()
    retriever = Retriever(settings, embedder=embedder)
    started = time.perf_counter()
    retriever.index  # noqa: B018 - opening it is what is timed
    return model, retriever, time.perf_counter() - started, rss_model
