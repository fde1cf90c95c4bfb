"""Several conversations, kept in the browser: the store's shape, its edits and its export.

The store is what ``gr.BrowserState`` keeps in the browser's localStorage (encrypted by Gradio;
nothing is stored on the server)::

    {"chats": [{"id", "title", "named", "chat": [messages], "turns": [[q, a, markdown]]}],
     "current": id}

``chat`` holds the rendered messages (shown again as they were), ``turns`` the plain text of
each question and answer (the follow-up history, HTML-escaped so nothing the browser keeps is
markup) and the answer's Markdown with its citations (the export). Pure functions: each takes
a store and returns a new one, so the event handlers stay short and the rules are tested
without a browser.
"""

from __future__ import annotations

import html
import uuid
from datetime import datetime, timezone
from typing import Any

CHATS_KEEP = 20  # conversations kept; the oldest goes first
CHAT_KEEP = 100  # messages kept per conversation (50 questions and answers)
BUDGET_CHARS = 2_000_000  # the whole store; localStorage holds about 5 MB per site
TITLE_CHARS = 60
UNTITLED = "New chat"


def _chat() -> dict:
    return {"id": uuid.uuid4().hex[:12], "title": UNTITLED, "named": False, "chat": [], "turns": []}


def _clean_turns(turns: Any) -> list[list[str]]:
    out = []
    for t in turns or []:
        if isinstance(t, (list, tuple)) and len(t) in (2, 3):
            out.append([str(x) for x in t] + ([""] if len(t) == 2 else []))
    return out


def _clean_chat(chat: Any) -> list[dict]:
    return [
        m
        for m in chat or []
        if isinstance(m, dict) and m.get("role") in ("user", "assistant") and "content" in m
    ]


def load(saved: Any) -> dict:
    """A valid store from what the browser sent (anything: it may be old or tampered with).
    The one-conversation format of earlier versions becomes the first chat."""
    if not isinstance(saved, dict):
        saved = {}
    if "chats" not in saved and (saved.get("chat") or saved.get("turns")):
        saved = {"chats": [{**_chat(), "chat": saved.get("chat"), "turns": saved.get("turns")}]}
    chats = []
    for c in saved.get("chats") or []:
        if not isinstance(c, dict):
            continue
        turns = _clean_turns(c.get("turns"))
        chats.append(
            {
                "id": str(c.get("id") or uuid.uuid4().hex[:12])[:32],
                "title": str(c.get("title") or UNTITLED)[:TITLE_CHARS],
                "named": bool(c.get("named")),
                "chat": _clean_chat(c.get("chat")),
                "turns": turns,
            }
        )
    chats = chats[:CHATS_KEEP] or [_chat()]
    current = str(saved.get("current") or "")
    if current not in {c["id"] for c in chats}:
        current = chats[0]["id"]
    return {"chats": chats, "current": current}


def current(store: dict) -> dict:
    return next(c for c in store["chats"] if c["id"] == store["current"])


def history(chat: dict) -> list[tuple[str, str]]:
    """The follow-up history of a conversation: its questions and answers as plain text."""
    return [(html.unescape(q), html.unescape(a)) for q, a, _ in chat["turns"]]


def title_of(question: str) -> str:
    words = " ".join(question.split())
    return words if len(words) <= TITLE_CHARS else words[: TITLE_CHARS - 1].rstrip() + "…"


def with_turn(store: dict, chat: list, question: str, answer: str, markdown: str) -> dict:
    """The store after a question was answered in the current conversation: it moves to the
    top of the list and, unless renamed, is titled by its first question."""
    now = current(store)
    turns = [*now["turns"], [html.escape(question), html.escape(answer), html.escape(markdown)]]
    updated = {
        **now,
        "chat": list(chat)[-CHAT_KEEP:],
        "turns": turns[-CHAT_KEEP // 2 :],
        "title": now["title"] if now["named"] or now["turns"] else title_of(question),
    }
    others = [c for c in store["chats"] if c["id"] != now["id"]]
    return _fit({"chats": [updated, *others][:CHATS_KEEP], "current": now["id"]})


def with_messages(store: dict, chat: list) -> dict:
    """The current conversation's messages replaced (an error shown, nothing answered)."""
    now = current(store)
    chats = [{**c, "chat": list(chat)[-CHAT_KEEP:]} if c is now else c for c in store["chats"]]
    return _fit({**store, "chats": chats})


def new(store: dict) -> dict:
    """A new empty conversation on top (the current one is reused when it is still empty)."""
    if not current(store)["turns"] and not current(store)["chat"]:
        return store
    fresh = _chat()
    return {"chats": [fresh, *store["chats"]][:CHATS_KEEP], "current": fresh["id"]}


def switch(store: dict, chat_id: str) -> dict:
    if chat_id not in {c["id"] for c in store["chats"]}:
        return store
    return {**store, "current": chat_id}


def rename(store: dict, title: str) -> dict:
    title = " ".join(str(title or "").split())[:TITLE_CHARS]
    if not title:
        return store
    chats = [
        {**c, "title": title, "named": True} if c["id"] == store["current"] else c
        for c in store["chats"]
    ]
    return {**store, "chats": chats}


def delete(store: dict) -> dict:
    """The store without the current conversation; the next one (or a new one) is current."""
    chats = [c for c in store["chats"] if c["id"] != store["current"]] or [_chat()]
    return {"chats": chats, "current": chats[0]["id"]}


def choices(store: dict) -> list[tuple[str, str]]:
    """The list in the sidebar: (title, id), the most recent first."""
    return [(c["title"], c["id"]) for c in store["chats"]]


def to_markdown(chat: dict) -> str:
    """The conversation as a Markdown document: each question, then the answer with its
    numbered excerpts (document, place, the quote in bold inside its context)."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# {chat['title']}", "", f"_Exported from assistant on {stamp}._", ""]
    for q, a, md in chat["turns"]:
        lines += [f"## {html.unescape(q)}", "", (html.unescape(md) or html.unescape(a)).rstrip()]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def filename(chat: dict) -> str:
    stem = "".join(ch if ch.isalnum() else "-" for ch in chat["title"]).strip("-").lower()
    return ("-".join(filter(None, stem.split("-"))) or "chat")[:60] + ".md"


def _fit(store: dict) -> dict:
    """Within ``BUDGET_CHARS``: the oldest conversations lose their messages, then go."""
    import json

    chats = list(store["chats"])
    while len(chats) > 1 and len(json.dumps(chats)) > BUDGET_CHARS:
        chats.pop()
    if chats and len(json.dumps(chats)) > BUDGET_CHARS:  # one huge chat: its oldest half goes
        c = chats[0]
        half = len(c["chat"]) // 2 // 2 * 2
        chats[0] = {**c, "chat": c["chat"][half:], "turns": c["turns"][half // 2 :]}
    ids = {c["id"] for c in chats}
    return {
        "chats": chats,
        "current": store["current"] if store["current"] in ids else chats[0]["id"],
    }
