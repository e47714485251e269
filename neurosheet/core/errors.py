"""The one exception type users see: the CLI prints its message as a single line, no traceback."""

from __future__ import annotations


class NeurosheetError(Exception):
    """A problem with the user's input or files (bad argument, corrupt file, unfit circuit).

    The message must be one line that names the problem; ``param`` names the library
    parameter at fault (like Nengo's ``ValidationError(msg, attr)``), so the CLI can name the
    flag that set it. The CLI prints it to stderr and exits with status 2.
    """

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class NeurosheetWarning(UserWarning):
    """A result that is not quite what was asked (e.g. a density the sheet cannot reach).

    The CLI prints it as one line (``neurosheet CMD: warning: ...``); scripts see a normal
    Python warning they can filter or turn into an error.
    """
