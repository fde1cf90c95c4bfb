"""Distributed builds on a real local Ray instance (``assistant build --ray``).

One Ray instance of 2 CPUs serves the module; the fake embedder is sent to the workers as
``make_embedder`` (workers import it from this package: the instance's PYTHONPATH names the
repository). The test marked ``slow`` runs the real model through the CLI in its own process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'assistant[ray]')")

from typer.testing import CliRunner  # noqa: E402

from assistant import build as build_mod  # noqa: E402
from assistant.build import build_index  # noqa: E402
from assistant.cli import app  # noqa: E402
from assistant.distributed import build_with_ray  # noqa: E402
from assistant.errors import DistributedBuildError  # noqa: E402
from assistant.store import backend_for  # noqa: E402

from .conftest import REPO, SEED, FakeEmbedder, write  # noqa: E402

WORKERS = 2


@pytest.fixture(scope="module", autouse=True)
def ray_instance():
    """One local Ray instance for the module (builds reuse an initialized Ray)."""
    path = os.pathsep.join(p for p in [str(REPO), os.environ.get("PYTHONPATH", "")] if p)
    for attempt in range(3):  # Ray's own start can time out waiting for its GCS on a busy
        try:  # 2-core machine ("Timed out waiting for file .../gcs_server_port_..."): again
            ray.init(
                address="local",
                num_cpus=WORKERS,
                include_dashboard=False,
                log_to_driver=False,
                runtime_env={"env_vars": {"PYTHONPATH": path}},
            )
            break
        except RuntimeError:
            ray.shutdown()
            if attempt == 2:
                raise
    yield
    ray.shutdown()


def fake(settings):  # noqa: ANN001, ANN201 - run in each worker
    return FakeEmbedder()


class PoisonedEmbedder(FakeEmbedder):
    """Fails on a text that says "poison", like a worker running out of memory."""

    def embed(self, texts, batch_size=32, progress=False):
        if any("poison" in t for t in texts):
            raise MemoryError("poisoned batch")
        return super().embed(texts, batch_size, progress)


def poisoned(settings):  # noqa: ANN001, ANN201
    return PoisonedEmbedder()


def corpus(settings) -> None:
    """Documents of several formats, enough chunks for several batches of ``EMBED_BLOCK`` 8."""
    write(settings, "news.txt", SEED.read_text(encoding="utf-8"))
    write(settings, "notes/bread.md", "# Baking bread\n\nSourdough needs a starter. Knead it.\n")
    write(
        settings,
        "page.html",
        "<html><head><title>Tides</title></head><body><h1>Tides</h1><p>The moon pulls the "
        "sea.</p><h2>Springs</h2><p>Spring tides follow new and full moons.</p></body></html>",
    )
    for i in range(12):
        write(settings, f"facts/{i:02d}.txt", f"Fact {i}. " + "Cells divide and grow. " * 40)


def open_index(settings):
    """The live build through the configured store (``pytest --store milvus`` runs these too)."""
    return backend_for(settings).open(settings)


def current_build(settings):
    return backend_for(settings).current(settings)


def index_of(settings):
    index = open_index(settings)
    try:
        ids = sorted(index.chunk_ids())
        rows = index.chunk_rows(ids)
        return [rows[i] for i in ids], index.vectors(ids)
    finally:
        index.close()


def assert_same_index(a, b) -> None:
    rows_a, vectors_a = index_of(a)
    rows_b, vectors_b = index_of(b)
    assert rows_a == rows_b  # chunk ids in order, documents, offsets, texts, titles
    assert vectors_a.shape == vectors_b.shape
    assert float(np.max(np.abs(vectors_a - vectors_b))) <= 1e-5


def assert_counts_add_up(report) -> None:
    assert len(report.workers) == WORKERS
    assert sum(w["chunks"] for w in report.workers) == report.embedded_chunks
    assert sum(w["documents"] for w in report.workers) == report.new + report.changed


@pytest.fixture
def plain_and_ray(settings, monkeypatch):
    """The same seeds, with two index folders: the plain build's and the Ray build's."""
    monkeypatch.setattr(build_mod, "EMBED_BLOCK", 8)  # the driver cuts the batches
    corpus(settings)
    # Its own folder and (with --store milvus) its own collections in the same Lite file.
    other = settings.model_copy(
        update={"index_dir": Path(settings.index_dir).parent / "ray", "milvus_collection": "ray"}
    )
    return settings, other


def test_a_ray_build_equals_the_plain_build(plain_and_ray):
    plain, distributed = plain_and_ray
    expected = build_index(plain, embedder=FakeEmbedder(), progress=False)
    report = build_with_ray(distributed, workers=WORKERS, make_embedder=fake, progress=False)
    assert_same_index(plain, distributed)
    assert (report.documents, report.total_chunks) == (expected.documents, expected.total_chunks)
    assert report.embedded_chunks == report.total_chunks == expected.total_chunks
    assert_counts_add_up(report)
    assert all(w["chunks"] > 0 for w in report.workers), report.workers  # both did work
    assert {w["pid"] for w in report.workers} != {os.getpid()}
    assert report.to_dict()["workers"] == report.workers
    # The extracted HTML went through a worker's sandbox and was stored like the plain build's.
    ray_index, plain_index = open_index(distributed), open_index(plain)
    try:
        assert ray_index.stored("page.html").text == plain_index.stored("page.html").text
    finally:
        ray_index.close()
        plain_index.close()


def test_an_incremental_ray_build_embeds_only_what_changed(plain_and_ray):
    plain, distributed = plain_and_ray
    build_index(plain, embedder=FakeEmbedder(), progress=False)  # the same steps, plainly
    build_with_ray(distributed, workers=WORKERS, make_embedder=fake, progress=False)
    write(plain, "facts/03.txt", "Fact 3, rewritten. Mitochondria make energy.")
    write(plain, "cats.txt", "Cats sleep for about sixteen hours a day.")
    report = build_with_ray(distributed, workers=WORKERS, make_embedder=fake, progress=False)
    assert (report.new, report.changed, report.removed) == (1, 1, 0)
    assert report.embedded_chunks == 2 and report.reused_chunks == report.total_chunks - 2
    assert_counts_add_up(report)
    build_index(plain, embedder=FakeEmbedder(), progress=False)
    assert_same_index(plain, distributed)
    again = build_with_ray(distributed, workers=WORKERS, make_embedder=fake, progress=False)
    assert again.up_to_date and again.embedded_chunks == 0
    assert again.workers == []  # nothing to do: no worker started, no model loaded


def test_a_failed_worker_is_one_error_and_the_next_build_resumes(plain_and_ray):
    plain, distributed = plain_and_ray
    build_index(plain, embedder=FakeEmbedder(), progress=False)
    build_with_ray(distributed, workers=WORKERS, make_embedder=fake, progress=False)
    live = current_build(distributed)
    for i in range(12):  # every fact changes; the last one poisons its batch
        write(plain, f"facts/{i:02d}.txt", f"Fact {i} again. " + "Tissues heal. " * 200)
    write(plain, "zz.txt", "This one is poison.")
    with pytest.raises(DistributedBuildError, match="MemoryError: poisoned batch"):
        build_with_ray(distributed, workers=WORKERS, make_embedder=poisoned, progress=False)
    assert current_build(distributed) == live  # the previous index stays live
    open_index(distributed).close()
    (Path(plain.seeds_dir) / "zz.txt").unlink()
    report = build_with_ray(distributed, workers=WORKERS, make_embedder=fake, progress=False)
    assert report.changed == 12 and report.resumed_chunks > 0, report  # the checkpoint
    total = report.embedded_chunks + report.resumed_chunks + report.reused_chunks
    assert total == report.total_chunks
    assert sum(w["chunks"] for w in report.workers) == report.embedded_chunks
    build_index(plain, embedder=FakeEmbedder(), progress=False)
    assert_same_index(plain, distributed)


def test_cli_ray_without_ray_installed_names_the_extra(seeded, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    result = CliRunner().invoke(app, ["build", "--ray"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        "error: --ray needs Ray, which is not installed: pip install 'assistant[ray]'"
    )


def test_cli_ray_address_must_be_host_port(seeded):
    result = CliRunner().invoke(app, ["build", "--ray", "nowhere"])
    assert result.exit_code == 1
    assert result.output.startswith("error: Ray address 'nowhere' is not HOST:PORT")


def test_cli_ray_options_need_ray(seeded):
    result = CliRunner().invoke(app, ["build", "--workers", "2"])
    assert result.exit_code == 2 and "go with --ray" in result.output


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``assistant`` in its own process (its own Ray, not this module's)."""
    path = os.pathsep.join(p for p in [str(REPO), os.environ.get("PYTHONPATH", "")] if p)
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": path, **(env or {})},
        check=False,
    )


