"""A locked-down server (issue 7, part 6): localhost by default, no file outside the seeds and
index folders readable through any route or upload, corpus text never rendered as live HTML.

Prompt injection in generative mode (a seed saying "ignore previous instructions") is covered by
``tests/test_llm.py::test_prompt_injection_is_passed_as_quoted_data``.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

from assistant.answer import ask
from assistant.build import build_index
from assistant.store.status import index_status

from .conftest import REPO, SEED, FakeEmbedder

XSS = [
    "<script>alert('xss')</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">click</a>',
    "<svg onload=alert(1)>",
    "<iframe src=//evil.example>",
]
SECRET = "TOPSECRET-" + uuid.uuid4().hex


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app on 127.0.0.1 (fake embedder) over seeds holding hostile HTML; a secret file sits
    next to the seeds folder, outside it."""
    import assistant.embedders as embedders_mod
    import assistant.retrieval as retrieval_mod
    from assistant import app as web
    from assistant.config import Settings

    root = tmp_path_factory.mktemp("secure")
    seeds = root / "seeds"
    seeds.mkdir()
    (root / "secret.txt").write_text(f"The password is {SECRET}.\n")
    (root / "secret.md").write_text(f"The password is {SECRET}.\n")
    (seeds / "news.txt").write_text(SEED.read_text(encoding="utf-8"), encoding="utf-8")
    (seeds / "<img src=x onerror=alert(1)>.txt").write_text(
        "# <script>alert('title')</script>\n\n"
        + " ".join(f"The hostile sample {i} says {x} loudly." for i, x in enumerate(XSS))
        + "\n",
        encoding="utf-8",
    )
    settings = Settings(seeds_dir=seeds, index_dir=root / "embeddings", model="fake")
    fake = FakeEmbedder()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(embedders_mod, "get_embedder", lambda model: fake)
        mp.setattr(retrieval_mod, "_retrievers", {})
        build_index(settings)
        port = free_port()
        demo = web.launch(settings, port=port, prevent_thread_lock=True, quiet=True)
        try:
            yield {
                "url": f"http://127.0.0.1:{port}",
                "port": port,
                "settings": settings,
                "root": root,
                "demo": demo,
            }
        finally:
            demo.close()


# ------------------------------------------------------------------------- binding


def test_server_binds_localhost_by_default(server):
    from assistant import app as web
    from assistant.cli import serve

    assert inspect.signature(web.launch).parameters["host"].default == "127.0.0.1"
    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"
    assert server["demo"].server_name == "127.0.0.1"
    # Reachable on loopback, not on the machine's other addresses.
    assert http(server["url"] + "/")[0] == 200
    others = {ip for ip in _local_addresses() if not ip.startswith("127.")}
    for ip in others:
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        with socket.socket(family) as s:
            s.settimeout(2)
            assert s.connect_ex((ip, server["port"])) != 0, f"server answers on {ip}"


def _local_addresses() -> set[str]:
    found: set[str] = set()
    with contextlib.suppress(OSError):  # `hostname` may be missing
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=False)
        found.update(out.stdout.split())
    with contextlib.suppress(OSError):
        found.update(info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None))
    return {ip.split("%")[0] for ip in found}


