"""Run extractors in a worker process, with a time limit and a memory limit per file.

A parser that hangs on a hostile file is killed after ``timeout`` seconds, and one that tries to
allocate more than ``memory_mb`` fails inside the worker (``RLIMIT_AS``); either way the file is
reported with a one-line reason and the build goes on with a fresh worker. One worker serves many
files in a row (JSON lines over pipes), so the cost of starting Python is paid once per build.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

from ..errors import ExtractError, ExtractLimitError
from . import Extracted, extractor_module

_ROOT = str(Path(__file__).resolve().parents[2])
STARTUP_TIMEOUT = 60.0  # seconds for the worker to start and import the parsers


class Sandbox:
    """``extract(path, fmt)`` in a worker process; ``close()`` (or ``with``) ends the worker."""

    def __init__(self, timeout: float = 60.0, memory_mb: int = 2048) -> None:
        self.timeout = timeout
        self.memory_mb = memory_mb
        self._proc: subprocess.Popen | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> subprocess.Popen:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([_ROOT, os.environ.get("PYTHONPATH", "")]),
        }
        proc = subprocess.Popen(
            # The worker sets its own memory limit first thing (no preexec_fn: the web app
            # builds in a thread, and forking a threaded process to run Python code can hang).
            [sys.executable, "-m", "assistant.extract.worker", str(self.memory_mb)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        self._lines = lines = queue.Queue()

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line.decode("utf-8"))
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        try:  # started and its parsers imported: not counted in the first file's time limit
            ready = lines.get(timeout=max(STARTUP_TIMEOUT, self.timeout))
        except queue.Empty:
            ready = None
        if ready is None or "ready" not in ready:
            proc.kill()
            proc.wait()
            raise ExtractLimitError(
                "the extraction worker did not start (memory limit "
                f"{self.memory_mb} MB, ASSISTANT_EXTRACT_MEMORY_MB?)"
            )
        return proc

    def extract(self, path: str, fmt: str) -> Extracted:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = self._start()
        proc = self._proc
        assert proc.stdin is not None
        try:
            request = {"path": str(path), "format": fmt, "module": extractor_module(fmt)}
            proc.stdin.write((json.dumps(request) + "\n").encode())
            proc.stdin.flush()
            line = self._lines.get(timeout=self.timeout)
        except queue.Empty:
            self._kill()
            raise ExtractLimitError(
                f"the {fmt} parser was stopped after {self.timeout:g} s (ASSISTANT_EXTRACT_TIMEOUT)"
            ) from None
        except (BrokenPipeError, OSError):
            line = None
        reply = json.loads(line) if line is not None else {}
        if line is None or "limit" in reply:
            self._kill()
            raise ExtractLimitError(
                f"the {fmt} parser crashed or ran out of memory (limit {self.memory_mb} MB, "
                "ASSISTANT_EXTRACT_MEMORY_MB)"
            )
        if "error" in reply:
            raise ExtractError(reply["error"])
        return Extracted.from_json(reply["ok"])

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None

    def close(self) -> None:
        if self._proc is not None:
            try:
                assert self._proc.stdin is not None
                self._proc.stdin.close()
                self._proc.wait(timeout=5)
            except Exception:
                self._kill()
            self._proc = None
