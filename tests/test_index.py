import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from assistant.build import build_index
from assistant.config import Settings
from assistant.errors import (
    IncompatibleIndexError,
    IndexLockedError,
    IndexMissingError,
    StaleIndexError,
)
from assistant.store import open_index as load_index
from assistant.store.layout import current_build
from assistant.store.manifest import FORMAT_VERSION, read_manifest

from .conftest import REPO, live_build, live_manifest, write

pytestmark = pytest.mark.stores  # runs on both stores (tests/conftest.py)


def test_build_writes_manifest_and_store(seeded, fake_embedder):
    report = build_index(seeded, embedder=fake_embedder)
    assert (report.documents, report.new, report.embedded_chunks) == (3, 3, report.total_chunks)
    manifest = live_manifest(seeded)
    assert (
        manifest["format"] == FORMAT_VERSION
        and manifest["model"] == "fake"
        and manifest["dim"] == 64
    )
    assert manifest["chunking"] == seeded.chunk_params()
    assert manifest["index"]["kind"] == "flat"
    assert set(manifest["documents"]) == {"cats.txt", "news.txt", "notes/bread.md"}
    assert sum(d["chunks"] for d in manifest["documents"].values()) == manifest["counts"]["chunks"]
    if seeded.store == "faiss":
        assert {"vectors.faiss", "chunks.sqlite"} <= set(manifest["files"])
    index = load_index(seeded)
    rows = index.chunk_rows(index.chunk_ids())
    for doc_id, start, end, text, _title in rows.values():
        source = (seeded.seeds_dir / doc_id).read_text(encoding="utf-8")
        assert source[start:end] == text


def test_incremental_build_embeds_only_the_new_document(seeded, fake_embedder):
    first = build_index(seeded, embedder=fake_embedder)
    fake_embedder.texts_embedded = 0
    write(seeded, "fourth.txt", "A fourth document about penguins. Penguins live in Antarctica.")
    second = build_index(seeded, embedder=fake_embedder)
    assert (second.new, second.changed, second.removed, second.unchanged) == (1, 0, 0, 3)
    assert second.embedded_chunks == fake_embedder.texts_embedded == 1
    assert second.reused_chunks == first.total_chunks
    assert "1 new, 0 changed, 0 removed, 3 unchanged; embedded 1 chunks, reused" in second.summary()


def test_changed_and_removed_documents(seeded, fake_embedder):
    build_index(seeded, embedder=fake_embedder)
    write(seeded, "cats.txt", "Cats are now dogs. Completely different text.")
    (seeded.seeds_dir / "notes/bread.md").unlink()
    report = build_index(seeded, embedder=fake_embedder)
    assert (report.new, report.changed, report.removed, report.unchanged) == (0, 1, 1, 1)
    index = load_index(seeded)
    docs = {row[0] for row in index.chunk_rows(index.chunk_ids()).values()}
    assert docs == {"cats.txt", "news.txt"}
    assert index.lexical_search("sourdough starter", 5)[1].size == 0


def test_nothing_changed_is_a_no_op(seeded, fake_embedder):
    build_index(seeded, embedder=fake_embedder)
    before = live_build(seeded)
    report = build_index(seeded, embedder=fake_embedder)
    assert report.up_to_date and report.embedded_chunks == 0
    assert live_build(seeded) == before


def test_full_rebuild_and_chunk_setting_change_reembed_everything(
    seeded, fake_embedder, monkeypatch
):
    first = build_index(seeded, embedder=fake_embedder)
    assert (
        build_index(seeded, embedder=fake_embedder, full=True).embedded_chunks == first.total_chunks
    )
    monkeypatch.setenv("ASSISTANT_CHUNK_TOKENS", "100")
    changed = Settings()
    with pytest.raises(IncompatibleIndexError, match="chunk_tokens"):
        load_index(changed)
    report = build_index(changed, embedder=fake_embedder)
    assert report.reused_chunks == 0 and report.embedded_chunks == report.total_chunks


def test_model_mismatch_raises_with_fix(seeded, fake_embedder, monkeypatch):
    build_index(seeded, embedder=fake_embedder)
    monkeypatch.setenv("ASSISTANT_MODEL", "other-model")
    with pytest.raises(IncompatibleIndexError, match="assistant build"):
        load_index(Settings())


