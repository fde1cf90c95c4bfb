"""The exact bytes the CLI writes (issue 25): in a pipe, under a pseudo-terminal, with NO_COLOR.

The answering phrase is ANSI bold on a terminal and plain text otherwise, never a private-use
marker (U+E000/U+E001) or an escape of one; control characters from documents stay escaped.
The child processes run the real ``assistant`` command with the fake embedder of conftest.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
import tty

import pytest

from assistant.build import build_index

from .conftest import REPO, SEED, release_store, write

BOLD_ON, RESET = b"\x1b[1m", b"\x1b[0m"
MARKERS = ["\ue000".encode(), "\ue001".encode(), b"\\ue000", b"\\ue001", b"\\ue"]
QUESTION = "How many troops featured in the Wednesday night military parade?"

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

# ``print_answer`` on an answer whose phrase is known, and whose document text holds an ESC.
PRINT = """
from assistant.cli import print_answer
from assistant.types import Answer, Citation
passage = "Before. The parade had 14,000 troops\\x1b[2J in it. After."
quote = "The parade had 14,000 troops\\x1b[2J in it."
start, phrase = passage.index(quote), quote.index("14,000 troops")
citation = Citation(
    n=1, source="news.txt", title="News", start=start, end=start + len(quote), quote=quote,
    passage=passage, passage_start=0, passage_end=len(passage),
    answer_start=start + phrase, answer_end=start + phrase + len("14,000 troops\\x1b[2J"),
)
print_answer(Answer(
    text=quote + " [1]", citations=[citation], passages=[], abstained=False,
    query="how many troops", question="how many troops", confidence=0.8,
))
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    return {**env, "PYTHONIOENCODING": "utf-8", "HF_HUB_OFFLINE": "1", **extra}


def _in_pipe(code: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        env=_env(**env),
        cwd=REPO,
        timeout=300,
    )


def _in_terminal(code: str, *args: str, **env: str) -> tuple[int, bytes]:
    """Run with stdout (and stdin) on a pseudo-terminal in raw mode (no ``\\n`` -> ``\\r\\n``);
    the exit code and every byte written to the terminal."""
    master, slave = pty.openpty()
    tty.setraw(slave)
    try:
        child = subprocess.Popen(
            [sys.executable, "-c", code, *args],
            stdin=slave,
            stdout=slave,
            stderr=subprocess.DEVNULL,
            env=_env(**env),
            cwd=REPO,
        )
    finally:
        os.close(slave)
    out, deadline = b"", time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if child.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            out += data
        return child.wait(timeout=60), out
    finally:
        if child.poll() is None:
            child.kill()
        os.close(master)


def _no_markers(out: bytes) -> None:
    for marker in MARKERS:
        assert marker not in out, (marker, out)


# --- the printing function, on an answer whose phrase is known ---------------------------------


def test_print_answer_is_plain_in_a_pipe():
    result = _in_pipe(PRINT)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    _no_markers(out)
    assert b"\x1b" not in out  # no styling, and the document's ESC is escaped
    assert out.startswith("“The parade had 14,000 troops\\x1b[2J in it.” [1]\n".encode())
    assert b"    Before. The parade had 14,000 troops\\x1b[2J in it. After.\n" in out


def test_print_answer_is_bold_on_a_terminal():
    code, out = _in_terminal(PRINT)
    assert code == 0, out
    _no_markers(out)
    first = out.split(b"\n")[0]
    assert first == "“The parade had ".encode() + BOLD_ON + b"14,000 troops\\x1b[2J" + RESET + (
        " in it.” [1]".encode()
    )
    assert BOLD_ON + b"The parade had 14,000 troops\\x1b[2J in it." + RESET + b" After." in out
    # The only ESC bytes are the bold codes: the document's own is escaped.
    assert out.replace(BOLD_ON, b"").replace(RESET, b"").count(b"\x1b") == 0


def test_print_answer_honours_no_color_on_a_terminal():
    code, out = _in_terminal(PRINT, NO_COLOR="1")
    assert code == 0, out
    _no_markers(out)
    assert b"\x1b" not in out
    assert out.startswith("“The parade had 14,000 troops\\x1b[2J in it.” [1]\n".encode())


# --- the whole `assistant ask` command ---------------------------------------------------------


@pytest.fixture
def index(settings, fake_embedder):
    """The seed article, with an ESC sequence in one sentence, built with the fake embedder."""
    text = SEED.read_text(encoding="utf-8").replace("troops", "troops\x1b]52;c;Zm9v\x07", 1)
    write(settings, "news.txt", text)
    write(settings, "cats.txt", "Cats sleep for about sixteen hours a day.\n")
    build_index(settings, embedder=fake_embedder)
    release_store(settings)  # Milvus Lite: let the child process open the store
    return settings


def test_ask_writes_no_markers_in_a_pipe_or_on_a_terminal(index):
    piped = _in_pipe(CLI, "ask", QUESTION)
    assert piped.returncode == 0, piped.stderr
    code, on_tty = _in_terminal(CLI, "ask", QUESTION)
    assert code == 0, on_tty
    no_color = _in_terminal(CLI, "ask", QUESTION, NO_COLOR="1")[1]
    for out in (piped.stdout, on_tty, no_color):
        _no_markers(out)
        assert b"\x07" not in out and b"\x1b]" not in out  # the document's codes are escaped
    assert b"\x1b" not in piped.stdout and b"\x1b" not in no_color
    # On a terminal the only ESC bytes are bold on and off; without them it is the pipe's text.
    assert on_tty.replace(BOLD_ON, b"").replace(RESET, b"").count(b"\x1b") == 0
    assert on_tty.replace(BOLD_ON, b"").replace(RESET, b"") == piped.stdout == no_color
    answer = json.loads(_in_pipe(CLI, "ask", QUESTION, "--json").stdout)
    if answer["citations"] and not answer["abstained"]:  # quoted: the quote is bold
        assert BOLD_ON in on_tty and RESET in on_tty
        if "troops" in answer["citations"][0]["quote"]:
            assert b"troops\\x1b]52;c;Zm9v\\x07" in piped.stdout


# --- `assistant build` ---------------------------------------------------------------------------


def test_build_lists_a_skipped_file_once(settings):
    write(settings, "good.txt", "The lighthouse was painted teal in 1987.\n")
    write(settings, "latin1.txt", "caf\xe9".encode("latin-1"))
    result = _in_pipe(CLI, "build")
    assert result.returncode == 0, result.stderr
    err = result.stderr.decode()
    assert err.count("latin1.txt") == 1, err
    assert "skipped latin1.txt: not UTF-8" in err and "WARNING" not in err


def test_build_of_only_unreadable_files_still_names_them(settings):
    write(settings, "latin1.txt", "caf\xe9".encode("latin-1"))
    result = _in_pipe(CLI, "build")
    assert result.returncode == 3
    err = result.stderr.decode()
    assert "latin1.txt: not UTF-8" in err and "each with its reason above" in err
