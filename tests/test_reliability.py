"""Crash safety: SIGKILL a build at 20 random moments, failing writes, two builds at once, and
queries served while rebuilds swap new builds in (issue 7, parts 1 and 4).

The kill test forks each build from a "zygote" process that has already imported the libraries,
so the 20 builds cost their own run time only. Each forked child runs the real CLI
(``assistant build``) with a slightly slowed fake embedder and prints a marker as it enters each
stage (chunking, embedding, writing the files, fsync, renaming, replacing CURRENT, cleanup); the
test kills it with SIGKILL at a random moment of a chosen stage, or holds it at an exact point of
the swap window. After every kill the previous index must load, match its manifest and the
sources, and answer as before; the next build must complete and leave no leftovers.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import queue
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from assistant.answer import ask, verify_citation
from assistant.build import build_index
from assistant.errors import IndexLockedError
from assistant.retrieval import Retriever
from assistant.store import open_index
from assistant.store.layout import current_build
from assistant.store.loaded import load_index

from .conftest import REPO, FakeEmbedder, live_build, write

SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ra",
    "tesu",
    "vin",
    "dor",
    "pal",
    "ens",
    "quo",
    "bri",
    "tan",
    "sel",
    "mur",
    "gof",
    "hil",
    "zan",
    "per",
    "ost",
    "uly",
]


def make_vocabulary(rng: random.Random, n: int = 400) -> list[str]:
    words: set[str] = set()
    while len(words) < n:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))))
    return sorted(words)


def make_document(rng: random.Random, vocab: list[str], n_sentences: int) -> str:
    paragraphs, sentences = [], []
    for i in range(n_sentences):
        words = [rng.choice(vocab) for _ in range(rng.randint(6, 18))]
        if rng.random() < 0.2:
            words.insert(rng.randint(0, len(words)), str(rng.randint(1, 20000)))
        sentences.append(" ".join(words).capitalize() + rng.choice(".!?" if i % 7 == 6 else "."))
        if rng.random() < 0.2:
            paragraphs.append(" ".join(sentences))
            sentences = []
    paragraphs.append(" ".join(sentences))
    title = " ".join(rng.choice(vocab) for _ in range(3)).title()
    return f"# {title}\n\n" + "\n\n".join(p for p in paragraphs if p) + "\n"


def snapshot(settings) -> dict[str, str]:
    return {
        p.relative_to(settings.seeds_dir).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(settings.seeds_dir.rglob("*.txt"))
    }


def search_results(settings, queries: list[str]) -> list[list[tuple]]:
    retriever = Retriever(settings, embedder=FakeEmbedder(), check_seeds=False)
    try:
        return [
            [(p.source, p.start, p.end, round(p.score, 6)) for p in retriever.search(q, k=5)]
            for q in queries
        ]
    finally:
        retriever.index.close()


def check_build_matches_manifest(settings, texts: dict[str, str], rng: random.Random) -> str:
    """Load the live build and check it against its manifest and the sources it was built from."""
    index = load_index(settings, check_seeds=False)
    try:
        manifest = index.manifest
        assert sum(s.faiss.ntotal for s in index.segments) == index.size
        assert index.size == manifest["counts"]["chunks"]
        assert manifest["counts"]["documents"] == len(manifest["documents"]) == len(texts)
        assert set(manifest["documents"]) == set(texts)
        rows = index.chunk_rows(index.chunk_ids())
        assert sorted(rows) == index.chunk_ids().tolist()
        per_doc = Counter(r[0] for r in rows.values())
        for doc_id, info in manifest["documents"].items():
            assert per_doc[doc_id] == info["chunks"], doc_id
            assert info["sha256"] == hashlib.sha256(texts[doc_id].encode()).hexdigest()
            first = info["first_chunk"]
            assert {rows[i][0] for i in range(first, first + info["chunks"])} <= {doc_id}
        for cid in rng.sample(range(index.size), min(40, index.size)):
            doc_id, start, end, text, _title = rows[cid]
            assert texts[doc_id][start:end] == text, (cid, doc_id, start, end)
        return index.build.name
    finally:
        index.close()


def assert_clean(index_dir: Path) -> None:
    names = sorted(p.name for p in index_dir.iterdir())
    assert not [n for n in names if n.startswith((".tmp-", ".CURRENT."))], names
    assert len([n for n in names if n.startswith("build-")]) == 1, names


ZYGOTE = textwrap.dedent(
    """
    import json, os, sys, time
    sys.path.insert(0, {tests!r})
    from conftest import FakeEmbedder
    import assistant.cli as cli
    import assistant.build as idx
    import assistant.store.layout as layout
    import assistant.store.segments as segments
    import assistant.store.writer as writer
    import bm25s, faiss, Stemmer, sqlite3  # imported once here, inherited by every build
    from assistant.tokens import get_encoding

    get_encoding("cl100k_base")

    def say(*words, fd=1):
        os.write(fd, (" ".join(map(str, words)) + "\\n").encode())  # one write: no interleaving

    say("READY")
    for line in sys.stdin:
        cmd = json.loads(line)
        sys.stdout.flush()
        pid = os.fork()
        if pid:
            say("PID", pid)
            _, status = os.waitpid(pid, 0)
            say("EXIT", pid, os.WIFSIGNALED(status) and os.WTERMSIG(status))
            continue
        # ---- the build process ------------------------------------------------------
        t0 = time.monotonic()
        markers = os.dup(1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)  # the CLI's own output must not mix with the markers

        def mark(stage):
            say("M", stage, round(time.monotonic() - t0, 4), fd=markers)
            if stage == cmd.get("pause"):
                time.sleep(60)

        class Slow(FakeEmbedder):
            def embed(self, texts, batch_size=32, progress=False):
                time.sleep(cmd["delay"])
                return super().embed(texts)

        def wrap(name, before=None, after=None, module=idx):
            real = getattr(module, name, None)
            if real is None:  # renamed since: that marker is simply not printed
                return
            def wrapper(*a, **k):
                if before:
                    mark(before)
                out = real(*a, **k)
                if after:
                    mark(after)
                return out
            setattr(module, name, wrapper)

        import assistant.embedders
        assistant.embedders.get_embedder = lambda model: Slow()
        wrap("Chunker", before="chunking")
        wrap("_embed", before="embedding", after="writing", module=idx._Build)
        wrap("write_faiss", before="faiss", module=segments)
        wrap("_write_bm25", before="bm25", module=segments)
        wrap("write_manifest", before="manifest", module=writer)
        wrap("fsync_tree", before="fsync", module=writer)
        wrap("point_current", after="swapped", module=writer)
        wrap("remove_old_builds", before="cleanup")
        real_rename, real_replace = os.rename, os.replace

        def rename(src, dst):
            mark("rename")
            real_rename(src, dst)
            mark("renamed")

        def replace(src, dst):
            if str(dst).endswith("CURRENT"):
                mark("current-written")
            real_replace(src, dst)

        os.rename, os.replace = rename, replace
        sys.argv = ["assistant", "build", *cmd["args"]]
        mark("start")
        code = 0
        try:
            cli.main()
        except SystemExit as exc:
            code = exc.code or 0
        mark("done")
        sys.stdout.flush()
        os._exit(code)
    """
)


class Zygote:
    """A process that forks one ``assistant build`` per request; its output lines are queued."""

    def __init__(self, tmp_path: Path) -> None:
        script = tmp_path / "zygote.py"
        script.write_text(ZYGOTE.format(tests=str(REPO / "tests")))
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, str(script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
            cwd=REPO,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.running: int | None = None
        self.pending: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        assert self.next_line(60) == "READY"

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def next_line(self, timeout: float = 30) -> str:
        if self.pending:
            return self.pending.pop(0)
        return self.lines.get(timeout=timeout)

    def start(self, args: list[str], delay: float, pause: str | None = None) -> int:
        self.proc.stdin.write(json.dumps({"args": args, "delay": delay, "pause": pause}) + "\n")
        self.proc.stdin.flush()
        line = self.next_line()
        while line.startswith("M "):  # the child may speak before its parent names it
            self.pending.append(line)
            line = self.lines.get(timeout=30)
        assert line.startswith("PID "), line
        self.running = int(line.split()[1])
        return self.running

    def wait_for(self, pid: int, stage: str) -> dict[str, float]:
        """Read markers until ``stage`` (or the build's end); return the markers seen."""
        seen: dict[str, float] = {}
        while True:
            line = self.next_line()
            if line.startswith("EXIT"):
                self.running = None
                seen["EXIT"] = float(line.split()[2] == "9")
                return seen
            if line.startswith("M "):
                _, name, at = line.split()
                seen.setdefault(name, float(at))
                if name == stage:
                    return seen

    def reap(self, pid: int) -> tuple[bool, dict[str, float]]:
        """Wait for the build to end; (killed by SIGKILL?, markers seen meanwhile)."""
        seen: dict[str, float] = {}
        while True:
            line = self.next_line()
            if line.startswith("EXIT"):
                self.running = None
                assert int(line.split()[1]) == pid
                return line.split()[2] == "9", seen
            if line.startswith("M "):
                _, name, at = line.split()
                seen.setdefault(name, float(at))

    def close(self) -> None:
        if self.running:  # a build still held at a pause point (the test failed meanwhile)
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.running, signal.SIGKILL)
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


