"""Read a YAML settings file that a command is given (a member's config, a search space) and say what is wrong."""

from pathlib import Path
from typing import Any

import yaml


def read_mapping(path: str | Path, label: str, holds: str) -> dict[str, Any]:
    """The non-empty YAML mapping in ``path``; a ``ValueError`` starting with ``label`` says why there is none.

    Args:
        path: The file.
        label: How the error names the file (``search space FILE``, ``--configs FILE``).
        holds: What the file should map, for the error of an empty or non-mapping file.
    """
    try:
        content = yaml.safe_load(Path(path).read_text())
    except OSError as err:
        raise ValueError(f"{label}: cannot be read ({err.strerror}).") from None
    except yaml.YAMLError as err:
        raise ValueError(f"{label}: not valid YAML ({str(err).splitlines()[0]}).") from None
    if not isinstance(content, dict) or not content:
        raise ValueError(f"{label}: holds no settings; {holds}.")
    return content
