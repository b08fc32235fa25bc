"""The one exception type for bad user input.

Anything the user can fix (a config key, a path, a data record) raises
`UserError` with a single line that names the file, key or record at fault.
The CLI prints it and exits with code 2; nothing else in the library prints
or exits.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user: config, paths, data. Exit code 2."""

    def __init__(self, message: str) -> None:
        # Keep it to one line: multi-line causes are folded so logs stay grep-able.
        super().__init__(" ".join(str(message).split()))
