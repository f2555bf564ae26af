"""What can go wrong in the CLI, each with a message that says what to do and the process exit code."""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1  # an AWS call failed, or something unexpected
EXIT_USAGE = 2  # bad arguments or configuration (argparse uses 2 as well)
EXIT_NOT_FOUND = 3  # the stack, run, report or parameter version does not exist
EXIT_AUTH = 4  # no credentials, expired credentials, or access denied
EXIT_RUN_FAILED = 5  # status: the execution ended FAILED, TIMED_OUT or ABORTED
EXIT_NOT_READY = 6  # doctor: a blocker was found (the checklist says what to fix)
EXIT_INTERRUPTED = 130  # Ctrl-C, or a confirmation declined


class CliError(Exception):
    """A failure to report in one or two lines, without a traceback."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(CliError):
    exit_code = EXIT_USAGE


class NotFoundError(CliError):
    exit_code = EXIT_NOT_FOUND


class AuthError(CliError):
    exit_code = EXIT_AUTH


class Aborted(CliError):
    exit_code = EXIT_INTERRUPTED
