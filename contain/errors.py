"""The one error family of contain, and Docker's exit codes.

Every failure a user can see is a ContainError (or a subclass) whose message
is a complete, one-line sentence naming what failed and why.  The CLI prints
``contain: <message>`` and exits with ``exit_code``.
"""

# Docker's conventions (docker run --help, "Exit Status").
EXIT_RUNTIME = 125      # the runtime itself failed
EXIT_CANNOT_INVOKE = 126  # the command was found but could not be run
EXIT_NOT_FOUND = 127    # the command was not found


class ContainError(Exception):
    """A user-facing failure; str(e) is the one-line message."""

    exit_code = EXIT_RUNTIME


class UsageError(ContainError):
    """Bad flags or arguments (bad value, unknown flag, missing argument)."""


class NotFound(ContainError):
    """An image, container or network that does not exist."""


class Conflict(ContainError):
    """The request clashes with existing state (name in use, container running)."""


class CommandError(ContainError):
    """The container's command could not be run (exit 126 or 127)."""

    def __init__(self, message, exit_code):
        super().__init__(message)
        self.exit_code = exit_code


class StepError(Exception):
    """A step of a container's setup failed (an op of the mount plan): the
    step's description and the OSError.  Internal: the container's child
    turns it into its error report, which the runtime turns into a
    ContainError."""

    def __init__(self, step, err):
        super().__init__(step, err)
        self.step, self.err = step, err


def describe_oserror(step, err):
    """'mount /proc: Permission denied' from a step name and an OSError."""
    reason = err.strerror or str(err)
    return f"{step}: {reason}"
