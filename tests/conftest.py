"""Fixtures: a deterministic fake embedder and settings pointing at a temporary folder."""

from __future__ import annotations

import hashlib
import random
import re
from pathlib import Path

import numpy as np
import pytest

from assistant.config import Settings

REPO = Path(__file__).resolve().parents[1]
SEED = REPO / "seeds" / "kim-jong-un-party-congress.txt"


# The fake embedder's cosines run lower than the real model's, and the fitted confidence with
# them: tests on it abstain below this. The fitted threshold itself is measured with the real
# model (tests marked ``model``, benchmarks/answers.py).
FAKE_THRESHOLD = 0.3


class FakeEmbedder:
    """Bag of hashed, lower-cased words: similar texts get similar vectors. Counts its calls."""

    name = "fake"
    dim = 64
    max_tokens = 256

    def __init__(self) -> None:
        self.calls = 0
        self.texts_embedded = 0

    def embed(self, texts, batch_size=32, progress=False):
        self.calls += 1
        self.texts_embedded += len(texts)
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                h = int(hashlib.md5(word.encode()).hexdigest(), 16)
                out[i, h % self.dim] += 1.0 if (h >> 8) % 2 else -1.0
            norm = np.linalg.norm(out[i])
            out[i] = out[i] / norm if norm else out[i]
            if not norm:
                out[i, 0] = 1.0
        return out

    def fits(self, text: str) -> bool:
        return len(re.findall(r"\w+|[^\w\s]", text)) + 2 <= self.max_tokens


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def fake_model(fake_embedder, monkeypatch):
    """The fake embedder wherever the library would load the model by name."""
    import assistant.embedders as embedders_mod
    import assistant.retrieval as retrieval_mod

    monkeypatch.setattr(embedders_mod, "get_embedder", lambda model: fake_embedder)
    monkeypatch.setattr(retrieval_mod, "_retrievers", {})
    return fake_embedder


def pytest_addoption(parser):
    parser.addoption(
        "--store",
        choices=("faiss", "milvus"),
        default=None,
        help="index store the tests build and search (default: ASSISTANT_STORE, else faiss); "
        "milvus runs them on a real Milvus Lite file per test",
    )


def store_of(config) -> str:
    import os

    return config.getoption("--store") or os.environ.get("ASSISTANT_STORE") or "faiss"


def _milvus_installed() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) for m in ("pymilvus", "milvus_lite"))


def pytest_generate_tests(metafunc):
    """A test marked ``stores`` runs once per store (faiss, milvus) in one pytest run (unless it
    is about the real model, ``model``); every other test once, on ``--store`` / ``ASSISTANT_STORE`` (default faiss). ``--store X``
    runs the marked tests on X only."""
    if "store" not in metafunc.fixturenames:
        return
    marked = metafunc.definition.get_closest_marker
    # A real-model test is about the model: once is enough (its store is the default one).
    once = marked("faiss_only") or marked("model")
    if marked("stores") and not once and not metafunc.config.getoption("--store"):
        stores = ["faiss", "milvus"] if _milvus_installed() else ["faiss"]
        metafunc.parametrize("store", stores, indirect=True)


def pytest_collection_modifyitems(config, items):
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        store = params.get("store") or store_of(config)
        marker = item.get_closest_marker("faiss_only")
        if store == "milvus" and marker:
            reason = marker.args[0] if marker.args else "about the embedded store's files"
            item.add_marker(pytest.mark.skip(reason=f"milvus: {reason}"))


@pytest.fixture
def store(request) -> str:
    """The store under test: the test's parameter when it is marked ``stores``, else
    ``--store`` / ``ASSISTANT_STORE`` (default faiss)."""
    return getattr(request, "param", None) or store_of(request.config)


@pytest.fixture
def settings(tmp_path, monkeypatch, store) -> Settings:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    monkeypatch.setenv("ASSISTANT_SEEDS_DIR", str(seeds))
    monkeypatch.setenv("ASSISTANT_INDEX_DIR", str(tmp_path / "embeddings"))
    monkeypatch.setenv("ASSISTANT_MODEL", "fake")
    monkeypatch.setenv("ASSISTANT_ABSTAIN_THRESHOLD", str(FAKE_THRESHOLD))
    monkeypatch.setenv("ASSISTANT_STORE", store)
    if store == "milvus":
        monkeypatch.setenv("ASSISTANT_MILVUS_URI", str(tmp_path / "milvus" / "milvus.db"))
    yield Settings()
    if store == "milvus":
        from assistant.store.milvus.client import close_all

        close_all()  # each test's Milvus Lite server stops with it


def release_store(settings: Settings | None = None) -> None:
    """Let a child process open the store: Milvus Lite serves one process at a time, so this
    process's Lite servers are stopped (they start again on the next use). A no-op otherwise."""
    import sys

    client = sys.modules.get("assistant.store.milvus.client")
    if client is not None:
        client.close_all()


def live_build(settings: Settings) -> str | None:
    """The live build's name, whichever store holds it."""
    from assistant.store import backend_for

    return backend_for(settings).current(settings)


def live_manifest(settings: Settings) -> dict:
    """The live build's manifest, whichever store holds it."""
    from assistant.store import backend_for

    return backend_for(settings).status(settings)[1]


def write(settings: Settings, name: str, text: str | bytes) -> Path:
    path = Path(settings.seeds_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def seeded(settings) -> Settings:
    """Settings whose seeds folder holds the real seed article and two short documents."""
    write(settings, "news.txt", SEED.read_text(encoding="utf-8"))
    write(
        settings,
        "notes/bread.md",
        "# Baking bread\n\nSourdough needs a starter. Knead the dough for ten minutes. Bake at 230 degrees.\n",
    )
    write(
        settings,
        "cats.txt",
        "Cats sleep for about sixteen hours a day. They are crepuscular animals.\n",
    )
    return settings


# ---------------------------------------------------------- synthetic documents for the reliability tests

SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ra",
    "tesu",
    "vin",
    "dor",
    "pal",
    "ens",
    "quo",
    "bri",
    "tan",
    "sel",
    "mur",
    "gof",
    "hil",
    "zan",
    "per",
    "ost",
    "uly",
]


def make_vocabulary(rng: random.Random, n: int = 400) -> list[str]:
    words: set[str] = set()
    while len(words) < n:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))))
    return sorted(words)


def make_document(rng: random.Random, vocab: list[str], n_sentences: int) -> str:
    paragraphs, sentences = [], []
    for i in range(n_sentences):
        words = [rng.choice(vocab) for _ in range(rng.randint(6, 18))]
        if rng.random() < 0.2:
            words.insert(rng.randint(0, len(words)), str(rng.randint(1, 20000)))
        sentences.append(" ".join(words).capitalize() + rng.choice(".!?" if i % 7 == 6 else "."))
        if rng.random() < 0.2:
            paragraphs.append(" ".join(sentences))
            sentences = []
    paragraphs.append(" ".join(sentences))
    title = " ".join(rng.choice(vocab) for _ in range(3)).title()
    return f"# {title}\n\n" + "\n\n".join(p for p in paragraphs if p) + "\n"


def assert_clean(index_dir: Path) -> None:
    names = sorted(p.name for p in index_dir.iterdir())
    assert not [n for n in names if n.startswith((".tmp-", ".CURRENT."))], names
    assert len([n for n in names if n.startswith("build-")]) == 1, names
