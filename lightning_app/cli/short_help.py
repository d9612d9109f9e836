"""``--help`` that a person reads: each option's first sentence and its default, without lists of subclasses.

jsonargparse's help gives every option its whole docstring (Lightning's Trainer arguments run to a dozen lines
with Sphinx markup) and, for an option that takes a class, every importable subclass: for ``--model.network``,
each of the several hundred ``nn.Module`` classes of torch and torchvision. A class option says instead how to
choose a class and see its own settings.
"""

import re
from argparse import SUPPRESS, Action
from typing import Any

from jsonargparse import DefaultHelpFormatter, Namespace
from pytorch_lightning.cli import LightningArgumentParser

SPHINX_ROLE = re.compile(r":\w+:`~?(?:[\w.]*\.)?([\w]+)`")
DEFAULT_WIDTH = 40  # characters of a default value shown; a long one (a whole optimizer's settings) is cut there
SUMMARY_WIDTH = 80  # characters of an option's first sentence shown


def first_sentence(text: str) -> str:
    """A docstring's first sentence, with Sphinx cross-references as plain names."""
    text = " ".join(SPHINX_ROLE.sub(r"\1", text).replace("``", "").split())
    match = re.match(r"(.+?\.)(\s|$)", text)
    sentence = match.group(1) if match else text
    return sentence if len(sentence) <= SUMMARY_WIDTH else sentence[:SUMMARY_WIDTH].rsplit(" ", 1)[0] + "..."


class ShortHelpFormatter(DefaultHelpFormatter):
    """jsonargparse's help formatter with each option on two or three lines (see the module's docstring)."""

    def add_argument(self, action: Action) -> None:
        # Each class option's own line says how to see a class's settings (--X.help CLASS_PATH).
        if not any(option.endswith(".help") for option in action.option_strings):
            super().add_argument(action)

    def _get_help_string(self, action: Action) -> str:
        full = super()._get_help_string(action)
        if action.help in (None, SUPPRESS) or "(type:" not in full:
            return full
        summary = first_sentence(action.help)
        picks_a_class = "known subclasses:" in full or action.dest.endswith((".network", ".optimizer", ".scheduler"))
        if picks_a_class:
            summary += f" Its settings: --{action.dest}.help CLASS_PATH."
        # jsonargparse has put the config files' value for this option into action.default by now.
        default = action.default
        if default in (None, SUPPRESS) or isinstance(default, (dict, Namespace)):
            return summary
        shown = str(default).lower() if isinstance(default, bool) else str(default)
        return f"{summary} (default: {shown if len(shown) <= DEFAULT_WIDTH else shown[:DEFAULT_WIDTH] + '...'})"


def command_parser(program: str) -> type[LightningArgumentParser]:
    """LightningCLI's parser class for a command: every parser it makes, the ``--X.help CLASS_PATH`` ones included,
    is named as the command is typed and gives the short help."""

    class CommandParser(LightningArgumentParser):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("prog", program)
            kwargs.setdefault("formatter_class", ShortHelpFormatter)
            super().__init__(*args, **kwargs)

    return CommandParser
