"""The README is a one-screen quickstart (issue 25): at most 150 lines, its commands the ones
`.ci/run` runs or real `assistant` commands, and every page it links to under `docs/` exists."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from .conftest import REPO

README = REPO / "README.md"
CI = REPO / ".ci" / "run"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _section(text: str, heading: str) -> str:
    """The text under a ``## heading``, up to the next ``## `` heading (its ``###`` included)."""
    assert f"\n## {heading}\n" in text, f"no '## {heading}' section"
    return text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def _bash_blocks(text: str) -> list[str]:
    return [body.rstrip("\n") for lang, body in FENCE.findall(text) if lang == "bash"]


def _ci_test_lines() -> list[str]:
    """The lines of `.ci/run` that set up and run the tests (not comments, not the Chromium
    install)."""
    lines = CI.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if "pytest" in line and not line.lstrip().startswith("#")]


def _commands(block: str) -> list[str]:
    """The commands of a bash block: one per line, split at ``&&``, comments dropped."""
    out = []
    for line in block.splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            out += [part.strip() for part in line.split("&&")]
    return out


def test_the_readme_is_at_most_150_lines():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; move detail to docs/"


def test_the_quickstart_comes_first():
    text = README.read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert headings[0] == "Quickstart", headings


def test_the_quickstart_test_command_is_what_ci_runs():
    quickstart = _section(README.read_text(encoding="utf-8"), "Quickstart")
    blocks = _bash_blocks(quickstart)
    assert len(blocks) >= 2, "the quickstart has the two commands as its first bash blocks"
    run, tests = blocks[0], blocks[1]
    ci = _ci_test_lines()
    assert ci, ".ci/run runs no pytest line"
    # Byte for byte: the README's test command is exactly the lines .ci/run runs, in order.
    assert tests.splitlines() == ci
    # The first command is the same setup without the test extras, then the chat.
    setup = ci[0].split(" && .venv/bin/python -m pytest", 1)[0]
    assert setup != ci[0] and setup.endswith("-e '.[dev,milvus,ray]'")
    assert run == setup.replace("-e '.[dev,milvus,ray]'", "-e .") + (
        " && .venv/bin/assistant serve --build"
    )


def test_every_assistant_command_in_the_quickstart_exists():
    """Each ``assistant ...`` line of the quickstart names a real subcommand and real options;
    and the quickstart says to activate the venv, else ``assistant`` is "command not found"."""
    import typer.main

    from assistant.cli import app

    commands = typer.main.get_command(app).commands
    quickstart = _section(README.read_text(encoding="utf-8"), "Quickstart")
    blocks = _bash_blocks(quickstart)
    assert "source .venv/bin/activate" in _commands("\n".join(blocks[2:]))
    seen = []
    for command in _commands("\n".join(blocks)):
        words = shlex.split(command)
        if words[0] not in ("assistant", ".venv/bin/assistant"):
            continue
        name, args = words[1], words[2:]
        assert name in commands, f"no such command: {command}"
        options = {opt for p in commands[name].params for opt in getattr(p, "opts", [])}
        for arg in args:
            if arg.startswith("-"):
                assert arg.split("=", 1)[0] in options, f"{command}: no option {arg}"
        seen.append(name)
    assert {"serve", "ask", "build"} <= set(seen), seen


def test_docs_test_commands_match_ci_too():
    """A copy of the test command elsewhere in the docs (docs/development.md) cannot drift."""
    ci = _ci_test_lines()
    for page in sorted((REPO / "docs").glob("*.md")):
        for block in _bash_blocks(page.read_text(encoding="utf-8")):
            if "pip install" in block and "pytest" in block:
                assert block.splitlines() == ci, page.name


def _local_links(page: Path) -> list[tuple[str, Path]]:
    out = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL or an anchor on the same page
        out.append((target, (page.parent / target.split("#", 1)[0]).resolve()))
    return out


def test_every_docs_page_the_readme_links_exists():
    links = _local_links(README)
    docs = [(t, p) for t, p in links if t.startswith("docs/")]
    assert docs, "the README links no page of docs/"
    for target, path in links:
        assert path.is_file(), f"README links {target}, which does not exist"
    # The table of contents reaches every page of docs/.
    linked = {p for _, p in docs}
    for page in (REPO / "docs").glob("*.md"):
        assert page.resolve() in linked, f"docs/{page.name} is not linked from the README"


def test_links_between_docs_pages_resolve():
    """Relative links in docs/*.md point at files that exist, and their #anchors at headings."""

    def anchors(page: Path) -> set[str]:
        heads = re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), re.M)
        return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in heads}

    for page in sorted((REPO / "docs").glob("*.md")) + [README]:
        text = page.read_text(encoding="utf-8")
        for target in LINK.findall(text):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):
                continue
            file, _, anchor = target.partition("#")
            path = (page.parent / file).resolve() if file else page
            assert path.is_file(), f"{page.name}: {target} does not exist"
            if anchor and path.suffix == ".md":
                assert anchor in anchors(path), f"{page.name}: no heading for {target}"
