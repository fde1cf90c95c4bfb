"""The Gradio Blocks app: the chat, the documents tab, their event handlers and the API endpoints.

Gradio is imported inside ``build_app`` only.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..answer.render import render_markdown
from ..config import Settings
from ..documents import DocumentError
from ..errors import AssistantError
from ..sources import outdated_sources, with_outdated_notice
from ..validate import check_question
from . import chats
from .examples import example_questions
from .indexer import Indexer
from .render import (
    _clip,
    _esc,
    render_answer,
    render_documents,
    render_error,
    render_indexing,
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
        "watching": settings.watch,
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


def build_app(settings: Settings | None = None) -> Any:
    """The Gradio Blocks app for ``settings`` (not launched)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    from ..answer import ask, ask_stream
    from ..retrieval import retrieve

    settings = settings or Settings()
    indexer = Indexer(settings)

    # -- event handlers ---------------------------------------------------------------------

    def refresh() -> tuple:
        info = _status(settings)
        samples = [[q] for q in example_questions(settings, info)] if info.get("built") else []
        snap = indexer.snapshot()
        needs = _needs_build(info) and bool(info.get("seed_files")) and not snap["running"]
        return (
            render_indexing(snap["running"]) if snap["running"] else render_status(info),
            gr.Button(visible=needs),  # the one Build button: only when the index needs it
            render_documents(info),
            gr.Dataset(  # no chips before there is anything to ask about
                samples=samples or [["What are these documents about?"]],
                visible=bool(info.get("built")) and not info.get("error"),
            ),
        )

    def respond(message: str, chat: list, saved: Any, scope: list | None = None) -> Iterator[tuple]:
        """Answer ``message`` in the current conversation; ``scope``: the documents chosen
        (empty: all). Yields the question box, the chat, the browser's store, the chat list
        and the chat's title."""
        message = (message or "").strip()
        chat = list(chat or [])
        store = chats.load(saved)
        skip = gr.skip()
        try:  # at once, before anything tokenizes it (ASSISTANT_MAX_QUESTION_CHARS)
            check_question(message, settings.max_question_chars, "question")
        except (AssistantError, ValueError) as exc:
            if len(message) <= settings.max_question_chars:  # nothing visible: as if empty
                yield skip, chat, skip, skip, skip
                return
            chat.append({"role": "user", "content": render_question(_clip(message, 300))})
            chat.append({"role": "assistant", "content": render_error(str(exc))})
            yield skip, list(chat), chats.with_messages(store, chat), skip, skip  # kept to edit
            return
        chat.append({"role": "user", "content": render_question(message)})
        chat.append({"role": "assistant", "content": render_partial("")})
        yield "", list(chat), skip, skip, skip
        try:
            history = chats.history(chats.current(store))
            for text, answer in ask_stream(message, history, settings, sources=scope or None):
                if answer is None:
                    chat[-1] = {"role": "assistant", "content": render_partial(text)}
                    yield "", list(chat), skip, skip, skip
                    continue
                outdated = outdated_sources(answer, settings.seeds_dir)
                shown = with_outdated_notice(answer, outdated)
                chat[-1] = {"role": "assistant", "content": render_answer(shown, outdated)}
                store = chats.with_turn(store, chat, message, answer.text, render_markdown(shown))
        except (AssistantError, ValueError) as exc:
            chat[-1] = {"role": "assistant", "content": render_error(str(exc))}
            store = chats.with_messages(store, chat)
        yield "", list(chat), store, chat_list(store), chats.current(store)["title"]

    def chat_list(store: dict) -> Any:
        return gr.Radio(choices=chats.choices(store), value=store["current"])

    def shown(store: dict) -> tuple:
        """The current conversation on screen: its messages, the list, its title to edit."""
        now = chats.current(store)
        return now["chat"], store, chat_list(store), gr.Textbox(value=now["title"])

    def restore(saved: Any) -> tuple:
        """The conversations this browser kept, shown again after a reload."""
        return shown(chats.load(saved))

    def new_chat(saved: Any) -> tuple:
        return ("", *shown(chats.new(chats.load(saved))))

    def switch_chat(chat_id: str, saved: Any) -> tuple:
        return shown(chats.switch(chats.load(saved), str(chat_id or "")))

    def rename_chat(title: str, saved: Any) -> tuple:
        store = chats.rename(chats.load(saved), title)
        return store, chat_list(store)

    def delete_chat(saved: Any) -> tuple:
        return shown(chats.delete(chats.load(saved)))

    def export_chat(saved: Any) -> tuple:
        now = chats.current(chats.load(saved))
        return chats.to_markdown(now), chats.filename(now)

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
        indexer.request(f"added {rel}")
        return (
            f"<p class='upload-ok'>Added <code>{_esc(rel)}</code> to the documents: it is being "
            "indexed now (the banner shows the progress); ask about it when that is done.</p>",
            None,
        )

    def build_now() -> Any:
        indexer.request("the Build button")
        return gr.Button(visible=False)

    def poll(seen: int, chosen: list | None) -> tuple:
        """Every second: the banner while a build runs; everything once one has ended."""
        snap = indexer.snapshot()
        skip = gr.skip()
        if snap["running"]:
            banner = render_indexing(snap["running"])
            return skip, skip, banner, gr.Button(visible=False), skip, skip, skip, skip
        if snap["version"] == seen:
            return (skip,) * 8
        last = snap["last"] or {}
        if "error" in last:
            message = f"<p class='build-error'>Build failed: {_esc(last['error'])}</p>"
        elif last:
            message = f"<p class='build-done'>{_esc(last['message'])}</p>"
        else:
            message = skip
        return (snap["version"], message, *refresh(), choices(), scope_choices(chosen))

    def ask_delete(doc_id: str | None) -> tuple:
        if not doc_id:
            return "<p class='upload-error'>Choose a document to delete.</p>", gr.Row(visible=False)
        return (
            f"<p class='confirm'>Delete <code>{_esc(doc_id)}</code> from the seeds folder? "
            "It is removed from the index at once.</p>",
            gr.Row(visible=True),
        )

    def do_delete(doc_id: str | None) -> tuple:
        from ..documents import delete_document

        try:
            delete_document(doc_id or "", settings)
        except (DocumentError, OSError) as exc:
            return f"<p class='upload-error'>Not deleted: {_esc(exc)}.</p>", gr.Row(visible=False)
        indexer.request(f"deleted {doc_id}")
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
            raise gr.Error(str(exc), print_exception=False) from exc  # a one-line refusal

    def api_retrieve(query: str, k: int = 5, sources: list[str] | None = None) -> list:
        """The k passages that best match the query (hybrid dense + BM25 search), as data.
        ``k``: a whole number from 1 to ASSISTANT_MAX_K, as in ``retrieve()``. ``sources``:
        only these documents (paths in the seeds folder; empty: all)."""
        try:  # k as sent: "7", 2.5 and true are refused here as retrieve() refuses them
            return [p.to_dict() for p in retrieve(query, k, settings, sources=sources or None)]
        except (AssistantError, ValueError, TypeError) as exc:
            raise gr.Error(str(exc), print_exception=False) from exc  # a one-line refusal

    # -- layout -------------------------------------------------------------------------------

    with gr.Blocks(title="assistant: ask the documents", analytics_enabled=False) as demo:
        gr.Markdown("## Ask the documents\nAnswers quote the documents verbatim, with sources.")
        status = gr.Markdown(elem_id="status-banner", latex_delimiters=[])
        fix = gr.Button("Build the index", variant="primary", visible=False, elem_id="fix-index")
        seen = gr.State(-1)  # the indexer's version this page shows
        # The conversations live in this browser only (localStorage, encrypted with a key of
        # this server process): a reload shows them again; nothing is stored on the server.
        kept = gr.BrowserState({"chats": [], "current": ""}, storage_key="assistant-chats")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat-tab"), gr.Row():
                with gr.Column(scale=1, min_width=200, elem_id="chats-panel"):
                    clear = gr.Button("New chat", elem_id="new-chat")
                    listed = gr.Radio(
                        choices=[], label="Chats", elem_id="chat-list", interactive=True
                    )
                    title = gr.Textbox(
                        label="Rename this chat", elem_id="chat-title", max_lines=1, submit_btn=True
                    )
                    with gr.Row():
                        export = gr.Button("Export as Markdown", size="sm", elem_id="export-chat")
                        drop = gr.Button("Delete chat", size="sm", elem_id="delete-chat")
                    export_text = gr.Textbox(visible="hidden", elem_id="export-text")
                    export_name = gr.Textbox(visible="hidden", elem_id="export-name")
                with gr.Column(scale=4):
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
                    f"(up to {settings.max_upload_kb} KB); it is indexed at once",
                    file_types=list(UPLOAD_EXTENSIONS),
                    type="filepath",
                    elem_id="upload",
                )
                upload_msg = gr.Markdown(elem_id="upload-message", latex_delimiters=[])
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
                        "Yes, delete it", variant="stop", elem_id="confirm-delete"
                    )
                    cancel_btn = gr.Button("Cancel", elem_id="cancel-delete")
        timer = gr.Timer(1.0)

        hidden = {"api_visibility": "private"}
        panel = [status, fix, documents, examples]
        lists = {"fn": scope_choices, "inputs": scope, "outputs": scope, **hidden}
        demo.load(refresh, None, panel, **hidden).then(choices, None, doc_ids, **hidden).then(
            **lists
        )
        on_screen = [chatbot, kept, listed, title]
        demo.load(restore, kept, on_screen, **hidden)
        timer.tick(
            poll,
            [seen, scope],
            [seen, build_log, *panel, doc_ids, scope],
            concurrency_limit=None,  # a few milliseconds, never behind the questions
            show_progress="hidden",
            **hidden,
        )
        cancel_btn.click(cancel_delete, None, [delete_msg, confirm_row], **hidden)
        confirm_btn.click(do_delete, to_delete, [delete_msg, confirm_row], **hidden).then(
            choices, None, doc_ids, **hidden
        )
        fix.click(build_now, None, fix, **hidden)
        upload.upload(add_document, upload, [upload_msg, upload], **hidden).then(
            choices, None, doc_ids, **hidden
        )

        chat_io = {
            "inputs": [question, chatbot, kept, scope],
            "outputs": [question, chatbot, kept, listed, title],
            "concurrency_limit": 4,
            **hidden,
        }
        question.submit(respond, **chat_io)
        send.click(respond, **chat_io)
        examples.click(pick_example, examples, question, **hidden).then(respond, **chat_io)
        clear.click(new_chat, kept, [question, *on_screen], **hidden)
        chatbot.clear(new_chat, kept, [question, *on_screen], **hidden)
        listed.input(switch_chat, [listed, kept], on_screen, **hidden)
        title.submit(rename_chat, [title, kept], [kept, listed], **hidden)
        drop.click(delete_chat, kept, on_screen, **hidden)
        export.click(export_chat, kept, [export_text, export_name], **hidden).then(
            None, [export_text, export_name], None, js=DOWNLOAD_JS, **hidden
        )
        gr.api(api_ask, api_name="ask", concurrency_limit=4)
        gr.api(api_retrieve, api_name="retrieve", concurrency_limit=4)
    demo.indexer = indexer  # launch() feeds it the seeds folder's changes
    return demo


# Saves the exported conversation from the browser (nothing is written on the server).
DOWNLOAD_JS = """(text, name) => {
    const url = URL.createObjectURL(new Blob([text], {type: "text/markdown;charset=utf-8"}));
    const link = document.createElement("a");
    link.href = url;
    link.download = name || "chat.md";
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
    return [];
}"""
