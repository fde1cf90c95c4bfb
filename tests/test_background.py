"""The web app's background indexing (issue 25 part 5, issue 26 part 3): builds requested by
uploads and by the seeds folder's watcher, one at a time, at a lower priority and with fewer
threads than the chat; a file being written is not read half-way; ``build`` beside ``serve``
yields the CPU too."""

from __future__ import annotations

import os
import shutil
import threading
import time

import pytest

from assistant import priority
from assistant.app.indexer import Indexer
from assistant.app.watcher import SeedsWatcher
from assistant.retrieval import retrieve
from assistant.store.status import index_status

pytestmark = pytest.mark.stores  # runs on both stores (tests/conftest.py)


def test_requests_while_a_build_runs_are_folded_into_the_next(seeded, fake_model):
    indexer = Indexer(seeded)
    for reason in ("added a.txt", "added b.txt", "added a.txt"):
        indexer.request(reason)
    assert indexer.wait_idle(120)
    snap = indexer.snapshot()
    assert snap["running"] is None and snap["queued"] == []
    assert "3 new" in snap["last"]["message"]  # every document of the first build
    assert snap["version"] in (2, 4)  # one or two builds (the second a no-op), never three
    assert index_status(seeded)["stale"] is False
    indexer.close()
    indexer.request("after close")  # refused quietly: the app is stopping
    assert indexer.snapshot()["queued"] == []


def test_a_failed_build_is_reported_and_the_next_request_runs(seeded, fake_model, monkeypatch):
    from assistant.app import indexer as indexer_mod

    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    real = indexer_mod.build_index
    monkeypatch.setattr(indexer_mod, "build_index", broken)
    indexer = Indexer(seeded)
    indexer.request("first")
    assert indexer.wait_idle(60)
    assert "No space left on device" in indexer.snapshot()["last"]["error"]
    indexer.request("second")
    assert indexer.wait_idle(120)
    assert "3 new" in indexer.snapshot()["last"]["message"]
    indexer.close()


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="POSIX priorities")
def test_the_build_thread_runs_at_a_lower_priority_than_the_rest(seeded, fake_model, monkeypatch):
    from assistant.app import indexer as indexer_mod

    seen = {}
    real = indexer_mod.build_index

    def spy(*args, **kwargs):
        seen["nice"] = priority.thread_nice()
        return real(*args, **kwargs)

    monkeypatch.setattr(indexer_mod, "build_index", spy)
    before = priority.thread_nice()
    indexer = Indexer(seeded)
    indexer.request("test")
    assert indexer.wait_idle(120)
    assert seen["nice"] == min(19, before + seeded.build_nice)
    assert priority.thread_nice() == before  # this thread (the chat's) is untouched
    indexer.close()


def test_served_is_true_only_while_a_server_holds_the_marker(tmp_path):
    assert priority.served(tmp_path) is False
    with priority.serving(tmp_path):
        assert priority.served(tmp_path) is True
    assert priority.served(tmp_path) is False


def test_a_file_copied_into_the_seeds_folder_is_indexed_once_it_is_complete(seeded, fake_model):
    """Another program writes a file in two parts a moment apart: the watcher waits for it to
    stay the same, then one build indexes the whole file."""
    indexer = Indexer(seeded)
    seen: list[list[str]] = []

    def changed(names: list[str]) -> None:
        seen.append(names)
        indexer.request(f"changed: {', '.join(names)}")

    watcher = SeedsWatcher(seeded, changed, settle=0.6, debounce_ms=100).start()
    try:
        target = seeded.seeds_dir / "harbour.txt"
        with open(target, "w", encoding="utf-8") as out:
            out.write("The harbour festival opens with fireworks over the bay. ")
            out.flush()
            time.sleep(0.4)
            out.write("The rowing race ends the festival on its third day.\n")
        deadline = time.monotonic() + 30
        while not seen and time.monotonic() < deadline:
            time.sleep(0.1)
        assert seen and seen[0] == ["harbour.txt"]
        assert indexer.wait_idle(120)
        info = index_status(seeded)
        assert "harbour.txt" in info["documents"] and info["stale"] is False
        passages = retrieve("When does the rowing race happen?", 3, seeded)
        assert any("rowing race ends" in p.text for p in passages)

        # Removed by another program: gone from the index too.
        seen.clear()
        os.remove(target)
        deadline = time.monotonic() + 30
        while not seen and time.monotonic() < deadline:
            time.sleep(0.1)
        assert indexer.wait_idle(120)
        assert "harbour.txt" not in index_status(seeded)["documents"]
    finally:
        watcher.stop()
        indexer.close()


