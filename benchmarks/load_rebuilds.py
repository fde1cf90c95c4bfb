"""Load during rebuilds (issue 26, parts 1 and 3): 32 gradio_client clients ask through ``/ask``
while the app rebuilds its index, on either store; the same run first measures them without
rebuilds, so the two latencies compare on one machine in one process.

The server is ``assistant serve`` over a temporary copy of the seeds and the documents written
for the tests (``tests/docs``), built first. A rebuild is what a user causes: a document copied
into the seeds folder by another program (about 45 KB, a shuffled mix of those documents, so
each rebuild embeds a hundred-odd chunks); the app's watcher indexes it in its background
build (lower priority, fewer threads). A rebuild counts as done when ``/retrieve`` scoped to
the new document answers (the build swapped in). Every citation is verified against the files.

    .venv/bin/python -m benchmarks.load_rebuilds [--store milvus] [--clients 32]
        [--questions 400] [--baseline 100] [--rebuilds 4]

Reported: p50/p95/max of ``/ask`` without rebuilds, during rebuilds (requests sent while one
ran) and over the whole rebuild phase; the ratio of the p95s; errors (a "queue full" answer is
one); rebuild durations. Exits 1 on any error or unverified citation.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.common import percentiles
from benchmarks.load import QUESTIONS, free_port, run_clients, stop_server, wait_ready

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "tests" / "docs"


def rebuild_document(i: int) -> str:
    """About 45 KB: the test documents' paragraphs, shuffled (seed ``i``), four times over."""
    paragraphs = []
    for path in sorted(DOCS.iterdir()):
        paragraphs += [p for p in path.read_text(encoding="utf-8").split("\n\n") if p.strip()]
    rng = random.Random(i)
    out = []
    for _ in range(4):
        rng.shuffle(paragraphs)
        out += paragraphs
    return f"Rebuild document {i}\n\n" + "\n\n".join(out) + "\n"


def workspace(store: str) -> tuple[Path, dict]:
    root = Path(tempfile.mkdtemp(prefix="assistant-load-"))
    seeds = root / "seeds"
    shutil.copytree(REPO / "seeds", seeds)
    for path in DOCS.iterdir():
        shutil.copy(path, seeds / path.name)
    env = {
        **os.environ,
        "GRADIO_ANALYTICS_ENABLED": "False",
        "ASSISTANT_SEEDS_DIR": str(seeds),
        "ASSISTANT_INDEX_DIR": str(root / "index"),
        "ASSISTANT_STORE": store,
    }
    if store == "milvus":
        env["ASSISTANT_MILVUS_URI"] = str(root / "milvus.db")
    subprocess.run([sys.executable, "-m", "assistant", "build"], env=env, check=True, cwd=REPO)
    return root, env


def figures(latencies: list[float]) -> dict:
    if not latencies:
        return {"n": 0}
    p50, p95 = percentiles(latencies)
    return {
        "n": len(latencies),
        "p50_ms": round(p50 * 1000),
        "p95_ms": round(p95 * 1000),
        "max_ms": round(max(latencies) * 1000),
    }


def rebuilds(url: str, seeds: Path, count: int, stop: threading.Event, pause: float) -> list:
    """Copy ``count`` new documents into the seeds folder one after another, ``pause`` seconds
    apart; each window is (sent, done) in perf_counter seconds."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    windows: list[tuple[float, float]] = []
    for i in range(count):
        if stop.wait(pause):
            break
        name = f"rebuild-{i}.txt"
        tmp = seeds.parent / name
        tmp.write_text(rebuild_document(i), encoding="utf-8")
        began = time.perf_counter()
        os.replace(tmp, seeds / name)  # as a program that writes then moves a file in
        while not stop.is_set():
            try:
                client.predict("rebuild document", 1, [name], api_name="/retrieve")
                break
            except Exception:  # noqa: BLE001 - "unknown document" until the build swapped in
                time.sleep(0.5)
        windows.append((began, time.perf_counter()))
    return windows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("faiss", "milvus"), default="faiss")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--questions", type=int, default=400, help="per client, with rebuilds")
    parser.add_argument("--baseline", type=int, default=100, help="per client, no rebuilds")
    parser.add_argument("--rebuilds", type=int, default=4)
    parser.add_argument("--pause", type=float, default=30.0, help="seconds between rebuilds")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    root, env = workspace(args.store)
    seeds = Path(env["ASSISTANT_SEEDS_DIR"])
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log = open(root / "server.log", "wb")  # noqa: SIM115 - a pipe nobody reads would fill
    server = subprocess.Popen(
        [sys.executable, "-m", "assistant", "serve", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_ready(url, server)
        from gradio_client import Client

        Client(url, verbose=False).predict(QUESTIONS[0], api_name="/ask")  # loads the model
        base = run_clients(url, seeds, QUESTIONS, args.clients, args.baseline, stride=7)

        stop = threading.Event()
        windows: list = []
        rebuilder = threading.Thread(
            target=lambda: windows.extend(rebuilds(url, seeds, args.rebuilds, stop, args.pause))
        )
        rebuilder.start()
        load = run_clients(url, seeds, QUESTIONS, args.clients, args.questions, stride=7)
        stop.set()
        rebuilder.join(600)
    finally:
        stop_server(server, 60)
        log.close()
        tail = (root / "server.log").read_text(errors="replace").splitlines()[-20:]
        shutil.rmtree(root, ignore_errors=True)

    during = [lat for sent, lat in load["timed"] if any(a <= sent <= b for a, b in windows)]
    out = {
        "store": args.store,
        "clients": args.clients,
        "cpus": os.cpu_count(),
        "without_rebuilds": figures(base["latencies"]),
        "during_rebuilds": figures(during),
        "rebuild_phase": figures(load["latencies"]),
        "rebuilds_done": len(windows),
        "rebuild_seconds": [round(b - a, 1) for a, b in windows],
        "errors": len(base["errors"]) + len(load["errors"]),
        "citations": base["counts"]["citations"] + load["counts"]["citations"],
        "citations_verified": base["counts"]["verified"] + load["counts"]["verified"],
        "requests": base["counts"]["answers"] + load["counts"]["answers"],
    }
    if during and base["latencies"]:
        out["p95_ratio"] = round(
            out["during_rebuilds"]["p95_ms"] / out["without_rebuilds"]["p95_ms"], 2
        )
    print(
        json.dumps(out, indent=1) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items())
    )
    for e in (base["errors"] + load["errors"])[:5]:
        print("error:", e, file=sys.stderr)
    if any("Traceback" in line for line in tail):
        print("the server's log ends with:", *tail, sep="\n", file=sys.stderr)
    if out["errors"] or out["citations"] != out["citations_verified"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
