"""The error type for mistakes a user can fix, and the entry-point guard that reports them."""

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

EXIT_USER_ERROR = 2


class UserError(Exception):
    """A problem with the user's input or environment, explained in one paragraph that says how to fix it."""


def report_user_errors(main: Callable[..., T]) -> Callable[..., T]:
    """Turn a ``UserError`` raised by an entry point into its message on stderr and exit status 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr, flush=True)
            raise SystemExit(EXIT_USER_ERROR) from None

    return wrapper


def first_line(err: BaseException) -> str:
    """An exception's message, first line only, ending with a full stop."""
    line = (str(err).strip().splitlines() or [type(err).__name__])[0].strip()
    return line if line.endswith((".", "!", "?")) else f"{line}."