def test_the_index_folder_inside_the_seeds_folder_does_not_trigger_builds(
    settings, fake_model, tmp_path
):
    seeds = settings.seeds_dir
    inner = settings.model_copy(update={"index_dir": seeds / "embeddings"})
    (seeds / "a.txt").write_text("Alpha beta gamma.\n", encoding="utf-8")
    seen: list[list[str]] = []
    watcher = SeedsWatcher(inner, seen.append, settle=0.3, debounce_ms=100).start()
    try:
        (inner.index_dir).mkdir()
        (inner.index_dir / "manifest.json").write_text("{}", encoding="utf-8")
        shutil.copy(seeds / "a.txt", inner.index_dir / "copy.txt")
        time.sleep(1.5)
        assert seen == []
    finally:
        watcher.stop()


def test_watcher_stops_promptly(settings):
    watcher = SeedsWatcher(settings, lambda names: None).start()
    began = time.monotonic()
    watcher.stop()
    assert time.monotonic() - began < 3
    assert not any(t.name == "assistant-watcher" and t.is_alive() for t in threading.enumerate())


def test_requests_beyond_the_bound_are_told_busy_at_once(seeded, fake_model, monkeypatch):
    """ASSISTANT_MAX_WAITING: with every /ask worker busy and the queue full, one more request
    is answered at once with "busy, try again" (Gradio's "Queue is full", HTTP 503)."""
    from gradio_client import Client

    import assistant.answer as answer_mod
    from assistant import app as web
    from assistant.build import build_index

    from .test_security import free_port

    real = answer_mod.ask

    def slow(*args, **kwargs):
        time.sleep(3)
        return real(*args, **kwargs)

    monkeypatch.setattr(answer_mod, "ask", slow)
    build_index(seeded)
    bounded = seeded.model_copy(update={"max_waiting": 2, "watch": False})
    port = free_port()
    demo = web.launch(bounded, port=port, prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{port}/"
    outcomes: list[tuple[str, float]] = []
    lock = threading.Lock()

    def one() -> None:
        client = Client(url, verbose=False)
        began = time.perf_counter()
        try:
            client.predict("How long do cats sleep?", api_name="/ask")
            outcome = "answered"
        except Exception as exc:  # noqa: BLE001
            outcome = str(exc)
        with lock:
            outcomes.append((outcome, time.perf_counter() - began))

    try:
        threads = [threading.Thread(target=one) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        demo.close()
    busy = [s for o, s in outcomes if "Queue is full" in o and "try again" in o]
    answered = [s for o, s in outcomes if o == "answered"]
    assert len(outcomes) == 10 and len(busy) + len(answered) == 10, outcomes
    assert busy and len(answered) >= 4 + 2  # the 4 workers and the 2 that may wait
    assert max(busy) < 3, busy  # told at once, not after waiting for a worker


def test_a_cli_build_beside_a_server_yields_the_cpu(seeded, fake_model, monkeypatch):
    """`assistant build` while a `serve` holds the index's marker lowers its priority and
    threads (ASSISTANT_BUILD_NICE, ASSISTANT_BUILD_THREADS) and says so in one line."""
    from typer.testing import CliRunner

    from assistant import cli

    from .conftest import write

    calls: list[tuple] = []
    monkeypatch.setattr(priority, "lower_priority", lambda *args: calls.append(args))
    runner = CliRunner()
    alone = runner.invoke(cli.app, ["build"])
    assert alone.exit_code == 0, alone.output
    assert calls == [] and "serving this index" not in alone.output
    write(seeded, "more.txt", "The ferry leaves at noon.\n")
    with priority.serving(seeded.index_dir):
        beside = runner.invoke(cli.app, ["build"])
    assert beside.exit_code == 0, beside.output
    assert calls == [(seeded.build_nice, seeded.build_threads)]
    assert "note: `assistant serve` is serving this index" in beside.output
    assert "1 new" in beside.output
