"""Killed builds resume: SciFact abstracts built by ``assistant build``, SIGKILLed at random moments.

    .venv/bin/python -m benchmarks.resume [--docs 2000] [--kills 5] [--seed 1] [--ray]

Each run is a fresh ``assistant build`` process (the real model) on an index folder that has
no complete build yet, killed at a random moment within ``--max-wait`` seconds of writing its
first checkpoint (so every run has embedded something); the next run resumes from the checkpoint of
the runs before (``index_dir/.checkpoint``), which it reports on stderr. After ``--kills`` kills,
a last run completes; its index is compared with a clean full build of the same seeds in
another folder: the same chunk ids and texts, vectors equal to 1e-5.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from assistant.store.checkpoint import FOLDER, Checkpoint
from benchmarks.build import subset_seeds
from benchmarks.common import bench_settings, machine_note, table


def checkpointed(index_dir: Path) -> int:
    """Chunks whose vectors the checkpoint folder holds (distinct documents)."""
    return sum(len(v) for v in Checkpoint(index_dir).load().values())


def run_build(
    env: dict, index_dir: Path, kill_after: float | None, extra: tuple[str, ...] = ()
) -> tuple[bool, float, str]:
    """One ``assistant build`` process, SIGKILLed ``kill_after`` seconds after it checkpointed
    its first batch (None: let it finish); (killed?, seconds, its resume/summary lines)."""
    started = time.monotonic()
    folder = index_dir / FOLDER
    files = len(list(folder.glob("*.npz")))
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistant", "build", *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    killed = False
    if kill_after is not None:
        while proc.poll() is None and len(list(folder.glob("*.npz"))) <= files:
            time.sleep(0.1)
        time.sleep(kill_after)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed = True
    out, err = proc.communicate()
    lines = [line for line in (err + out).splitlines() if "resum" in line or "documents:" in line]
    return killed, time.monotonic() - started, " | ".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--max-wait",
        type=float,
        default=30.0,
        help="kill within this many seconds of a run's first checkpoint",
    )
    parser.add_argument(
        "--ray",
        action="store_true",
        help="kill `assistant build --ray --workers 2` runs (each with its own local Ray)",
    )
    args = parser.parse_args()

    from assistant.build import build_index
    from assistant.store.loaded import load_index

    rng = random.Random(args.seed)
    seeds = subset_seeds(args.docs)
    base = bench_settings(seeds)
    killed_dir = base.index_dir.parent / "resume-killed"
    clean_dir = base.index_dir.parent / "resume-clean"
    for folder in (killed_dir, clean_dir):
        shutil.rmtree(folder, ignore_errors=True)
    env = {
        **os.environ,
        "ASSISTANT_SEEDS_DIR": str(seeds),
        "ASSISTANT_INDEX_DIR": str(killed_dir),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    rows = []
    for run_no in range(args.kills + 1):
        before = checkpointed(killed_dir)
        wait = rng.uniform(0, args.max_wait) if run_no < args.kills else None
        extra = ("--ray", "--workers", "2") if args.ray else ()
        killed, seconds, said = run_build(env, killed_dir, wait, extra)
        after = checkpointed(killed_dir)
        rows.append(
            [
                run_no + 1,
                "killed" if killed else "completed",
                round(seconds, 1),
                before,
                after if killed else "-",
                said or "-",
            ]
        )
        print(rows[-1], flush=True)
        if not killed:
            break

    clean_settings = base.model_copy(update={"index_dir": clean_dir})
    started = time.perf_counter()
    clean_report = build_index(clean_settings, full=True, progress=False)
    clean_seconds = time.perf_counter() - started
    resumed = load_index(base.model_copy(update={"index_dir": killed_dir}))
    clean = load_index(clean_settings)
    ids = range(clean.size)
    same_rows = resumed.size == clean.size and resumed.chunk_rows(ids) == clean.chunk_rows(ids)
    diff = float(np.max(np.abs(resumed.vectors(ids) - clean.vectors(ids)))) if same_rows else None

    print(f"SciFact, first {args.docs} abstracts; {machine_note()}")
    print()
    print(
        table(
            ["run", "end", "seconds", "checkpointed at start", "at kill", "build said"],
            rows,
        )
    )
    print()
    print(
        table(
            ["measure", "value"],
            [
                ["chunks", clean.size],
                ["clean full build (s)", round(clean_seconds, 1)],
                ["clean build embedded", clean_report.embedded_chunks],
                ["same chunk ids and texts", same_rows],
                ["max |vector difference|", diff],
                ["equal to 1e-5", diff is not None and diff <= 1e-5],
            ],
        )
    )
    resumed.close()
    clean.close()


if __name__ == "__main__":
    main()
