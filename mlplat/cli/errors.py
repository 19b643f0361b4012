"""The one way a command fails: a message on stderr and an exit code.

Exit codes (`ExitCode`): 0 done; 1 a check failed (the gate refused the model, a mandatory policy
is violated, a followed training job failed, a sandbox step failed); 2 bad usage or configuration
(an option, a file or a stack setting the user must fix). A usage message reads `error: ...`; a
failed check speaks for itself (the gate's summary, the policies violated).

Loads nothing but typer: every command module imports it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum
from typing import NoReturn

import typer


class ExitCode(IntEnum):
    OK = 0
    FAILED_CHECK = 1
    USAGE = 2


def fail(message: object, code: ExitCode = ExitCode.USAGE) -> NoReturn:
    """Write `message` to stderr (`error: ` first for a usage error) and exit with `code`."""
    text = str(message).rstrip()
    if code is ExitCode.USAGE:
        text = f"error: {text}"
    sys.stderr.write(text + "\n")
    raise typer.Exit(int(code))


@contextmanager
def usage_errors(*kinds: type[Exception], prefix: str = "") -> Iterator[None]:
    """Inside, an exception of `kinds` becomes `fail(prefix + its message)`: exit 2."""
    try:
        yield
    except kinds as exc:
        fail(f"{prefix}{exc}")
