"""The connection to Milvus, the two collections' schemas, and the metadata collection's blobs.

``<prefix>_meta`` holds small records split into rows of at most ``PART_CHARS`` characters
(``put_blob`` / ``get_blob``): the pointer to the live build, each build's manifest and BM25
vocabulary, and the extracted texts of PDF/DOCX/HTML/EPUB documents. ``<prefix>_<hash>`` holds
the chunks (see ``chunk_schema``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
from pathlib import Path
from typing import Any

from ...bm25 import BM25_PARAMS
from ...config import Settings
from ...errors import ConfigError, StoreUnavailableError

PART_CHARS = 16_000  # at most 64,000 UTF-8 bytes: under Milvus's VARCHAR limit of 65,535
TEXT_BYTES = 65_535  # Milvus's VARCHAR limit
MAX_QUERY = 16_384  # Milvus's limit on offset + limit of one query or search
BUILD_TAG = 64

_clients: dict[tuple[str, str], Any] = {}
LOADED: set[tuple[int, str]] = set()  # (client id, metadata collection) known loaded
_lock = threading.Lock()


def milvus_module() -> Any:
    try:
        import pymilvus
    except ImportError as exc:
        raise ConfigError(
            "ASSISTANT_STORE=milvus needs pymilvus and milvus-lite: pip install 'assistant[milvus]'"
        ) from exc
    return pymilvus


def is_lite(uri: str) -> bool:
    return not uri.startswith(("http://", "https://", "tcp://", "unix:"))


def connect(settings: Settings) -> Any:
    """A ``MilvusClient`` for ``settings.milvus_target``, one per process and URI."""
    uri = settings.milvus_target
    token = settings.milvus_token.get_secret_value()
    key = (uri, token)
    with _lock:
        client = _clients.get(key)
        if client is not None:
            return client
        pymilvus = milvus_module()
        if is_lite(uri):
            if not uri.endswith(".db"):
                raise ConfigError(
                    f"ASSISTANT_MILVUS_URI ({uri!r}): a Milvus Lite file must end in .db "
                    "(or give http://host:19530 for a server)"
                )
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
            # Lite's in-process gRPC server logs a traceback for each call it does not implement
            # (pymilvus asks it for timestamps, then carries on): not the user's problem.
            logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
        # milvus-lite logs a traceback when the file is locked; the error below says it in a line
        quiet = logging.getLogger("milvus_lite")
        level, quiet.level = quiet.level, logging.CRITICAL + 1
        try:
            client = pymilvus.MilvusClient(uri=uri, token=token) if token else None
            client = client or pymilvus.MilvusClient(uri=uri)
        except Exception as exc:  # noqa: BLE001 - pymilvus raises several kinds
            raise unavailable(uri, exc) from exc
        finally:
            quiet.setLevel(level)
        _clients[key] = client
        return client


def unavailable(uri: str, exc: BaseException) -> StoreUnavailableError:
    if is_lite(uri):
        return StoreUnavailableError(
            f"cannot open the Milvus Lite file {uri} ({exc}); Milvus Lite serves one process "
            "at a time: stop the other `assistant` process using it, or run a Milvus server "
            "and set ASSISTANT_MILVUS_URI=http://host:19530"
        )
    return StoreUnavailableError(
        f"cannot reach Milvus at {uri} ({exc}); check that it runs and ASSISTANT_MILVUS_TOKEN"
    )


def collection_name(settings: Settings, dim: int) -> str:
    """``<prefix>_<hash>`` of what decides the rows: model, vector size, backend, chunking."""
    key = json.dumps(
        [settings.model, dim, settings.embed_backend, settings.chunk_params(), BM25_PARAMS],
        sort_keys=True,
    )
    return f"{settings.milvus_collection}_{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def collection_pair(settings: Settings, dim: int) -> tuple[str, str]:
    """The two collections that can hold builds of these settings: ``collection_name`` and
    ``<it>_b``. A full rebuild writes into the one that is not live (its chunk ids start at 0,
    as in a clean build) and the live one is dropped after the switch: chunk ids never repeat
    within a collection, as the deletes by id range need."""
    name = collection_name(settings, dim)
    return name, f"{name}_b"


def meta_name(settings: Settings) -> str:
    return f"{settings.milvus_collection}_meta"


def chunk_schema(pymilvus: Any, dim: int) -> tuple[Any, Any]:
    """The chunk collection: one row per chunk, dense FLAT/IP and Milvus's own BM25.

    ``terms`` holds the chunk's BM25 terms as the embedded store makes them (``bm25_tokens``:
    stop words dropped, Snowball-stemmed), each written as hex so that Milvus's ``standard``
    tokenizer (the one Milvus Lite has besides ``jieba``) gives back exactly those terms; the
    BM25 function turns them into the ``sparse`` field. Milvus then counts the same term
    frequencies and chunk lengths as the embedded store, and the reader's speller and document
    frequencies (kept in the manifest's vocabulary) describe the same terms.
    """
    DataType = pymilvus.DataType
    schema = pymilvus.MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("doc_id", DataType.VARCHAR, max_length=4096)
    schema.add_field("build", DataType.VARCHAR, max_length=BUILD_TAG)
    schema.add_field("start", DataType.INT64)
    schema.add_field("end", DataType.INT64)
    schema.add_field("n_tokens", DataType.INT64)
    schema.add_field("text", DataType.VARCHAR, max_length=TEXT_BYTES)
    schema.add_field("title", DataType.VARCHAR, max_length=4096)
    schema.add_field("locator", DataType.VARCHAR, max_length=4096)
    schema.add_field(
        "terms",
        DataType.VARCHAR,
        max_length=TEXT_BYTES,
        enable_analyzer=True,
        analyzer_params={"tokenizer": "standard"},
    )
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(
        pymilvus.Function(
            name="bm25",
            function_type=pymilvus.FunctionType.BM25,
            input_field_names=["terms"],
            output_field_names=["sparse"],
        )
    )
    index = pymilvus.MilvusClient.prepare_index_params()
    index.add_index("dense", index_type="FLAT", metric_type="IP")
    index.add_index(
        "sparse",
        index_type="SPARSE_INVERTED_INDEX",
        metric_type="BM25",
        params={"bm25_k1": BM25_PARAMS["k1"], "bm25_b": BM25_PARAMS["b"]},
    )
    return schema, index


def ensure_meta(client: Any, name: str) -> None:
    """Create the metadata collection if missing (Milvus needs a vector field: a 2-d dummy)."""
    if client.has_collection(name):
        client.load_collection(name)
        return
    pymilvus = milvus_module()
    DataType = pymilvus.DataType
    schema = pymilvus.MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("key", DataType.VARCHAR, max_length=512, is_primary=True)
    schema.add_field("data", DataType.VARCHAR, max_length=TEXT_BYTES)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    index = pymilvus.MilvusClient.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")


def ensure_chunks(client: Any, name: str, dim: int) -> None:
    if client.has_collection(name):
        client.load_collection(name)
        return
    schema, index = chunk_schema(milvus_module(), dim)
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")


def put_blob(client: Any, meta: str, key: str, text: str) -> None:
    """Store ``text`` under ``key`` as rows ``key#000000``, ``key#000001``, ..."""
    parts = [text[i : i + PART_CHARS] for i in range(0, len(text), PART_CHARS)] or [""]
    delete_blob(client, meta, key)
    rows = [{"key": f"{key}#{i:06d}", "data": p, "v": [0.0, 0.0]} for i, p in enumerate(parts)]
    for i in range(0, len(rows), 256):
        client.insert(meta, rows[i : i + 256])


def get_blob(client: Any, meta: str, key: str) -> str | None:
    rows = client.query(meta, filter=f'key like "{key}#%"', output_fields=["key", "data"])
    if not rows:
        return None
    return "".join(r["data"] for r in sorted(rows, key=lambda r: r["key"]))


def delete_blob(client: Any, meta: str, key: str) -> None:
    client.delete(meta, filter=f'key like "{key}#%"')


def put_row(client: Any, meta: str, key: str, text: str) -> None:
    """One row, replaced atomically (the pointer to the live build)."""
    client.upsert(meta, [{"key": key, "data": text, "v": [0.0, 0.0]}])


def get_row(client: Any, meta: str, key: str) -> str | None:
    rows = client.query(meta, ids=[key], output_fields=["data"])
    return rows[0]["data"] if rows else None


def rows_in(client: Any, collection: str, first: int, n: int, fields: list[str]) -> list[dict]:
    """Every row with an id in ``[first, first + n)``, read in windows under Milvus's limit."""
    out: list[dict] = []
    for a in range(first, first + n, MAX_QUERY // 2):
        b = min(a + MAX_QUERY // 2, first + n)
        out += client.query(collection, filter=f"id >= {a} and id < {b}", output_fields=fields)
    return out


def hex_terms(terms: list[str]) -> str:
    """BM25 terms as Milvus's ``standard`` tokenizer gives them back: one hex word each."""
    return " ".join(t.encode("utf-8").hex() for t in terms)


def close_all() -> None:
    """Close every client this process opened (a Milvus Lite file is then free for others)."""
    with _lock:
        clients = list(_clients.items())
        _clients.clear()
        LOADED.clear()
    for (uri, _token), client in clients:
        with contextlib.suppress(Exception):  # closing a dead connection
            client.close()
        if is_lite(uri):  # Milvus Lite runs in this process: stop it to free the file
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(uri)