def test_missing_and_stale_index(seeded, fake_embedder):
    with pytest.raises(IndexMissingError, match="assistant build"):
        load_index(seeded)
    build_index(seeded, embedder=fake_embedder)
    write(seeded, "cats.txt", "Changed content entirely.")
    with pytest.raises(StaleIndexError, match="changed: cats.txt"):
        load_index(seeded, check_seeds=True)
    write(seeded, "new.txt", "new")
    with pytest.raises(StaleIndexError, match="new: new.txt"):
        load_index(seeded, check_seeds=True)


def test_touching_a_file_without_changing_it_is_not_stale(seeded, fake_embedder):
    build_index(seeded, embedder=fake_embedder)
    path = seeded.seeds_dir / "cats.txt"
    os.utime(path, (time.time() + 100, time.time() + 100))
    load_index(seeded, check_seeds=True)


def test_exception_mid_build_keeps_the_old_index(seeded, fake_embedder):
    build_index(seeded, embedder=fake_embedder)
    before = live_build(seeded)

    class Boom(fake_embedder.__class__):
        def embed(self, texts, batch_size=32, progress=False):
            raise OSError("disk full (simulated)")

    write(seeded, "more.txt", "More text to embed.")
    with pytest.raises(OSError, match="disk full"):
        build_index(seeded, embedder=Boom())
    assert live_build(seeded) == before
    assert not [p for p in seeded.index_dir.iterdir() if p.name.startswith(".tmp-")]
    assert build_index(seeded, embedder=fake_embedder).new == 1


def test_second_build_refuses_while_locked(seeded, fake_embedder):
    from filelock import FileLock

    seeded.index_dir.mkdir(parents=True, exist_ok=True)
    with (
        FileLock(str(seeded.index_dir / ".lock")),
        pytest.raises(IndexLockedError, match="another build"),
    ):
        build_index(seeded, embedder=fake_embedder)


# Failing writes and corrupted files: tests/test_reliability.py (parametrized over every
# writer, every index file and several kinds of damage).


KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {tests!r})
    from conftest import FakeEmbedder
    from assistant.config import Settings
    from assistant.build import build_index

    class Slow(FakeEmbedder):
        def embed(self, texts, batch_size=32, progress=False):
            print("EMBEDDING", flush=True)
            time.sleep(30)
            return super().embed(texts)

    build_index(Settings(), embedder=Slow())
    """
)


def test_sigkill_during_embedding_leaves_previous_index(seeded, fake_embedder, tmp_path):
    build_index(seeded, embedder=fake_embedder)
    before = live_build(seeded)
    answers_before = load_index(seeded).lexical_search("troops parade", 3)[1].tolist()
    write(seeded, "extra.txt", "An extra document that will never be embedded.")
    script = tmp_path / "kill.py"
    script.write_text(KILL_SCRIPT.format(tests=str(REPO / "tests")))
    if seeded.store == "milvus":  # Milvus Lite serves one process at a time: let the build open it
        from assistant.store.milvus.client import close_all

        close_all()
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, env=os.environ.copy()
    )
    assert proc.stdout.readline().strip() == b"EMBEDDING"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert live_build(seeded) == before
    index = load_index(seeded, check_seeds=False)
    assert index.lexical_search("troops parade", 3)[1].tolist() == answers_before
    report = build_index(seeded, embedder=fake_embedder)
    assert report.new == 1
    assert not [p for p in seeded.index_dir.iterdir() if p.name.startswith(".tmp-")]
    if seeded.store == "faiss":
        assert len([p for p in seeded.index_dir.iterdir() if p.name.startswith("build-")]) == 1


@pytest.mark.faiss_only("reads manifest.json and CURRENT in the index folder")
def test_manifest_is_valid_json_with_per_document_hashes(seeded, fake_embedder):
    build_index(seeded, embedder=fake_embedder)
    manifest = json.loads((current_build(seeded.index_dir) / "manifest.json").read_text())
    for info in manifest["documents"].values():
        assert len(info["sha256"]) == 64 and info["chunks"] >= 1
    assert manifest["package_version"] and manifest["created"]
    assert (
        Path(seeded.index_dir, "CURRENT").read_text().strip()
        == current_build(seeded.index_dir).name
    )


def test_relative_folders_work(seeded, fake_embedder, monkeypatch):
    monkeypatch.chdir(seeded.seeds_dir.parent)
    relative = seeded.model_copy(
        update={"seeds_dir": Path("seeds"), "index_dir": Path("embeddings")}
    )
    build_index(relative, embedder=fake_embedder)
    write(seeded, "fourth.txt", "A fourth document.")
    assert build_index(relative, embedder=fake_embedder).new == 1
    assert load_index(relative).size >= 4


def _results(settings, embedder, queries):
    """Each query's dense and BM25 hits as (document, start, rounded score): id-independent.

    Milvus Lite scores BM25 with each segment's own statistics (measured: a collection filled in
    two inserts scores like two collections), so an incremental build there finds the same BM25
    hits as a full build but scores them differently: its BM25 hits are compared without scores.
    """
    index = load_index(settings)
    rows = index.chunk_rows(index.chunk_ids())
    out = []
    for q in queries:
        for side, (scores, ids) in enumerate(
            (index.dense_search(embedder.embed([q])[0], 50), index.lexical_search(q, 50))
        ):
            exact = side == 0 or settings.store == "faiss"
            out.append(
                sorted(
                    (rows[int(i)][0], rows[int(i)][1], round(float(s), 4) if exact else None)
                    for s, i in zip(scores, ids)
                )
            )
    index.close()
    return out


@pytest.mark.parametrize("approximate", [False, True])
def test_incremental_builds_search_like_a_full_build(seeded, fake_embedder, approximate):
    """Extending the previous build (added files) and compacting it (a removed file) give the
    same dense and BM25 results as building from scratch; with ``ann_threshold`` 1, through
    IVF too (nprobe covering every list, so exact)."""
    if approximate:
        seeded = seeded.model_copy(update={"ann_threshold": 1, "ivf_nprobe": 10_000})
    queries = ["troops parade", "sourdough starter bread", "cats sleep", "penguins ice"]
    build_index(seeded, embedder=fake_embedder)
    write(seeded, "penguins.txt", "Penguins live on the ice. Penguins eat fish and krill.")
    write(seeded, "a-first.txt", "Cats and penguins both sleep a lot. The parade had troops.")
    report = build_index(seeded, embedder=fake_embedder)
    assert report.new == 2 and report.reused_chunks > 0
    incremental = _results(seeded, fake_embedder, queries)
    build_index(seeded, embedder=fake_embedder, full=True)
    assert _results(seeded, fake_embedder, queries) == incremental
    (seeded.seeds_dir / "cats.txt").unlink()
    report = build_index(seeded, embedder=fake_embedder)
    assert report.removed == 1 and report.reused_chunks > 0
    compacted = _results(seeded, fake_embedder, queries)
    build_index(seeded, embedder=fake_embedder, full=True)
    assert _results(seeded, fake_embedder, queries) == compacted
    manifest = live_manifest(seeded)
    assert manifest["index"]["kind"] == (
        "ivf" if approximate and seeded.store == "faiss" else "flat"
    )


def test_bm25_postings_score_like_bm25s():
    """Our appendable postings give bm25s's own (Lucene) scores, built at once or appended."""
    import bm25s
    import numpy as np

    from assistant.bm25 import BM25_PARAMS, Bm25Postings, bm25_tokens

    texts = [
        "Penguins live in Antarctica and eat krill.",
        "Krill are small crustaceans eaten by whales and penguins.",
        "The parade featured more than 14,000 troops.",
        "Troops marched; penguins did not march in the parade.",
        "Sourdough bread needs a starter and a long rise.",
    ]
    tokens = bm25_tokens(texts)
    reference = bm25s.BM25(k1=BM25_PARAMS["k1"], b=BM25_PARAMS["b"])
    reference.index(tokens, show_progress=False)
    at_once = Bm25Postings.empty().appended(tokens)
    in_steps = Bm25Postings.empty().appended(tokens[:2]).appended(tokens[2:])
    for query in ["penguins krill", "troops parade march", "bread starter", "whales"]:
        q = bm25_tokens([query])[0]
        expected = reference.get_scores(q)
        np.testing.assert_allclose(at_once.get_scores(q), expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(in_steps.get_scores(q), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.faiss_only("about FAISS segments and hard links")
def test_added_documents_become_segments_and_old_segments_are_linked_not_rewritten(
    seeded, fake_embedder
):
    """Each add writes only a segment for the new document (older segments are hard links of
    the previous build's files); small segments merge log-structured; the result searches like
    a full build, and removing a document rewrites only the segment that held it."""
    import os

    from assistant.store.layout import SEGMENT_FILES, segment_file
    from assistant.store.manifest import segments_of
    from assistant.store.planner import MERGE_FACTOR

    def inodes(build, name):
        return [os.stat(build / segment_file(name, f)).st_ino for f in SEGMENT_FILES]

    build_index(seeded, embedder=fake_embedder)
    first = current_build(seeded.index_dir)
    base = inodes(first, ".")
    counts = []
    for i in range(2 * MERGE_FACTOR + 1):
        write(seeded, f"added-{i:02d}.txt", f"Added note {i}. Walruses number {i} rest on ice.")
        report = build_index(seeded, embedder=fake_embedder)
        assert report.new == 1 and report.embedded_chunks == 1
        build = current_build(seeded.index_dir)
        manifest = read_manifest(build)
        segments = segments_of(manifest)
        counts.append(len(segments))
        assert segments[0]["name"] == "." and inodes(build, ".") == base  # never rewritten
        assert manifest["documents"][f"added-{i:02d}.txt"]["segment"] == segments[-1]["name"]
    assert max(counts) <= MERGE_FACTOR + 1 and min(counts[MERGE_FACTOR:]) < max(counts)
    queries = ["walruses ice", "troops parade", "note 3", "penguins"]
    reference = seeded.model_copy(update={"index_dir": seeded.index_dir.parent / "reference"})
    build_index(reference, embedder=fake_embedder)
    assert _results(seeded, fake_embedder, queries) == _results(reference, fake_embedder, queries)
    index = load_index(seeded)
    rows = index.chunk_rows(index.chunk_ids())
    index.close()
    assert sorted(rows) == index.chunk_ids().tolist()
    for doc_id, start, end, text, _ in rows.values():
        assert (seeded.seeds_dir / doc_id).read_text(encoding="utf-8")[start:end] == text

    # Remove a document of the last segment: the others stay linked.
    build = current_build(seeded.index_dir)
    segments = segments_of(read_manifest(build))
    kept = {s["name"]: inodes(build, s["name"]) for s in segments[:-1]}
    last = [
        d
        for d, info in read_manifest(build)["documents"].items()
        if info["segment"] == segments[-1]["name"]
    ]
    (seeded.seeds_dir / last[0]).unlink()
    assert build_index(seeded, embedder=fake_embedder).removed == 1
    after = current_build(seeded.index_dir)
    for name, ino in kept.items():
        assert inodes(after, name) == ino
    assert last[0] not in read_manifest(after)["documents"]
    build_index(reference, embedder=fake_embedder, full=True)
    assert len(segments_of(read_manifest(current_build(reference.index_dir)))) == 1
    assert _results(seeded, fake_embedder, queries) == _results(reference, fake_embedder, queries)


@pytest.mark.faiss_only("about the embedded store's format 2")
def test_a_format_2_build_is_read_as_one_segment_and_extended(seeded, fake_embedder):
    """Indexes written before segments (format 2: files at the build root, a checksum over the
    JSON body) still load, and the next incremental build links their files instead of
    re-embedding."""
    import json
    import os

    from assistant.store.manifest import manifest_checksum, segments_of

    build_index(seeded, embedder=fake_embedder)
    build = current_build(seeded.index_dir)
    manifest = read_manifest(build)
    old = {k: v for k, v in manifest.items() if k not in ("segments", "checksum")}
    old["format"] = 2
    old["documents"] = {
        d: {k: v for k, v in info.items() if k != "segment"}
        for d, info in manifest["documents"].items()
    }
    old["checksum"] = manifest_checksum(old)
    (build / "manifest.json").write_text(json.dumps(old, indent=2), encoding="utf-8")
    before = _results(seeded, fake_embedder, ["troops parade", "penguins"])
    inode = os.stat(build / "vectors.faiss").st_ino

    write(seeded, "walrus.txt", "Walruses rest on the ice in large groups.")
    report = build_index(seeded, embedder=fake_embedder)
    assert report.new == 1 and report.embedded_chunks == 1
    after = current_build(seeded.index_dir)
    assert [s["chunks"] for s in segments_of(read_manifest(after))][1:] == [1]
    assert os.stat(after / "vectors.faiss").st_ino == inode
    (seeded.seeds_dir / "walrus.txt").unlink()
    build_index(seeded, embedder=fake_embedder)
    assert _results(seeded, fake_embedder, ["troops parade", "penguins"]) == before
