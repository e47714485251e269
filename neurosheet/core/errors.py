"""The one exception type users see: the CLI prints its message as a single line, no traceback."""


class NeurosheetError(Exception):
    """A problem with the user's input or files (bad argument, corrupt file, unfit circuit).

    The message must be one line that names the problem; the CLI prints it to stderr
    and exits with status 2.
    """
