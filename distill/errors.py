"""The one exception type a user can cause: the CLI prints its message on one line and exits non-zero."""


class DistillError(Exception):
    """A problem with the user's input or artefacts (not a bug): shown without a traceback."""
