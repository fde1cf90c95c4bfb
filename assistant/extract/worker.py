"""The extraction worker: reads ``{"path", "format"}`` lines on stdin, answers one JSON line each
with ``{"ok": Extracted}`` or ``{"error": reason}`` (see ``sandbox.py``)."""

from __future__ import annotations

import json
import sys


def main() -> None:
    if len(sys.argv) > 1:  # the memory limit in MB, applied before any parser is imported
        import resource

        limit = int(sys.argv[1]) << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from ..errors import ExtractError
    from . import extract_path

    out = sys.stdout.buffer
    _preload()  # so a file's time limit is spent on the file, not on importing its parser
    out.write(b'{"ready": true}\n')
    out.flush()
    for line in sys.stdin.buffer:
        request = json.loads(line)
        try:
            found = extract_path(request["path"], request["format"], request.get("module"))
            reply = {"ok": found.to_json()}
        except ExtractError as exc:
            reply = {"error": str(exc)}
        except MemoryError:
            reply = {"limit": "memory"}
        except RecursionError:
            reply = {"error": "the document is nested too deeply to parse"}
        except Exception as exc:  # a parser bug on a strange file: report it, keep serving
            reply = {"error": f"the parser failed ({type(exc).__name__}: {str(exc)[:200]})"}
        out.write(json.dumps(reply, ensure_ascii=False).encode("utf-8") + b"\n")
        out.flush()


def _preload() -> None:
    import contextlib
    import importlib

    for name in ("pypdfium2", "docx", "bs4", "lxml.etree"):
        # A missing parser fails on its first file, with its own message.
        with contextlib.suppress(Exception):
            importlib.import_module(name)


if __name__ == "__main__":
    main()
