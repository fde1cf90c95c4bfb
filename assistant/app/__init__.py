"""The web chat: a Gradio 6 app over the library (``ask_stream``, ``retrieve``, ``build_index``).

The app holds no answering logic of its own. It renders what the library returns, escaping every
piece of corpus text before adding its own markup (Gradio's sanitizer is a second line, not the
first), saves uploads into the seeds folder under safe names, indexes them and the seeds
folder's changes in the background, and exposes ``/ask`` and ``/retrieve`` as named API
endpoints for ``gradio_client``.

Gradio is imported inside ``build_app`` and ``launch`` only, so the rendering and upload helpers
can be imported and tested without it.

Modules, one job each: ``render`` (HTML of answers, status and the documents panel), ``uploads``
(safe names, checks, saving into the seeds folder), ``examples`` (example questions from the
documents), ``chats`` (the conversations kept in the browser, and their export), ``indexer``
(builds in a background thread at a lower priority), ``watcher`` (the seeds folder's changes),
``blocks`` (the Gradio Blocks: layout, event handlers, API endpoints), ``style`` (CSS and
theme), ``server`` (the port check, ``launch`` and what runs beside it). This package
re-exports their names.
"""

from __future__ import annotations

# Every name the single app.py module had stays importable from ``assistant.app``.
# ruff: noqa: F401
from .blocks import _needs_build, _status, build_app
from .chats import CHAT_KEEP
from .examples import EXAMPLE_CHARS, EXAMPLES_MAX, _names, example_questions
from .render import (
    CONTEXT_CHARS,
    DOCUMENT_ROUTE,
    OUTDATED,
    _clip,
    _esc,
    _how_to_add,
    _markers,
    _quote_html,
    document_url,
    render_answer,
    render_citation,
    render_documents,
    render_error,
    render_file_links,
    render_indexing,
    render_match,
    render_partial,
    render_question,
    render_status,
)
from .server import PortInUseError, check_port, launch
from .style import CSS, _theme
from .uploads import (
    NAME_BYTES,
    NAME_MAX,
    UPLOAD_EXTENSIONS,
    UploadError,
    _name_char,
    _shown,
    _size,
    check_upload,
    safe_filename,
    save_upload,
)

__all__ = [
    "UploadError",
    "build_app",
    "check_upload",
    "example_questions",
    "launch",
    "render_answer",
    "render_partial",
    "safe_filename",
    "save_upload",
]
