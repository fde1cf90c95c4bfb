"""The Milvus store on a real Milvus Lite file: naming, incremental upserts and deletes, failed
builds, and what Milvus Lite permits to several processes. (The rest of the suite runs on it
with ``pytest --store milvus``.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from assistant.build import build_index
from assistant.config import Settings
from assistant.errors import IndexWriteError
from assistant.retrieval import Retriever
from assistant.store import open_index

from .conftest import REPO, SEED, FakeEmbedder, write

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

pytestmark = pytest.mark.milvus


@pytest.fixture
def milvus(seeded, monkeypatch, tmp_path):
    """``seeded`` settings on a Milvus Lite file of this test."""
    from assistant.store.milvus.client import close_all

    monkeypatch.setenv("ASSISTANT_STORE", "milvus")
    monkeypatch.setenv("ASSISTANT_MILVUS_URI", str(tmp_path / "lite" / "milvus.db"))
    yield Settings()
    close_all()


def _client(settings):
    from assistant.store.milvus.client import connect

    return connect(settings)


def _rows(settings, collection):
    rows = _client(settings).query(
        collection, filter="id >= 0", output_fields=["id", "doc_id", "build"]
    )
    return sorted((r["id"], r["doc_id"], r["build"]) for r in rows)


def test_one_collection_per_content_settings_and_the_old_one_is_dropped(milvus):
    from assistant.store.milvus.client import collection_name

    build_index(milvus, embedder=FakeEmbedder())
    first = open_index(milvus).manifest["milvus"]["collection"]
    assert first == collection_name(milvus, 64) and first.startswith("assistant_")
    smaller = milvus.model_copy(update={"chunk_tokens": 100})
    assert collection_name(smaller, 64) != first != collection_name(milvus, 32)
    build_index(smaller, embedder=FakeEmbedder())  # other chunk settings: everything re-embedded
    assert set(_client(milvus).list_collections()) == {
        collection_name(smaller, 64),
        "assistant_meta",
    }
    other = smaller.model_copy(update={"milvus_collection": "corpus2"})
    build_index(other, embedder=FakeEmbedder())  # a second corpus beside it, by its prefix
    assert open_index(smaller).size == open_index(other).size


def test_incremental_build_inserts_new_rows_deletes_old_ones_and_keeps_the_rest(milvus):
    build_index(milvus, embedder=FakeEmbedder())
    index = open_index(milvus)
    collection = index.manifest["milvus"]["collection"]
    before = _rows(milvus, collection)
    news = [r for r in before if r[1] == "news.txt"]
    write(milvus, "cats.txt", "Cats now chase penguins across the ice.")
    (milvus.seeds_dir / "notes" / "bread.md").unlink()
    counting = FakeEmbedder()
    report = build_index(milvus, embedder=counting)
    assert (report.changed, report.removed, counting.texts_embedded) == (1, 1, 1)
    after = _rows(milvus, collection)
    # news.txt was not rewritten: same ids, same build tag; the old cats and bread rows are gone.
    assert [r for r in after if r[1] == "news.txt"] == news
    assert sorted({r[1] for r in after}) == ["cats.txt", "news.txt"]
    assert len(after) == len(news) + 1 and after[-1][0] == before[-1][0] + 1
    index = open_index(milvus)
    assert index.size == len(after) and index.chunk_ids().tolist() == [r[0] for r in after]
    hits = Retriever(milvus, embedder=FakeEmbedder()).search("penguins ice", k=1)
    assert hits[0].source == "cats.txt" and "penguins" in hits[0].text
    assert index.lexical_search("sourdough", 5)[1].size == 0


def test_a_build_failing_before_the_switch_leaves_the_old_build_searchable(milvus, monkeypatch):
    import assistant.store.milvus.writer as writer

    build_index(milvus, embedder=FakeEmbedder())
    live = open_index(milvus)
    old = live.lexical_search("troops parade", 5)
    write(milvus, "cats.txt", "Completely new text about troops and a parade of penguins.")

    def fail(*args, **kwargs):
        raise OSError("milvus went away (simulated)")

    monkeypatch.setattr(writer, "put_row", fail)  # every row is written; the switch fails
    with pytest.raises(IndexWriteError, match="previous index is intact"):
        build_index(milvus, embedder=FakeEmbedder())
    collection = live.manifest["milvus"]["collection"]
    tags = {r[2] for r in _rows(milvus, collection)}
    assert len(tags) == 2  # the failed build's rows are there, under their own tag ...
    index = open_index(milvus)
    assert index.name == live.name  # ... but the old build is live and answers as before
    assert [a.tolist() for a in index.lexical_search("troops parade", 5)] == [
        a.tolist() for a in old
    ]
    assert "penguins" not in index.chunk_rows(index.chunk_ids()).__repr__()
    monkeypatch.undo()
    monkeypatch.setenv("ASSISTANT_STORE", "milvus")
    report = build_index(milvus, embedder=FakeEmbedder())
    assert report.changed == 1
    assert len({r[2] for r in _rows(milvus, collection)}) == 2  # leftovers deleted first
    assert open_index(milvus).lexical_search("penguins", 5)[1].size == 1


def test_rows_left_by_a_build_stopped_after_the_switch_are_hidden_then_deleted(milvus, monkeypatch):
    import assistant.store.milvus.writer as writer

    build_index(milvus, embedder=FakeEmbedder())
    write(milvus, "cats.txt", "Cats now chase penguins across the ice.")
    monkeypatch.setattr(writer, "_after_switch", lambda *a: None)  # killed right after it
    build_index(milvus, embedder=FakeEmbedder())
    index = open_index(milvus)
    collection = index.manifest["milvus"]["collection"]
    cats = [r for r in _rows(milvus, collection) if r[1] == "cats.txt"]
    assert len(cats) == 2  # the old version's row is still in the collection
    rows = index.chunk_rows(r[0] for r in cats)
    assert [row[3] for row in rows.values()] == ["Cats now chase penguins across the ice."]
    dense = index.dense_search(FakeEmbedder().embed(["Cats sleep sixteen hours"])[0], 50)[1]
    assert cats[0][0] not in dense.tolist() and cats[1][0] in dense.tolist()
    monkeypatch.undo()
    monkeypatch.setenv("ASSISTANT_STORE", "milvus")
    write(milvus, "owls.txt", "Owls hunt at night.")
    build_index(milvus, embedder=FakeEmbedder())
    assert len([r for r in _rows(milvus, collection) if r[1] == "cats.txt"]) == 1


def test_milvus_searches_like_the_embedded_store(milvus, tmp_path):
    """A fresh build: the same chunk ids, exactly the same dense results, and BM25 matching
    exactly the same chunks (the terms are the embedded store's); BM25 scores differ a little
    (Milvus quantizes chunk lengths), so only the best hit's agreement is checked."""
    write(milvus, "more.txt", SEED.read_text(encoding="utf-8")[::-1][:3000])
    build_index(milvus, embedder=FakeEmbedder())
    faiss = milvus.model_copy(update={"store": "faiss", "index_dir": tmp_path / "faiss"})
    build_index(faiss, embedder=FakeEmbedder())
    m, f = open_index(milvus), open_index(faiss)
    assert m.chunk_ids().tolist() == f.chunk_ids().tolist()
    assert m.chunk_rows(m.chunk_ids()) == f.chunk_rows(f.chunk_ids())
    assert np.allclose(m.vectors(m.chunk_ids()), f.vectors(f.chunk_ids()), atol=1e-6)
    queries = ["troops parade", "Kim party congress", "cats sleep", "nuclear weapons", "bread"]
    agree = 0
    for q in queries:
        vector = FakeEmbedder().embed([q])[0]
        (ms, mi), (fs, fi) = m.dense_search(vector, m.size), f.dense_search(vector, f.size)
        mine, theirs = dict(zip(mi.tolist(), ms)), dict(zip(fi.tolist(), fs))
        assert sorted(mine) == sorted(theirs)  # (the order of near-ties may differ)
        assert np.allclose(
            [mine[i] for i in sorted(mine)], [theirs[i] for i in sorted(mine)], atol=1e-5
        )
        (_, mi), (_, fi) = m.lexical_search(q, 1000), f.lexical_search(q, 1000)
        assert sorted(mi.tolist()) == sorted(fi.tolist()), q
        agree += int(mi[0] == fi[0])
    assert agree >= len(queries) - 1
    assert m.document_frequencies(["troop", "cat"]) == f.document_frequencies(["troop", "cat"])
    assert m.query_terms("tropps paradde") == f.query_terms("tropps paradde")


def test_status_reports_the_milvus_build(milvus):
    from assistant.store import index_status

    assert index_status(milvus)["built"] is False
    build_index(milvus, embedder=FakeEmbedder())
    info = index_status(milvus)
    assert info["built"] and info["store"] == "milvus" and not info["stale"]
    assert info["milvus_uri"] == str(milvus.milvus_target)
    assert set(info["documents"]) == {"cats.txt", "news.txt", "notes/bread.md"}
    write(milvus, "cats.txt", "Changed.")
    assert index_status(milvus)["changes"] == ["changed: cats.txt"]


def _cli(*args, env):
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "PYTHONPATH": str(REPO)},
    )


