"""The reader model trained here: its training command's smoke mode (what CI runs instead of
training), resuming, export, loading and rerunning with the same seed, and calls from many
threads at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tests.conftest import REPO

DATA = REPO.parent / "shared" / "data"


def _train(*args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.train_reader", "--quick", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.model
@pytest.mark.skipif(not (DATA / "squad" / "train-v1.1.json").exists(), reason="no SQuAD train")
def test_quick_training_runs_resumes_exports_loads_and_reruns_bit_for_bit(tmp_path):
    from assistant import crossencoder as model

    run = tmp_path / "run"
    first = _train("--out", str(run))
    assert first.returncode == 0, first.stderr[-2000:]
    curve = [json.loads(x) for x in (run / "curve.jsonl").read_text().splitlines()]
    assert curve[0]["pairs"] == 0 and curve[-1]["pairs"] > 0  # a learning curve is kept
    assert (run / "checkpoint.pt").exists()
    again = _train("--out", str(run))  # finished: resumes at its last step, trains nothing
    assert again.returncode == 0 and "resumed at step" in again.stderr
    assert [json.loads(x) for x in (run / "curve.jsonl").read_text().splitlines()] == curve
    pkg = tmp_path / "pkg"
    exported = _train("--out", str(run), "--export", "--export-to", str(pkg))
    assert exported.returncode == 0, exported.stderr[-2000:]
    card = json.loads((pkg / "reader.json").read_text())
    assert card["sha256"] == model.sha256(pkg / "reader.safetensors")
    reader = model.ReaderModel(
        str(model.resolve_base()), pkg / "reader.safetensors", pkg / "reader.json"
    )
    reading = reader.read("How long is the warranty?", ["The warranty lasts two years.", "Hi."])
    assert reading.relevance.shape == (2,) and 0.0 <= reading.answer_probability <= 1.0
    # the same seed again, from scratch: the same weights, bit for bit
    rerun, pkg2 = tmp_path / "rerun", tmp_path / "pkg2"
    assert _train("--out", str(rerun)).returncode == 0
    assert _train("--out", str(rerun), "--export", "--export-to", str(pkg2)).returncode == 0
    assert model.sha256(pkg2 / "reader.safetensors") == card["sha256"]


def test_the_reader_is_safe_to_call_from_many_threads():
    from assistant.crossencoder import default_reader

    reader = default_reader()
    cases = [
        ("How long is the warranty?", ["The warranty lasts two years.", "Descale monthly."]),
        ("Who is the treasurer?", ["Present: Tom Becker (treasurer), Ana Ruiz.", "It rained."]),
        ("When does the branch open?", ["The Eastgate branch opens on 1 June 2026."]),
    ]
    alone = [reader.read(q, s) for q, s in cases]

    def call(i: int):
        q, s = cases[i % len(cases)]
        return i % len(cases), reader.read(q, s)

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(call, range(16 * 25)))
    for k, reading in results:
        assert np.allclose(reading.relevance, alone[k].relevance, atol=1e-4)
        assert reading.spans == alone[k].spans


def test_swapped_questions_are_near_misses_their_paragraph_does_not_answer():
    import random

    from benchmarks.reader_data import swap

    sentence = "Chopin moved to Paris in 1831 with his friend Titus."
    paragraph = sentence + " He gave his first concert there."
    names = ["Vienna", "1849", "Warsaw", "Paris", "Titus"]
    seen = set()
    for seed in range(40):
        q = swap(
            "When did Chopin move to Paris in 1831?",
            sentence,
            paragraph,
            names,
            random.Random(seed),
        )
        assert q is not None and q != "When did Chopin move to Paris in 1831?"
        original = ["When", "did", "Chopin", "move", "to", "Paris", "in", "1831"]
        changed = [w for w in q.rstrip("?").split() if w not in original]
        assert len(changed) == 1 and changed[0] in {"Vienna", "1849", "Warsaw"}
        assert not (changed[0] == "1849") ^ ("1831" not in q)  # a number for a number
        seen.add(changed[0])
    assert seen == {"Vienna", "1849", "Warsaw"}
    # nothing of the question's names in its sentence, or no other name: no swap
    assert swap("When did he move?", sentence, paragraph, names, random.Random(0)) is None
    assert swap("When did Chopin move?", sentence, paragraph, ["Paris"], random.Random(0)) is None


def test_a_deleted_answer_leaves_an_on_topic_sentence_that_no_longer_answers():
    from benchmarks.reader_data import delete_answer

    def cut(sentence: str, answer: str) -> str | None:
        start = sentence.index(answer)
        return delete_answer(sentence, (start, start + len(answer)))

    assert cut("Replace the filter cartridge every 60 days.", "every 60 days") == (
        "Replace the filter cartridge."
    )
    # the dangling preposition goes with the answer, and no doubled comma is left
    assert cut("The law on its status passed in 2022.", "2022") == "The law on its status passed."
    assert cut("She had a daughter, Blue Ivy Carter, at the hospital.", "Blue Ivy Carter") == (
        "She had a daughter, at the hospital."
    )
    # an answer inside a word, or a sentence that is mostly its answer: no deleted copy
    assert cut("The Ming ruled Tibetan lands for a time.", "Tibet") is None
    assert cut("It was Kim Jong Un of North Korea.", "Kim Jong Un of North Korea") is None
