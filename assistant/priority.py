"""Builds yield the CPU to the chat.

A build the web app runs (an upload, a file changed in the seeds folder, the Build button) and
``assistant build`` run beside a ``serve`` of the same index embed at a lower CPU priority and
with fewer torch threads than the chat: on a 2-core machine a rebuild must not starve the
questions being answered meanwhile. ``serving`` marks an index as served (a shared ``flock``
that the kernel drops with the process), and ``served`` tells a command-line build so.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

MARKER = Path(".cache") / "serving.lock"  # inside the index folder (gitignored)


def _thread_id() -> int:
    """The calling thread for ``setpriority`` (Linux: per thread; elsewhere 0, the process)."""
    return threading.get_native_id() if sys.platform.startswith("linux") else 0


def lower_priority(nice: int, threads: int | None = None) -> None:
    """Lower the calling thread's CPU priority by ``nice`` and limit its torch operations to
    ``threads``. On Linux both are per thread (threads started later by this one inherit
    them), so a build thread of the web app slows nothing else of the process."""
    if nice > 0 and hasattr(os, "setpriority"):
        tid = _thread_id()
        with contextlib.suppress(OSError):
            current = os.getpriority(os.PRIO_PROCESS, tid)
            os.setpriority(os.PRIO_PROCESS, tid, min(19, current + nice))
    if threads and "torch" in sys.modules:  # torch's thread count is per calling thread
        import torch

        torch.set_num_threads(threads)


def thread_nice() -> int:
    """The calling thread's nice value (tests and the build's log)."""
    return os.getpriority(os.PRIO_PROCESS, _thread_id())


@contextlib.contextmanager
def serving(index_dir: Path) -> Iterator[None]:
    """Mark ``index_dir`` as served by this process while the block runs."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no marker, builds beside serve run at full speed
        yield
        return
    path = Path(index_dir) / MARKER
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+b")  # noqa: SIM115 - held for the whole block
    except OSError:  # a read-only index folder: nothing to mark
        yield
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_SH)
        yield
    finally:
        handle.close()


def served(index_dir: Path) -> bool:
    """Whether a live process serves ``index_dir`` (holds the ``serving`` marker)."""
    try:
        import fcntl
    except ImportError:
        return False
    path = Path(index_dir) / MARKER
    try:
        handle = open(path, "rb")  # noqa: SIM115
    except OSError:
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False
