"""The ``assistant`` command: parse, call the library, print, exit with a meaningful code.

Heavy libraries (torch, faiss, gradio) are imported inside the commands, so ``--help`` is instant.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any, TextIO

import typer

from .config import Settings, settings_table
from .errors import AssistantError, ConfigError
from .types import Answer, BuildReport, counted


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
DocOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--doc",
        help="Only this document (its path in the seeds folder, e.g. notes/bread.md); "
        "repeat for several.",
        metavar="NAME",
    ),
]


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
        except KeyboardInterrupt as exc:  # Ctrl-C: 130; SIGTERM during a build: 143
            _fail("interrupted", 143 if isinstance(exc, Terminated) else 130)

    return wrapper


class Terminated(KeyboardInterrupt):
    """SIGTERM while a build runs: it stops the build as Ctrl-C does (previous index kept)."""


def _sigterm_interrupts(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``func`` with SIGTERM raising ``Terminated``: a build stopped by ``kill`` or a
    service manager says "interrupted" and exits 143, as Ctrl-C says it and exits 130."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import signal
        import threading

        if threading.current_thread() is not threading.main_thread():
            return func(*args, **kwargs)  # signal handlers belong to the main thread

        def stop(signum: int, frame: Any) -> None:
            raise Terminated

        previous = signal.signal(signal.SIGTERM, stop)
        try:
            return func(*args, **kwargs)
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)

    return wrapper


def _settings() -> Settings:
    try:
        return Settings()
    except ConfigError as exc:  # names the ASSISTANT_* variable, in one line
        _fail(str(exc), exc.exit_code)
        raise  # unreachable


_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7F, 0xA0)] if chr(c) not in "\n\t"}


def _safe(text: str) -> str:
    """Document text for a terminal: control characters (``ESC ]52``, ``ESC [2J``, ...) shown
    as ``\\x1b`` escapes, never sent as they are. Line breaks and tabs are kept."""
    return text.translate(_CONTROL)


def _warn_stale(message: str) -> None:
    if message:
        typer.echo(f"warning: {_safe(message)}", err=True)


def _clip(text: str, n: int, left: bool = False) -> str:
    """``text`` on one line (runs of white space as one space, kept where they meet a quote),
    in about ``n`` characters: cut at a sentence or between words, never inside a word."""
    from .answer.render import clip_context

    return clip_context(re.sub(r"\s+", " ", text), n, left)


def render_text(answer: Answer, bold: Callable[[str], str] = str) -> str:
    """The answer for a terminal: plain text (no Markdown marks), then its numbered excerpts.

    Every piece of document text is escaped (``_safe``) on its own, then ``bold`` styles the
    quote and the answering phrase: ANSI on a terminal, nothing in a pipe (``print_answer``).
    No marker goes between the two steps, so none can be escaped or shown by mistake."""
    from .answer.render import split_quote
    from .corpus import display_title

    s = _safe
    if answer.mode == "extractive" and answer.kind == "fact" and not answer.abstained:
        quotes = []
        for c in answer.citations:
            before, phrase, after = split_quote(c)
            quotes.append(
                f"“{s(before)}{bold(s(phrase))}{s(after)}” [{c.n}]"
                if phrase
                else f"“{s(before)}” [{c.n}]"
            )
        out = [" ".join(quotes)]
    else:
        out = [s(answer.text)]
    if answer.abstained:
        out[0] = "Not found in the documents. " + out[0]
    out.append("")
    if answer.query and answer.query != answer.question:
        out += [f"searched for: {s(answer.query)}", ""]
    out += [f"note: {s(notice)}" for notice in answer.notices] + ([""] if answer.notices else [])
    if answer.abstained:
        if answer.passages:
            out.append("Closest matches:")
            for p in answer.passages[:3]:
                title, text = display_title(p.title, p.source), _clip(p.text, 200).strip()
                out.append(s(f"- {title} ({p.source}): {text}"))
        return "\n".join(out).rstrip() + "\n"
    if answer.kind == "fact" and answer.citations:
        out += [f"confidence {answer.confidence:.0%}", ""]
    for c in answer.citations:
        a, b = c.start - c.passage_start, c.end - c.passage_start
        # The heading names the document and the place ("p. 17" for a PDF); the character
        # offsets are for programs (``--json``), not shown here.
        where = f", {c.locator}" if c.locator else ""
        out.append(s(f"[{c.n}] {display_title(c.title, c.source)} ({c.source}{where})"))
        before, after = _clip(c.passage[:a], 240, left=True), _clip(c.passage[b:], 240)
        quote = bold(s(" ".join(c.quote.split())))
        out.append("    " + s(before.lstrip()) + quote + s(after.rstrip()))
    return "\n".join(out).rstrip() + "\n"


def _styled(stream: TextIO) -> bool:
    """Bold for a terminal, unless ``NO_COLOR`` is set (https://no-color.org); not in a pipe."""
    if os.environ.get("NO_COLOR"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no such method, or a closed stream
        return False


def print_answer(answer: Answer, file: TextIO | None = None) -> None:
    """Write ``render_text(answer)`` to ``file`` (stdout): the answering phrase in ANSI bold on a
    terminal, plain text in a pipe or with ``NO_COLOR``."""
    stream = sys.stdout if file is None else file
    if _styled(stream):
        text = render_text(answer, lambda t: typer.style(t, bold=True) if t else t)
        typer.echo(text, file=stream, nl=False, color=True)
    else:
        typer.echo(render_text(answer), file=stream, nl=False, color=False)


def _echo_skipped(report: BuildReport) -> None:
    """The files a build skipped, once each with its reason (the library logs them at INFO)."""
    for name, reason in report.skipped:
        typer.echo(_safe(f"skipped {name}: {reason}"), err=True)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


@app.command()
@_handled
@_sigterm_interrupts
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
            from .priority import lower_priority, served

            embedder = None
            if served(settings.index_dir):  # yield the CPU to the chat (ASSISTANT_BUILD_*)
                from .embedders import embedder_for

                embedder = embedder_for(settings)
                lower_priority(settings.build_nice, settings.build_threads)
                typer.echo(
                    f"note: `assistant serve` is serving this index: this build runs at nice "
                    f"+{settings.build_nice} with {counted(settings.build_threads, 'thread')}",
                    err=True,
                )
            report = build_index(settings, full=full, wait=None if wait else 0, embedder=embedder)
    except OSError as exc:
        _fail(f"the build failed ({exc}); the previous index is intact: fix this and rebuild", 1)
        raise  # unreachable
    if as_json:
        _print_json(report.to_dict())
        return
    _echo_skipped(report)
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
    doc: DocOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the passages that best match QUERY (hybrid dense + BM25 search)."""
    from .validate import check_question

    check_question(query, _settings().max_question_chars)  # before the model and the index
    from .retrieval import retrieve

    passages = retrieve(query, k=k, settings=_settings(), sources=doc)
    _warn_stale(getattr(passages, "stale", ""))
    if as_json:
        _print_json([p.to_dict() for p in passages])
        return
    from .corpus import display_title

    for i, p in enumerate(passages, 1):
        where = p.where()[1]
        where = f"{where}, " if where else ""
        title = display_title(p.title, p.source)
        typer.echo(
            _safe(f"[{i}] {title} ({p.source}, {where}chars {p.start}-{p.end}) score {p.score:.4f}")
        )
        typer.echo(_safe("    " + _clip(p.text, 400).strip()))


@app.command()
@_handled
def ask(
    question: Annotated[str, typer.Argument(help="The question.", metavar="QUESTION")],
    doc: DocOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer QUESTION with quoted, verified excerpts (or say the documents do not answer it)."""
    from .validate import check_question

    check_question(question, _settings().max_question_chars, "question")  # before the model
    from .answer import ask as ask_question
    from .sources import outdated_sources, with_outdated_notice

    settings = _settings()
    answer = ask_question(question, settings=settings, sources=doc)
    _warn_stale(answer.stale)
    answer = with_outdated_notice(answer, outdated_sources(answer, settings.seeds_dir))
    if as_json:
        _print_json(answer.to_dict())
        return
    print_answer(answer)


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
    watch: Annotated[
        bool | None,
        typer.Option(
            "--watch/--no-watch",
            help="Index files added, changed or removed in the seeds folder by other programs "
            "(default: ASSISTANT_WATCH, true).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Start the web chat (Gradio) on HOST:PORT."""
    from .app import check_port

    settings = _settings()
    if watch is not None:
        settings = settings.model_copy(update={"watch": watch})
    check_port(host, port)  # before building: a busy port is said at once, with the fix
    if build_first:
        from .build import build_index

        report = build_index(settings, wait=None)
        _echo_skipped(report)
        typer.echo(report.summary())
    from .app import launch

    if settings.watch:
        typer.echo(
            f"watching {_safe(str(settings.seeds_dir))} for documents added, changed or "
            "removed: they are indexed at once (--no-watch turns this off)"
        )
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
