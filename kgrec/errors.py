"""The one exception type a user should ever see from kgrec.

Anything that is the user's input's fault (a malformed file, a missing column, an unknown
option) raises :class:`KgrecError` with a message that names the file, the line or record, and
what is wrong. The command line prints that message and exits with status 2, without a
traceback. Any other exception is a bug in kgrec.
"""

from __future__ import annotations


class KgrecError(Exception):
    """An error in the user's input or configuration, with a message meant for people."""

    def __init__(self, message: str, *, path: object | None = None, line: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}"
            if line is not None:
                where += f", line {line}"
            where += ": "
        super().__init__(where + message)
        self.path = path
        self.line = line