def test_cli_serve_help_states_the_localhost_default():
    result = subprocess.run(
        [sys.executable, "-m", "assistant", "serve", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert "127.0.0.1" in result.stdout


# ------------------------------------------------------------------------- file routes


def _traversal_urls(server) -> list[str]:
    root, seeds = server["root"], server["settings"].seeds_dir
    index = server["settings"].index_dir
    targets = [
        "/etc/passwd",
        str(root / "secret.txt"),
        str(seeds / "news.txt"),
        str(seeds / ".." / "secret.txt"),
        str(index / "CURRENT"),
        str(REPO / "README.md"),
        str(REPO / "assistant" / "app" / "__init__.py"),
        "../../../../../../etc/passwd",
        "..%2f..%2f..%2f..%2fetc%2fpasswd",
        "%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "%252e%252e%252fetc%252fpasswd",
        "....//....//....//etc/passwd",
        "..\\..\\..\\..\\etc\\passwd",
        "/proc/self/environ",
        "file:///etc/passwd",
    ]
    prefixes = ["/gradio_api/file=", "/file=", "/gradio_api/file/", "/gradio_api/files/"]
    urls = [server["url"] + p + t for p in prefixes for t in targets]
    urls += [
        server["url"] + p
        for p in [
            "/static/../../../../etc/passwd",
            "/assets/../../../../etc/passwd",
            "/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
            "/gradio_api/static/..%2f..%2f..%2fetc/passwd",
            "/favicon.ico/../../../etc/passwd",
            "/gradio_api/proxy=file:///etc/passwd",
            "/gradio_api/file=" + urllib.parse.quote(str(root / "secret.txt"), safe=""),
        ]
    ]
    return urls


def test_no_route_serves_files_outside_the_app(server):
    leaks = []
    for url in _traversal_urls(server):
        status, body = http(url)
        if status == 200 and (
            b"root:" in body
            or SECRET.encode() in body
            or b"Kim Jong" in body
            or b"build-" in body
            or b"import " in body
            or b"# assistant" in body
        ):
            leaks.append(url)
    assert not leaks, leaks


def test_upload_route_keeps_files_in_gradios_cache(server):
    """A multipart upload named with ../ lands in Gradio's cache, never at the named path."""
    target = Path("/tmp") / f"pwned-{uuid.uuid4().hex}.txt"
    boundary = "----b" + uuid.uuid4().hex
    names = [f"../../../../../..{target}", str(target), "..\\..\\..\\pwned.txt"]
    parts = b"".join(
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
            f'filename="{name}"\r\nContent-Type: text/plain\r\n\r\n'
        ).encode()
        + b"uploaded text\r\n"
        for name in names
    )
    body = parts + f"--{boundary}--\r\n".encode()
    status, reply = http(
        server["url"] + "/gradio_api/upload",
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert not target.exists()
    assert not (Path("/") / "pwned.txt").exists()
    if status == 200:
        import tempfile

        cache = Path(tempfile.gettempdir()).resolve()
        for path in json.loads(reply):
            resolved = Path(path).resolve()
            assert resolved.is_relative_to(cache) and "gradio" in resolved.as_posix(), path
            assert resolved != target.resolve()
    seeds = server["settings"].seeds_dir
    assert not any("pwned" in p.name for p in seeds.rglob("*"))


def _call_private_event(server, fn_name: str, data: list) -> list[dict]:
    """Call one of the app's private UI events by its index, as a crafted browser would."""
    demo = server["demo"]
    fn_index = next(i for i, f in demo.fns.items() if getattr(f.fn, "__name__", "") == fn_name)
    session = uuid.uuid4().hex
    payload = {"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None}
    status, body = http(
        server["url"] + "/gradio_api/queue/join",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    if status != 200:
        return [{"msg": "refused", "status": status, "body": body.decode(errors="replace")}]
    events, deadline = [], time.monotonic() + 30
    request = urllib.request.Request(
        server["url"] + f"/gradio_api/queue/data?session_hash={session}"
    )
    with urllib.request.urlopen(request, timeout=30) as stream:
        for raw in stream:
            line = raw.decode().strip()
            if line.startswith("data:"):
                event = json.loads(line[5:])
                events.append(event)
                if event.get("msg") in ("process_completed", "close_stream"):
                    break
            if time.monotonic() > deadline:
                break
    return events


@pytest.mark.parametrize("name", ["secret.txt", "secret.md"])
def test_upload_event_cannot_copy_a_file_from_outside_into_the_seeds(server, name):
    """The upload handler reads the path the File component hands it: a crafted request naming
    a file outside Gradio's cache must not get that file copied into the seeds (and indexed)."""
    outside = server["root"] / name
    file_data = {
        "path": str(outside),
        "orig_name": name,
        "meta": {"_type": "gradio.FileData"},
    }
    events = _call_private_event(server, "add_document", [file_data])
    assert events  # the request reached the server and got an answer
    seeds = server["settings"].seeds_dir
    copied = [
        p for p in seeds.rglob("*") if p.is_file() and SECRET in p.read_text(errors="replace")
    ]
    assert not copied, (copied, events)
    assert SECRET not in json.dumps(events)


# ------------------------------------------------------------------------- escaping


def test_corpus_html_is_rendered_escaped_end_to_end(server):
    from assistant import app as web
    from assistant.retrieval import Retriever

    settings = server["settings"]
    retriever = Retriever(settings, embedder=FakeEmbedder())
    answer = ask("What does the hostile sample say loudly?", settings=settings, retriever=retriever)
    assert answer.passages and any("<" in p.text for p in answer.passages)
    rendered = [web.render_answer(answer)]
    info = index_status(settings)
    rendered += [web.render_documents(info), web.render_status(info)]
    rendered += [web.render_match(p) for p in answer.passages]
    rendered += [web.render_citation(c) for c in answer.citations]
    for html in rendered:
        lowered = html.lower()
        for tag in ("<script", "<img", "<svg", "<iframe", "<a href", 'href="javascript'):
            assert tag not in lowered, (tag, html[:300])
    assert "&lt;img src=x onerror=alert(1)&gt;" in "".join(rendered)  # shown, as text


def test_chat_event_output_is_escaped_html(server):
    """The chat handler's own output (what the browser receives) carries no live markup."""
    events = _call_private_event(
        server, "respond", ["What does the hostile sample say?", [], [], []]
    )
    finished = [e for e in events if e.get("msg") == "process_completed"]
    assert finished and finished[-1].get("success"), events[-3:]
    text = json.dumps(finished[-1]["output"])
    lowered = text.lower()
    assert "hostile sample" in lowered
    assert "<script" not in lowered and "<img" not in lowered and "<svg" not in lowered
    assert "<iframe" not in lowered and 'href=\\"javascript' not in lowered


def test_api_returns_corpus_text_as_data_not_html(server):
    from gradio_client import Client

    client = Client(server["url"] + "/", verbose=False)
    passages = client.predict("hostile sample says loudly", 3, api_name="/retrieve")
    assert any("<script>" in p["text"] for p in passages)  # JSON data, verbatim, not rendered
    page = http(server["url"] + "/")[1].decode(errors="replace").lower()
    assert "onerror=alert" not in page and "<script>alert" not in page
