"""The first answer after a process starts, on the default seeds: model loading apart from
the first ``ask()``.

    python -m benchmarks.first_answer [--runs 3]

Each run is a fresh Python process: it loads the index and the embedder (``get_retriever``
and one query encode), then the reader model (``default_reader``), then times the first
``ask()``; the figure the issue bounds is that first ``ask()`` beyond the loading.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, time
t0 = time.perf_counter()
from assistant.retrieval import get_retriever
from assistant.crossencoder import default_reader
from assistant.answer import ask
r = get_retriever()
r.embed_query("warm the embedder")
t1 = time.perf_counter()
default_reader()
t2 = time.perf_counter()
a = ask("How many troops took part in the parade?")
t3 = time.perf_counter()
b = ask("When did Trump and Kim last meet?")
t4 = time.perf_counter()
print(json.dumps({"index_and_embedder_s": t1 - t0, "reader_load_s": t2 - t1,
                  "first_ask_s": t3 - t2, "second_ask_s": t4 - t3,
                  "answered": not a.abstained}))
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    rows = []
    for _ in range(args.runs):
        out = subprocess.run(
            [sys.executable, "-c", CHILD], capture_output=True, text=True, check=True
        ).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    print("| run | index + embedder s | reader load s | first ask() s | second ask() s |")
    print("|---|---|---|---|---|")
    for i, r in enumerate(rows, 1):
        print(
            f"| {i} | {r['index_and_embedder_s']:.2f} | {r['reader_load_s']:.2f} | "
            f"{r['first_ask_s']:.2f} | {r['second_ask_s']:.2f} |"
        )


if __name__ == "__main__":
    main()
