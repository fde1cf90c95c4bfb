"""Serving the app: the port check before anything loads, and ``launch``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import Settings
from ..documents import document_route
from ..errors import AssistantError
from .blocks import build_app
from .render import DOCUMENT_ROUTE
from .style import CSS, _theme


class PortInUseError(AssistantError):
    """The port asked for is taken (by another server, often an earlier ``assistant serve``)."""


def check_port(host: str, port: int) -> None:
    """Raise ``PortInUseError``, saying to pick another ``--port``, when ``host:port`` is busy
    (before the model and the app are loaded; Gradio's own advice names its variables)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise PortInUseError(
                f"port {port} on {host} is already in use ({exc.strerror or exc}), maybe by "
                f"another `assistant serve`: stop it, or choose another port with --port "
                f"(for example --port {port + 1 if port < 65535 else 8080})"
            ) from None


def launch(
    settings: Settings | None = None,
    host: str = "127.0.0.1",
    port: int = 7860,
    **launch_kwargs: Any,
) -> Any:
    """Serve the app on ``host:port`` (localhost unless told otherwise); blocks until stopped
    unless ``prevent_thread_lock=True`` is passed, in which case the running app is returned."""
    settings = settings or Settings()
    check_port(host, port)
    demo = build_app(settings)
    blocked = sorted(
        {str(Path(p).resolve()) for p in (settings.seeds_dir, settings.index_dir, Path.cwd())}
    )
    options: dict[str, Any] = {
        "server_name": host,
        "server_port": port,
        "share": False,
        "inbrowser": False,
        "ssr_mode": False,
        "show_error": True,
        # Serve no file from disk except Gradio's own upload cache: nothing of the project,
        # the seeds or the index is readable through /gradio_api/file=.
        "allowed_paths": [],
        "blocked_paths": blocked,
        "max_file_size": settings.max_upload_kb * 1024 * 2,
        "theme": _theme(),
        "css": CSS,
    }
    options.update(launch_kwargs)
    block = not options.pop("prevent_thread_lock", False)
    # /document/<id> is one of the app's routes from its creation (the first, before Gradio's
    # own): it answers as soon as the server does.
    app_kwargs = dict(options.pop("app_kwargs", None) or {})
    app_kwargs["routes"] = [document_route(settings, DOCUMENT_ROUTE), *app_kwargs.get("routes", [])]
    # Beyond ASSISTANT_MAX_WAITING waiting requests, one more is answered at once with Gradio's
    # "Queue is full! Please try again." (HTTP 503) instead of waiting minutes.
    demo.queue(default_concurrency_limit=2, max_size=settings.max_waiting)
    demo.launch(**options, app_kwargs=app_kwargs, prevent_thread_lock=True)
    _start_background(demo, settings)
    if block:  # pragma: no cover - the CLI's serve; tests use prevent_thread_lock
        demo.block_thread()
    return demo


def _start_background(demo: Any, settings: Settings) -> None:
    """Mark the index as served (``assistant build`` beside it then yields the CPU), watch the
    seeds folder unless ``ASSISTANT_WATCH=false`` / ``--no-watch``, and index at once what
    changed there while the app was stopped. ``demo.close()`` stops both."""
    from contextlib import ExitStack

    from ..priority import serving
    from .blocks import _needs_build, _status
    from .watcher import SeedsWatcher

    indexer = demo.indexer
    stack = ExitStack()
    stack.enter_context(serving(Path(settings.index_dir)))
    if settings.watch:
        watcher = SeedsWatcher(settings, lambda names: indexer.request(_changed(names)))
        stack.callback(watcher.stop)
        watcher.start()
        info = _status(settings)
        if _needs_build(info) and info.get("seed_files") and not info.get("error"):
            indexer.request("the seeds folder changed while the app was stopped")
    stack.callback(indexer.close)
    close = demo.close

    def close_all(*args: Any, **kwargs: Any) -> Any:
        stack.close()
        return close(*args, **kwargs)

    demo.close = close_all


def _changed(names: list[str]) -> str:
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return f"changed in the seeds folder: {shown}"