N_DOCS = 300
# (stage to wait for, random delay within that stage (None = wait for the exact point)).
# Stage names are the markers printed by the build; "start" means anywhere in the build.
STAGES = ["chunking", "embedding", "writing"]
EXACT_POINTS = ["renamed", "current-written", "swapped", "fsync", "manifest"]


@pytest.mark.slow
@pytest.mark.faiss_only(
    "kills at the embedded writer's stages (tests/test_milvus.py: the Milvus switch)"
)
def test_sigkill_at_twenty_random_moments(settings, tmp_path):
    rng = random.Random(7)
    vocab = make_vocabulary(rng)
    for i in range(N_DOCS):
        write(settings, f"d{i // 50}/doc{i:03d}.txt", make_document(rng, vocab, rng.randint(8, 30)))
    queries = [" ".join(rng.sample(vocab, 3)) for _ in range(6)]
    build_index(settings, embedder=FakeEmbedder())
    texts = snapshot(settings)
    live = check_build_matches_manifest(settings, texts, rng)
    expected = search_results(settings, queries)

    zygote = Zygote(tmp_path)
    try:
        # Calibrate: one full build to the end, timing its stages.
        pid = zygote.start(["--full"], delay=0.15)
        killed, stages = zygote.reap(pid)
        assert not killed and "done" in stages and "swapped" in stages, stages
        bounds = {
            "chunking": (stages["chunking"], stages["embedding"]),
            "embedding": (stages["embedding"], stages["writing"]),
            "writing": (stages["writing"], stages["renamed"]),
            "start": (stages["start"], stages["swapped"]),
        }
        assert bounds["start"][1] - bounds["start"][0] > 0.5, stages  # long enough to aim at
        live = check_build_matches_manifest(settings, texts, rng)
        expected = search_results(settings, queries)

        plan = (
            [("chunking", None)] * 4
            + [("embedding", None)] * 5
            + [("writing", None)] * 4
            + [(p, "exact") for p in EXACT_POINTS]
            + [("start", None)] * 2
        )
        assert len(plan) == 20
        rng.shuffle(plan)
        survived, log, reached_stages = 0, [], Counter()
        for round_no, (stage, mode) in enumerate(plan):
            # Change the seeds a little, so the killed build had real work to do.
            for _ in range(3):
                doc = rng.choice(sorted(texts))
                write(settings, doc, make_document(rng, vocab, rng.randint(8, 30)))
            write(settings, f"new/r{round_no}.txt", make_document(rng, vocab, 12))
            gone = rng.choice(sorted(texts))
            (settings.seeds_dir / gone).unlink()
            args = ["--full"] if mode is None or round_no % 2 else []
            for attempt in range(6):
                if mode == "exact":
                    pid = zygote.start(args, delay=0.01, pause=stage)
                    seen = zygote.wait_for(pid, stage)
                    at = f"at {stage}"
                else:
                    pid = zygote.start(args, delay=0.15)
                    lo, hi = bounds[stage]
                    pause = rng.uniform(0, 0.9 * (hi - lo)) / 2**attempt
                    seen = zygote.wait_for(pid, stage)
                    time.sleep(pause)
                    at = f"{stage}+{pause:.2f}s"
                killed, later = False, {}
                if "EXIT" not in seen:
                    with contextlib.suppress(ProcessLookupError):  # it may have just finished
                        os.kill(pid, signal.SIGKILL)
                    killed, later = zygote.reap(pid)
                if killed:
                    break
                # The build ran to its end before the chosen moment (a busy machine): it is
                # the previous build now; aim again, earlier.
                texts = snapshot(settings)
                live = check_build_matches_manifest(settings, texts, rng)
                expected = search_results(settings, queries)
                for _ in range(2):
                    doc = rng.choice(sorted(texts))
                    write(settings, doc, make_document(rng, vocab, rng.randint(8, 30)))
            else:
                pytest.fail(f"round {round_no}: could not kill the build {at}")
            reached = max({**seen, **later}.items(), key=lambda kv: kv[1])[0]
            reached_stages[reached] += 1
            new_texts = snapshot(settings)
            # CURRENT names a complete build: the previous one, or the new one if the kill came
            # after the swap (then it must match the new seeds exactly).
            name = current_build(settings.index_dir).name
            if name == live:
                assert check_build_matches_manifest(settings, texts, rng) == live
                assert search_results(settings, queries) == expected, f"round {round_no}"
            else:
                # "current-written" is marked just before os.replace(CURRENT): a kill right
                # after that marker may land before or after the (atomic) replace.
                assert reached in ("current-written", "swapped", "cleanup"), (stage, reached)
                check_build_matches_manifest(settings, new_texts, rng)
                reference = settings.model_copy(update={"index_dir": tmp_path / f"ref{round_no}"})
                build_index(reference, embedder=FakeEmbedder())
                assert search_results(settings, queries) == search_results(reference, queries)
            survived += 1
            log.append(f"{at} (last marker: {reached}): {'new' if name != live else 'previous'}")
            # The next build completes and clears what the killed one left behind.
            build_index(settings, embedder=FakeEmbedder())
            assert_clean(settings.index_dir)
            texts = new_texts
            live = check_build_matches_manifest(settings, texts, rng)
            expected = search_results(settings, queries)
    finally:
        zygote.close()
    # Printed into pytest's capture: shown when the test fails, quiet when it passes.
    print(f"kills survived: {survived}/20; stage at the kill: {dict(reached_stages)}")
    for line in log:
        print("  killed", line)
    assert survived == 20


