"""Argument parsing, dispatch, and the one place where failures become messages and exit codes.

Exit codes (:mod:`cli.errors`): 0 ok, 1 AWS or other error, 2 usage/configuration, 3 not found (stack, run,
report, version), 4 credentials or access denied, 5 the shown run ended FAILED/TIMED_OUT/ABORTED, 6 ``doctor``
found a blocker, 130 interrupted or not confirmed.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    TokenRetrievalError,
)

from cli import doctor, estimate, report, rollback, route, start, status
from cli.app import App, Terminal
from cli.errors import EXIT_AUTH, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_USAGE, CliError

COMMANDS = (doctor, start, status, route, report, estimate, rollback)
_AUTH_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
        "UnauthorizedOperation",
    }
)
_NO_CREDENTIALS_HINT = (
    "configure credentials for the stack's account (aws configure, aws sso login, AWS_PROFILE or --profile)"
)


def build_parser() -> argparse.ArgumentParser:
    # Global options work before or after the command; SUPPRESS keeps a later position from resetting them.
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("stack")
    group.add_argument("--stack-name", default=argparse.SUPPRESS, help="deployed stack (default: cdk.json stack_name)")
    group.add_argument("--region", default=argparse.SUPPRESS, help="its Region (default: cdk.json region)")
    group.add_argument("--profile", default=argparse.SUPPRESS, help="AWS named profile for credentials")

    parser = argparse.ArgumentParser(
        prog="python -m cli",
        parents=[common],
        description="Operate the search-router distillation stack: start and watch pipeline runs, read their "
        "reports, call the router, estimate costs, roll back a promotion. Resources are found through the "
        "stack's CloudFormation outputs.",
        epilog="Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 credentials/access, 5 run failed, "
        "6 doctor found a blocker, 130 interrupted or not confirmed.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(subparsers, common)
    return parser


def _describe_client_error(exc: ClientError) -> CliError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "Unknown"))
    operation = getattr(exc, "operation_name", "the AWS call")
    message = f"{operation} failed: {code}: {error.get('Message', exc)}"
    if code in _AUTH_CODES:
        failure = CliError(message, hint=_NO_CREDENTIALS_HINT if "Token" in code else "check the IAM permissions")
        failure.exit_code = EXIT_AUTH
        return failure
    return CliError(message)


def _report(terminal: Terminal, failure: CliError) -> int:
    terminal.warn(f"error: {failure.message}")
    if failure.hint:
        terminal.warn(f"  {failure.hint}")
    return failure.exit_code


def as_cli_error(exc: BaseException) -> CliError | None:
    """An AWS/botocore failure as a message and an exit code; None for anything else (a bug: traceback)."""
    failure: CliError
    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | TokenRetrievalError):
        failure = CliError(f"no usable AWS credentials: {exc}", hint=_NO_CREDENTIALS_HINT)
        failure.exit_code = EXIT_AUTH
    elif isinstance(exc, ProfileNotFound | NoRegionError):
        failure = CliError(str(exc), hint="check --profile / --region")
        failure.exit_code = EXIT_USAGE
    elif isinstance(exc, ClientError):
        failure = _describe_client_error(exc)
    elif isinstance(exc, BotoCoreError):
        failure = CliError(f"AWS request failed: {exc}")
    else:
        return None
    return failure


def main(argv: Sequence[str] | None = None, **app_options: Any) -> int:
    """Run one command; ``app_options`` (``terminal``, ``session``, ``clients``, ``config``) are for tests."""
    args = build_parser().parse_args(argv)
    app = App(
        stack_name=getattr(args, "stack_name", None),
        region=getattr(args, "region", None),
        profile=getattr(args, "profile", None),
        **app_options,
    )
    try:
        return int(args.handler(app, args))
    except KeyboardInterrupt:
        app.terminal.warn("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `| head`
        return EXIT_ERROR
    except Exception as exc:
        failure = as_cli_error(exc)
        if failure is None:
            raise
        return _report(app.terminal, failure)
