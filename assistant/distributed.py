"""Distributed builds on Ray (``assistant build --ray [ADDRESS]``, extra ``assistant[ray]``).

The driver does what the plain build does (``build.build_index``: the seed diff, reading the
files' bytes, the batches, the checkpoint, the write through the chosen store, the report);
``RayWork`` sends the rest to a pool of Ray actors, each loading one embedder once: parsing
and extraction of the bytes (each worker with its own extraction sandbox), chunking, and the
embedding of each batch. Batches are the plain build's, so chunk ids are the same and vectors
equal to float rounding. Without an address a local Ray instance is started for the build and
stopped after it. Ray is imported inside the functions that need it.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .build import build_index, chunk_document
from .config import Settings
from .embedder import Embedder
from .embedders import embedder_for
from .errors import DistributedBuildError
from .types import BuildReport, Chunk, Document

log = logging.getLogger(__name__)

INSTALL = "pip install 'assistant[ray]'"
CONNECT_TIMEOUT = 5.0  # seconds to reach a cluster's address before saying it is unreachable
GROUPS_PER_WORKER = 4  # documents to parse or chunk go out in this many groups per worker

MakeEmbedder = Callable[[Settings], Embedder]


def build_with_ray(
    settings: Settings,
    *,
    address: str | None = None,
    workers: int | None = None,
    threads: int | None = None,
    make_embedder: MakeEmbedder = embedder_for,
    **build_kwargs: Any,
) -> BuildReport:
    """``build_index`` with extraction, chunking and embedding on Ray workers.

    ``address``: a running cluster (``HOST:PORT``, ``ray://HOST:PORT`` or ``auto``); None
    starts a local instance of ``workers`` x ``threads`` CPUs (default: one worker per core,
    one torch thread each) and stops it afterwards. If Ray is already initialized in this
    process, that instance is used. ``make_embedder(settings)`` runs once in each worker.
    """
    with RayWork(settings, address, workers, threads, make_embedder) as work:
        return build_index(settings, work=work, **build_kwargs)


def _ray():  # noqa: ANN202 - the module, when installed
    try:
        import ray
    except ImportError as exc:
        raise DistributedBuildError(f"--ray needs Ray, which is not installed: {INSTALL}") from exc
    return ray


def check_reachable(address: str) -> None:
    """Refuse at once an address nothing listens on (``ray.init`` would retry for minutes)."""
    if address == "auto":
        return
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        raise DistributedBuildError(
            f"Ray address {address!r} is not HOST:PORT (e.g. 10.0.0.5:6379, ray://10.0.0.5:10001 "
            "or auto); leave it out to start a local Ray instance"
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise DistributedBuildError(
            f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}); start it with "
            "`ray start --head` there, or leave the address out to start a local Ray instance"
        ) from None


def worker_failed(exc: BaseException) -> DistributedBuildError:
    """A Ray error (task raised, actor died) as one line; the previous index is untouched."""
    cause = getattr(exc, "cause", None) or exc
    text = " ".join(str(cause).split())
    text = text if len(text) <= 300 else text[:297] + "..."
    return DistributedBuildError(
        f"a Ray worker failed ({type(cause).__name__}: {text}); the previous index is intact "
        "and the vectors embedded so far are checkpointed: fix this and run the build again"
    )


class RayWork:
    """``build.Work`` on a pool of Ray actors, one embedder each (a context manager)."""

    def __init__(
        self,
        settings: Settings,
        address: str | None = None,
        workers: int | None = None,
        threads: int | None = None,
        make_embedder: MakeEmbedder = embedder_for,
    ) -> None:
        ray = _ray()
        self.settings, self._make_embedder, self._owned = settings, make_embedder, False
        cpus = os.cpu_count() or 1
        if address:
            check_reachable(address)
        if not ray.is_initialized():
            if address:
                init = {"address": address, "runtime_env": {"py_modules": [_package()]}}
            else:
                workers = workers or cpus
                threads = threads or max(1, cpus // workers)
                init = {
                    "address": "local",
                    "num_cpus": workers * threads,
                    "include_dashboard": False,
                    "runtime_env": {"env_vars": {"PYTHONPATH": _pythonpath()}},
                }
            try:
                ray.init(**init, logging_level=logging.WARNING, log_to_driver=False)
            except (ConnectionError, RuntimeError, TimeoutError, ValueError) as exc:
                raise DistributedBuildError(
                    f"could not start or join Ray at {address or 'a local instance'} "
                    f"({type(exc).__name__}: {' '.join(str(exc).split())[:300]})"
                ) from exc
            self._owned = True
        try:
            self.threads = threads or 1
            total = int(ray.cluster_resources().get("CPU", 1))
            self.n_workers = workers or max(1, total // self.threads)
        except BaseException:
            self.close()
            raise
        self._actors: list = []  # started at the first document to do (not for an up-to-date index)
        self._info: list[dict] | None = None
        self._counts = [{"documents": 0, "chunks": 0} for _ in range(self.n_workers)]

    # --- the context: stop what this build started ---------------------------------------------
    def __enter__(self) -> RayWork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        ray = _ray()
        for actor in self._actors:
            ray.kill(actor)
        self._actors = []
        if self._owned:
            ray.shutdown()
            self._owned = False

    # --- build.Work ------------------------------------------------------------------------------
    @property
    def actors(self) -> list:
        """The workers, each loading its model as it starts."""
        if not self._actors:
            actor = _ray().remote(num_cpus=self.threads)(_Worker)
            self._actors = [
                actor.remote(self.settings, self._make_embedder, self.threads, f"ray-{i + 1}")
                for i in range(self.n_workers)
            ]
        return self._actors

    @property
    def info(self) -> list[dict]:
        if self._info is None:
            self._info = self._get([a.info.remote() for a in self.actors])
        return self._info

    @property
    def dim(self) -> int:
        return self.info[0]["dim"]

    @property
    def max_tokens(self) -> int:
        return self.info[0]["max_tokens"]

    def parse(self, items: list[tuple[str, str, bytes]]) -> list[Document | str]:
        """Documents made of read files' bytes, on the workers (in the given order)."""
        return self._map("parse", items)

    def chunk(self, docs: Sequence[Document]) -> list[tuple[list[Chunk], str | None]]:
        return self._map("chunk", list(docs))

    def embed(self, jobs: Sequence[tuple[list[str], int]]) -> Iterator[tuple[int, np.ndarray]]:
        from ray.util import ActorPool

        pool = ActorPool(self.actors)
        index = {id(a): i for i, a in enumerate(self.actors)}
        results = pool.map_unordered(
            lambda a, j: a.embed.remote(j, jobs[j][0], index[id(a)]), range(len(jobs))
        )
        for j, worker, vectors in self._guard(results):
            self._counts[worker]["documents"] += jobs[j][1]
            self._counts[worker]["chunks"] += len(jobs[j][0])
            yield j, vectors

    def workers(self) -> list[dict]:
        if not self._actors:  # nothing to do: no worker was started
            return []
        return [{**info, **counts} for info, counts in zip(self.info, self._counts)]

    # --- plumbing --------------------------------------------------------------------------------
    def _map(self, method: str, items: list) -> list:
        """``actor.<method>(group)`` over groups of ``items`` on the pool, results in order."""
        from ray.util import ActorPool

        if not items:
            return []
        size = -(-len(items) // (GROUPS_PER_WORKER * len(self.actors)))
        groups = [items[i : i + size] for i in range(0, len(items), size)]
        pool = ActorPool(self.actors)
        done = pool.map(lambda a, g: getattr(a, method).remote(g), groups)
        return [out for group in self._guard(done) for out in group]

    def _get(self, refs: list) -> list:
        return next(self._guard(iter([refs]), get=True))

    def _guard(self, results: Iterator, get: bool = False) -> Iterator:
        """``results`` (``ray.get`` of each, with ``get``), a worker's failure as one typed error."""
        ray = _ray()
        try:
            for item in results:
                yield ray.get(item) if get else item
        except ray.exceptions.RayError as exc:
            raise worker_failed(exc) from exc


class _Worker:
    """One Ray actor: one embedder, loaded once; parses, chunks and embeds what it is sent."""

    def __init__(
        self, settings: Settings, make_embedder: MakeEmbedder, threads: int, name: str
    ) -> None:
        self.settings, self.name = settings, name
        self.embedder = make_embedder(settings)
        torch = sys.modules.get("torch")  # loaded by the model (not by a test's embedder)
        if torch is not None:
            torch.set_num_threads(threads)  # after the load, which takes every core

    def info(self) -> dict:
        import ray

        return {
            "worker": self.name,
            "node": ray.util.get_node_ip_address(),
            "pid": os.getpid(),
            "dim": int(self.embedder.dim),
            "max_tokens": int(self.embedder.max_tokens),
        }

    def parse(self, items: list[tuple[str, str, bytes]]) -> list[Document | str]:
        from .corpus import parse_document
        from .extract import format_of, is_plain
        from .extract.sandbox import Sandbox

        s = self.settings
        out: list[Document | str] = []
        with (
            Sandbox(s.extract_timeout, s.extract_memory_mb) as sandbox,
            tempfile.TemporaryDirectory(prefix="assistant-ray-") as tmp,
        ):
            for doc_id, path, data in items:
                name = Path(path).name
                where = path
                if not is_plain(format_of(name) or "txt"):  # the sandbox reads a file
                    where = str(Path(tmp) / name)
                    Path(where).write_bytes(data)
                out.append(parse_document(doc_id, where, data, sandbox))
                if where != path:
                    Path(where).unlink()
        return out

    def chunk(self, docs: list[Document]) -> list[tuple[list[Chunk], str | None]]:
        return [chunk_document(self.settings, self.embedder, d) for d in docs]

    def embed(self, job: int, texts: list[str], worker: int) -> tuple[int, int, np.ndarray]:
        return job, worker, self.embedder.embed(texts, batch_size=self.settings.batch_size)


def _package() -> str:
    """The folder of this ``assistant`` package (shipped to a cluster's workers)."""
    return str(Path(__file__).resolve().parent)


def _pythonpath() -> str:
    """Local workers import this very package (the folder above it first) and whatever the
    driver's PYTHONPATH names (a test's embedder, for one)."""
    parts = [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]
    return os.pathsep.join(p for p in parts if p)
