"""The Gradio Blocks app: the chat, the documents tab, their event handlers and the API endpoints.

Gradio is imported inside ``build_app`` only.
"""

from __future__ import annotations

import html
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..config import Settings
from ..documents import DocumentError
from ..errors import AssistantError, IndexLockedError
from ..sources import outdated_sources, with_outdated_notice
from ..validate import check_question
from .examples import example_questions
from .render import (
    _clip,
    _esc,
    render_answer,
    render_documents,
    render_error,
    render_partial,
    render_question,
    render_status,
)
from .uploads import UPLOAD_EXTENSIONS, UploadError, save_upload

log = logging.getLogger(__name__)


def _status(settings: Settings) -> dict:
    """The index status plus the seeds folder's facts (for the empty state)."""
    from ..documents import seed_documents
    from ..store.status import index_status

    seeds = {
        "seeds_dir": str(Path(settings.seeds_dir).resolve()),
        "seed_files": len(seed_documents(settings)),
    }
    try:
        return {**index_status(settings), **seeds}
    except AssistantError as exc:
        return {"built": True, "error": str(exc), "documents": {}, "stale": True, **seeds}
    except (OSError, ValueError, KeyError) as exc:
        error = f"{type(exc).__name__}: {exc}"
        return {"built": True, "error": error, "documents": {}, **seeds}


def _needs_build(info: dict) -> bool:
    return not info.get("built") or bool(info.get("stale")) or bool(info.get("error"))


CHAT_KEEP = 100  # messages kept in the browser's storage (50 questions and answers)