# ------------------------------------------------------------------------- failing writes


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _faiss_full(*args, **kwargs):  # what faiss.write_index raises on a full disk
    raise RuntimeError("Error in faiss::FileIOWriter: fwrite failed: No space left on device")


class _FullSqlite:
    """Stands for the sqlite3 module in the segment writer: every write fails as on a full disk."""

    Error, DatabaseError = sqlite3.Error, sqlite3.DatabaseError

    @staticmethod
    def connect(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")


WRITERS = [
    ("assistant.store.segments", "write_faiss", _enospc),
    ("assistant.store.segments", "_write_bm25", _enospc),
    ("assistant.store.writer", "write_manifest", _enospc),
    ("assistant.store.writer", "fsync_tree", _enospc),
    ("assistant.store.writer", "point_current", _enospc),
    ("faiss", "write_index", _faiss_full),
    ("assistant.store.segments", "sqlite3", _FullSqlite),
]


@pytest.mark.faiss_only("the embedded store's file writers")
@pytest.mark.parametrize(("module", "writer", "failure"), WRITERS)
def test_disk_full_mid_build_keeps_the_old_index(
    seeded, fake_embedder, monkeypatch, module, writer, failure
):
    """Every write path (OSError, FAISS's RuntimeError, SQLite's OperationalError) fails as one
    ``IndexWriteError`` line and leaves the previous index serving."""
    import importlib

    from assistant.errors import IndexWriteError

    build_index(seeded, embedder=fake_embedder)
    before = current_build(seeded.index_dir)
    queries = ["troops parade", "sourdough starter", "cats sleep"]
    expected = search_results(seeded, queries)
    write(seeded, "more.txt", "More text to embed. It is about a parade of cats.")

    monkeypatch.setattr(importlib.import_module(module), writer, failure)
    with pytest.raises(IndexWriteError, match="full|No space left on device") as caught:
        build_index(seeded, embedder=fake_embedder, full=True)
    assert "\n" not in str(caught.value) and "previous index is intact" in str(caught.value)
    monkeypatch.undo()
    assert current_build(seeded.index_dir) == before
    assert not [p for p in seeded.index_dir.iterdir() if p.name.startswith(".tmp-")]
    assert search_results(seeded, queries) == expected
    report = build_index(seeded, embedder=fake_embedder)
    assert report.new == 1
    assert_clean(seeded.index_dir)


FULL_DISK_CLI = textwrap.dedent(
    """
    import errno, sys
    sys.path.insert(0, {tests!r})
    from conftest import FakeEmbedder
    import assistant.cli as cli
    import assistant.build as idx
    import faiss

    def full_disk(*args, **kwargs):
        raise RuntimeError("Error in faiss::FileIOWriter: fwrite failed: No space left on device")

    import assistant.embedders
    assistant.embedders.get_embedder = lambda model: FakeEmbedder()
    faiss.write_index = full_disk
    sys.argv = ["assistant", "build", "--full"]
    cli.main()
    """
)


@pytest.mark.faiss_only("a full disk under the embedded store's folder")
def test_disk_full_in_the_cli_is_one_clear_line(seeded, fake_embedder, tmp_path):
    build_index(seeded, embedder=fake_embedder)
    before = current_build(seeded.index_dir)
    script = tmp_path / "full_disk.py"
    script.write_text(FULL_DISK_CLI.format(tests=str(REPO / "tests")))
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "No space left on device" in lines[0], result.stderr
    assert "previous index" in lines[0]
    assert current_build(seeded.index_dir) == before
    load_index(seeded, check_seeds=False)


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


# ------------------------------------------------------------------------- corrupted files

INDEX_FILES = ["vectors.faiss", "chunks.sqlite", "manifest.json", "bm25/*"]


def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "garbled":  # same size, a few bytes flipped in the middle
        middle = len(data) // 2
        path.write_bytes(
            data[:middle] + bytes(b ^ 0x5A for b in data[middle : middle + 8]) + data[middle + 8 :]
        )
    elif how == "appended":
        path.write_bytes(data + b"\x00garbage")
    elif how == "deleted":
        path.unlink()
    else:
        raise ValueError(how)


@pytest.mark.faiss_only("damages the embedded store's files")
@pytest.mark.parametrize("how", ["empty", "truncated", "garbled", "appended", "deleted"])
@pytest.mark.parametrize("target", INDEX_FILES)
def test_corrupted_index_files_raise_a_typed_error_naming_file_and_fix(
    seeded, fake_embedder, target, how
):
    from assistant.errors import CorruptIndexError

    build_index(seeded, embedder=fake_embedder)
    build = current_build(seeded.index_dir)
    files = sorted(build.glob(target))  # "bm25/*": each file of the BM25 folder in turn
    assert files
    for path in files:
        original = path.read_bytes()
        damage(path, how)
        with pytest.raises(CorruptIndexError, match="assistant build --full") as err:
            load_index(seeded)
        assert path.name in str(err.value)
        with pytest.raises(CorruptIndexError):  # the serving path says the same: no wrong results
            Retriever(seeded, embedder=fake_embedder).search("troops parade")
        path.write_bytes(original)
    load_index(seeded).close()  # undamaged again
    damage(files[-1], how)
    report = build_index(seeded, embedder=fake_embedder)  # a damaged build is rebuilt in full
    assert report.reused_chunks == 0 and report.embedded_chunks == report.total_chunks
    assert_clean(seeded.index_dir)
    load_index(seeded).close()


@pytest.mark.faiss_only("damages the embedded store's segment files")
@pytest.mark.parametrize("how", ["garbled", "truncated", "deleted"])
def test_a_damaged_file_of_a_later_segment_is_named(seeded, fake_embedder, how):
    """A build of several segments checks every segment's files, not only the first's."""
    from assistant.errors import CorruptIndexError

    build_index(seeded, embedder=fake_embedder)
    write(seeded, "more.txt", "More text to embed. It is about a parade of cats.")
    build_index(seeded, embedder=fake_embedder)
    build = current_build(seeded.index_dir)
    later = [p for p in sorted(build.glob("seg-*/**/*")) if p.is_file()]
    assert len(later) == 7 and all(p.stat().st_nlink == 1 for p in later)  # new, not linked
    for path in later:
        original = path.read_bytes()
        damage(path, how)
        with pytest.raises(CorruptIndexError, match="assistant build --full") as err:
            load_index(seeded)
        assert path.name in str(err.value) and "seg-" in str(err.value)
        path.write_bytes(original)
    load_index(seeded).close()


# Manifests that parse as JSON but are not what a build writes.
BAD_MANIFESTS = {
    "a list": [],
    "no files": {"documents": {}},
    "files emptied": lambda m: {**m, "files": {}},
    "counts missing": lambda m: {k: v for k, v in m.items() if k != "counts"},
    "files not a mapping": lambda m: {**m, "files": ["vectors.faiss"]},
    "file entry not a mapping": lambda m: {**m, "files": {**m["files"], "vectors.faiss": 3}},
    "index kind missing": lambda m: {**m, "index": {}},
    "chunks count wrong": lambda m: {**m, "counts": {**m["counts"], "chunks": 1}},
    "dim wrong": lambda m: {**m, "dim": "64"},
    "segment escapes": lambda m: {
        **m,
        "segments": [{**m["segments"][0], "name": "../../elsewhere"}],
        "files": {f"../../elsewhere/{k}": v for k, v in m["files"].items()},
    },
    "segments do not add up": lambda m: {
        **m,
        "segments": [{**m["segments"][0], "chunks": m["segments"][0]["chunks"] + 1}],
    },
    "segment files missing": lambda m: {
        **m,
        "segments": [*m["segments"], {**m["segments"][0], "name": "seg-x", "chunks": 0}],
    },
}


@pytest.mark.faiss_only("rewrites manifest.json")
@pytest.mark.parametrize("case", sorted(BAD_MANIFESTS))
def test_wrong_shaped_manifest_is_a_corrupt_index(seeded, fake_embedder, case):
    from assistant.errors import CorruptIndexError, IndexError_

    build_index(seeded, embedder=fake_embedder)
    path = current_build(seeded.index_dir) / "manifest.json"
    manifest = json.loads(path.read_text())
    bad = BAD_MANIFESTS[case]
    path.write_text(json.dumps(bad(manifest) if callable(bad) else bad))
    with pytest.raises(IndexError_, match="assistant build") as err:
        load_index(seeded)
    assert isinstance(err.value, CorruptIndexError) or "format" in str(err.value)
    build_index(seeded, embedder=fake_embedder)
    load_index(seeded).close()


CURRENT_CASES = {
    "empty": b"",
    "garbage": b"garbage\n",
    "binary": b"\xff\xfe\x00\x81build-",
    "missing build": b"build-20000101T000000-deadbeef\n",
    "escaping": b"build-x/../../../etc\n",
    "a temp folder": None,  # filled in below: the name of a .tmp- folder
}


@pytest.mark.faiss_only("damages the CURRENT file")
@pytest.mark.parametrize("case", sorted(CURRENT_CASES))
def test_corrupted_current_pointer(seeded, fake_embedder, case):
    from assistant.errors import CorruptIndexError

    build_index(seeded, embedder=fake_embedder)
    pointer = seeded.index_dir / "CURRENT"
    content = CURRENT_CASES[case]
    if content is None:
        (seeded.index_dir / ".tmp-x").mkdir()
        content = b".tmp-x\n"
    pointer.write_bytes(content)
    with pytest.raises(CorruptIndexError, match="assistant build --full") as err:
        load_index(seeded)
    assert "CURRENT" in str(err.value)
    build_index(seeded, embedder=fake_embedder)
    assert_clean(seeded.index_dir)
    load_index(seeded).close()


@pytest.mark.faiss_only("damages the embedded store's files")
def test_cli_reports_each_corruption_in_one_line(settings, fake_embedder, tmp_path):
    cases = [
        ("vectors.faiss", "garbled"),
        ("chunks.sqlite", "truncated"),
        ("bm25/*", "empty"),
        ("manifest.json", "truncated"),
        ("CURRENT", "binary"),
    ]
    write(settings, "cats.txt", "Cats sleep for about sixteen hours a day.")
    procs, names = [], []
    for i, (target, how) in enumerate(cases):
        case = settings.model_copy(update={"index_dir": tmp_path / f"index{i}"})
        build_index(case, embedder=fake_embedder)
        if target == "CURRENT":
            (case.index_dir / "CURRENT").write_bytes(CURRENT_CASES[how])
        else:
            path = sorted(current_build(case.index_dir).glob(target))[-1]
            damage(path, how)
            target = path.name
        env = {**os.environ, "ASSISTANT_INDEX_DIR": str(case.index_dir)}
        names.append(target)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "assistant", "search", "cats sleep"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                cwd=REPO,
            )
        )
    for target, proc in zip(names, procs):
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 4, (target, err)
        assert out == "" and "Traceback" not in err
        assert err.count("\n") == 1 and err.startswith("error: "), err
        assert Path(target).name in err and "assistant build --full" in err, err


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


