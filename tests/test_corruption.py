"""Corrupted index files, manifests and CURRENT pointers: each is a typed error that names the
file and the fix, in the library and as one line in the CLI (issue 7, part 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.build import build_index
from assistant.retrieval import Retriever
from assistant.store.layout import current_build
from assistant.store.loaded import load_index

from .conftest import REPO, assert_clean, write

pytestmark = pytest.mark.stores  # runs on both stores (tests/conftest.py)

# ------------------------------------------------------------------------- corrupted files

INDEX_FILES = ["vectors.faiss", "chunks.sqlite", "manifest.json", "bm25/*"]


def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "garbled":  # same size, a few bytes flipped in the middle
        middle = len(data) // 2
        path.write_bytes(
            data[:middle] + bytes(b ^ 0x5A for b in data[middle : middle + 8]) + data[middle + 8 :]
        )
    elif how == "appended":
        path.write_bytes(data + b"\x00garbage")
    elif how == "deleted":
        path.unlink()
    else:
        raise ValueError(how)


@pytest.mark.faiss_only("damages the embedded store's files")
@pytest.mark.parametrize("how", ["empty", "truncated", "garbled", "appended", "deleted"])
@pytest.mark.parametrize("target", INDEX_FILES)
def test_corrupted_index_files_raise_a_typed_error_naming_file_and_fix(
    seeded, fake_embedder, target, how
):
    from assistant.errors import CorruptIndexError

    build_index(seeded, embedder=fake_embedder)
    build = current_build(seeded.index_dir)
    files = sorted(build.glob(target))  # "bm25/*": each file of the BM25 folder in turn
    assert files
    for path in files:
        original = path.read_bytes()
        damage(path, how)
        with pytest.raises(CorruptIndexError, match="assistant build --full") as err:
            load_index(seeded)
        assert path.name in str(err.value)
        with pytest.raises(CorruptIndexError):  # the serving path says the same: no wrong results
            Retriever(seeded, embedder=fake_embedder).search("troops parade")
        path.write_bytes(original)
    load_index(seeded).close()  # undamaged again
    damage(files[-1], how)
    report = build_index(seeded, embedder=fake_embedder)  # a damaged build is rebuilt in full
    assert report.reused_chunks == 0 and report.embedded_chunks == report.total_chunks
    assert_clean(seeded.index_dir)
    load_index(seeded).close()


@pytest.mark.faiss_only("damages the embedded store's segment files")
@pytest.mark.parametrize("how", ["garbled", "truncated", "deleted"])
def test_a_damaged_file_of_a_later_segment_is_named(seeded, fake_embedder, how):
    """A build of several segments checks every segment's files, not only the first's."""
    from assistant.errors import CorruptIndexError

    build_index(seeded, embedder=fake_embedder)
    write(seeded, "more.txt", "More text to embed. It is about a parade of cats.")
    build_index(seeded, embedder=fake_embedder)
    build = current_build(seeded.index_dir)
    later = [p for p in sorted(build.glob("seg-*/**/*")) if p.is_file()]
    assert len(later) == 7 and all(p.stat().st_nlink == 1 for p in later)  # new, not linked
    for path in later:
        original = path.read_bytes()
        damage(path, how)
        with pytest.raises(CorruptIndexError, match="assistant build --full") as err:
            load_index(seeded)
        assert path.name in str(err.value) and "seg-" in str(err.value)
        path.write_bytes(original)
    load_index(seeded).close()


# Manifests that parse as JSON but are not what a build writes.
BAD_MANIFESTS = {
    "a list": [],
    "no files": {"documents": {}},
    "files emptied": lambda m: {**m, "files": {}},
    "counts missing": lambda m: {k: v for k, v in m.items() if k != "counts"},
    "files not a mapping": lambda m: {**m, "files": ["vectors.faiss"]},
    "file entry not a mapping": lambda m: {**m, "files": {**m["files"], "vectors.faiss": 3}},
    "index kind missing": lambda m: {**m, "index": {}},
    "chunks count wrong": lambda m: {**m, "counts": {**m["counts"], "chunks": 1}},
    "dim wrong": lambda m: {**m, "dim": "64"},
    "segment escapes": lambda m: {
        **m,
        "segments": [{**m["segments"][0], "name": "../../elsewhere"}],
        "files": {f"../../elsewhere/{k}": v for k, v in m["files"].items()},
    },
    "segments do not add up": lambda m: {
        **m,
        "segments": [{**m["segments"][0], "chunks": m["segments"][0]["chunks"] + 1}],
    },
    "segment files missing": lambda m: {
        **m,
        "segments": [*m["segments"], {**m["segments"][0], "name": "seg-x", "chunks": 0}],
    },
}


@pytest.mark.faiss_only("rewrites manifest.json")
@pytest.mark.parametrize("case", sorted(BAD_MANIFESTS))
def test_wrong_shaped_manifest_is_a_corrupt_index(seeded, fake_embedder, case):
    from assistant.errors import CorruptIndexError, IndexError_

    build_index(seeded, embedder=fake_embedder)
    path = current_build(seeded.index_dir) / "manifest.json"
    manifest = json.loads(path.read_text())
    bad = BAD_MANIFESTS[case]
    path.write_text(json.dumps(bad(manifest) if callable(bad) else bad))
    with pytest.raises(IndexError_, match="assistant build") as err:
        load_index(seeded)
    assert isinstance(err.value, CorruptIndexError) or "format" in str(err.value)
    build_index(seeded, embedder=fake_embedder)
    load_index(seeded).close()


CURRENT_CASES = {
    "empty": b"",
    "garbage": b"garbage\n",
    "binary": b"\xff\xfe\x00\x81build-",
    "missing build": b"build-20000101T000000-deadbeef\n",
    "escaping": b"build-x/../../../etc\n",
    "a temp folder": None,  # filled in below: the name of a .tmp- folder
}


@pytest.mark.faiss_only("damages the CURRENT file")
@pytest.mark.parametrize("case", sorted(CURRENT_CASES))
def test_corrupted_current_pointer(seeded, fake_embedder, case):
    from assistant.errors import CorruptIndexError

    build_index(seeded, embedder=fake_embedder)
    pointer = seeded.index_dir / "CURRENT"
    content = CURRENT_CASES[case]
    if content is None:
        (seeded.index_dir / ".tmp-x").mkdir()
        content = b".tmp-x\n"
    pointer.write_bytes(content)
    with pytest.raises(CorruptIndexError, match="assistant build --full") as err:
        load_index(seeded)
    assert "CURRENT" in str(err.value)
    build_index(seeded, embedder=fake_embedder)
    assert_clean(seeded.index_dir)
    load_index(seeded).close()


@pytest.mark.faiss_only("damages the embedded store's files")
def test_cli_reports_each_corruption_in_one_line(settings, fake_embedder, tmp_path):
    cases = [
        ("vectors.faiss", "garbled"),
        ("chunks.sqlite", "truncated"),
        ("bm25/*", "empty"),
        ("manifest.json", "truncated"),
        ("CURRENT", "binary"),
    ]
    write(settings, "cats.txt", "Cats sleep for about sixteen hours a day.")
    procs, names = [], []
    for i, (target, how) in enumerate(cases):
        case = settings.model_copy(update={"index_dir": tmp_path / f"index{i}"})
        build_index(case, embedder=fake_embedder)
        if target == "CURRENT":
            (case.index_dir / "CURRENT").write_bytes(CURRENT_CASES[how])
        else:
            path = sorted(current_build(case.index_dir).glob(target))[-1]
            damage(path, how)
            target = path.name
        env = {**os.environ, "ASSISTANT_INDEX_DIR": str(case.index_dir)}
        names.append(target)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "assistant", "search", "cats sleep"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                cwd=REPO,
            )
        )
    for target, proc in zip(names, procs):
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 4, (target, err)
        assert out == "" and "Traceback" not in err
        assert err.count("\n") == 1 and err.startswith("error: "), err
        assert Path(target).name in err and "assistant build --full" in err, err
