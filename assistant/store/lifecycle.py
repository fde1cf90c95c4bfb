"""The life of a loaded build, the same in every store: searches hold it open while they read
it; once a newer build replaces it (``retire``), it closes as soon as no search uses it."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T", bound="Retirable")


class Retirable:
    """Counts the searches using a build; a subclass defines ``close``."""

    def __init__(self) -> None:
        self._life_lock = threading.Lock()
        self._users = 0
        self._retired = False
        self._closed = False

    def close(self) -> None:
        self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def busy(self) -> bool:
        """Whether a search is reading this build now."""
        with self._life_lock:
            return self._users > 0

    @contextlib.contextmanager
    def in_use(self: T) -> Iterator[T]:
        """Hold the build open while a search reads it (see ``retire``)."""
        with self._life_lock:
            self._users += 1
        try:
            yield self
        finally:
            with self._life_lock:
                self._users -= 1
                done = self._retired and self._users == 0
            if done:
                self.close()

    def retire(self) -> None:
        """A newer build replaced this one: close it as soon as no search is using it."""
        with self._life_lock:
            self._retired = True
            idle = self._users == 0
        if idle:
            self.close()
