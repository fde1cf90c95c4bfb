"""Load, reduced for CI (issue 7, part 5): 8 concurrent gradio_client clients x 5 questions
against the app on 127.0.0.1 (fake embedder). No errors; every citation verifies against the
files. The full run (32 x 25, real model, ``assistant serve``) is ``benchmarks/load.py``.
"""

from __future__ import annotations

import statistics
import threading
import time

import pytest

from assistant.answer import verify_citation
from assistant.index import build_index
from assistant.types import Citation

from .conftest import write
from .test_security import free_port

CLIENTS, QUESTIONS_EACH = 8, 5
QUESTIONS = [
    "How many troops featured in the Wednesday night military parade?",
    "How long do cats sleep?",
    "How long should the dough be kneaded?",
    "At what temperature is the bread baked?",
    "Where do penguins live?",
    "What did Kim Jong Un say at the party congress?",
    "Which animals are crepuscular?",
    "What is the capital of Mongolia?",  # not in the documents: an abstention is fine
]


@pytest.mark.slow
def test_concurrent_clients_get_verified_answers(seeded, fake_embedder, monkeypatch, capsys):
    from gradio_client import Client

    import assistant.index as index_mod
    import assistant.retrieval as retrieval_mod
    from assistant import app as web

    monkeypatch.setattr(index_mod, "get_embedder", lambda model: fake_embedder)
    monkeypatch.setattr(retrieval_mod, "get_embedder", lambda model: fake_embedder)
    monkeypatch.setattr(retrieval_mod, "_retrievers", {})
    write(seeded, "penguins.txt", "Penguins live in Antarctica. Emperor penguins cannot fly.\n")
    build_index(seeded)
    port = free_port()
    demo = web.launch(seeded, port=port, prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{port}/"
    latencies: list[float] = []
    errors: list[str] = []
    counts = {"answers": 0, "abstained": 0, "citations": 0, "verified": 0}
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def run_client(i: int) -> None:
        try:
            client = Client(url, verbose=False)
        except Exception as exc:  # noqa: BLE001 - counted as an error
            errors.append(f"client {i}: {exc!r}")
            return
        start.wait(60)
        for j in range(QUESTIONS_EACH):
            question = QUESTIONS[(i + j) % len(QUESTIONS)]
            t = time.perf_counter()
            try:
                answer = client.predict(question, api_name="/ask")
            except Exception as exc:  # noqa: BLE001
                errors.append(f"client {i} {question!r}: {exc!r}")
                continue
            elapsed = time.perf_counter() - t
            cites = [Citation(**c) for c in answer["citations"]]
            ok = sum(verify_citation(c, seeded.seeds_dir) for c in cites)
            with lock:
                latencies.append(elapsed)
                counts["answers"] += 1
                counts["abstained"] += bool(answer["abstained"])
                counts["citations"] += len(cites)
                counts["verified"] += ok
            if not answer["abstained"] and not cites:
                errors.append(f"{question!r}: an answer without citations")

    try:
        threads = [threading.Thread(target=run_client, args=(i,)) for i in range(CLIENTS)]
        began = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        wall = time.perf_counter() - began
    finally:
        demo.close()
    assert not errors, errors[:5]
    assert counts["answers"] == CLIENTS * QUESTIONS_EACH
    assert counts["citations"] > 0 and counts["verified"] == counts["citations"]
    assert counts["abstained"] < counts["answers"]
    latencies.sort()
    p50 = statistics.median(latencies)
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    with capsys.disabled():
        print(
            f"\nload (CI, fake embedder): {CLIENTS} clients x {QUESTIONS_EACH} questions, "
            f"{counts['answers']} answers, 0 errors, {counts['verified']}/{counts['citations']} "
            f"citations verified, p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
            f"wall {wall:.1f}s"
        )
