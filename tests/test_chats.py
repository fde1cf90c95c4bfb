"""Several conversations kept in the browser (issue 25 part 6): the store's rules, without a
browser (the walk-through in tests/test_browser.py clicks through them)."""

from __future__ import annotations

import json

from assistant.app import chats


def _asked(store: dict, question: str, answer: str = "An answer [1].") -> dict:
    now = chats.current(store)
    chat = [*now["chat"], {"role": "user", "content": question}]
    chat.append({"role": "assistant", "content": f"<p>{answer}</p>"})
    return chats.with_turn(store, chat, question, answer, f"{answer}\n\n[1] Doc (doc.txt)\n")


def test_new_switch_rename_delete():
    store = chats.load(None)
    assert len(store["chats"]) == 1 and chats.current(store)["title"] == "New chat"
    assert chats.new(store) == store  # an empty conversation is reused, not piled up

    first = _asked(store, "How long does the festival last?")
    assert chats.current(first)["title"] == "How long does the festival last?"
    second = _asked(chats.new(first), "Who won the rowing race?")
    assert [t for t, _ in chats.choices(second)] == [
        "Who won the rowing race?",
        "How long does the festival last?",
    ]
    back = chats.switch(second, chats.choices(second)[1][1])
    assert chats.current(back)["turns"] == chats.current(first)["turns"]  # intact
    assert chats.history(chats.current(back)) == [
        ("How long does the festival last?", "An answer [1].")
    ]
    assert chats.switch(back, "no-such-id") == back

    renamed = chats.rename(back, "  Festival   notes ")
    assert chats.current(renamed)["title"] == "Festival notes"
    assert chats.rename(renamed, "   ") == renamed
    again = _asked(renamed, "And the fireworks?")  # a renamed chat keeps its name
    assert chats.current(again)["title"] == "Festival notes"
    assert chats.choices(again)[0][0] == "Festival notes"  # the last used comes first

    left = chats.delete(again)
    assert [t for t, _ in chats.choices(left)] == ["Who won the rowing race?"]
    assert chats.current(chats.delete(left))["turns"] == []  # the last one: a fresh chat


def test_what_the_browser_sends_is_checked():
    assert chats.load("junk") == chats.load(None) or len(chats.load("junk")["chats"]) == 1
    old = {"chat": [{"role": "user", "content": "q"}], "turns": [["q", "a"]]}  # older versions
    store = chats.load(old)
    assert chats.current(store)["turns"] == [["q", "a", ""]]
    bad = {
        "chats": [
            {"id": "x", "chat": [{"role": "system", "content": "x"}, 3], "turns": [[1], "a"]},
            "nonsense",
        ],
        "current": "missing",
    }
    store = chats.load(bad)
    assert store["current"] == "x" and chats.current(store)["chat"] == []
    assert chats.current(store)["turns"] == []


def test_export_is_markdown_with_the_citations_and_questions_as_headings():
    store = _asked(chats.load(None), "What is <b>this</b>?", "It is a festival [1].")
    text = chats.to_markdown(chats.current(store))
    assert text.startswith("# What is <b>this</b>?\n")
    assert "## What is <b>this</b>?" in text  # as the user typed it, not HTML-escaped
    assert "It is a festival [1]." in text and "[1] Doc (doc.txt)" in text
    assert chats.filename(chats.current(store)) == "what-is-b-this-b.md"


def test_the_store_stays_within_the_browsers_budget():
    store = chats.load(None)
    big = "x" * 50_000
    for i in range(chats.CHATS_KEEP + 5):
        store = _asked(chats.new(store), f"question {i}", big)
    assert len(store["chats"]) <= chats.CHATS_KEEP
    assert len(json.dumps(store["chats"])) <= chats.BUDGET_CHARS
    assert chats.current(store)["title"] == f"question {chats.CHATS_KEEP + 4}"  # the newest kept
    one = chats.load(None)
    for i in range(80):
        one = _asked(one, f"q{i}", big)
    assert len(one["chats"][0]["chat"]) <= chats.CHAT_KEEP
    assert one["chats"][0]["turns"][-1][0] == "q79"
