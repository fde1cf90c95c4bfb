import json
import subprocess
import sys

from assistant.build import build_index

from .conftest import REPO, release_store


def run(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )


def test_help_is_instant_and_does_not_import_torch():
    code = "import sys; sys.argv=['assistant','--help']\ntry:\n from assistant.cli import main; main()\nexcept SystemExit: pass\nprint('torch' in sys.modules, 'faiss' in sys.modules, 'gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert "build" in out.stdout and out.stdout.strip().endswith("False False False")


def test_errors_are_one_line_with_exit_codes(settings, tmp_path):
    import os

    env = {**os.environ}
    result = run("search", "troops", env=env)
    assert result.returncode == 3 or result.returncode == 4
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr
    result = run("build", env=env)  # empty seeds folder
    assert result.returncode == 3 and "holds no documents" in result.stderr
    result = run("search", "   ", env=env)
    assert result.returncode == 2 and "empty" in result.stderr


def test_search_json_on_an_index(seeded, fake_embedder, monkeypatch):
    import os

    build_index(seeded, embedder=fake_embedder)
    # The CLI loads the embedder by name; point it at the fake through a tiny model package.
    pkg = seeded.seeds_dir.parent / "pkg"
    (pkg / "fake").mkdir(parents=True)
    (pkg / "fake" / "__init__.py").write_text("")
    env = {**os.environ, "PYTHONPATH": str(pkg)}
    release_store(seeded)
    result = run("status", "--json", env=env)
    info = json.loads(result.stdout)
    assert info["built"] and info["chunks"] >= 3 and not info["stale"]


def test_settings_table_command():
    result = run("settings", "--table")
    assert result.returncode == 0 and "ASSISTANT_SEEDS_DIR" in result.stdout