def test_cli_an_unreachable_address_is_one_line(seeded):
    result = run_cli("build", "--ray", "127.0.0.1:9")  # the discard port: nothing listens
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: cannot reach the Ray cluster at 127.0.0.1:9"
    ), result.stderr
    assert not (Path(seeded.index_dir) / "CURRENT").exists()


@pytest.mark.slow
@pytest.mark.model
def test_cli_ray_build_with_the_real_model_equals_the_plain_build(seeded):
    """``assistant build --ray --workers 2 --json`` (a local Ray instance of its own, the real
    packaged model in each worker) against the plain build in this process."""
    from assistant.config import DEFAULT_MODEL

    real = seeded.model_copy(update={"model": DEFAULT_MODEL})
    distributed = real.model_copy(update={"index_dir": Path(real.index_dir).parent / "ray"})
    build_index(real, progress=False)
    env = {"ASSISTANT_MODEL": DEFAULT_MODEL, "ASSISTANT_INDEX_DIR": str(distributed.index_dir)}
    result = run_cli("build", "--ray", "--workers", "2", "--json", env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert len(report["workers"]) == 2
    assert sum(w["chunks"] for w in report["workers"]) == report["embedded_chunks"]
    assert report["embedded_chunks"] == report["total_chunks"] > 0
    assert_same_index(real, distributed)
