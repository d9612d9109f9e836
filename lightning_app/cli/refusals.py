"""Settings refused before anything runs, each with a one-paragraph reason that names the flag to change."""

from jsonargparse import Namespace
from pytorch_lightning import LightningModule, Trainer
from pytorch_lightning.strategies import StrategyRegistry

from lightning_app.errors import UserError
from lightning_app.model.classifier import sized_by_the_run

# Strategies that train in processes started from this one hand back only the weights when they end.
STARTED_HERE = ("spawn", "fork", "forkserver")


def check_epochs(trainer: Namespace) -> None:
    """Refuse a negative number of epochs other than Lightning's -1 (no limit)."""
    if trainer.max_epochs is not None and trainer.max_epochs < -1:
        raise UserError(
            f"--trainer.max_epochs must be 0 or more, or -1 for no limit (got {trainer.max_epochs}); the "
            f"write-up trains 10."
        )


def check_strategy(strategy: object) -> None:
    """Refuse strategies whose processes are started from this one (``ddp_spawn``, ``ddp_fork``, ...)."""
    if isinstance(strategy, str):
        name = strategy
        start = StrategyRegistry[strategy]["init_params"].get("start_method") if strategy in StrategyRegistry else None
    elif isinstance(strategy, Namespace):
        name = str(strategy.get("class_path", "")).rsplit(".", 1)[-1]
        start = (strategy.get("init_args") or Namespace()).get("start_method")
    else:
        return
    if start in STARTED_HERE:
        raise UserError(
            f"--trainer.strategy {name} trains in processes started from this one, which hand back only the weights "
            f"when they end: the run's checkpoint records, figures and summary would be lost with them. Use "
            f"--trainer.strategy ddp, the same data-parallel training in processes of their own (Lightning's "
            f"recommended way)."
        )


def check_schedule_length(model: LightningModule, trainer: Trainer, config: Namespace) -> None:
    """Refuse a schedule sized in steps (OneCycleLR) for a run of no set length (max_epochs -1 alone)."""
    scheduler = getattr(model, "scheduler", None)
    if scheduler is not None and sized_by_the_run(scheduler) and trainer.max_steps == trainer.max_epochs == -1:
        name = str(config.model.scheduler.get("class_path", "")).rsplit(".", 1)[-1] or "the schedule"
        raise UserError(
            f"--model.scheduler {name} is sized in optimizer steps, and --trainer.max_epochs -1 gives the run no "
            f"length: set --trainer.max_steps N or --trainer.max_epochs N, or the schedule's own "
            f"--model.scheduler.total_steps."
        )
