"""jsonargparse's and the core classes' complaints as one line that names the command-line flag."""

import re

from jsonargparse import Namespace

from lightning_app.errors import UserError


def union_cause(message: str) -> str | None:
    """The class's own error in jsonargparse's report of a value that fits none of a union's types, if it is one.

    A nested class (the network in ``network: nn.Module | None``, a logger) that fails is reported as the error met
    for each type of the union, each a "- " item continued on more indented lines (a nested report among them),
    after "Errors:".
    """
    if "Errors:" not in message:
        return None
    items: list[list[str]] = []
    base = None
    for line in message.split("Errors:", 1)[1].splitlines():
        indent, text = len(line) - len(line.lstrip()), line.strip()
        if text.startswith("- ") and (base is None or indent <= base):
            base = indent if base is None else base
            items.append([text[2:]])
        elif items and text and indent > (base or 0):
            items[-1].append(line)
    items = [item for item in items if not item[0].startswith("Expected a <class 'NoneType'>")]
    if not items:
        return None
    first, rest = items[0][0], "\n".join(items[0][1:])
    inner = union_cause(rest)
    if inner is None:
        return " ".join([first, *(line.strip() for line in rest.splitlines() if line.strip())])
    given = re.search(r"Given value: (.*?)(?:\. Got value:|$)", rest, re.MULTILINE)
    return f"{first} {inner}" + (f" (got {given.group(1)})" if given else "")


def as_flag_error(err: ValueError, config: Namespace) -> UserError:
    """A core class's ``ValueError("<parameter> must ...")`` as an error that names the command-line flag."""
    message = str(err).strip()
    message = union_cause(message) or message
    match = re.match(r"([A-Za-z_][\w.]*)", message)
    if match:
        name = match.group(1)
        keys = [key.replace(".init_args.", ".") for key in config.keys()]  # noqa: SIM118 - a Namespace iterates values
        # A class chosen by class_path (the network) is a group of keys: its own flag is their prefix.
        flags = sorted(
            {".".join(parts[:end]) for parts in (key.split(".") for key in keys) for end in range(1, len(parts) + 1)}
        )
        candidates = [flag for flag in flags if flag == name or flag.endswith(f".{name}")]
        if len(candidates) == 1:
            message = f"--{candidates[0]}{message[len(name) :]}"
    return UserError(message)


def as_parse_error(err: Exception) -> UserError:
    """jsonargparse's complaint about the command line as one line naming the flag, without the usage it would
    print above it (a screenful)."""
    message = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
    key, cause = re.match(r'Parser key "([^"]+)"', message), union_cause(str(err))
    if key and cause:
        message = f"--{key.group(1)}: {cause}"
    return UserError(f"{message.rstrip('.')}. Run with --help to list the options and their types.")
