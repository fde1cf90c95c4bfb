"""Questions limited to chosen documents (issue 25, part 7), from Python, the CLI and the HTTP
API, on the store under test (``pytest --store milvus`` runs them on Milvus Lite).

Two documents both speak of the lighthouse; the harbour guide much more than the keeper's diary.
With 3 candidates per side, a search of all the documents never reaches the diary: its passages
can only come from a search made within it, not from a global top k filtered down.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from assistant.answer import ask
from assistant.build import build_index
from assistant.config import Settings
from assistant.errors import AssistantError, UnknownDocumentError
from assistant.retrieval import Retriever, retrieve
from assistant.scope import check_sources, close_names

from .conftest import REPO, release_store, write

pytestmark = pytest.mark.stores  # runs on both stores (tests/conftest.py)

HARBOUR, KEEPER, CATS = "harbour.md", "notes/keeper.md", "cats.txt"
QUERY = "lighthouse lamp beam"
QUESTION = "When was the lighthouse painted?"

HARBOUR_TEXT = "# Harbour guide\n\n" + "\n\n".join(
    [
        "The lighthouse on the north pier was painted teal in 1987 by nine volunteers.",
        "The lighthouse lamp turns every ten seconds and the lighthouse beam reaches far.",
        "A second lighthouse lamp stands ready in case the main lighthouse lamp fails.",
        "Ships read the lighthouse beam from twenty miles out on a clear night.",
        "The lighthouse beam was brightened in 2004 when the lighthouse lamp was replaced.",
        "Visitors may climb the lighthouse on Sundays to see the lamp and its beam.",
    ]
)
KEEPER_TEXT = "# Keeper diary\n\n" + "\n\n".join(
    [
        "Monday. I climbed the lighthouse stairs before dawn to polish the brass rails.",
        "Tuesday. The keeper painted the lighthouse door red in 1990, a cheerful colour.",
        "Wednesday. Fog all day; I wound the clock in the lighthouse kitchen twice.",
        "Thursday. A supply boat brought flour, candles and letters to the lighthouse.",
        "Friday. Gulls nested on the lighthouse gallery again; I left them in peace.",
    ]
)

# ``assistant`` as installed, with the model loaded by name replaced by the fake embedder.
CLI = """
import sys
import assistant.embedders
from tests.conftest import FakeEmbedder
assistant.embedders.get_embedder = lambda model: FakeEmbedder()
from assistant.cli import main
sys.argv[0] = "assistant"
main()
"""


@pytest.fixture
def two_docs(settings, monkeypatch, fake_model) -> Settings:
    """Three documents in short chunks, searched with 3 candidates per side, built."""
    monkeypatch.setenv("ASSISTANT_CHUNK_TOKENS", "40")
    monkeypatch.setenv("ASSISTANT_CHUNK_OVERLAP", "0")
    monkeypatch.setenv("ASSISTANT_CANDIDATES", "3")
    write(settings, HARBOUR, HARBOUR_TEXT + "\n")
    write(settings, KEEPER, KEEPER_TEXT + "\n")
    write(settings, CATS, "Cats sleep for about sixteen hours a day.\n")
    scoped = Settings()
    build_index(scoped, embedder=fake_model)
    return scoped


def _sources(passages) -> set[str]:
    return {p["source"] if isinstance(p, dict) else p.source for p in passages}


# --- names ---------------------------------------------------------------------------------------


def test_names_resolve_to_document_ids_and_unknown_ones_list_close_names():
    known = ["harbour.md", "notes/keeper.md", "notes/bread.md", "cats.txt"]
    assert check_sources(None, known) is None and check_sources([], known) is None
    assert check_sources("cats.txt", known) == ("cats.txt",)  # one name as a string
    assert check_sources(["notes/keeper.md", "cats.txt", "cats.txt"], known) == (
        "notes/keeper.md",
        "cats.txt",
    )
    assert check_sources(["keeper.md", "./harbour.md", "notes\\bread.md"], known) == (
        "notes/keeper.md",
        "harbour.md",
        "notes/bread.md",
    )
    with pytest.raises(UnknownDocumentError) as caught:
        check_sources(["notes/keper.md"], known)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("unknown document 'notes/keper.md'; ")
    assert "close names: 'notes/keeper.md'" in message
    assert caught.value.close[0] == "notes/keeper.md" and caught.value.exit_code == 2
    assert isinstance(caught.value, (AssistantError, ValueError))
    with pytest.raises(UnknownDocumentError, match="no close name among the 4 indexed") as caught:
        check_sources(["zzzzzz\nqqqq"], known)
    assert "\n" not in str(caught.value) and "\\n" in str(caught.value)
    assert close_names("harbor.md", known)[0] == "harbour.md"
    for bad in (3, [3], b"cats.txt", {"cats.txt": 1}):
        with pytest.raises(TypeError):
            check_sources(bad, known)


# --- Python --------------------------------------------------------------------------------------


def test_retrieve_within_chosen_documents_gives_their_k_best(two_docs):
    everywhere = retrieve(QUERY, k=3, settings=two_docs)
    assert _sources(everywhere) == {HARBOUR}  # the diary is not in the global top 3 at all

    within = retrieve(QUERY, k=3, settings=two_docs, sources=[KEEPER])
    assert len(within) == 3 and _sources(within) == {KEEPER}
    assert [p.score for p in within] == sorted((p.score for p in within), reverse=True)
    text = (two_docs.seeds_dir / KEEPER).read_text(encoding="utf-8")
    assert all(text[p.start : p.end] == p.text for p in within)

    both = retrieve(QUERY, k=5, settings=two_docs, sources=[KEEPER, CATS])
    assert _sources(both) <= {KEEPER, CATS} and KEEPER in _sources(both)
    assert _sources(retrieve(QUERY, k=3, settings=two_docs, sources="keeper.md")) == {KEEPER}
    # Every document named is the same as none named.
    every = retrieve(QUERY, k=3, settings=two_docs, sources=[HARBOUR, KEEPER, CATS])
    assert [(p.source, p.start) for p in every] == [(p.source, p.start) for p in everywhere]

    with pytest.raises(UnknownDocumentError, match="close names: 'notes/keeper.md'") as caught:
        retrieve(QUERY, k=3, settings=two_docs, sources=["notes/keper.md"])
    assert "\n" not in str(caught.value)


def test_ask_within_chosen_documents_quotes_only_them(two_docs):
    answer = ask(QUESTION, settings=two_docs, sources=[KEEPER])
    assert answer.passages and _sources(answer.passages) == {KEEPER}
    assert {c.source for c in answer.citations} <= {KEEPER}
    everywhere = ask(QUESTION, settings=two_docs)
    assert HARBOUR in _sources(everywhere.passages)

    # A follow-up leaning on the conversation, and a summary request, stay in the scope too.
    follow = ask("And who did it?", [(QUESTION, answer.text)], two_docs, sources=[KEEPER])
    assert _sources(follow.passages) <= {KEEPER}
    summary = ask("Summarize the harbour guide", settings=two_docs, sources=[KEEPER])
    assert {c.source for c in summary.citations} <= {KEEPER}
    assert _sources(summary.passages) <= {KEEPER}

    with pytest.raises(UnknownDocumentError, match="close names: 'harbour.md'"):
        ask(QUESTION, settings=two_docs, sources=["harbor.md"])


def test_a_scoped_retriever_searches_within_and_shares_the_loaded_build(two_docs, fake_model):
    retriever = Retriever(two_docs, embedder=fake_model)
    assert retriever.scoped(None) is retriever and retriever.scoped([]) is retriever
    scoped = retriever.scoped([KEEPER])
    assert _sources(scoped.search(QUERY, k=3)) == {KEEPER}
    assert set(scoped.index.documents()) == {KEEPER}
    assert scoped.index.manifest is retriever.index.manifest  # the same opened build
    assert _sources(scoped.search(QUERY, k=2, sources=[CATS])) == {CATS}
    with pytest.raises(UnknownDocumentError):
        retriever.scoped(["nothing-like-it.pdf"])


def test_store_searches_within_documents_rank_exactly_as_the_whole_index(two_docs, fake_model):
    """Both stores: a search limited to some documents is the whole index's ranking of their
    chunks (dense by inner product, BM25 with the whole build's statistics)."""
    retriever = Retriever(two_docs, embedder=fake_model)
    index = retriever.index
    vector = retriever.embed_query(QUERY)
    docs = index.manifest["documents"]
    for chosen in ([KEEPER], [KEEPER, CATS], [HARBOUR]):
        ids = {
            i
            for d in chosen
            for i in range(docs[d]["first_chunk"], docs[d]["first_chunk"] + docs[d]["chunks"])
        }
        for search, query in ((index.dense_search, vector), (index.lexical_search, QUERY)):
            scores, found = search(query, index.size)
            full = {int(i): float(s) for s, i in zip(scores, found) if int(i) in ids}
            scores, found = search(query, 3, docs=chosen)
            assert len(found) == min(3, len(full)) and set(map(int, found)) <= ids
            assert list(scores) == sorted(scores, reverse=True)
            best = sorted(full.values(), reverse=True)[: len(found)]
            assert np.allclose(scores, best, atol=1e-5)
            assert all(
                full[int(i)] == pytest.approx(float(s), abs=1e-5) for s, i in zip(scores, found)
            )
    assert len(index.dense_search(vector, 3, docs=[])[1]) == 0


@pytest.mark.faiss_only("the embedded store's approximate indexes")
@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_a_scoped_search_is_exact_on_an_approximate_index(settings, monkeypatch, fake_model, kind):
    monkeypatch.setenv("ASSISTANT_ANN_THRESHOLD", "1")
    monkeypatch.setenv("ASSISTANT_ANN_KIND", kind)
    monkeypatch.setenv("ASSISTANT_CHUNK_TOKENS", "40")
    monkeypatch.setenv("ASSISTANT_CHUNK_OVERLAP", "0")
    write(settings, HARBOUR, HARBOUR_TEXT + "\n")
    write(settings, KEEPER, KEEPER_TEXT + "\n")
    approx = Settings()
    build_index(approx, embedder=fake_model)
    retriever = Retriever(approx, embedder=fake_model)
    index = retriever.index
    assert index.manifest["index"]["kind"] == kind
    info = index.manifest["documents"][KEEPER]
    ids = np.arange(info["first_chunk"], info["first_chunk"] + info["chunks"])
    vector = retriever.embed_query(QUERY)
    truth = index.vectors(ids) @ vector
    scores, found = index.dense_search(vector, 2, docs=[KEEPER])
    assert np.allclose(scores, np.sort(truth)[::-1][:2], atol=1e-5)
    assert set(found) <= set(ids.tolist())


# --- CLI -----------------------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-c", CLI, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )


def test_cli_search_and_ask_take_repeatable_doc_options(two_docs):
    release_store(two_docs)  # Milvus Lite: let the child process open the store
    result = _cli("search", QUERY, "-k", "3", "--doc", KEEPER, "--json")
    assert result.returncode == 0, result.stderr
    passages = json.loads(result.stdout)
    assert len(passages) == 3 and _sources(passages) == {KEEPER}

    result = _cli("search", QUERY, "-k", "4", "--doc", KEEPER, "--doc", CATS)
    assert result.returncode == 0, result.stderr
    assert f"({KEEPER}, " in result.stdout and f"({HARBOUR}, " not in result.stdout

    result = _cli("ask", QUESTION, "--doc", KEEPER, "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["passages"] and _sources(answer["passages"]) == {KEEPER}
    assert {c["source"] for c in answer["citations"]} <= {KEEPER}

    for command in (("search", QUERY), ("ask", QUESTION)):
        result = _cli(*command, "--doc", KEEPER, "--doc", "notes/keper.md")
        assert result.returncode == 2, result.stderr
        assert result.stdout == "" and result.stderr.count("\n") == 1
        assert result.stderr.startswith("error: unknown document 'notes/keper.md'; close names: ")
        assert "'notes/keeper.md'" in result.stderr and "Traceback" not in result.stderr


# --- web app: the chat's selector and the HTTP API -----------------------------------------------


def _handler(demo, name: str):
    return next(f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == name)


def test_chat_selector_lists_the_indexed_documents_and_limits_the_answer(two_docs):
    from assistant import app as web

    demo = web.build_app(two_docs)
    selector = _handler(demo, "scope_choices")([KEEPER, "gone.txt"])
    assert [c[0] if isinstance(c, tuple) else c for c in selector.choices] == sorted(
        [CATS, HARBOUR, KEEPER]
    )
    assert selector.value == [KEEPER]  # a chosen document no longer indexed is dropped

    respond = _handler(demo, "respond")
    _, chat, *_ = list(respond(QUESTION, [], None, [KEEPER]))[-1]
    assert KEEPER in chat[-1]["content"] and HARBOUR not in chat[-1]["content"]
    _, chat, *_ = list(respond(QUESTION, [], None, []))[-1]  # empty: every document
    assert HARBOUR in chat[-1]["content"]
    _, chat, kept, *_ = list(respond(QUESTION, [], None, ["harbor.md"]))[-1]
    assert "unknown document" in chat[-1]["content"] and "harbour.md" in chat[-1]["content"]
    assert kept["chats"][0]["turns"] == []  # nothing answered: no turn kept


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_http_api_takes_the_documents_as_its_last_argument(two_docs, capfd):
    from gradio_client import Client

    from assistant import app as web

    demo = web.launch(two_docs, port=_free_port(), prevent_thread_lock=True, quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        passages = client.predict(QUERY, 3, [KEEPER], api_name="/retrieve")
        assert len(passages) == 3 and _sources(passages) == {KEEPER}
        assert _sources(client.predict(QUERY, 3, api_name="/retrieve")) == {HARBOUR}
        assert _sources(client.predict(QUERY, 3, [], api_name="/retrieve")) == {HARBOUR}

        answer = client.predict(QUESTION, [], [KEEPER], api_name="/ask")
        assert answer["passages"] and _sources(answer["passages"]) == {KEEPER}
        assert {c["source"] for c in answer["citations"]} <= {KEEPER}
        assert HARBOUR in _sources(client.predict(QUESTION, api_name="/ask")["passages"])

        for args, api in (
            ((QUERY, 3, ["notes/keper.md"]), "/retrieve"),
            ((QUESTION, [], ["notes/keper.md"]), "/ask"),
        ):
            with pytest.raises(
                Exception, match="unknown document 'notes/keper.md'; close names: 'notes/keeper.md'"
            ) as caught:
                client.predict(*args, api_name=api)
            assert "\n" not in str(caught.value).strip()
        # A refusal is the caller's one line, not a traceback in the server's log (a log piped
        # to a reader that does not read filled up and blocked a server).
        assert "Traceback" not in capfd.readouterr().err
    finally:
        demo.close()