def test_milvus_lite_serves_one_process_at_a_time(milvus):
    """Measured: milvus-lite 3.2 runs the engine inside the process that opens the file and
    locks it; a second process is refused (one line, exit code 4) until the first lets go.
    Several `assistant serve` processes need a Milvus server."""
    from assistant.store.milvus.client import close_all

    build_index(milvus, embedder=FakeEmbedder())
    open_index(milvus)  # this process holds the Lite file
    busy = _cli("status", "--json", env=dict(os.environ))
    assert busy.returncode == 4, busy
    assert "one process at a time" in busy.stderr and len(busy.stderr.strip().splitlines()) == 1
    close_all()  # let go: the other process opens it and sees the build
    free = _cli("status", "--json", env=dict(os.environ))
    assert free.returncode == 0, free.stderr
    info = json.loads(free.stdout)
    assert info["built"] and info["chunks"] == open_index(milvus).size


def _chunks(settings):
    index = open_index(settings)
    rows = index.chunk_rows(index.chunk_ids())
    return [(i, *row[:4]) for i, row in sorted(rows.items())]


def test_a_full_rebuild_gives_the_chunk_ids_of_a_clean_build(milvus, monkeypatch):
    """``build --full`` over a live build writes the pair's other collection (ids from 0, as a
    clean build and the embedded store) and drops the replaced one; an incremental build then
    adds to it, and a full rebuild killed before its switch leaves a collection the next build
    drops."""
    import assistant.store.milvus.writer as writer
    from assistant.store.milvus.client import collection_pair

    first, second = collection_pair(milvus, 64)
    build_index(milvus, embedder=FakeEmbedder())
    clean = _chunks(milvus)
    assert clean[0][0] == 0 and [r[0] for r in clean] == list(range(len(clean)))
    assert {r[1] for r in clean} == {"cats.txt", "news.txt", "notes/bread.md"}
    for collection in (second, first):  # and back again
        build_index(milvus, embedder=FakeEmbedder(), full=True)
        assert open_index(milvus).manifest["milvus"]["collection"] == collection
        assert _chunks(milvus) == clean
        assert set(_client(milvus).list_collections()) == {collection, "assistant_meta"}
        assert open_index(milvus).manifest["next_id"] == len(clean)
    write(milvus, "owls.txt", "Owls hunt at night.")
    assert build_index(milvus, embedder=FakeEmbedder()).new == 1  # adds to the live one
    assert open_index(milvus).manifest["milvus"]["collection"] == first
    assert _chunks(milvus) == [*clean, (len(clean), "owls.txt", 0, 19, "Owls hunt at night.")]

    def fail(*args, **kwargs):
        raise OSError("milvus went away (simulated)")

    monkeypatch.setattr(writer, "put_row", fail)  # killed at the switch
    with pytest.raises(IndexWriteError, match="previous index is intact"):
        build_index(milvus, embedder=FakeEmbedder(), full=True)
    assert set(_client(milvus).list_collections()) == {first, second, "assistant_meta"}
    assert open_index(milvus).manifest["milvus"]["collection"] == first
    monkeypatch.undo()
    monkeypatch.setenv("ASSISTANT_STORE", "milvus")
    write(milvus, "owls.txt", "Owls hunt at night and sleep by day.")
    assert build_index(milvus, embedder=FakeEmbedder()).changed == 1
    assert set(_client(milvus).list_collections()) == {first, "assistant_meta"}
    (milvus.seeds_dir / "owls.txt").unlink()
    build_index(milvus, embedder=FakeEmbedder(), full=True)
    assert _chunks(milvus) == clean


def test_a_full_rebuild_waits_for_searches_of_the_replaced_collection(milvus):
    """The replaced collection is dropped only once this process's searches begun before the
    switch are done (at most a bounded wait)."""
    import threading
    import time

    from assistant.store import backend_for

    build_index(milvus, embedder=FakeEmbedder())
    old = open_index(milvus)
    done, found = threading.Event(), []

    def hold():
        with old.in_use():
            deadline = time.monotonic() + 60
            while backend_for(milvus).current(milvus) == old.name and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.3)  # switched: still reading the old build
            ids = old.lexical_search("troops parade", 5)[1]
            found.append(old.chunk_rows(ids))
        done.set()

    reader = threading.Thread(target=hold)
    reader.start()
    build_index(milvus, embedder=FakeEmbedder(), full=True)
    waited = done.is_set()
    reader.join(60)
    assert waited and found and found[0]
    assert old.collection not in _client(milvus).list_collections()