@pytest.mark.faiss_only("about FAISS segments")
def test_random_sequences_of_edits_keep_every_segmented_build_exact(settings):
    """30 random builds (adds, edits, removals, touches) through the segment planner: each build
    matches its manifest and its sources, stays within MAX_SEGMENTS, and ranks (dense and BM25
    scores per document and offsets) exactly as a full build of the same seeds."""
    from assistant.store.manifest import read_manifest, segments_of
    from assistant.store.planner import MAX_SEGMENTS
    from tests.test_index import _results

    rng = random.Random(6)
    vocab = make_vocabulary(rng)
    fake = FakeEmbedder()
    reference = settings.model_copy(update={"index_dir": settings.index_dir.parent / "ref"})
    queries = [" ".join(rng.sample(vocab, 3)) for _ in range(4)]
    for i in range(4):
        write(settings, f"doc{i}.txt", make_document(rng, vocab, rng.randint(3, 30)))
    build_index(settings, embedder=fake)
    most = 1
    for step in range(30):
        names = sorted(snapshot(settings))
        op = rng.choice(["add", "add", "add", "edit", "remove", "touch"])
        if op == "add" or len(names) < 3:
            for _ in range(rng.randint(1, 3)):
                n = rng.choice([2, 4, 12, 40])
                write(settings, f"new{step}-{rng.randint(0, 99)}.txt", make_document(rng, vocab, n))
        elif op == "edit":
            write(settings, rng.choice(names), make_document(rng, vocab, rng.randint(3, 20)))
        elif op == "remove":
            (settings.seeds_dir / rng.choice(names)).unlink()
        else:
            path = settings.seeds_dir / rng.choice(names)
            os.utime(path, ns=(time.time_ns(), time.time_ns()))
        build_index(settings, embedder=fake)
        check_build_matches_manifest(settings, snapshot(settings), rng)
        segments = segments_of(read_manifest(current_build(settings.index_dir)))
        assert len(segments) <= MAX_SEGMENTS
        most = max(most, len(segments))
        if step % 6 == 5:
            build_index(reference, embedder=fake, full=True)
            got, want = _results(settings, fake, queries), _results(reference, fake, queries)
            for g, w in zip(got, want):  # which of the chunks tied at the cut make it is open
                cut = min((x[2] for x in w), default=0.0)
                assert len(g) == len(w), step
                assert [x for x in g if x[2] > cut] == [x for x in w if x[2] > cut], step
    assert most > 2  # the planner was exercised with several segments
