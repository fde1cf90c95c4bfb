"""A clean clone stays clean: the README's first command (``assistant serve --build``, whose build
is ``assistant build``'s) run on a fresh clone finds the committed index up to date and rewrites
nothing tracked. A clone has other file times than the machine that built ``embeddings/``: they
go to the git-ignored stat cache, never into the committed manifest."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# ``assistant build`` run by this checkout's code (not the clone's, which is the last commit's):
# the model must not be loaded, since an up-to-date build has nothing to embed.
BUILD = """
import sys
sys.path[:] = [p for p in sys.path if p not in ("", ".")]
import assistant.build

def no_model(settings):
    raise SystemExit("the build wanted to embed: the committed index is not up to date")

assistant.build.embedder_for = no_model
from assistant.cli import app

app(sys.argv[1:], prog_name="assistant")
"""


def git(clone: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=clone, check=True, capture_output=True, text=True
    ).stdout


def assistant(clone: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env["PYTHONPATH"] = str(REPO)
    env["HF_HUB_OFFLINE"] = "1"
    return subprocess.run(
        [sys.executable, "-c", BUILD, *args],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def clone(tmp_path) -> Path:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and a git checkout of the repository")
    dest = tmp_path / "clone"
    subprocess.run(
        ["git", "clone", "--quiet", str(REPO), str(dest)], check=True, capture_output=True
    )
    assert git(dest, "status", "--porcelain") == ""
    return dest


def build(clone: Path) -> dict:
    done = assistant(clone, "build", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_first_build_on_a_fresh_clone_leaves_it_clean(clone):
    report = build(clone)
    assert report["up_to_date"] and report["embedded_chunks"] == 0, report
    assert git(clone, "status", "--porcelain") == ""
    # The file stats went to the local stat cache, which git ignores.
    cache = clone / "embeddings" / ".cache" / "stat-cache.json"
    assert cache.is_file()
    assert git(clone, "check-ignore", str(cache.relative_to(clone))).strip()

    # Again with the cache, after the seeds' times changed (a checkout, a copy), and with
    # the cache lost: still nothing to do and nothing tracked rewritten.
    assert build(clone)["up_to_date"]
    for seed in (clone / "seeds").rglob("*"):
        if seed.is_file():
            os.utime(seed, ns=(seed.stat().st_atime_ns, seed.stat().st_mtime_ns + 10**9))
    assert build(clone)["up_to_date"]
    cache.unlink()
    assert build(clone)["up_to_date"]
    status = assistant(clone, "status", "--json")
    assert status.returncode == 0 and not json.loads(status.stdout)["stale"], status.stderr
    assert git(clone, "status", "--porcelain") == ""


def test_the_committed_manifest_holds_no_file_times():
    """What a clone has other values of (file times, inodes) is never committed."""
    from assistant.store.layout import current_build
    from assistant.store.manifest import MACHINE_FIELDS, read_manifest

    manifest = read_manifest(current_build(REPO / "embeddings"))
    for doc_id, entry in manifest["documents"].items():
        assert not MACHINE_FIELDS & set(entry), doc_id
    for name, record in manifest.get("skipped_files", {}).items():
        assert not MACHINE_FIELDS & set(record), name


# ----------------------------------------------- the same, in one process, on either store


def _live(settings):
    """The live build's name and manifest, and for the embedded store every file of it with
    its bytes and mtime (a rewrite with the same bytes still shows)."""
    from assistant.store import backend_for

    name, manifest = backend_for(settings).status(settings)
    files = {}
    if settings.store == "faiss":
        root = Path(settings.index_dir)
        for path in [root / "CURRENT", *sorted((root / name).rglob("*"))]:
            if path.is_file():
                files[str(path.relative_to(root))] = (path.read_bytes(), path.stat().st_mtime_ns)
    return name, manifest, files


def _as_if_cloned(settings):
    """New file times for every seed and no stat cache: what a fresh clone looks like."""
    from assistant.store.statcache import FOLDER

    shutil.rmtree(Path(settings.index_dir) / FOLDER, ignore_errors=True)
    for seed in Path(settings.seeds_dir).rglob("*"):
        if seed.is_file():
            st = seed.stat()
            os.utime(seed, ns=(st.st_atime_ns, st.st_mtime_ns + 5 * 10**9))


def test_an_up_to_date_index_is_not_rewritten_after_a_clone(seeded, fake_embedder):
    from assistant.build import build_index
    from assistant.store.manifest import MACHINE_FIELDS
    from tests.conftest import write

    write(seeded, "empty.txt", "")  # a skipped file: recorded by its size and sha256
    write(seeded, "zeros.txt", b"\x00" * 64)
    build_index(seeded, embedder=fake_embedder)
    before = _live(seeded)
    manifest = before[1]
    assert set(manifest["skipped"]) == {"empty.txt", "zeros.txt"}
    for entry in [*manifest["documents"].values(), *manifest["skipped_files"].values()]:
        assert not MACHINE_FIELDS & set(entry), entry
    assert manifest["skipped_files"]["zeros.txt"]["sha256"]

    _as_if_cloned(seeded)
    fake_embedder.calls = 0
    report = build_index(seeded, embedder=fake_embedder)
    assert report.up_to_date and fake_embedder.calls == 0
    assert _live(seeded) == before  # not a byte, not a file time
    assert build_index(seeded, embedder=fake_embedder).up_to_date
    assert _live(seeded) == before

    # A real change still rebuilds, and a skipped file that became readable is indexed.
    write(seeded, "zeros.txt", "Zeros no more: a sentence about lighthouses.")
    report = build_index(seeded, embedder=fake_embedder)
    assert not report.up_to_date and "zeros.txt" not in dict(report.skipped)
    assert "zeros.txt" in _live(seeded)[1]["documents"]


def test_the_stat_cache_spares_hashing_unchanged_files(seeded, fake_embedder, monkeypatch):
    import assistant.store.diff as diff_mod
    from assistant.build import build_index
    from assistant.store import backend_for

    build_index(seeded, embedder=fake_embedder)
    hashed = []
    real = diff_mod.hash_file
    monkeypatch.setattr(diff_mod, "hash_file", lambda path: hashed.append(path) or real(path))
    manifest = backend_for(seeded).status(seeded)[1]
    assert not diff_mod.diff(seeded, manifest).changes() and hashed == []

    _as_if_cloned(seeded)  # each file hashed once, then known by its new stat
    assert not diff_mod.diff(seeded, manifest).changes()
    assert len(hashed) == len(manifest["documents"])
    assert not diff_mod.diff(seeded, manifest).changes()
    assert len(hashed) == len(manifest["documents"])

    # Same size and mtime put back after an edit: the signature (ctime too) still differs.
    path = Path(seeded.seeds_dir) / "cats.txt"
    st = path.stat()
    time.sleep(0.05)  # past the file system clock's tick: the edit gets another ctime
    path.write_text("Dogs sleep for about sixteen hours a day. They are crepuscular animals.\n")
    assert path.stat().st_size == st.st_size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert diff_mod.diff(seeded, manifest).changes() == ["changed: cats.txt"]
