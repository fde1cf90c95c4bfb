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
from .errors import AssistantError, ConfigError
from .types import Answer, counted


def _plain_help() -> None:
    """Recent typer prints a type after every flag (``--full <bool>``) and required arguments
    in braces (``ask [OPTIONS] {question}``); show flags bare and arguments as ``QUESTION``.
    Guarded: on a typer without these hooks, its own help is left as it is."""
    from typer import core

    option, argument = getattr(core, "TyperOption", None), getattr(core, "TyperArgument", None)
    if option is None or argument is None or getattr(option, "_assistant_plain", False):
        return
    if hasattr(option, "display_type_rich"):
        shown = option.display_type_rich

        def option_type(self: Any, ctx: Any) -> str | None:
            return None if getattr(self, "is_flag", False) else shown(self, ctx)

        option.display_type_rich = option_type
    if hasattr(argument, "display_type_rich"):
        argument.display_type_rich = lambda self, ctx: None  # the name says what it is
    if hasattr(argument, "_usage_display_name"):

        def usage_name(self: Any) -> str:
            name = (self.metavar or self.name or "").upper()
            name = name if self.required else f"[{name}]"
            return name + ("..." if self.nargs != 1 else "")

        argument._usage_display_name = usage_name
    option._assistant_plain = True


_plain_help()

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
    except ConfigError as exc:  # names the ASSISTANT_* variable, in one line
        _fail(str(exc), exc.exit_code)
        raise  # unreachable


_BOLD, _PLAIN = "\ue000", "\ue001"  # where bold starts and ends, until escaping is done
_CONTROL = {
    c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"
    for c in [*range(0x20), *range(0x7F, 0xA0), ord(_BOLD), ord(_PLAIN)]
    if chr(c) not in "\n\t"
}


def _safe(text: str) -> str:
    """Document text for a terminal: control characters (``ESC ]52``, ``ESC [2J``, ...) shown
    as ``\\x1b`` escapes, never sent as they are. Line breaks and tabs are kept."""
    return text.translate(_CONTROL)


def _warn_stale(message: str) -> None:
    if message:
        typer.echo(f"warning: {_safe(message)}", err=True)


def _clip(text: str, n: int, left: bool = False) -> str:
    text = " ".join(text.split())
    if len(text) <= n:
        return text
    return "…" + text[-n:].lstrip() if left else text[:n].rstrip() + "…"


def render_text(answer: Answer, bold: Callable[[str], str] = str) -> str:
    """The answer for a terminal: plain text (no Markdown marks), then its numbered excerpts;
    ``bold`` styles the quote and the answering phrase (ANSI on a terminal, nothing in a pipe)."""
    from .answer.render import split_quote

    if answer.mode == "extractive" and answer.kind == "fact" and not answer.abstained:
        quotes = []
        for c in answer.citations:
            before, phrase, after = split_quote(c)
            quotes.append(
                f"“{before}{bold(phrase)}{after}” [{c.n}]" if phrase else f"“{before}” [{c.n}]"
            )
        out = [" ".join(quotes)]
    else:
        out = [answer.text]
    if answer.abstained:
        out[0] = "Not found in the documents. " + out[0]
    out.append("")
    if answer.query and answer.query != answer.question:
        out += [f"searched for: {answer.query}", ""]
    out += [f"note: {notice}" for notice in answer.notices] + ([""] if answer.notices else [])
    if answer.abstained:
        if answer.passages:
            out.append("Closest matches:")
            out += [
                f"- {p.title} ({p.source}, chars {p.start}-{p.end}): {_clip(p.text, 200)}"
                for p in answer.passages[:3]
            ]
        return "\n".join(out).rstrip() + "\n"
    if answer.kind == "fact" and answer.citations:
        out += [f"confidence {answer.confidence:.0%}", ""]
    for c in answer.citations:
        a, b = c.start - c.passage_start, c.end - c.passage_start
        where = f"{c.locator}, " if c.locator else ""  # "p. 17, " for a PDF
        out.append(f"[{c.n}] {c.title} ({c.source}, {where}chars {c.start}-{c.end})")
        before, after = _clip(c.passage[:a], 240, left=True), _clip(c.passage[b:], 240)
        context = [before, bold(" ".join(c.quote.split())), after]
        out.append("    " + " ".join(part for part in context if part))
    return "\n".join(out).rstrip() + "\n"


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


