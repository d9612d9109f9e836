"""The error type for mistakes a user can fix, and the entry-point guard that reports them."""

import functools
import inspect
import re
import sys
from collections.abc import Callable
from typing import TypeVar

from lightning_fabric.utilities.exceptions import MisconfigurationException

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
        except MisconfigurationException as err:  # Lightning found a setting it cannot run with, once running
            print(f"error: {lightning_refusal(err)}", file=sys.stderr, flush=True)
            raise SystemExit(EXIT_USER_ERROR) from None

    return wrapper


def lightning_refusal(err: BaseException, advice: str = "Change the setting it names.") -> str:
    """Lightning's complaint about a setting as one paragraph, its Trainer arguments named as flags."""
    from pytorch_lightning import Trainer

    arguments = set(inspect.signature(Trainer.__init__).parameters)
    message = " ".join(line.strip() for line in str(err).splitlines() if line.strip())

    def as_flag(match: re.Match) -> str:
        name = match.group(1)
        return f"`--trainer.{name}{match.group(2) or ''}`" if name in arguments else match.group(0)

    message = re.sub(r"`(\w+)(=[^`]*)?`", as_flag, message)
    return f"Lightning cannot run with these settings: {with_full_stop(message)} {advice}"


def with_full_stop(text: str) -> str:
    """Text ending with a full stop."""
    return text if text.endswith((".", "!", "?")) else f"{text}."


def first_line(err: BaseException) -> str:
    """An exception's message, first line only, ending with a full stop."""
    return with_full_stop((str(err).strip().splitlines() or [type(err).__name__])[0].strip())
