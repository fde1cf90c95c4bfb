"""Fuzzed input (issue 7, part 4): the chunker, search and ask with arbitrary text, and hostile
seed folders. Every call gives a result or a typed error, never an unhandled exception.

Example counts are kept modest for CI; ``pytest --hypothesis-show-statistics`` reports them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.answer import ask, verify_citation
from assistant.build import build_index
from assistant.chunking import Chunker, split_sentences
from assistant.config import Settings
from assistant.corpus import load_corpus
from assistant.errors import AssistantError, QuestionError
from assistant.retrieval import Retriever
from assistant.store import open_index as load_index
from assistant.tokens import get_encoding
from assistant.types import Document

from .conftest import REPO, SEED, FakeEmbedder, write

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)

# Pieces that stress text handling: right-to-left scripts and marks, emoji with joiners and
# modifiers, combining marks, control characters, NUL, odd line and paragraph separators.
SPECIAL = [
    "שלום עולם. ",
    "مرحبا بالعالم؟ ",
    "\u202eevil\u202c",
    "\u200f\u200e",
    "👨‍👩‍👧‍👦",
    "🏳️‍🌈",
    "👍🏽",
    "e\u0301\u0301\u0301",
    "\x00",
    "\x07\x1b[31m",
    "\r\n",
    "\u2028\u2029",
    "\ufeff",
    "\ufffd",
    "Dr. J. K. Rowling. ",
    "…! ?. ",
    "troops parade 14,000. ",
    "\t\v\f",
    "ǅ𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "a" * 300,
    "😀" * 120,
    "中文文本没有空格" * 20,
]
any_char = st.characters(codec="utf-8")  # everything UTF-8 can carry (not lone surrogates)
pieces = st.one_of(st.text(any_char, max_size=40), st.sampled_from(SPECIAL))
texts = st.lists(pieces, max_size=25).map("".join)
queries = st.one_of(
    texts,
    st.text(st.characters(), max_size=60),  # includes lone surrogates (JSON "\ud800" gives one)
)


@pytest.fixture(scope="module")
def encoding():
    return get_encoding("cl100k_base")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    seeds = root / "seeds"
    seeds.mkdir()
    (seeds / "news.txt").write_text(SEED.read_text(encoding="utf-8"), encoding="utf-8")
    (seeds / "mixed.md").write_text(
        "# Mixed scripts\n\nשלום עולם. The parade had 14,000 troops 👍🏽.\n"
        "مرحبا بالعالم؟ Cats sleep sixteen hours.\x07 Zero\u200bwidth joins.\n",
        encoding="utf-8",
    )
    s = Settings(seeds_dir=seeds, index_dir=root / "embeddings", model="fake")
    build_index(s, embedder=FakeEmbedder())
    return s, Retriever(s, embedder=FakeEmbedder())


def _allowed(exc: BaseException) -> bool:
    return isinstance(exc, (ValueError, TypeError, AssistantError))


# ------------------------------------------------------------------------- chunker


@FUZZ
@given(text=texts, max_tokens=st.integers(8, 80), overlap_share=st.floats(0, 0.9))
def test_chunker_any_text_gives_exact_in_budget_chunks(encoding, text, max_tokens, overlap_share):
    chunker = Chunker(encoding, max_tokens, int(max_tokens * overlap_share) % max_tokens)
    chunks = chunker.chunk(Document(id="f.txt", title="t", text=text, sha256="0"))
    covered = [False] * len(text)
    for c in chunks:
        assert 0 <= c.start < c.end <= len(text)
        assert text[c.start : c.end] == c.text and c.text.strip() == c.text
        assert c.n_tokens <= max_tokens and c.n_tokens == chunker.count(c.text)
        covered[c.start : c.end] = [True] * (c.end - c.start)
    lost = [ch for ch, seen in zip(text, covered) if not seen and not ch.isspace()]
    assert not lost, f"text lost between chunks: {''.join(lost)[:80]!r}"
    for a, b in split_sentences(text):
        assert text[a:b].strip() == text[a:b] != ""


def test_chunker_one_megabyte_without_breaks(encoding):
    import time

    for text in ["x" * 1_000_000, "🙂" * 250_000, ("word " * 200_000)]:
        t = time.perf_counter()
        chunks = Chunker(encoding, 200, 32).chunk(Document("big", "big", text, "0"))
        assert chunks and all(text[c.start : c.end] == c.text for c in chunks)
        assert max(c.n_tokens for c in chunks) <= 200
        assert time.perf_counter() - t < 60


# ------------------------------------------------------------------------- search and ask


@FUZZ
@given(query=queries, k=st.one_of(st.integers(-3, 60), st.just(True), st.just(2.5)))
def test_search_any_query_gives_passages_or_a_typed_error(served, query, k):
    s, retriever = served
    try:
        passages = retriever.search(query, k=k)
    except Exception as exc:  # noqa: BLE001 - the point: only typed errors may escape
        assert _allowed(exc), repr(exc)
        return
    assert len(passages) <= k
    for p in passages:
        source = (s.seeds_dir / p.source).read_text(encoding="utf-8")
        assert source[p.start : p.end] == p.text


@FUZZ
@given(
    question=queries,
    history=st.one_of(
        st.none(), st.lists(st.tuples(texts, st.one_of(texts, st.none())), max_size=3)
    ),
)
def test_ask_any_question_gives_an_answer_or_a_typed_error(served, question, history):
    s, retriever = served
    try:
        answer = ask(question, history=history, settings=s, retriever=retriever)
    except Exception as exc:  # noqa: BLE001
        assert _allowed(exc), repr(exc)
        return
    assert answer.abstained or answer.citations
    for c in answer.citations:
        assert verify_citation(c, s.seeds_dir)
        assert f"[{c.n}]" in answer.text


@pytest.mark.parametrize("bad", [None, b"troops", 42, ["troops"], "", "   ", "\x00\x00", "\n\t"])
def test_non_text_and_empty_queries_are_typed_errors(served, bad):
    s, retriever = served
    with pytest.raises((TypeError, ValueError)):
        retriever.search(bad)
    with pytest.raises((TypeError, ValueError)):
        ask(bad, settings=s, retriever=retriever)


def test_one_megabyte_queries_are_refused_at_once(served):
    """Over ASSISTANT_MAX_QUESTION_CHARS (issue 26): a typed one-line error before anything is
    tokenized (a 5 MB question once kept a worker busy for minutes); the longest accepted
    question still gets passages and an answer."""
    s, retriever = served
    for query in ["troops " * 150_000, "x" * 1_000_000, "👍🏽" * 250_000]:
        started = time.perf_counter()
        with pytest.raises(QuestionError, match="ASSISTANT_MAX_QUESTION_CHARS") as search_error:
            retriever.search(query, k=3)
        with pytest.raises(QuestionError, match="ASSISTANT_MAX_QUESTION_CHARS"):
            ask(query, settings=s, retriever=retriever)
        assert time.perf_counter() - started < 2  # generous: measured in milliseconds
        assert "\n" not in str(search_error.value)
    longest = ("troops parade " * 200)[: s.max_question_chars]
    assert len(retriever.search(longest, k=3)) <= 3
    answer = ask(longest, settings=s, retriever=retriever)
    assert all(verify_citation(c, s.seeds_dir) for c in answer.citations)


# ------------------------------------------------------------------------- hostile seed folders


def test_hostile_seed_folder_is_skipped_with_reasons_and_the_rest_indexed(settings, tmp_path):
    seeds = Path(settings.seeds_dir)
    write(settings, "good.txt", "Cats sleep for about sixteen hours a day.")
    write(settings, "empty.txt", "")
    write(settings, "binary.md", bytes(range(256)) * 4)
    write(settings, "latin1.txt", "Caf\xe9 au lait.".encode("latin-1"))
    with open(seeds / "huge.txt", "wb") as handle:  # 100 MB, sparse: instant, takes no space
        handle.truncate(100 * 1024 * 1024)
    secret = tmp_path / "secret.txt"
    secret.write_text("The launch code is 0000.")
    os.symlink(secret, seeds / "outside.txt")
    os.symlink(tmp_path, seeds / "outside-dir")
    os.symlink(seeds / "loop-a.txt", seeds / "loop-b.txt")
    os.symlink(seeds / "loop-b.txt", seeds / "loop-a.txt")
    os.symlink(seeds, seeds / "self")  # a folder linking to its parent: no infinite walk
    deep = seeds.joinpath(*[f"level{i}" for i in range(50)])
    deep.mkdir(parents=True)
    (deep / "deep.txt").write_text("The deepest document mentions a submarine.")
    os.mkfifo(seeds / "pipe.txt")  # reading a FIFO would block forever
    (seeds / "unreadable.txt").mkdir()  # a folder with a document's name
    bad_name = os.fsencode(seeds) + b"/bad-\xff-name.txt"
    fd = os.open(bad_name, os.O_CREAT | os.O_WRONLY)
    os.write(fd, b"A document whose file name is not UTF-8.")
    os.close(fd)

    tracemalloc.start()
    try:
        corpus = load_corpus(seeds, max_bytes=int(settings.max_file_mb * 1e6))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20e6, f"the 100 MB file was read into memory (peak {peak / 1e6:.0f} MB)"
    ids = sorted(d.id for d in corpus.documents)
    assert ids == ["good.txt", "/".join(f"level{i}" for i in range(50)) + "/deep.txt"]
    reasons = dict(corpus.skipped)
    assert reasons["empty.txt"] == "empty"
    assert reasons["binary.md"].startswith("binary")
    assert reasons["latin1.txt"].startswith("not UTF-8")
    assert (
        reasons["huge.txt"].startswith("too large")
        and "ASSISTANT_MAX_FILE_MB" in reasons["huge.txt"]
    )
    assert "outside" in reasons["outside.txt"] and "outside" in reasons["outside-dir"]
    assert reasons["loop-a.txt"] == reasons["loop-b.txt"] == "broken symlink"
    assert "symlink" in reasons["self"]
    assert "regular file" in reasons["pipe.txt"]
    assert any("not valid UTF-8" in r for r in reasons.values()), reasons
    assert all("launch code" not in d.text for d in corpus.documents)

    report = build_index(settings, embedder=FakeEmbedder())
    assert report.documents == 2 and len(report.skipped) == len(corpus.skipped)
    index = load_index(settings)  # the hostile files do not make the index stale
    docs = {row[0] for row in index.chunk_rows(index.chunk_ids()).values()}
    assert docs == set(ids)
    index.close()


def test_cli_build_reports_each_skipped_file_in_one_line(settings, tmp_path):
    write(settings, "good.txt", "Cats sleep for about sixteen hours a day.")
    write(settings, "binary.txt", b"\x00\x01\x02")
    with open(Path(settings.seeds_dir) / "huge.txt", "wb") as handle:
        handle.truncate(100 * 1024 * 1024)
    os.mkfifo(Path(settings.seeds_dir) / "pipe.txt")
    script = tmp_path / "build.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(REPO / 'tests')!r})\n"
        "from conftest import FakeEmbedder\n"
        "import assistant.build as idx, assistant.cli as cli\n"
        "import assistant.embedders\n"
        "assistant.embedders.get_embedder = lambda model: FakeEmbedder()\n"
        "sys.argv = ['assistant', 'build']\n"
        "cli.main()\n"
    )
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    for name, why in [("binary.txt", "binary"), ("huge.txt", "too large"), ("pipe.txt", "regular")]:
        assert any(name in line and why in line for line in lines), result.stderr
    assert "1 new" in result.stdout


def test_seed_folder_that_is_a_file_or_missing(settings, tmp_path):
    from assistant.errors import EmptyCorpusError

    shutil.rmtree(settings.seeds_dir)
    Path(settings.seeds_dir).write_text("not a folder")
    with pytest.raises(EmptyCorpusError, match="does not exist"):
        build_index(settings, embedder=FakeEmbedder())


class StrictEmbedder(FakeEmbedder):
    """Like the real model's tokenizer, refuses text that is not valid Unicode (lone surrogates)."""

    def embed(self, texts, batch_size=32, progress=False):
        for text in texts:
            if not isinstance(text, str):
                raise TypeError("TextEncodeInput must be Union[TextInputSequence, ...]")
            text.encode("utf-8")  # UnicodeEncodeError on a lone surrogate, as tokenizers does
        return super().embed(texts)


def test_lone_surrogates_in_a_query_are_replaced_not_fatal(served):
    s, _ = served
    retriever = Retriever(s, embedder=StrictEmbedder())
    passages = retriever.search("troops \ud800 parade \udfff", k=3)
    assert passages and all("\ud800" not in p.text for p in passages)
    answer = ask("How many troops \udc80 were in the parade?", settings=s, retriever=retriever)
    assert answer.query.encode("utf-8")
