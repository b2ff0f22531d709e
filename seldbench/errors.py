"""The one exception type a user can cause.

Every error a user can trigger (bad path, bad CSV row, unknown name, bad config key) is raised
as :class:`SeldbenchError` with a one-line message of the form ``<where>: <problem>[; <fix>]``.
The CLI prints it as a single ``Error:`` line and exits non-zero; anything else is a bug.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class SeldbenchError(Exception):
    """A user-facing error; its message is one line naming the culprit."""


def suggest(name: str, known: Iterable[str], what: str) -> str:
    """``unknown <what> 'x'; did you mean 'y'? (known: ...)`` for an unknown name."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    msg = f"unknown {what} '{name}'"
    if close:
        msg += "; did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
    msg += f" (known: {', '.join(known) if known else 'none'})"
    return msg


def printable(text: str) -> str:
    """``text`` with every unprintable character (controls such as ESC or a newline, line and
    paragraph separators, undecodable file-name bytes) written as its Python escape, so that
    echoing a file name or a CSV field cannot drive the terminal or split the line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape", "backslashreplace")
                   .decode("ascii") for c in text)