@app.command()
@_handled
def build(
    address: Annotated[
        str | None,
        typer.Argument(
            help="With --ray: a running Ray cluster (HOST:PORT, ray://HOST:PORT or auto); "
            "without one, a local Ray instance is started for the build.",
            metavar="ADDRESS",
            show_default=False,
        ),
    ] = None,
    full: Annotated[bool, typer.Option("--full", help="Re-embed every document.")] = False,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for another running build instead of refusing.")
    ] = False,
    ray: Annotated[
        bool,
        typer.Option(
            "--ray",
            help="Extract, chunk and embed on Ray workers, one model each (pip install "
            "'assistant\\[ray]'); the index is the same as a plain build's.",
        ),
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="With --ray: how many workers (default: one per core, or per CPU of the cluster).",
            metavar="N",
            show_default=False,
        ),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            min=1,
            help="With --ray: torch threads (and Ray CPUs) per worker (default: the cores "
            "divided among the workers of a local instance, 1 on a cluster).",
            metavar="N",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Build or update the index in ASSISTANT_INDEX_DIR from ASSISTANT_SEEDS_DIR (incremental)."""
    if not ray and (address or workers or threads):
        _fail("ADDRESS, --workers and --threads go with --ray (assistant build --ray [ADDRESS])", 2)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    settings = _settings()
    try:
        if ray:
            from .distributed import build_with_ray

            report = build_with_ray(
                settings,
                address=address,
                workers=workers,
                threads=threads,
                full=full,
                wait=None if wait else 0,
            )
        else:
            from .build import build_index

            report = build_index(settings, full=full, wait=None if wait else 0)
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
    for w in report.workers:
        typer.echo(
            f"  {w['worker']} ({w['node']}, pid {w['pid']}): embedded "
            f"{counted(w['chunks'], 'chunk')} of {counted(w['documents'], 'document')}"
        )


@app.command()
@_handled
def search(
    query: Annotated[str, typer.Argument(help="What to look for.", metavar="QUERY")],
    k: Annotated[
        int, typer.Option("-k", "--k", help="How many passages (at most ASSISTANT_MAX_K).")
    ] = 5,
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
    question: Annotated[str, typer.Argument(help="The question.", metavar="QUESTION")],
    as_json: JsonOpt = False,
) -> None:
    """Answer QUESTION with quoted, verified excerpts (or say the documents do not answer it)."""
    from .answer import ask as ask_question
    from .sources import outdated_sources, with_outdated_notice

    settings = _settings()
    answer = ask_question(question, settings=settings)
    _warn_stale(answer.stale)
    answer = with_outdated_notice(answer, outdated_sources(answer, settings.seeds_dir))
    if as_json:
        _print_json(answer.to_dict())
        return
    # Document text is escaped first; then the bold marks become the terminal's codes.
    text = _safe(render_text(answer, lambda t: f"{_BOLD}{t}{_PLAIN}"))
    bold_on, bold_off = typer.style("|", bold=True).split("|")
    typer.echo(text.replace(_BOLD, bold_on).replace(_PLAIN, bold_off), nl=False)


@app.command()
@_handled
def status(as_json: JsonOpt = False) -> None:
    """Show the index: model, chunks, documents, and whether the seeds changed since."""
    from .corpus import seeds_advice
    from .store.status import index_status

    settings = _settings()
    info = index_status(settings)
    if as_json:
        _print_json(info)
        return
    if not info["built"]:
        typer.echo(f"no index in {info['index_dir']}; {seeds_advice(settings.seeds_dir)}")
        raise typer.Exit(4)
    typer.echo(
        f"{info['index_dir']}: {counted(len(info['documents']), 'document')}, "
        f"{counted(info['chunks'], 'chunk')}, "
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
    host: Annotated[
        str, typer.Option(help="Interface to bind; 0.0.0.0 exposes it.", metavar="HOST")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", metavar="PORT")] = 7860,
    build_first: Annotated[
        bool, typer.Option("--build/--no-build", help="Update the index before serving.")
    ] = False,
) -> None:
    """Start the web chat (Gradio) on HOST:PORT."""
    from .app import check_port

    settings = _settings()
    check_port(host, port)  # before building: a busy port is said at once, with the fix
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
