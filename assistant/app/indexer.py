"""The web app's builds: one at a time, in a background thread that yields the CPU to the chat.

An upload, a delete, a file changed in the seeds folder (``watcher``) or the Build button
``request`` a build; requests that arrive while one runs are folded into the next. The build is
the usual incremental ``build_index`` (only what changed is embedded), run with its own copy of
the model at a lower priority and with fewer torch threads (``priority``), so questions asked
meanwhile are answered from the previous index at nearly full speed and then from the new one.
The page polls ``snapshot`` to show the progress in its banner.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from ..build import build_index
from ..config import Settings
from ..embedders import build_embedder
from ..errors import AssistantError, IndexLockedError
from ..priority import lower_priority
from ..types import BuildReport

log = logging.getLogger(__name__)

LOCK_WAIT = 600  # seconds to wait for a build run elsewhere (`assistant build`) to finish


class Indexer:
    """Runs the app's builds one after another in a daemon thread (started on first use)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._cond = threading.Condition()
        self._pending: list[str] = []
        self._thread: threading.Thread | None = None
        self._closed = False
        self._running: dict[str, Any] | None = None
        self._last: dict[str, Any] | None = None
        self.version = 0  # moves when a build starts or ends: the page refreshes then

    def request(self, reason: str) -> None:
        """Ask for a build; ``reason`` is shown in the banner ("added notes.md")."""
        with self._cond:
            if self._closed:
                return
            if reason not in self._pending:
                self._pending.append(reason)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="assistant-indexer", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def snapshot(self) -> dict[str, Any]:
        """What the banner shows: the build running (reasons, stage, chunks done of total,
        seconds), the last one's outcome, and ``version``."""
        with self._cond:
            running = dict(self._running) if self._running else None
            if running:
                running["seconds"] = time.monotonic() - running.pop("began")
            return {
                "version": self.version,
                "running": running,
                "queued": list(self._pending),
                "last": dict(self._last) if self._last else None,
            }

    def busy(self) -> bool:
        with self._cond:
            return bool(self._running or self._pending)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no build runs or waits (True), or ``timeout`` seconds pass (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._running or self._pending:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def close(self) -> None:
        """Take no more requests; a build under way finishes in its thread (it is atomic)."""
        with self._cond:
            self._closed = True
            self._pending.clear()
            self._cond.notify_all()

    # -- the build thread ------------------------------------------------------------------------

    def _loop(self) -> None:
        embedder = None
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                reasons, self._pending = self._pending, []
                self._running = {
                    "reasons": reasons,
                    "stage": "reading documents",
                    "done": 0,
                    "total": 0,
                    "began": time.monotonic(),
                }
                self.version += 1
                self._cond.notify_all()
            began = time.monotonic()
            try:
                if embedder is None:  # the model's second copy, then this thread's priority
                    embedder = build_embedder(self.settings)
                    lower_priority(self.settings.build_nice, self.settings.build_threads)
                report = build_index(
                    self.settings,
                    embedder=embedder,
                    progress=False,
                    wait=LOCK_WAIT,
                    on_progress=self._on_progress,
                )
                outcome: dict[str, Any] = {"report": report, "message": _done(report)}
            except Exception as exc:  # noqa: BLE001 - shown in the banner; the app keeps serving
                if not isinstance(exc, AssistantError):
                    log.exception("build failed", exc_info=exc)
                outcome = {"error": _failure(exc)}
            outcome.update(reasons=reasons, seconds=time.monotonic() - began, at=time.time())
            with self._cond:
                self._running = None
                # A build that found nothing to do (the watcher seeing an upload already
                # indexed) leaves the last real outcome on screen.
                report = outcome.get("report")
                if not (report and report.up_to_date and self._last):
                    self._last = outcome
                self.version += 1
                self._cond.notify_all()

    def _on_progress(self, stage: str, done: int, total: int) -> None:
        with self._cond:
            if self._running is not None:
                self._running.update(stage=stage, done=done, total=total)


def _done(report: BuildReport) -> str:
    skipped = "".join(f"; skipped {name}: {reason}" for name, reason in report.skipped)
    return (
        f"Index built: {report.summary()} ({report.total_chunks} chunks, "
        f"{report.seconds:.1f}s){skipped}."
    )


def _failure(exc: BaseException) -> str:
    if isinstance(exc, IndexLockedError):
        return (
            "another build of this index is still running (from the command line or another "
            "window); the documents are indexed again when it has finished and they change"
        )
    return str(exc) if isinstance(exc, AssistantError) else f"{type(exc).__name__}: {exc}"
