"""Builds and searches at the same time: two builds at once, queries served while rebuilds swap
new builds in, and the swap window seen from a search (issue 7, part 4)."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import pytest

from assistant.answer import ask, verify_citation
from assistant.build import build_index
from assistant.errors import IndexLockedError
from assistant.retrieval import Retriever
from assistant.store import open_index
from assistant.store.layout import current_build
from assistant.store.loaded import load_index

from .conftest import (
    FakeEmbedder,
    assert_clean,
    live_build,
    make_document,
    make_vocabulary,
    write,
)

pytestmark = pytest.mark.stores  # runs on both stores (tests/conftest.py)

# ------------------------------------------------------------------------- two builds at once


def test_two_builds_at_once_one_refuses_or_waits(seeded, fake_embedder):
    started, release = threading.Event(), threading.Event()

    class Holding(FakeEmbedder):
        def embed(self, texts, batch_size=32, progress=False):
            started.set()
            release.wait(30)
            return super().embed(texts)

    results: dict[str, object] = {}

    def first():
        results["first"] = build_index(seeded, embedder=Holding())

    t = threading.Thread(target=first)
    t.start()
    assert started.wait(30)
    with pytest.raises(IndexLockedError, match="--wait"):
        build_index(seeded, embedder=fake_embedder)
    with pytest.raises(IndexLockedError):
        build_index(seeded, embedder=fake_embedder, wait=0.2)

    def second():
        results["second"] = build_index(seeded, embedder=fake_embedder, wait=30)

    t2 = threading.Thread(target=second)
    t2.start()
    time.sleep(0.3)
    assert "second" not in results  # still waiting for the lock
    release.set()
    t.join(30)
    t2.join(30)
    assert results["first"].new == 3
    assert results["second"].up_to_date  # it waited, then found the first build current
    if seeded.store == "faiss":
        assert_clean(seeded.index_dir)
    open_index(seeded)


# ------------------------------------------------------------------------- build while serving


@pytest.mark.slow
def test_queries_during_rebuilds_see_whole_builds_and_switch_without_restart(seeded):
    rng = random.Random(3)
    vocab = make_vocabulary(rng, 150)
    for i in range(20):
        write(seeded, f"gen/doc{i:02d}.txt", make_document(rng, vocab, 10))
    build_index(seeded, embedder=FakeEmbedder())
    retriever = Retriever(seeded, embedder=FakeEmbedder())
    first_build = retriever.index.name
    questions = [
        "How many troops featured in the Wednesday night military parade?",
        "How long do cats sleep?",
        "How hot should the oven be for sourdough bread?",
    ] + [" ".join(rng.sample(vocab, 3)) + "?" for _ in range(5)]
    stop = threading.Event()
    errors: list[BaseException] = []
    stats = Counter()
    builds_seen: set[str] = set()

    def client(seed: int) -> None:
        r = random.Random(seed)
        while not stop.is_set():
            q = r.choice(questions)
            try:
                passages = retriever.search(q, k=5)
                for p in passages:
                    text = (seeded.seeds_dir / p.source).read_text(encoding="utf-8")
                    assert text[p.start : p.end] == p.text
                answer = ask(q, settings=seeded, retriever=retriever)
                for c in answer.citations:
                    assert verify_citation(c, seeded.seeds_dir), c
                stats["citations"] += len(answer.citations)
                stats["queries"] += 1
                builds_seen.add(retriever._build_name)
            except BaseException as exc:  # noqa: BLE001 - every failure is reported
                errors.append(exc)
                stop.set()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    builds = 0
    try:
        for round_no in range(6):
            # Seeds only grow, so every citation of every build stays verifiable on disk.
            write(seeded, f"gen/new{round_no}.txt", make_document(rng, vocab, 10))
            build_index(seeded, embedder=FakeEmbedder(), full=round_no % 2 == 1, wait=30)
            builds += 1
            # A few queries on each build before the next one (a slower store answers fewer
            # queries per build: wait for them rather than for a fixed time).
            target, deadline = stats["queries"] + 4, time.monotonic() + 30
            while stats["queries"] < target and not errors and time.monotonic() < deadline:
                time.sleep(0.05)
            if errors:
                break
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not errors, repr(errors[0])
    assert stats["queries"] > 20 and stats["citations"] > 0
    last = live_build(seeded)
    assert retriever.index.name == last != first_build
    assert len(builds_seen) >= 2  # queries were answered from more than one build
    assert f"gen/new{builds - 1}.txt" in retriever.index.manifest["documents"]
    print(f"\nbuild while serving: {builds} builds, {dict(stats)}, builds seen {len(builds_seen)}")


@pytest.mark.faiss_only("patches the embedded store's CURRENT lookup")
def test_a_swap_in_the_middle_of_a_search_does_not_mix_two_builds(seeded, monkeypatch):
    import assistant.store.layout as retrieval  # where the retriever looks up the live build

    fake = FakeEmbedder()
    build_index(seeded, embedder=fake)
    retriever = Retriever(seeded, embedder=fake, check_seeds=False)
    query = "sourdough starter knead the dough"
    before = retriever.search(query, k=3)
    assert before[0].source == "notes/bread.md"
    real, calls = retrieval.current_build, []

    def swap_after_first_look(index_dir):
        live = real(index_dir)
        calls.append(live.name)
        if len(calls) == 1:  # search() has just picked its build: swap a new one in
            text = " ".join(f"Sentence number {i} is about nothing much." for i in range(200))
            write(seeded, "aaa.txt", text)  # sorts first: every chunk id of the new build shifts
            write(seeded, "cats.txt", text.replace("nothing", "cats"))  # so does a longer doc
            build_index(seeded, embedder=fake, full=True)
        return live

    monkeypatch.setattr(retrieval, "current_build", swap_after_first_look)
    passages = retriever.search(query, k=3)
    assert current_build(seeded.index_dir).name != calls[0]  # the swap did happen mid-search
    # All from the build the search started on: the same passages and scores as before.
    assert [(p.source, p.start, p.end, p.score) for p in passages] == [
        (p.source, p.start, p.end, p.score) for p in before
    ]
    monkeypatch.undo()
    assert retriever.search(query, k=3)[0].source == "notes/bread.md"  # now from the new build
    assert retriever.index.manifest["documents"].get("aaa.txt")


def test_serving_switches_to_a_new_build_even_if_seeds_changed_again_meanwhile(seeded):
    """A server runs on build A; build B is swapped in, but one more document was added while
    B was building. The server must move on to B (newer than A), not fail every query as stale."""
    fake = FakeEmbedder()
    build_index(seeded, embedder=fake)
    retriever = Retriever(seeded, embedder=fake)  # check_seeds=True, as the web app's
    assert retriever.search("cats sleep")
    write(seeded, "penguins.txt", "Penguins live in Antarctica. They cannot fly.")
    build_index(seeded, embedder=fake)
    write(seeded, "later.txt", "A document added while the build was running.")
    passages = retriever.search("penguins antarctica", k=2)
    assert passages[0].source == "penguins.txt"
    answer = ask("Where do penguins live?", settings=seeded, retriever=retriever)
    assert answer.citations and all(verify_citation(c, seeded.seeds_dir) for c in answer.citations)
    # A fresh start on stale seeds answers too, and says what is not indexed yet.
    fresh = Retriever(seeded, embedder=fake).search("penguins")
    assert fresh[0].source == "penguins.txt" and "new: later.txt" in fresh.stale


@pytest.mark.faiss_only("about build folders")
def test_a_build_removed_while_it_is_being_opened_is_not_reported_as_damage(seeded, monkeypatch):
    """Loading reads CURRENT, then the build's files; if two rebuilds swap in meanwhile, the
    build being opened is deleted. The reader must open the live build, not fail as corrupt."""
    import assistant.store.loaded as idx

    fake = FakeEmbedder()
    build_index(seeded, embedder=fake)
    real, calls = idx.verify_files, []

    def rebuild_twice_first(build, manifest):
        calls.append(build.name)
        if len(calls) == 1:
            write(seeded, "one.txt", "One more document about penguins.")
            build_index(seeded, embedder=fake)
            write(seeded, "two.txt", "Two more documents about walruses.")
            build_index(seeded, embedder=fake)  # the build first read from CURRENT is gone now
            assert not build.exists()
        return real(build, manifest)

    monkeypatch.setattr(idx, "verify_files", rebuild_twice_first)
    index = load_index(seeded)
    assert index.build.name == current_build(seeded.index_dir).name != calls[0]
    assert "two.txt" in index.manifest["documents"]
    index.close()
