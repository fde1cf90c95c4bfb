"""Load benchmark (issue 7, part 5): N concurrent gradio_client clients x M questions each
against ``assistant serve`` on 127.0.0.1 with the real model and the default seeds/embeddings.

Reports p50/p95/max latency, errors, citations verified against the files, throughput and the
peak RSS of the server process (VmHWM from /proc). Usage::

    .venv/bin/python -m benchmarks.load [--clients 32] [--questions 25] [--port 0]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

QUESTIONS = [
    "How many troops featured in the Wednesday night military parade?",
    "What ultimatum did Kim Jong Un present to the U.S.?",
    "When did Kim and Trump last meet?",
    "What did Kim call Washington's aim for denuclearization?",
    "Why does Kim seek U.S. recognition as a nuclear state?",
    "When did Pyongyang pass legislation on its nuclear-state status?",
    "How old is Kim Jong Un?",
    "What did Kim criticize the U.S. for?",
    "What did Trump say about his relationship with Kim?",
    "When was the previous party congress?",
    "What did the party congress establish?",
    "Which countries does North Korea have expanding relations with?",
    "How long has it been since formal nuclear talks with the U.S.?",
    "What did Kim say about peaceful coexistence?",
    "Did Kim mention Trump by name?",
    "What did Trump call North Korea?",
    "What is the range of North Korea's missiles?",
    "Where did Trump travel in October?",
    "What happened at the military parade?",
    "Who offered closing remarks at the party conclave?",
    "What is the capital of Mongolia?",  # not in the documents: an abstention is expected
    "How do you bake sourdough bread?",  # neither
    "What did Kim say about everything being prepared?",
    "What does North Korea want in exchange for its nuclear weapons?",
    "What is the Workers' Party?",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 300) -> float:
    began = time.perf_counter()
    while time.perf_counter() - began < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return time.perf_counter() - began
        except OSError:
            time.sleep(0.5)
    raise SystemExit("server did not come up")


def stop_server(server: subprocess.Popen, wait: float = 30) -> None:
    """Ctrl-C for a server started by a benchmark; killed if it has not stopped in ``wait`` s."""
    server.send_signal(signal.SIGINT)
    try:
        server.wait(wait)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(10)


def run_clients(
    url: str,
    seeds_dir: Path,
    questions: list[str],
    clients: int,
    per_client: int,
    stride: int = 1,
    timeout: float = 300,
) -> dict:
    """``clients`` concurrent gradio_client clients ask ``per_client`` questions each through
    ``/ask`` (client i asks ``questions[(i * stride + j) % len]``); every citation is checked
    against the files. Returns sorted latencies (s), errors, counts and the wall time (s).
    Shared by this benchmark and the reduced CI run in tests/test_load.py."""
    from gradio_client import Client

    from assistant.answer import verify_citation
    from assistant.types import Citation

    latencies: list[float] = []
    timed: list[tuple[float, float]] = []  # (sent at, in perf_counter seconds; latency)
    errors: list[str] = []
    counts = {"answers": 0, "abstained": 0, "citations": 0, "verified": 0}
    lock = threading.Lock()
    barrier = threading.Barrier(clients)

    def run_client(i: int) -> None:
        try:
            client = Client(url, verbose=False)
        except Exception as exc:  # noqa: BLE001 - counted as an error
            with lock:
                errors.append(f"client {i}: {exc!r}")
            barrier.abort()
            return
        barrier.wait(timeout)
        for j in range(per_client):
            question = questions[(i * stride + j) % len(questions)]
            t = time.perf_counter()
            try:
                answer = client.predict(question, api_name="/ask")
            except Exception as exc:  # noqa: BLE001
                with lock:
                    errors.append(f"client {i} {question!r}: {exc!r}")
                continue
            elapsed = time.perf_counter() - t
            cites = [Citation(**c) for c in answer["citations"]]
            ok = sum(verify_citation(c, seeds_dir) for c in cites)
            with lock:
                latencies.append(elapsed)
                timed.append((t, elapsed))
                counts["answers"] += 1
                counts["abstained"] += bool(answer["abstained"])
                counts["citations"] += len(cites)
                counts["verified"] += ok
                if not answer["abstained"] and not cites:
                    errors.append(f"{question!r}: an answer without citations")

    threads = [threading.Thread(target=run_client, args=(i,)) for i in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    return {
        "latencies": sorted(latencies),
        "timed": timed,
        "errors": errors,
        "counts": counts,
        "wall": time.perf_counter() - began,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--questions", type=int, default=25)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    from gradio_client import Client

    from assistant.config import Settings

    settings = Settings()
    seeds_dir = (
        (REPO / settings.seeds_dir).resolve()
        if not settings.seeds_dir.is_absolute()
        else settings.seeds_dir
    )
    port = args.port or free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    server = subprocess.Popen(
        [sys.executable, "-m", "assistant", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,  # a pipe nobody reads fills up and blocks the server
    )
    peak_sampled = 0
    stop = threading.Event()

    def sample_rss() -> None:
        nonlocal peak_sampled
        while not stop.is_set():
            try:
                peak_sampled = max(peak_sampled, rss_kb(server.pid, "VmRSS"))
            except OSError:
                return
            time.sleep(0.2)

    try:
        startup = wait_ready(url, server)
        threading.Thread(target=sample_rss, daemon=True).start()
        rss_idle = rss_kb(server.pid, "VmRSS")
        # One warm-up question: the model loads on the first query.
        warm = time.perf_counter()
        Client(url, verbose=False).predict(QUESTIONS[0], api_name="/ask")
        first_query = time.perf_counter() - warm

        result = run_clients(url, seeds_dir, QUESTIONS, args.clients, args.questions, stride=7)
        latencies, errors, counts, wall = (
            result["latencies"],
            result["errors"],
            result["counts"],
            result["wall"],
        )
        peak_hwm = rss_kb(server.pid, "VmHWM")
    finally:
        stop.set()
        stop_server(server)

    total = args.clients * args.questions
    figures = {
        "clients": args.clients,
        "questions_each": args.questions,
        "requests": total,
        "answers": counts["answers"],
        "errors": len(errors),
        "abstained": counts["abstained"],
        "citations": counts["citations"],
        "citations_verified": counts["verified"],
        "p50_ms": round(statistics.median(latencies) * 1000) if latencies else None,
        "p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))] * 1000) if latencies else None,
        "max_ms": round(latencies[-1] * 1000) if latencies else None,
        "throughput_qps": round(counts["answers"] / wall, 2),
        "wall_s": round(wall, 1),
        "server_startup_s": round(startup, 1),
        "first_query_s": round(first_query, 2),
        "rss_idle_mb": round(rss_idle / 1024),
        "peak_rss_mb": round(max(peak_hwm, peak_sampled) / 1024),
        "cpus": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(figures, indent=1))
    else:
        for k, v in figures.items():
            print(f"{k:>20}: {v}")
    for e in errors[:5]:
        print("error:", e, file=sys.stderr)
    if errors or counts["verified"] != counts["citations"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
