"""Printing to the terminal whatever the file names hold."""

from __future__ import annotations

import os
import sys


def echo(text: str) -> None:
    """Print ``text`` (and a newline) to stdout, even when it holds undecodable file
    name bytes (surrogate escapes): those bytes are written as they are, so the
    line names the file the user typed; a text-only stdout gets backslash escapes."""
    try:
        print(text, flush=True)
        return
    except UnicodeEncodeError:
        pass
    line = text + "\n"
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is not None:
        sys.stdout.flush()
        buffer.write(os.fsencode(line))
        buffer.flush()
    else:
        sys.stdout.write(line.encode("utf-8", "backslashreplace").decode("utf-8"))
