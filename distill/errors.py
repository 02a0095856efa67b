"""The exceptions a user can cause: the CLI prints the message on one line and exits with `exit_code`."""


class DistillError(Exception):
    """A problem with the user's input or artefacts (not a bug): shown without a traceback, exit code 2."""

    exit_code = 2


class Interrupted(DistillError):
    """The user stopped the work (Ctrl-C); the message says how to go on. Exit code 130, as for SIGINT."""

    exit_code = 130
