"""The first hour of a new user (issue 15): each friction found in a walk-through, guarded.

CLI wording, advice that works, one build button, uploads, the same validation in the Python
and the web API, out-of-date closest matches. The browser walk-through is in test_browser.py.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from assistant import app as web
from assistant.build import build_index
from assistant.cli import app as cli_app
from assistant.cli import render_text
from assistant.errors import IndexLockedError, IndexMissingError
from assistant.retrieval import retrieve
from assistant.types import Answer, Citation, Passage

from .conftest import REPO, write

COMMANDS = ["build", "search", "ask", "status", "serve", "settings"]


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=REPO,
        timeout=120,
    )


# --- the CLI ------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_shows_no_type_after_flags_and_no_braces_in_usage(command):
    result = CliRunner().invoke(cli_app, [command, "--help"] if command else ["--help"])
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output and "<str>" not in result.output
    usage = next(line for line in result.output.splitlines() if "Usage:" in line)
    assert "{" not in usage and "}" not in usage
    if command == "ask":
        assert usage.strip().endswith("ask [OPTIONS] QUESTION")


def test_ask_prints_plain_text_without_markdown(seeded, fake_model):
    build_index(seeded)
    result = CliRunner().invoke(
        cli_app, ["ask", "How many troops featured in the Wednesday night military parade?"]
    )
    assert result.exit_code == 0, result.output
    assert "14,000 troops" in result.output and "[1]" in result.output
    assert "**" not in result.output and "_confidence" not in result.output
    assert "\x1b[" not in result.output  # no terminal styling when not a terminal


def test_render_text_styles_only_through_the_given_function():
    passage = "Before. The parade had 14,000 troops in it. After."
    quote = "The parade had 14,000 troops in it."
    start = passage.index(quote)
    phrase = quote.index("14,000 troops")
    citation = Citation(
        n=1, source="news.txt", title="News", start=start, end=start + len(quote), quote=quote,
        passage=passage, passage_start=0, passage_end=len(passage),
        answer_start=start + phrase, answer_end=start + phrase + len("14,000 troops"),
    )  # fmt: skip
    answer = Answer(
        text=f"{quote} [1]", citations=[citation], passages=[], abstained=False,
        query="how many troops and when", question="how many troops", confidence=0.8,
    )  # fmt: skip
    plain = render_text(answer)
    assert "**" not in plain and "_" not in plain.replace("news.txt", "")
    assert "“The parade had 14,000 troops in it.” [1]" in plain
    assert "searched for: how many troops and when" in plain and "confidence 80%" in plain
    styled = render_text(answer, lambda s: f"<{s}>")
    assert "“The parade had <14,000 troops> in it.” [1]" in styled


def test_status_and_build_say_1_document_not_1_documents(settings, fake_model):
    write(settings, "only.txt", "The lighthouse was painted teal in 1987.\n")
    report = build_index(settings)
    assert report.summary().startswith("1 document: 1 new")
    result = CliRunner().invoke(cli_app, ["status"])
    assert result.exit_code == 0, result.output
    assert ": 1 document, 1 chunk, model" in result.output
    info = web._status(settings)
    assert "1 document, 1 chunk indexed" in web.render_status(info)
    assert "1 chunk, 1 document, built" in web.render_documents(info)


@pytest.mark.parametrize(
    ("value", "named"),
    [("5", "ASSISTANT_CHUNK_TOKENS ('5')"), ("lots", "ASSISTANT_CHUNK_TOKENS ('lots')")],
)
def test_a_bad_setting_is_named_as_its_environment_variable(value, named):
    result = _cli("status", env={"ASSISTANT_CHUNK_TOKENS": value})
    assert result.returncode == 2
    assert result.stderr.startswith("error: invalid settings: ") and named in result.stderr
    assert "chunk_tokens" not in result.stderr and result.stderr.count("\n") == 1


def test_abstain_threshold_nan_is_refused():
    result = _cli("status", env={"ASSISTANT_ABSTAIN_THRESHOLD": "nan"})
    assert result.returncode == 2 and "ASSISTANT_ABSTAIN_THRESHOLD ('nan')" in result.stderr


def test_missing_seeds_folder_and_empty_index_folder_give_advice_that_works(tmp_path):
    env = {
        "ASSISTANT_SEEDS_DIR": str(tmp_path / "my-docs"),
        "ASSISTANT_INDEX_DIR": str(tmp_path / "index"),
    }
    advice = re.compile(r"seeds folder \S+my-docs does not exist: create it .*ASSISTANT_SEEDS_DIR")
    for args in (["ask", "Who won?"], ["search", "winner"], ["build"], ["status"]):
        result = _cli(*args, env=env)
        assert result.returncode != 0, args
        assert advice.search(result.stderr + result.stdout), (args, result.stderr)
        assert "Traceback" not in result.stderr
    (tmp_path / "index").mkdir(exist_ok=True)  # an empty index folder: the same advice
    result = _cli("ask", "Who won?", env=env)
    assert advice.search(result.stderr), result.stderr

    (tmp_path / "my-docs").mkdir()  # the folder exists but holds nothing
    for args in (["ask", "Who won?"], ["build"]):
        result = _cli(*args, env=env)
        assert "my-docs holds no documents: add files (.txt" in result.stderr, result.stderr

    (tmp_path / "my-docs" / "a.txt").write_text("The red team won the final.\n")
    result = _cli("ask", "Who won?", env=env)
    assert "no index in" in result.stderr and "run `assistant build`" in result.stderr


def test_python_api_gives_the_same_advice(settings):
    with pytest.raises(IndexMissingError, match="holds no documents"):
        retrieve("anything", settings=settings)


def test_serve_on_a_busy_port_says_to_use_another_port():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _cli("serve", "--port", str(port), "--build")
    assert result.returncode != 0
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert f"--port {port + 1}" in result.stderr
    assert "GRADIO_SERVER_PORT" not in result.stderr and "Traceback" not in result.stderr


# --- the web app --------------------------------------------------------------------------------


def _handler(demo, name: str):
    return next(f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == name)


def test_empty_seeds_folder_shows_how_to_add_documents_and_no_build_button(settings, fake_model):
    demo = web.build_app(settings)
    banner, fix, panel, examples = _handler(demo, "refresh")()
    assert "No documents yet" in banner and "Documents</b> tab" in banner
    assert "indexed as they arrive" in banner  # the seeds folder is watched (ASSISTANT_WATCH)
    assert examples.visible is False  # no example question to offer yet
    assert str(settings.seeds_dir.resolve()) in banner and "ASSISTANT_SEEDS_DIR" in banner
    assert fix.visible is False  # nothing to build yet
    assert "no documents" in panel


def test_a_locked_build_in_the_web_app_does_not_speak_of_cli_flags(seeded, fake_model, monkeypatch):
    import assistant.app.indexer as indexer_mod

    def locked(*args, **kwargs):
        raise IndexLockedError("another build is running on this index; wait for it or pass --wait")

    monkeypatch.setattr(indexer_mod, "build_index", locked)
    demo = web.build_app(seeded)
    _handler(demo, "build_now")()
    assert demo.indexer.wait_idle(30)
    log = _handler(demo, "poll")(-1, [])[1]
    assert "Build failed" in log and "still running" in log
    assert "--wait" not in log


def test_example_questions_read_like_a_persons_and_are_never_cut(seeded, fake_model):
    from assistant.store.status import index_status

    build_index(seeded)
    info = index_status(seeded)
    assert info["documents"]["news.txt"]["title"].startswith("Kim Jong Un, offering")
    questions = web.example_questions(seeded, info)
    assert "How many troops are there?" in questions
    assert "What is said about Kim Jong Un?" in questions
    assert "Summarize “Baking bread”" in questions  # no count, no name: its short title
    for q in questions:
        assert len(q) <= web.EXAMPLE_CHARS and "…" not in q
        assert "kim jong un party congress" not in q.lower()  # never the file-name slug
        assert "Sourdough" not in q and "Knead" not in q  # capitals that only open sentences
    assert "white-space: normal" in web.CSS  # the chip wraps instead of an ellipsis


def _passage(settings, source: str, start: int, end: int) -> Passage:
    text = (settings.seeds_dir / source).read_text(encoding="utf-8")[start:end]
    return Passage(text=text, source=source, title="Cats", start=start, end=end, score=0.1)


def test_closest_matches_after_a_seed_edit_say_the_text_is_out_of_date(seeded):
    from assistant.sources import outdated_sources, with_outdated_notice

    passage = _passage(seeded, "cats.txt", 0, 40)
    answer = Answer(text="no", citations=[], passages=[passage], abstained=True, query="q")
    assert outdated_sources(answer, seeded.seeds_dir) == set()
    write(seeded, "cats.txt", "Dogs bark at the postman every single morning of the week.\n")
    assert outdated_sources(answer, seeded.seeds_dir) == {"cats.txt"}
    flagged = with_outdated_notice(answer, {"cats.txt"})
    assert "cats.txt changed since the index was built" in flagged.notices[-1]
    html = web.render_answer(flagged, {"cats.txt"})
    assert "outdated-match" in html and "this is its old text; rebuild the index" in html
    assert "outdated" not in web.render_answer(answer)


def test_ask_in_the_web_chat_flags_closest_matches_of_an_edited_file(seeded, fake_model):
    build_index(seeded)
    demo = web.build_app(seeded)
    respond = _handler(demo, "respond")
    question = "What is the airspeed velocity of an unladen swallow?"
    _, chat, *_ = list(respond(question, [], None))[-1]
    assert "abstained" in chat[-1]["content"] and "outdated" not in chat[-1]["content"]
    for name in ("news.txt", "cats.txt", "notes/bread.md"):  # every possible match edited
        path = seeded.seeds_dir / name
        path.write_text("Edited. " + path.read_text(encoding="utf-8"), encoding="utf-8")
    _, chat, *_ = list(respond(question, [], None))[-1]
    content = chat[-1]["content"]
    # The loaded index keeps serving (no rebuild yet): its closest matches are flagged.
    assert "abstained" in content and "outdated-match" in content
    assert "changed since the index was built: the closest matches show the old text" in content


# --- the same validation in the Python and the web API ------------------------------------------

BAD_K = [(2.5, TypeError, "k must be an integer, not float"),
         ("7", TypeError, "k must be an integer, not str"),
         (True, TypeError, "k must be an integer, not bool"),
         (0, ValueError, "k must be a positive integer"),
         (10**9, ValueError, "k must be at most 100 (ASSISTANT_MAX_K)")]  # fmt: skip
BAD_HISTORY = [("not a list", "history must be a list of [question, answer] pairs"),
               ([["only one"]], "history item 0 must be a [question, answer] pair"),
               ([["q", "a", "extra"]], "history item 0 must be a [question, answer] pair"),
               ([["q", 3]], "history item 0: the question and the answer must be strings"),
               ([{"role": "user", "content": "hi"}], "history item 0 must be a")]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_web_and_python_api_validate_alike(seeded, fake_model):
    from gradio_client import Client

    from assistant.answer import ask

    build_index(seeded)
    for k, error, message in BAD_K:
        with pytest.raises(error, match=re.escape(message)):
            retrieve("troops", k, seeded)
    for history, message in BAD_HISTORY:
        with pytest.raises((TypeError, ValueError), match=re.escape(message)):
            ask("And when?", history, seeded)
    assert ask("And when?", [("How many troops?", "14,000.")], seeded).question == "And when?"

    demo = web.launch(seeded, port=_free_port(), prevent_thread_lock=True, quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        for k, _, message in BAD_K:
            with pytest.raises(Exception, match=re.escape(message)):
                client.predict("troops", k, api_name="/retrieve")
        assert len(client.predict("troops", 2, api_name="/retrieve")) <= 2
        for history, message in BAD_HISTORY:
            with pytest.raises(Exception, match=re.escape(message)):
                client.predict("And when?", history, api_name="/ask")
        ok = client.predict("And when?", [["How many troops?", "14,000."]], api_name="/ask")
        assert ok["question"] == "And when?"
    finally:
        demo.close()


def test_max_k_is_a_setting_and_answer_passages_must_fit_it(monkeypatch):
    from assistant.config import Settings
    from assistant.errors import ConfigError

    monkeypatch.setenv("ASSISTANT_MAX_K", "3")
    monkeypatch.setenv("ASSISTANT_ANSWER_PASSAGES", "3")
    assert Settings().max_k == 3
    monkeypatch.setenv("ASSISTANT_ANSWER_PASSAGES", "4")
    with pytest.raises(ConfigError, match=r"ASSISTANT_ANSWER_PASSAGES \(4\) must be at most"):
        Settings()


def test_test_output_stays_quiet():
    """Tests print only through pytest's capture (shown when a test fails), never around it."""
    for path in (REPO / "tests").glob("test_*.py"):
        text = path.read_text(encoding="utf-8")
        assert path.name == "test_newcomer.py" or "capsys.disabled()" not in text, path.name


def test_readme_states_the_measured_install_size_and_how_it_was_measured():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "about 1 GB" not in readme  # the old claim; a CPU venv measured 1.8 GB
    quickstart = readme.split("\n## Quickstart\n", 1)[1].split("\n## ", 1)[0]  # the first screen
    install = quickstart.split("`torch==2.13.0` first", 1)[1].split("\n\n", 1)[0]
    assert "**1.8 GB**" in install and "`du -sh .venv`" in install and "2.0 GB" in install
