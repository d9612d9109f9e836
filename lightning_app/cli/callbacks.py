"""Every callback the project adds to a run, in one list: the Trainer gets these and the user's ``--trainer.callbacks``.

Configurable ones are built by the parser from their own options (``--checkpoint.*``, ``--last_checkpoint.*``,
``--figures.*``); the rest follow the Trainer's flags. A kind the user already gave (a progress bar, a model
summary, a learning-rate monitor) is not added twice.
"""

from typing import Any

from pytorch_lightning.callbacks import Callback, LearningRateMonitor, ModelSummary, ProgressBar

from lightning_app.training.console import EpochBar, EpochSummary, NetworkSummary
from lightning_app.training.graceful_stop import GracefulStop
from lightning_app.training.resume import ExactResume
from lightning_app.training.step_limit import ValidateAtStepLimit

# Lightning's bar redraws after every step by default, which costs about 0.5 ms a step on a CPU; ten times a second
# is as smooth to the eye.
PROGRESS_BAR_REFRESH_STEPS = 10

# The callbacks built by the parser, each from its own options.
CONFIGURED = ("checkpoint", "last_checkpoint", "figures")


def run_callbacks(
    trainer: dict[str, Any], configured: dict[str, Callback | None], extra: list[Callback]
) -> list[Callback]:
    """The user's callbacks (``trainer["callbacks"]``), then the project's, then ``extra`` ones of the caller's."""
    given = list(trainer.get("callbacks") or [])
    given = given if isinstance(given, list) else [given]

    def missing(kind: type) -> bool:
        return not any(isinstance(callback, kind) for callback in given)

    callbacks = [*given, EpochSummary(), ExactResume(), GracefulStop(), ValidateAtStepLimit()]
    if trainer.get("enable_progress_bar") is not False and missing(ProgressBar):
        callbacks.append(EpochBar(refresh_rate=PROGRESS_BAR_REFRESH_STEPS, leave=False))
    if trainer.get("enable_model_summary") is not False and missing(ModelSummary):
        callbacks.append(NetworkSummary(max_depth=1))
    if trainer.get("logger") not in (False, None) and missing(LearningRateMonitor):
        callbacks.append(LearningRateMonitor())
    for key in CONFIGURED:
        callback = configured.get(key)
        # Lightning refuses checkpoint callbacks with --trainer.enable_checkpointing false.
        if callback is not None and not (key.endswith("checkpoint") and trainer.get("enable_checkpointing") is False):
            callbacks.append(callback)
    return [*callbacks, *extra]
