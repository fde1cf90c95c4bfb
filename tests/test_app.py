"""The web app: it builds, renders corpus text escaped, sanitizes uploads, and serves its API.

The API test launches the app on a free port (fake embedder) and calls it with gradio_client.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import urllib.error
import urllib.request

import pytest

from assistant import app as web
from assistant.build import build_index
from assistant.types import Answer, Citation, Passage

from .conftest import REPO

XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = "<img src=x onerror=alert(1)>"


# --- rendering ----------------------------------------------------------------------------------


def _citation(quote: str, title: str = "Title", before: str = "Before. ", after: str = " After."):
    passage = before + quote + after
    return Citation(
        n=1,
        source="news.txt",
        title=title,
        start=100 + len(before),
        end=100 + len(before) + len(quote),
        quote=quote,
        passage=passage,
        passage_start=100,
        passage_end=100 + len(passage),
    )


def _no_live_markup(rendered: str) -> None:
    lowered = rendered.lower()
    assert "<script" not in lowered and "<img" not in lowered
    assert "\n" not in rendered  # one HTML block: the markdown renderer never parses corpus text


def test_answer_rendering_escapes_corpus_text_and_highlights_the_quote():
    quote = f"It said {XSS_SCRIPT} and *stars* [2] twice."
    cit = _citation(quote, title=XSS_IMG, before=f"{XSS_IMG}\nline two. ")
    answer = Answer(
        text=f"“{quote}” [1]",
        citations=[cit],
        passages=[],
        abstained=False,
        query="what did it say? parade",
        question="what did it say?",
    )
    rendered = web.render_answer(answer)
    _no_live_markup(rendered)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered
    assert "&lt;img src=x onerror=alert(1)&gt;" in rendered
    assert '<mark class="quote">It said &lt;script&gt;' in rendered
    assert '<details class="excerpt" open>' in rendered
    # The heading names the file; the offsets are in the excerpt's details line only.
    assert '<span class="where">news.txt</span></summary>' in rendered
    assert f"chars {cit.start}-{cit.end}</span></div></details>" in rendered
    assert 'class="searched">searched for: what did it say? parade' in rendered
    assert '<span class="cite">[1]</span>' in rendered
    # The question itself is rendered as text too.
    assert (
        web.render_question(XSS_IMG)
        == '<div class="question">&lt;img src=x onerror=alert(1)&gt;</div>'
    )
    _no_live_markup(web.render_partial(f"“{XSS_SCRIPT}"))


def test_no_searched_for_line_when_the_query_is_the_question():
    answer = Answer(text="“x” [1]", citations=[_citation("x")], passages=[], abstained=False,
                    query="q?", question="q?")  # fmt: skip
    assert "searched for" not in web.render_answer(answer)


def test_abstention_looks_different_and_lists_escaped_closest_matches():
    passage = Passage(text=f"Nearby {XSS_SCRIPT} text", source="a/b.md", title=XSS_IMG,
                      start=0, end=30, score=0.1)  # fmt: skip
    answer = Answer(
        text="The documents do not contain an answer to this question.",
        citations=[],
        passages=[passage],
        abstained=True,
        query="q",
        question="q",
        notices=[f"note {XSS_IMG}"],
    )
    rendered = web.render_answer(answer)
    _no_live_markup(rendered)
    assert "abstained" in rendered and "Not found in the documents." in rendered
    assert "Closest matches" in rendered and '<span class="where">a/b.md</span>' in rendered
    assert "chars 0-30</span></div></details>" in rendered
    assert "<mark" not in rendered


def test_status_and_documents_panel_escape_titles_and_offer_the_fix():
    info = {
        "built": True,
        "model": "fake",
        "chunks": 3,
        "created": "2026-01-01T00:00:00+00:00",
        "documents": {f"{XSS_IMG}.txt": {"title": XSS_SCRIPT, "chunks": 3}},
        "stale": True,
        "changes": [f"new: {XSS_IMG}.txt"],
    }
    for rendered in (web.render_status(info), web.render_documents(info)):
        _no_live_markup(rendered)
    assert "out of date" in web.render_status(info)
    assert "No index" in web.render_status({"built": False})
    assert "<td>3</td>" in web.render_documents(info)


# --- uploads ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("notes.txt", "notes.txt"),
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\windows\\evil.md", "evil.md"),
        (".bashrc.md", "bashrc.md"),
        ("..hidden..name.TXT", "hidden.name.txt"),
        ("My notes (v2) <b>.md", "My-notes-v2-b.md"),
        (".txt", "document.txt"),
        ("a" * 300 + ".txt", "a" * 76 + ".txt"),
        ("Résumé Ω.md", "Résumé-Ω.md"),  # letters of any script are kept
        ("東京の地図.md", "東京の地図.md"),
        ("हिन्दी लेख.txt", "हिन्दी-लेख.txt"),  # combining vowel signs too
        ("Überblick (2024).pdf", "Überblick-2024.pdf"),
        ("evil\u202etxt.md", "evil-txt.md"),  # a bidi override is not a letter
        ("tab\there\x00.md", "tab-here.md"),
        ("console.txt", "console.txt"),
    ],
)
def test_safe_filename(given, expected):
    name = web.safe_filename(given)
    assert name == expected
    assert "/" not in name and "\\" not in name and not name.startswith(".")


@pytest.mark.parametrize("given", ["evil.exe", "notes.txt.exe", "noext", "", "x.xlsx", "a.md/"])
def test_safe_filename_refuses_other_types(given):
    with pytest.raises(web.UploadError):
        web.safe_filename(given)


@pytest.mark.parametrize("given", ["con.txt", "AUX.md", "nul.tar.txt", "com1.pdf", "LPT9.html"])
def test_safe_filename_refuses_windows_reserved_names(given):
    with pytest.raises(web.UploadError, match="Windows reserves"):
        web.safe_filename(given)


def test_safe_filename_fits_the_file_system_in_bytes():
    name = web.safe_filename("日本" * 200 + ".md")
    assert name.endswith(".md") and len(name.encode()) <= web.NAME_BYTES + 3
    assert set(name[:-3]) == {"日", "本"}


def test_save_upload_writes_only_new_files_in_the_seeds_folder(settings, tmp_path):
    seeds = settings.seeds_dir
    first = web.save_upload(b"Hello there.\n", "../notes.txt", settings)
    second = web.save_upload(b"Second.\n", "notes.txt", settings)
    assert first == seeds / "notes.txt" and second == seeds / "notes-2.txt"
    assert first.read_bytes() == b"Hello there.\n"
    # A planted symlink is never followed: the upload takes the next free name instead.
    outside = tmp_path / "outside.txt"
    os.symlink(outside, seeds / "link.txt")
    third = web.save_upload(b"Third.\n", "link.txt", settings)
    assert third == seeds / "link-2.txt" and not outside.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seeds"]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff\xfe\x00h\x00i", "binary"),
        (b"caf\xe9 au lait", "not UTF-8"),
        (b"   \n\t", "empty"),
        # One byte over: the message must not read "3 KB; the limit is 3 KB".
        (b"x" * (3 * 1024 + 1), "is 3,073 bytes, over the limit of 3 KB \\(3,072 bytes"),
    ],
)
def test_save_upload_rejects_bad_content(settings, monkeypatch, data, reason):
    settings = settings.model_copy(update={"max_upload_kb": 3})
    with pytest.raises(web.UploadError, match=reason):
        web.save_upload(data, "doc.txt", settings)
    assert list(settings.seeds_dir.iterdir()) == []


# --- the app and its API ------------------------------------------------------------------------


def test_example_questions_come_from_the_indexed_documents(seeded, fake_model):
    from assistant.store.status import index_status

    build_index(seeded)
    questions = web.example_questions(seeded, index_status(seeded))
    assert questions and len(questions) <= web.EXAMPLES_MAX
    assert any("troops" in q for q in questions)  # the news article's counted noun
    assert any("Baking bread" in q or "Cats" in q for q in questions)  # other documents too


def test_app_builds_with_named_api_endpoints(seeded, fake_model):
    import gradio as gr

    demo = web.build_app(seeded)
    assert isinstance(demo, gr.Blocks)
    named = demo.get_api_info()["named_endpoints"]
    assert set(named) == {"/ask", "/retrieve"}  # UI events are private


def _handler(demo, name: str):
    return next(f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == name)


def test_missing_index_is_announced_and_the_fix_builds_it(seeded, fake_model):
    demo = web.build_app(seeded)
    refresh, build_now, poll = (_handler(demo, n) for n in ("refresh", "build_now", "poll"))
    banner, fix, panel, _examples = refresh()
    assert "No index yet" in banner and fix.visible is True  # the one Build button
    assert "No index has been built" in panel

    assert build_now().visible is False  # pressed: hidden while the build runs
    assert demo.indexer.wait_idle(120)
    seen, log, banner, fix, panel, examples, ids, scope = poll(-1, [])
    assert "Index built: 3 documents: 3 new" in log
    assert "3 documents" in banner and fix.visible is False  # up to date: no button
    assert "notes/bread.md" in panel and "Baking bread" in panel
    assert any("troops" in sample[0] for sample in examples.raw_samples)
    assert "notes/bread.md" in ids and ("notes/bread.md", "notes/bread.md") in scope.choices
    assert poll(seen, []) == poll(seen, [])  # nothing new: the page is left as it is

    # An upload is indexed at once, without pressing anything.
    add_document = _handler(demo, "add_document")
    upload = seeded.seeds_dir.parent / "incoming" / "Lighthouse notes.txt"
    upload.parent.mkdir()
    upload.write_text("The Quill Island lighthouse was painted teal.\n", encoding="utf-8")
    message, cleared = add_document(str(upload))
    assert "Lighthouse-notes.txt" in message and "indexed now" in message and cleared is None
    assert (seeded.seeds_dir / "Lighthouse-notes.txt").exists()
    assert demo.indexer.wait_idle(120)
    _, log, banner, fix, panel, *_ = poll(seen, [])
    assert "1 new" in log and "out of date" not in banner and fix.visible is False
    assert "Lighthouse-notes.txt" in panel
    bad = upload.with_name("run.sh")
    bad.write_text("echo hi\n")
    message, _ = add_document(str(bad))
    assert "Not added" in message and not (seeded.seeds_dir / "run.sh").exists()
    demo.indexer.close()


def test_indexing_banner_says_why_how_far_and_what_answers_meanwhile():
    banner = web.render_indexing(
        {
            "reasons": ["added <b>x</b>.txt"],
            "stage": "embedding",
            "done": 3,
            "total": 8,
            "seconds": 2,
        }
    )
    assert "Indexing" in banner and "embedding 3/8 chunks" in banner and "(2s)" in banner
    assert "&lt;b&gt;x&lt;/b&gt;.txt" in banner and "previous index" in banner


def test_chat_streams_then_renders_the_answer_and_follows_up(seeded, fake_model):
    build_index(seeded)
    demo = web.build_app(seeded)
    respond, new_chat = _handler(demo, "respond"), _handler(demo, "new_chat")
    steps = list(
        respond("How many troops featured in the Wednesday night military parade?", [], None)
    )
    assert len(steps) >= 3  # the question, at least one partial answer, the final answer
    assert "streaming" in steps[1][1][-1]["content"]
    _, chat, kept, listed, title = steps[-1]
    now = kept["chats"][0]
    assert now["chat"] == chat and len(now["turns"]) == 1  # the browser's copy, after the answer
    assert now["title"].startswith("How many troops") and listed.value == now["id"]
    assert title == now["title"]
    assert [m["role"] for m in chat] == ["user", "assistant"]
    assert "answer-final" in chat[-1]["content"] and "<mark" in chat[-1]["content"]
    question, answer, markdown = now["turns"][0]
    assert question.startswith("How many troops") and "[1]" in answer and "[1] " in markdown

    _, chat, kept, _, _ = list(respond("And when was that?", chat, kept))[-1]
    assert len(chat) == 4 and len(kept["chats"][0]["turns"]) == 2 and len(kept["chats"]) == 1
    assert "searched for:" in chat[-1]["content"]
    _, shown, fresh, listed, title = new_chat(kept)
    assert shown == [] and len(fresh["chats"]) == 2 and title.value == "New chat"
    assert fresh["chats"][1]["chat"] == chat  # the first conversation is kept

    # A reload: the page sends what this browser kept; junk in it is dropped, not shown.
    restore = _handler(demo, "restore")
    assert restore(kept)[0] == chat
    assert restore(None)[0] == [] and restore("junk")[0] == []
    junk = {"chats": [{"chat": [{"role": "system", "content": "x"}, 3], "turns": [[1]]}]}
    assert restore(junk)[0] == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_api_endpoints_via_gradio_client_and_live_reload(seeded, fake_model):
    from gradio_client import Client

    build_index(seeded)
    port = _free_port()
    demo = web.launch(seeded, port=port, prevent_thread_lock=True, quiet=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        client = Client(url, verbose=False)
        answer = client.predict(
            "How many troops featured in the Wednesday night military parade?", api_name="/ask"
        )
        assert isinstance(answer, dict) and not answer["abstained"]
        cit = answer["citations"][0]
        assert "[1]" in answer["text"] and "14,000 troops" in cit["quote"]
        source = (seeded.seeds_dir / cit["source"]).read_text(encoding="utf-8")
        assert source[cit["start"] : cit["end"]] == cit["quote"]

        # The three-line example of docs/web-app.md, run as written against this server.
        doc = (REPO / "docs" / "web-app.md").read_text(encoding="utf-8")
        section = doc.split("\n## HTTP API\n", 1)[1].split("\n## ", 1)[0]
        example = section.split("```python\n", 1)[1].split("```", 1)[0]
        assert len(example.strip().splitlines()) == 3 and "gradio_client" in example
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(example.replace("http://127.0.0.1:7860/", url), {})
        assert printed.getvalue().strip().splitlines()[-1].startswith("[")  # the citations

        passages = client.predict("sourdough starter", 2, api_name="/retrieve")
        assert isinstance(passages, list) and passages[0]["source"] == "notes/bread.md"

        # Nothing of the seeds, the index or the project is served as a file.
        for path in (
            seeded.seeds_dir / "news.txt",
            seeded.index_dir / "CURRENT",
            REPO / "README.md",
            "/etc/passwd",
        ):
            assert _status(f"{url}gradio_api/file={path}") in (403, 404)

        # /document/<id> serves seed documents, and no other path.
        with urllib.request.urlopen(f"{url}document/notes/bread.md", timeout=10) as resp:
            assert resp.read().startswith(b"# Baking bread")
            assert resp.headers["Content-Disposition"].startswith("attachment")
        for probe in (
            "document/../README.md",
            "document/%2e%2e/%2e%2e/README.md",
            "document/notes/../news.txt",
            "document//etc/passwd",
            "document/%2Fetc%2Fpasswd",
            "document/missing.txt",
        ):
            assert _status(url + probe) == 404, probe

        # A document added and built while the server runs is answerable at once.
        web.save_upload(
            b"The Quill Island lighthouse was painted teal in 1987 by nine volunteers.\n",
            "quill.txt",
            seeded,
        )
        build_index(seeded)
        answer = client.predict(
            "When was the Quill Island lighthouse painted teal by nine volunteers?", api_name="/ask"
        )
        assert answer["citations"] and answer["citations"][0]["source"] == "quill.txt"
        assert "teal" in answer["citations"][0]["quote"]
    finally:
        demo.close()


def test_document_route_answers_as_soon_as_the_server_does(seeded, fake_model, monkeypatch):
    """``/document/<id>`` is a route of the app before the server starts: a request sent the
    moment the server is up (inside ``launch``), and right after ``launch`` returns, gets the
    file, never a 404."""
    from gradio import http_server

    start_server = http_server.start_server
    first: list[int] = []

    def started(*args, **kwargs):
        out = start_server(*args, **kwargs)
        first.append(_status(f"http://127.0.0.1:{port}/document/notes/bread.md"))
        return out

    monkeypatch.setattr(http_server, "start_server", started)
    port = _free_port()
    demo = web.launch(seeded, port=port, prevent_thread_lock=True, quiet=True)
    try:
        assert _status(f"http://127.0.0.1:{port}/document/news.txt") == 200
        assert first == [200]
        assert _status(f"http://127.0.0.1:{port}/document/missing.txt") == 404
        assert _status(f"http://127.0.0.1:{port}/") == 200  # Gradio's own routes still serve
    finally:
        demo.close()


def test_launch_binds_localhost_by_default():
    import inspect

    assert inspect.signature(web.launch).parameters["host"].default == "127.0.0.1"
