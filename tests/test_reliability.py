"""Crash safety: SIGKILL a build at 20 random moments, failing writes, and random sequences of
edits (issue 7, part 1; corrupted files are in test_corruption.py, concurrent builds and
searches in test_swaps.py).

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

from assistant.build import build_index
from assistant.retrieval import Retriever
from assistant.store.layout import current_build
from assistant.store.loaded import load_index

from .conftest import REPO, FakeEmbedder, assert_clean, make_document, make_vocabulary, write

pytestmark = pytest.mark.stores  # runs on both stores (tests/conftest.py)


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


CHECKPOINT_FULL_CLI = textwrap.dedent(
    """
    import errno, sys
    sys.path.insert(0, {tests!r})
    from conftest import FakeEmbedder
    import assistant.cli as cli
    import assistant.store.checkpoint as checkpoint
    import faiss

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    def faiss_full(*args, **kwargs):
        raise RuntimeError("Error in faiss::FileIOWriter: fwrite failed: No space left on device")

    import assistant.embedders
    assistant.embedders.get_embedder = lambda model: FakeEmbedder()
    checkpoint.open = full_disk  # the checkpoint file's write
    if {still_full!r}:
        faiss.write_index = faiss_full  # the disk stays full for the build's own write
    sys.argv = ["assistant", "build", "--full"]
    cli.main()
    """
)


@pytest.mark.faiss_only("a full disk under the embedded store's folder")
@pytest.mark.parametrize("still_full", [True, False])
def test_disk_full_while_a_checkpoint_is_written_is_one_line(
    seeded, fake_embedder, tmp_path, still_full
):
    """A full disk at the checkpoint: no log line of its own. The build's write then fails as
    one error line (the old index kept), or, if the disk has room again, the build completes
    and its report says once that the checkpoint could not be written."""
    build_index(seeded, embedder=fake_embedder)
    before = current_build(seeded.index_dir)
    script = tmp_path / "checkpoint_full.py"
    script.write_text(CHECKPOINT_FULL_CLI.format(tests=str(REPO / "tests"), still_full=still_full))
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "No space left on device" in lines[0], result.stderr
    if still_full:
        assert result.returncode == 1 and lines[0].startswith("error:"), result.stderr
        assert "previous index is intact" in lines[0]
        assert current_build(seeded.index_dir) == before
    else:
        assert result.returncode == 0 and lines[0].startswith("warning: could not write a ")
        assert current_build(seeded.index_dir) != before
    assert not (seeded.index_dir / ".checkpoint").exists() or not [
        p for p in (seeded.index_dir / ".checkpoint").iterdir() if p.name.startswith(".")
    ]
    load_index(seeded, check_seeds=False)


def test_a_checkpoint_on_a_full_disk_logs_nothing_and_leaves_no_partial_file(
    settings, monkeypatch, caplog
):
    """The checkpoint's own failure is no log line: the build's report says it if the build
    completes, and the partial file is removed (its space is the build's)."""
    import logging

    import numpy as np

    import assistant.store.checkpoint as checkpoint

    def half_written(*args, **kwargs):
        handle = args[0]
        handle.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint.np, "savez", half_written)
    store = checkpoint.Checkpoint(settings.index_dir)
    Path(settings.index_dir).mkdir(parents=True, exist_ok=True)
    with caplog.at_level(logging.DEBUG, logger="assistant"):
        store.save({"a": np.ones((2, 4), np.float32)})
        store.save({"b": np.ones((2, 4), np.float32)})  # stopped checkpointing: not tried
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "No space left on device" in store.problem
    assert list(store.path.iterdir()) == []


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