def build_app(settings: Settings | None = None) -> Any:
    """The Gradio Blocks app for ``settings`` (not launched)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    from ..answer import ask, ask_stream
    from ..build import build_index
    from ..retrieval import retrieve

    settings = settings or Settings()
    build_lock = threading.Lock()

    # -- event handlers ---------------------------------------------------------------------

    def refresh() -> tuple:
        info = _status(settings)
        samples = [[q] for q in example_questions(settings, info)] if info.get("built") else []
        needs = _needs_build(info) and bool(info.get("seed_files"))
        return (
            render_status(info),
            gr.Button(visible=needs),  # one "Build the index" button at a time: this one
            render_documents(info),  # when the index needs it, the Documents tab's otherwise
            gr.Dataset(  # no chips before there is anything to ask about
                samples=samples or [["What are these documents about?"]],
                visible=bool(info.get("built")) and not info.get("error"),
            ),
            gr.Button(visible=not needs and bool(info.get("seed_files"))),
        )

    def saved_chat(chat: list, turns: list) -> dict:
        """What the browser keeps (localStorage, encrypted by Gradio): the last messages, and
        the turns' plain text HTML-escaped, so that nothing the browser receives is markup."""
        turns = [[html.escape(q), html.escape(a)] for q, a in list(turns)[-CHAT_KEEP // 2 :]]
        return {"chat": list(chat)[-CHAT_KEEP:], "turns": turns}

    def respond(
        message: str, chat: list, turns: list, scope: list | None = None
    ) -> Iterator[tuple]:
        """Answer ``message`` in the chat; ``scope``: the documents chosen (empty: all)."""
        message = (message or "").strip()
        chat = list(chat or [])
        turns = list(turns or [])
        try:  # at once, before anything tokenizes it (ASSISTANT_MAX_QUESTION_CHARS)
            check_question(message, settings.max_question_chars, "question")
        except (AssistantError, ValueError) as exc:
            if len(message) <= settings.max_question_chars:  # nothing visible: as if empty
                yield gr.skip(), chat, turns, gr.skip()
                return
            chat.append({"role": "user", "content": render_question(_clip(message, 300))})
            chat.append({"role": "assistant", "content": render_error(str(exc))})
            yield gr.skip(), list(chat), list(turns), saved_chat(chat, turns)  # kept to edit
            return
        chat.append({"role": "user", "content": render_question(message)})
        chat.append({"role": "assistant", "content": render_partial("")})
        yield "", list(chat), list(turns), gr.skip()
        try:
            history = [tuple(t) for t in turns]
            for text, answer in ask_stream(message, history, settings, sources=scope or None):
                if answer is None:
                    chat[-1] = {"role": "assistant", "content": render_partial(text)}
                    yield "", list(chat), list(turns), gr.skip()
                    continue
                outdated = outdated_sources(answer, settings.seeds_dir)
                content = render_answer(with_outdated_notice(answer, outdated), outdated)
                chat[-1] = {"role": "assistant", "content": content}
                turns.append([message, answer.text])
        except (AssistantError, ValueError) as exc:
            chat[-1] = {"role": "assistant", "content": render_error(str(exc))}
        yield "", list(chat), list(turns), saved_chat(chat, turns)

    def restore(saved: Any) -> tuple:
        """The conversation this browser kept, shown again after a reload."""
        if not isinstance(saved, dict):
            return [], []
        chat = [
            m
            for m in saved.get("chat") or []
            if isinstance(m, dict) and m.get("role") in ("user", "assistant")
        ]
        turns = [
            [html.unescape(str(t[0])), html.unescape(str(t[1]))]
            for t in saved.get("turns") or []
            if isinstance(t, (list, tuple)) and len(t) == 2
        ]
        return chat, turns

    def new_chat() -> tuple:
        return [], [], "", {"chat": [], "turns": []}

    def pick_example(sample: Any) -> str:
        if isinstance(sample, (list, tuple)):
            return str(sample[0]) if sample else ""
        return str(sample or "")

    def add_document(path: str | None) -> tuple:
        if not path:
            return gr.skip(), gr.skip()
        original = Path(path).name
        known = {k: v.get("sha256", "") for k, v in _status(settings).get("documents", {}).items()}
        try:
            saved = save_upload(Path(path).read_bytes(), original, settings, known)
        except UploadError as exc:
            return f"<p class='upload-error'>Not added: {_esc(exc)}.</p>", None
        except OSError as exc:
            return f"<p class='upload-error'>Not added: {_esc(exc.strerror or exc)}.</p>", None
        rel = saved.relative_to(Path(settings.seeds_dir)).as_posix()
        return (
            f"<p class='upload-ok'>Added <code>{_esc(rel)}</code> to the documents. "
            "Press <b>Build the index</b> to make it searchable.</p>",
            None,
        )

    def rebuild() -> Iterator[tuple]:
        state: dict[str, Any] = {"stage": "starting", "done": 0, "total": 0}

        def on_progress(stage: str, done: int, total: int) -> None:
            state.update(stage=stage, done=done, total=total)

        def work() -> None:
            try:
                with build_lock:
                    state["report"] = build_index(settings, on_progress=on_progress, wait=120)
            except Exception as exc:  # shown in the panel; the app keeps serving
                state["error"] = exc

        thread = threading.Thread(target=work, name="assistant-build", daemon=True)
        thread.start()
        started = time.monotonic()
        skip = (gr.skip(),) * 5
        while thread.is_alive():
            thread.join(0.4)
            done, total = state["done"], state["total"]
            detail = f"{state['stage']} {done}/{total} chunks" if total else "reading documents"
            yield (
                f"<p class='build-progress'>Building the index… {_esc(detail)} "
                f"({time.monotonic() - started:.0f}s)</p>",
                *skip,
            )
        if "error" in state:
            exc = state["error"]
            if not isinstance(exc, AssistantError):
                log.exception("build failed", exc_info=exc)
            if isinstance(exc, IndexLockedError):
                exc = (
                    "another build of this index is still running (from the command line or "
                    "another window); press Build the index again when it has finished"
                )
            message = f"<p class='build-error'>Build failed: {_esc(exc)}</p>"
        else:
            report = state["report"]
            skipped = "".join(
                f"<br>skipped {_esc(name)}: {_esc(reason)}" for name, reason in report.skipped
            )
            message = (
                f"<p class='build-done'>Index built: {_esc(report.summary())} "
                f"({report.total_chunks} chunks, {report.seconds:.1f}s).{skipped}</p>"
            )
        yield (message, *refresh())

    def ask_delete(doc_id: str | None) -> tuple:
        if not doc_id:
            return "<p class='upload-error'>Choose a document to delete.</p>", gr.Row(visible=False)
        return (
            f"<p class='confirm'>Delete <code>{_esc(doc_id)}</code> from the seeds folder? "
            "The index is rebuilt without it.</p>",
            gr.Row(visible=True),
        )

    def do_delete(doc_id: str | None) -> tuple:
        from ..documents import delete_document

        try:
            delete_document(doc_id or "", settings)
        except (DocumentError, OSError) as exc:
            return f"<p class='upload-error'>Not deleted: {_esc(exc)}.</p>", gr.Row(visible=False)
        return f"<p class='upload-ok'>Deleted <code>{_esc(doc_id)}</code>.</p>", gr.Row(
            visible=False
        )

    def cancel_delete() -> tuple:
        return "", gr.Row(visible=False)

    def choices() -> list[str]:
        from ..documents import seed_documents

        return sorted(seed_documents(settings))

    def scope_choices(chosen: list | None) -> Any:
        """The chat's document selector: the indexed documents, the chosen ones still in it."""
        indexed = sorted(_status(settings).get("documents", {}))
        kept = [d for d in chosen or [] if d in indexed]
        return gr.Dropdown(choices=indexed, value=kept, multiselect=True)

    def asker(doc_id: str) -> Any:
        def handler() -> tuple:
            return (doc_id, *ask_delete(doc_id))

        return handler

    # -- API endpoints (data in, data out) --------------------------------------------------

    def api_ask(
        question: str, history: list | None = None, sources: list[str] | None = None
    ) -> dict:
        """Answer a question from the documents. ``history``: earlier ``[question, answer]``
        pairs. ``sources``: only these documents (paths in the seeds folder, e.g.
        "notes/bread.md"; empty: all). Returns the answer as data: text with [n] markers,
        citations (source, title, start, end, quote, passage, page, locator), passages,
        abstained, query."""
        try:  # the length is checked at once, with this app's settings
            check_question(question, settings.max_question_chars, "question")
            result = ask(question, history, settings, sources=sources or None)
            return with_outdated_notice(
                result, outdated_sources(result, settings.seeds_dir)
            ).to_dict()
        except (AssistantError, ValueError, TypeError) as exc:
            raise gr.Error(str(exc)) from exc

    def api_retrieve(query: str, k: int = 5, sources: list[str] | None = None) -> list:
        """The k passages that best match the query (hybrid dense + BM25 search), as data.
        ``k``: a whole number from 1 to ASSISTANT_MAX_K, as in ``retrieve()``. ``sources``:
        only these documents (paths in the seeds folder; empty: all)."""
        try:  # k as sent: "7", 2.5 and true are refused here as retrieve() refuses them
            return [p.to_dict() for p in retrieve(query, k, settings, sources=sources or None)]
        except (AssistantError, ValueError, TypeError) as exc:
            raise gr.Error(str(exc)) from exc

    # -- layout -------------------------------------------------------------------------------

    with gr.Blocks(title="assistant: ask the documents", analytics_enabled=False) as demo:
        gr.Markdown("## Ask the documents\nAnswers quote the documents verbatim, with sources.")
        status = gr.Markdown(elem_id="status-banner", latex_delimiters=[])
        fix = gr.Button("Build the index", variant="primary", visible=False, elem_id="fix-index")
        turns = gr.State([])
        # The conversation lives in this browser only (localStorage, encrypted with a key of
        # this server process): a reload shows it again; New chat clears it; nothing is stored
        # on the server.
        kept = gr.BrowserState({"chat": [], "turns": []}, storage_key="assistant-chat")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat-tab"):
                chatbot = gr.Chatbot(
                    elem_id="chat",
                    label="Chat",
                    height=560,
                    latex_delimiters=[],
                    sanitize_html=True,
                    allow_tags=False,
                    feedback_options=None,
                    buttons=["copy", "copy_all"],
                    placeholder="Ask a question about the documents.",
                )
                with gr.Row():
                    question = gr.Textbox(
                        elem_id="question",
                        show_label=False,
                        placeholder="Ask a question about the documents…",
                        scale=8,
                        autofocus=True,
                        max_lines=4,
                    )
                    send = gr.Button("Ask", variant="primary", scale=1, elem_id="send")
                    clear = gr.Button("New chat", scale=1, elem_id="new-chat")
                scope = gr.Dropdown(
                    choices=[],
                    value=[],
                    multiselect=True,
                    label="Only these documents",
                    info="Leave empty to ask all the documents.",
                    elem_id="scope",
                )
                examples = gr.Dataset(
                    components=[question],
                    samples=[["What are these documents about?"]],
                    label="Try asking",
                    elem_id="examples",
                )
            with gr.Tab("Documents", id="docs-tab"):
                documents = gr.Markdown(elem_id="documents", latex_delimiters=[])
                upload = gr.File(
                    label="Add a document: PDF, Word (.docx), HTML, EPUB, .txt or .md "
                    f"(up to {settings.max_upload_kb} KB)",
                    file_types=list(UPLOAD_EXTENSIONS),
                    type="filepath",
                    elem_id="upload",
                )
                upload_msg = gr.Markdown(elem_id="upload-message", latex_delimiters=[])
                rebuild_btn = gr.Button("Build the index", variant="primary", elem_id="rebuild")
                build_log = gr.Markdown(elem_id="build-log", latex_delimiters=[])
                to_delete = gr.State(None)  # the document whose Delete… was pressed
                doc_ids = gr.State([])
                gr.Markdown("**Files in the seeds folder**")

                @gr.render(inputs=doc_ids)
                def document_rows(ids: list) -> None:
                    for doc_id in ids or []:
                        with gr.Row(elem_classes=["doc-row"], equal_height=True):
                            gr.HTML(f"<code>{_esc(doc_id)}</code>", padding=False)
                            button = gr.Button(
                                "Delete…",
                                variant="stop",
                                size="sm",
                                scale=0,
                                min_width=90,
                                elem_classes=["delete-doc"],
                            )
                        button.click(
                            asker(doc_id),
                            None,
                            [to_delete, delete_msg, confirm_row],
                            api_visibility="private",
                        )

                delete_msg = gr.Markdown(elem_id="delete-message", latex_delimiters=[])
                with gr.Row(visible=False) as confirm_row:
                    confirm_btn = gr.Button(
                        "Yes, delete it and rebuild", variant="stop", elem_id="confirm-delete"
                    )
                    cancel_btn = gr.Button("Cancel", elem_id="cancel-delete")

        hidden = {"api_visibility": "private"}
        panel = [status, fix, documents, examples, rebuild_btn]
        lists = {"fn": scope_choices, "inputs": scope, "outputs": scope, **hidden}
        demo.load(refresh, None, panel, **hidden).then(choices, None, doc_ids, **hidden).then(
            **lists
        )
        demo.load(restore, kept, [chatbot, turns], **hidden)
        cancel_btn.click(cancel_delete, None, [delete_msg, confirm_row], **hidden)
        confirm_btn.click(do_delete, to_delete, [delete_msg, confirm_row], **hidden).then(
            rebuild,
            None,
            [build_log, *panel],
            concurrency_limit=1,
            concurrency_id="build",
            **hidden,
        ).then(choices, None, doc_ids, **hidden).then(**lists)
        chat_io = {
            "inputs": [question, chatbot, turns, scope],
            "outputs": [question, chatbot, turns, kept],
        }
        question.submit(respond, **chat_io, concurrency_limit=4, **hidden)
        send.click(respond, **chat_io, concurrency_limit=4, **hidden)
        clear.click(new_chat, None, [chatbot, turns, question, kept], **hidden)
        chatbot.clear(new_chat, None, [chatbot, turns, question, kept], **hidden)
        examples.click(pick_example, examples, question, **hidden).then(
            respond, **chat_io, concurrency_limit=4, **hidden
        )
        upload.upload(add_document, upload, [upload_msg, upload], **hidden).then(
            refresh, None, panel, **hidden
        ).then(choices, None, doc_ids, **hidden)
        for button in (fix, rebuild_btn):
            button.click(
                rebuild,
                None,
                [build_log, *panel],
                concurrency_limit=1,
                concurrency_id="build",
                show_progress="minimal",
                **hidden,
            ).then(choices, None, doc_ids, **hidden).then(**lists)
        gr.api(api_ask, api_name="ask", concurrency_limit=4)
        gr.api(api_retrieve, api_name="retrieve", concurrency_limit=4)
    return demo
