"""The Milvus backend (``ASSISTANT_STORE=milvus``): the same builds, searches and checks as the
embedded store, on a Milvus Lite file or a Milvus server (``ASSISTANT_MILVUS_URI``).

Modules: ``client`` (connection, schemas, metadata blobs), ``state`` (pointer, manifest and
vocabulary of the live build), ``writer`` (write a build and switch to it), ``index`` (an opened
build: the ``IndexStore``). pymilvus is imported only when a Milvus store is used.
"""

from __future__ import annotations

from typing import Any

from ...config import Settings
from ...errors import CorruptIndexError, IncompatibleIndexError, IndexMissingError
from ..manifest import check_compatible
from ..planner import BuildInput


def _client(settings: Settings) -> tuple[Any, str, dict | None]:
    from .client import LOADED, connect, meta_name, unavailable
    from .state import read_pointer

    client = connect(settings)
    meta = meta_name(settings)
    try:
        if (id(client), meta) not in LOADED:  # once per client: then one query per call
            if not client.has_collection(meta):
                return client, meta, None
            client.load_collection(meta)
            LOADED.add((id(client), meta))
        return client, meta, read_pointer(client, meta)
    except CorruptIndexError:
        raise
    except Exception as exc:  # noqa: BLE001 - connection trouble of any kind
        raise unavailable(settings.milvus_target, exc) from exc


def live_manifest(settings: Settings) -> tuple[dict, dict] | None:
    """``(pointer, manifest)`` of the live build, or None when nothing was built."""
    from .state import read_manifest

    client, meta, pointer = _client(settings)
    if pointer is None:
        return None
    return pointer, read_manifest(client, meta, pointer)


class MilvusBackend:
    """Builds as rows of a Milvus collection under build tags, switched by a pointer row."""

    def current(self, settings: Settings) -> str | None:
        pointer = _client(settings)[2]
        return pointer["build"] if pointer else None

    def open(self, settings: Settings, check_seeds: bool = False) -> Any:
        from ...corpus import seeds_advice
        from ...errors import StaleIndexError
        from ...sources import register
        from ..diff import diff, shown_changes
        from ..layout import FIX
        from .index import MilvusIndex
        from .state import read_manifest, read_vocab

        client, meta, pointer = _client(settings)
        if pointer is None:
            advice = seeds_advice(settings.seeds_dir)
            raise IndexMissingError(f"no index in Milvus at {settings.milvus_target!r}; {advice}")
        manifest = read_manifest(client, meta, pointer)
        check_compatible(manifest, settings)
        if check_seeds and manifest.get("source", {}).get("kind") == "seeds":
            changes = diff(settings, manifest).changes()
            if changes:
                raise StaleIndexError(
                    f"seeds changed since the index was built ({shown_changes(changes)}); {FIX}"
                )
        client.load_collection(manifest["milvus"]["collection"])
        index = MilvusIndex(client, meta, manifest, read_vocab(client, meta, pointer))
        register(settings.seeds_dir, index)
        return index

    def previous(self, settings: Settings, full: bool) -> Any:
        """The live build if an incremental build can extend it, else None (reason logged)."""
        import logging

        from .writer import MilvusPrevious

        if full:
            return None
        try:
            live = live_manifest(settings)
            if live is None:
                return None
            check_compatible(live[1], settings)
        except (IncompatibleIndexError, CorruptIndexError) as exc:
            logging.getLogger(__name__).warning("rebuilding everything: %s", exc)
            return None
        return MilvusPrevious(live[1], live[0])

    def write(self, settings: Settings, build: BuildInput) -> tuple[str, dict]:
        from .writer import write_build

        return write_build(settings, build)

    def refresh(self, settings: Settings, previous: Any, stats, skipped, skipped_files) -> dict:  # noqa: ANN001
        from .writer import refresh_manifest

        return refresh_manifest(previous, settings, stats, skipped, skipped_files)

    def prepare(self, settings: Settings) -> None:
        """Nothing to tidy before a build: the write deletes killed builds' rows first."""

    def status(self, settings: Settings) -> tuple[str, dict] | None:
        live = live_manifest(settings)
        return (live[0]["build"], live[1]) if live else None


__all__ = ["MilvusBackend", "live_manifest"]
