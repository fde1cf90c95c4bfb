"""The web app's look: its stylesheet and a Gradio theme that needs no network."""

from __future__ import annotations

from typing import Any

CSS = """
.answer .cite { font-weight: 600; color: var(--color-accent); }
.answer .searched, .answer .notice, .excerpt .where { font-size: 0.82em; opacity: 0.75; }
.answer .excerpts { margin-top: 0.5em; }
.answer details.excerpt { border-left: 3px solid var(--color-accent); padding: 0.1em 0.6em;
  margin: 0.35em 0; }
.answer details.excerpt summary { cursor: pointer; }
.answer details.excerpt .passage { margin: 0.4em 0 0.2em 0; font-size: 0.92em; }
.answer mark.quote { background: #fde68a; color: inherit; padding: 0 0.1em; }
.answer.abstained { border-left: 4px solid #f59e0b; padding-left: 0.7em; }
.answer.abstained .verdict { font-weight: 600; }
.answer.abstained details.excerpt { border-left-color: #9ca3af; }
.answer.error { border-left: 4px solid #ef4444; padding-left: 0.7em; }
#status-banner .banner { border-radius: 6px; padding: 0.5em 0.8em; }
#status-banner .banner.warn { background: #fef3c7; color: #78350f; }
#status-banner .banner.busy { background: #e0f2fe; color: #0c4a6e; }
#status-banner .banner.ok { font-size: 0.85em; opacity: 0.8; }
/* The documents table, readable at 360-400 px: Gradio's Markdown lets text break anywhere
   (overflow-wrap: anywhere), which squeezed the headers letter by letter on a phone. Here words
   stay whole, headers and file names on one line, and a table wider than the screen scrolls
   sideways inside its box (.docs-scroll) instead of being crushed. */
.docs .docs-scroll { overflow-x: auto; max-width: 100%; -webkit-overflow-scrolling: touch; }
.docs .docs-table { margin: 0; word-break: normal; overflow-wrap: normal; }
.docs .docs-table td, .docs .docs-table th { padding: 0.2em 0.8em 0.2em 0; text-align: left;
  vertical-align: top; word-break: normal; overflow-wrap: normal; }
.docs .docs-table th { white-space: nowrap; }
.docs .docs-table td code { white-space: nowrap; }
.docs .docs-table td:first-child { min-width: 9em; }
.docs .docs-table td:last-child:not(:empty) { min-width: 14em; }
.docs .docs-table tr.skipped { color: #b45309; }
@media (max-width: 480px) {
  .docs .docs-table { font-size: 0.85em; }
  .docs .docs-table td, .docs .docs-table th { padding: 0.15em 0.6em 0.15em 0; }
}
.answer .files .offsets { opacity: 0.75; }
.answer .files { font-size: 0.82em; margin: 0.1em 0 0.3em 0; }
.answer .outdated { color: #b45309; font-size: 0.82em; }
/* Example questions wrap instead of being cut with an ellipsis mid-word. */
#examples button, #examples button * { white-space: normal !important;
  overflow: visible !important; text-overflow: clip !important; }
"""


def _theme() -> Any:
    import gradio as gr

    # System fonts: the default theme fetches Google Fonts, which an offline machine cannot.
    return gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "monospace"],
    )
