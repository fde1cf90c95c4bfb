"""Load, reduced for CI (issue 7, part 5): 8 concurrent gradio_client clients x 5 questions
against the app on 127.0.0.1 (fake embedder). No errors; every citation verifies against the
files. The full run (32 x 25, real model, ``assistant serve``) is ``benchmarks/load.py``.
"""

from __future__ import annotations

import statistics

import pytest

from assistant.build import build_index
from benchmarks.load import run_clients

from .conftest import write
from .test_security import free_port

pytestmark = pytest.mark.stores  # runs on both stores (tests/conftest.py)

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
def test_concurrent_clients_get_verified_answers(seeded, fake_embedder, monkeypatch):

    import assistant.embedders as embedders_mod
    import assistant.retrieval as retrieval_mod
    from assistant import app as web

    monkeypatch.setattr(embedders_mod, "get_embedder", lambda model: fake_embedder)
    monkeypatch.setattr(retrieval_mod, "_retrievers", {})
    write(seeded, "penguins.txt", "Penguins live in Antarctica. Emperor penguins cannot fly.\n")
    build_index(seeded)
    port = free_port()
    demo = web.launch(seeded, port=port, prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        result = run_clients(url, seeded.seeds_dir, QUESTIONS, CLIENTS, QUESTIONS_EACH, timeout=300)
    finally:
        demo.close()
    latencies, errors, counts, wall = (
        result["latencies"],
        result["errors"],
        result["counts"],
        result["wall"],
    )
    assert not errors, errors[:5]
    assert counts["answers"] == CLIENTS * QUESTIONS_EACH
    assert counts["citations"] > 0 and counts["verified"] == counts["citations"]
    assert counts["abstained"] < counts["answers"]
    p50 = statistics.median(latencies)
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    # Into pytest's capture: shown with -rP or when the test fails, quiet otherwise.
    print(
        f"\nload (CI, fake embedder): {CLIENTS} clients x {QUESTIONS_EACH} questions, "
        f"{counts['answers']} answers, 0 errors, {counts['verified']}/{counts['citations']} "
        f"citations verified, p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
        f"wall {wall:.1f}s"
    )
