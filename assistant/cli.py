"""The ``assistant`` command: parse, call the library, print, exit with a meaningful code.

Heavy libraries (torch, faiss, gradio) are imported inside the commands, so ``--help`` is instant.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any

import typer

from .config import Settings, settings_table
from .errors import AssistantError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Answer questions about the documents in seeds/, with verified cited excerpts.",
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _fail(message: str, code: int) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _handled(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn library errors into one line on stderr and an exit code (no traceback)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except AssistantError as exc:
            _fail(str(exc), exc.exit_code)
        except (ValueError, TypeError) as exc:
            _fail(str(exc), 2)
        except OSError as exc:  # a full disk, a read-only folder...: one line, not a traceback
            _fail(str(exc), 1)
        except KeyboardInterrupt:
            _fail("interrupted", 130)

    return wrapper


def _settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:  # pydantic's ValidationError, reported in one line
        first = str(exc).splitlines()
        _fail("invalid settings: " + " ".join(first[:3]), 2)
        raise  # unreachable


_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7F, 0xA0)] if chr(c) not in "\n\t"}


def _safe(text: str) -> str:
    """Document text for a terminal: control characters (``ESC ]52``, ``ESC [2J``, ...) shown
    as ``\\x1b`` escapes, never sent as they are. Line breaks and tabs are kept."""
    return text.translate(_CONTROL)


def _warn_stale(message: str) -> None:
    if message:
        typer.echo(f"warning: {_safe(message)}", err=True)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


@app.command()
@_handled
def build(
    full: Annotated[bool, typer.Option("--full", help="Re-embed every document.")] = False,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for another running build instead of refusing.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Build or update the index in ASSISTANT_INDEX_DIR from ASSISTANT_SEEDS_DIR (incremental)."""
    from .build import build_index

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    try:
        report = build_index(_settings(), full=full, wait=None if wait else 0)
    except OSError as exc:
        _fail(f"the build failed ({exc}); the previous index is intact: fix this and rebuild", 1)
        raise  # unreachable
    if as_json:
        _print_json(report.to_dict())
        return
    for name, reason in report.skipped:
        typer.echo(_safe(f"skipped {name}: {reason}"), err=True)
    for warning in report.warnings:
        typer.echo(f"warning: {_safe(warning)}", err=True)
    typer.echo(f"{report.summary()} ({report.total_chunks} chunks, {report.seconds:.1f}s)")


@app.command()
@_handled
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("-k", "--k", help="How many passages.")] = 5,
    as_json: JsonOpt = False,
) -> None:
    """Print the passages that best match QUERY (hybrid dense + BM25 search)."""
    from .retrieval import retrieve

    passages = retrieve(query, k=k, settings=_settings())
    _warn_stale(getattr(passages, "stale", ""))
    if as_json:
        _print_json([p.to_dict() for p in passages])
        return
    for i, p in enumerate(passages, 1):
        where = p.where()[1]
        where = f"{where}, " if where else ""
        typer.echo(
            _safe(
                f"[{i}] {p.title} ({p.source}, {where}chars {p.start}-{p.end}) score {p.score:.4f}"
            )
        )
        typer.echo(_safe("    " + " ".join(p.text.split())[:400]))


@app.command()
@_handled
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    as_json: JsonOpt = False,
) -> None:
    """Answer QUESTION with quoted, verified excerpts (or say the documents do not answer it)."""
    from .answer import ask as ask_question
    from .answer import render_markdown

    answer = ask_question(question, settings=_settings())
    _warn_stale(answer.stale)
    if as_json:
        _print_json(answer.to_dict())
        return
    typer.echo(_safe(render_markdown(answer)), nl=False)


@app.command()
@_handled
def status(as_json: JsonOpt = False) -> None:
    """Show the index: model, chunks, documents, and whether the seeds changed since."""
    from .store.status import index_status

    info = index_status(_settings())
    if as_json:
        _print_json(info)
        return
    if not info["built"]:
        typer.echo(f"no index in {info['index_dir']}; run `assistant build`")
        raise typer.Exit(4)
    typer.echo(
        f"{info['index_dir']}: {len(info['documents'])} documents, {info['chunks']} chunks, "
        f"model {info['model']} ({info['dim']}-d, {info['index']}), built {info['created']}"
        + (f", {len(info['segments'])} segments" if len(info["segments"]) > 1 else "")
    )
    for name, reason in sorted(info.get("skipped", {}).items()):
        typer.echo(_safe(f"skipped {name}: {reason}"))
    if info["stale"]:
        typer.echo(
            _safe(
                f"stale: {info['pending']} documents not indexed yet ("
                + ", ".join(info["changes"][:10])
                + "); answers come from the last complete build; run `assistant build`"
            )
        )


@app.command()
@_handled
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind; 0.0.0.0 exposes it.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 7860,
    build_first: Annotated[
        bool, typer.Option("--build/--no-build", help="Update the index before serving.")
    ] = False,
) -> None:
    """Start the web chat (Gradio) on HOST:PORT."""
    settings = _settings()
    if build_first:
        from .build import build_index

        typer.echo(build_index(settings, wait=None).summary())
    from .app import launch

    launch(settings, host=host, port=port)


@app.command("settings")
def show_settings(
    table: Annotated[
        bool, typer.Option("--table", help="Print the README's markdown table.")
    ] = False,
) -> None:
    """Show the effective settings (from ASSISTANT_* environment variables)."""
    if table:
        typer.echo(settings_table())
        return
    _print_json(json.loads(_settings().model_dump_json()))


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
