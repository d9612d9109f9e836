"""A hyperparameter search space in YAML: which of fit's settings to vary, over which ranges or choices.

Each key is a fit option as on the command line without its dashes (``model.scheduler.max_lr``,
``data.batch_size``); each value is a range ``{low: L, high: H}`` (integers when both are integers; ``log: true``
searches it on a log scale, ``step: S`` in steps) or a list of choices ``{choices: [A, B, C]}``.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning_app.settings_files import read_mapping


@dataclass(frozen=True)
class Parameter:
    """One setting to search: a range (``low``, ``high``, ``log``, ``step``) or ``choices``."""

    key: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] | None = None

    def suggest(self, trial: Any) -> Any:
        """The value an Optuna trial draws for this setting."""
        if self.choices is not None:
            return trial.suggest_categorical(self.key, list(self.choices))
        if isinstance(self.low, int) and isinstance(self.high, int) and not isinstance(self.step, float):
            return trial.suggest_int(self.key, self.low, self.high, step=self.step or 1, log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)

    def flag(self, value: Any) -> str:
        """The command-line option that sets this setting to ``value``."""
        return f"--{self.key}={json.dumps(value) if isinstance(value, (list, dict, bool)) else value}"


def load(path: str | Path, known: set[str]) -> list[Parameter]:
    """Read and check a search space; ``known`` holds fit's options. Problems raise ``ValueError`` naming the key."""
    spec = read_mapping(path, f"search space {path}", "it maps fit options to ranges or choices")
    parameters = []
    for key, value in spec.items():
        where = f"search space {path}: {key}"
        if key not in known:
            close = sorted(option for option in known if option.split(".")[-1] == str(key).split(".")[-1])
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ValueError(f"{where} is not an option of fit{hint}; `python -m lightning_app.fit --help` lists them.")
        if not isinstance(value, dict):
            raise ValueError(f"{where} must be a range {{low: L, high: H}} or {{choices: [A, B]}} (got {value!r}).")
        if "choices" in value:
            choices = value["choices"]
            if not isinstance(choices, list) or not choices:
                raise ValueError(f"{where}: choices must be a non-empty list (got {choices!r}).")
            parameters.append(Parameter(key, choices=tuple(choices)))
            continue
        low, high = value.get("low"), value.get("high")
        if not all(isinstance(bound, (int, float)) and not isinstance(bound, bool) for bound in (low, high)):
            raise ValueError(f"{where} needs numbers low and high (got {low!r}, {high!r}).")
        if not low < high:
            raise ValueError(f"{where} has an empty range: low {low} must be below high {high}.")
        if value.get("log") and low <= 0:
            raise ValueError(f"{where}: a log scale needs low above 0 (got {low}).")
        unknown = set(value) - {"low", "high", "log", "step"}
        if unknown:
            raise ValueError(f"{where}: unknown entries {sorted(unknown)}; a range takes low, high, log and step.")
        parameters.append(Parameter(key, low, high, bool(value.get("log", False)), value.get("step")))
    return parameters
