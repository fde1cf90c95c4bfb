"""``serve`` watches the seeds folder: files added, changed or removed there by other programs
are indexed as uploads are (``Indexer.request``).

``watchfiles`` (inotify on Linux) reports the changes, already debounced; then the changed
files must keep the same size and modification time for ``settle`` seconds, so a file still
being copied or written is not read half-way. The index folder (when it sits inside the seeds
folder) and editors' swap and backup files are ignored.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from ..config import Settings

log = logging.getLogger(__name__)

SETTLE = 1.0  # seconds a changed file must stay the same before it is read
SETTLE_MAX = 120.0  # after this long a file still growing is indexed anyway (and again later)


class SeedsWatcher:
    """Calls ``on_change(names)`` (paths relative to the seeds folder) after each settled batch
    of changes, from a daemon thread, until ``stop``."""

    def __init__(
        self,
        settings: Settings,
        on_change: Callable[[list[str]], None],
        *,
        settle: float = SETTLE,
        debounce_ms: int = 400,
    ) -> None:
        self.root = Path(settings.seeds_dir).resolve()
        self.index_dir = Path(settings.index_dir).resolve()
        self.on_change = on_change
        self.settle, self.debounce_ms = settle, debounce_ms
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> SeedsWatcher:
        self.root.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="assistant-watcher", daemon=True)
        self._thread.start()
        self._ready.wait(5)  # watching before start() returns: nothing added after it is missed
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        from watchfiles import DefaultFilter, watch

        keep = DefaultFilter(ignore_paths=[self.index_dir])
        try:
            changes_seen = watch(
                self.root,
                watch_filter=keep,
                debounce=self.debounce_ms,
                step=50,
                stop_event=self._stop,
                rust_timeout=500,
                yield_on_timeout=True,
                raise_interrupt=False,
            )
            for changes in changes_seen:
                self._ready.set()
                if not changes:  # the timeout's empty set: watching has begun
                    continue
                paths = {Path(p) for _, p in changes}
                if not self._settled(paths):
                    return  # stopped while waiting
                names = sorted(self._relative(paths))
                if names:
                    self.on_change(names)
        except Exception as exc:  # noqa: BLE001 - the app goes on without watching
            log.warning("no longer watching %s: %s", self.root, exc)
        finally:
            self._ready.set()

    def _settled(self, paths: Iterable[Path]) -> bool:
        """Wait until every changed file keeps its size and time for ``settle`` seconds."""
        paths = list(paths)
        began = time.monotonic()
        before = _stats(paths)
        while not self._stop.wait(self.settle):
            now = _stats(paths)
            if now == before or time.monotonic() - began > SETTLE_MAX:
                return True
            before = now
        return False

    def _relative(self, paths: Iterable[Path]) -> Iterable[str]:
        for path in paths:
            try:
                yield path.resolve().relative_to(self.root).as_posix()
            except ValueError:
                continue


def _stats(paths: list[Path]) -> list[tuple[int, int] | None]:
    out: list[tuple[int, int] | None] = []
    for path in paths:
        try:
            st = path.stat()
            out.append((st.st_size, st.st_mtime_ns))
        except OSError:
            out.append(None)
    return out
