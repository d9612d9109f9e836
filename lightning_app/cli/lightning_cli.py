"""The LightningCLI shared by the entry points: configs, callbacks, run folders, resuming, and errors as flags."""

import os
import re
from pathlib import Path
from typing import Any, ClassVar

from jsonargparse import ArgumentError, Namespace
from lightning_fabric.plugins import CheckpointIO
from pytorch_lightning import Trainer
from pytorch_lightning.callbacks import Callback, ModelCheckpoint
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI
from pytorch_lightning.strategies.launchers import _MultiProcessingLauncher, _XLALauncher
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from lightning_app.cli.flag_errors import as_flag_error, union_cause
from lightning_app.cli.run_config import RunConfig
from lightning_app.data.datamodule import MNISTDataModule
from lightning_app.errors import UserError, lightning_refusal
from lightning_app.model import loading
from lightning_app.model.classifier import MNISTClassifier, sized_by_the_run
from lightning_app.training import run_folder
from lightning_app.training.atomic_checkpoint_io import AtomicCheckpointIO
from lightning_app.training.console import EpochSummary, quiet_lightning
from lightning_app.training.graceful_stop import GracefulStop
from lightning_app.training.last_checkpoint import LastCheckpoint
from lightning_app.training.memory import tune_memory
from lightning_app.training.precision import check_precision, default_precision
from lightning_app.training.resume import ExactResume

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"


DEFAULT_CONFIG = CONFIG_DIR / "default.yaml"


# Lightning's bar redraws after every step by default, which costs about 0.5 ms a step on a CPU; ten times a second
# is as smooth to the eye.
PROGRESS_BAR_REFRESH_STEPS = 10


class MNISTCLI(LightningCLI):
    """LightningCLI for this project: configs/default.yaml is read first, and --ckpt_path selects a checkpoint."""

    # The command as a user types it, for the usage line.
    program: ClassVar[str] = "python -m lightning_app.fit"
    # Trainer arguments that this entry point fixes whatever the config says (evaluation writes no run folder).
    trainer_overrides: ClassVar[dict[str, Any]] = {}
    # Whether --ckpt_path continues training (and so needs the optimizer and loop state) or only evaluates.
    resumes_training = True
    # Callback classes this entry point adds to every run.
    extra_callbacks: tuple[type, ...] = ()
    # Whether --ckpt_path may name several checkpoints (a list, or a pattern such as runs/*/checkpoints/last.ckpt).
    several_checkpoints = False

    def __init__(self, args: list[str] | None = None, save_config_callback=RunConfig, **kwargs: Any) -> None:
        quiet_lightning()
        tune_memory()
        default_configs = [str(DEFAULT_CONFIG)] if DEFAULT_CONFIG.is_file() else []
        try:
            super().__init__(
                MNISTClassifier,
                MNISTDataModule,
                save_config_callback=save_config_callback,
                trainer_defaults={
                    "logger": {"class_path": "lightning_app.training.tensorboard_logger.HParamsTensorBoardLogger"},
                    "callbacks": [EpochSummary(), ExactResume(), GracefulStop(), *(c() for c in self.extra_callbacks)],
                },
                parser_kwargs={"prog": self.program, "default_config_files": default_configs, "exit_on_error": False},
                auto_configure_optimizers=False,
                args=args,
                run=False,
                **kwargs,
            )
        except ArgumentError as err:
            # jsonargparse would print the whole usage (a screenful) above the one line that matters.
            message = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
            key, cause = re.match(r'Parser key "([^"]+)"', message), union_cause(str(err))
            if key and cause:
                message = f"--{key.group(1)}: {cause}"
            raise UserError(f"{message.rstrip('.')}. Run with --help to list the options and their types.") from None

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        if self.several_checkpoints:
            parser.add_argument(
                "--ckpt_path",
                type=list[str] | str | None,
                default=None,
                help="Checkpoint(s): a file, 'last' / 'best' for the newest run's, a pattern such as "
                "'logs/ensemble/member_*/checkpoints/last.ckpt', or a list [A, B, ...] whose members answer together.",
            )
        else:
            parser.add_argument(
                "--ckpt_path",
                type=str | None,
                default=None,
                help="Checkpoint to start from: a file, or 'last' / 'best' for the newest run's last or best one.",
            )
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/acc",
                "checkpoint.mode": "max",
                "checkpoint.filename": run_folder.BEST,
                "checkpoint.auto_insert_metric_name": False,
            }
        )
        # A second checkpoint callback rather than `save_last=True`: with a monitored `save_top_k`, Lightning
        # rewrites last.ckpt only in epochs that produce a new best, so it could lag behind the run.
        parser.add_lightning_class_args(LastCheckpoint, "last_checkpoint")

    def before_instantiate_classes(self) -> None:
        trainer = self.config.trainer
        if trainer.max_epochs is not None and trainer.max_epochs < -1:
            raise UserError(
                f"--trainer.max_epochs must be 0 or more, or -1 for no limit (got {trainer.max_epochs}); the "
                f"write-up trains 10."
            )
        # Before barebones mode drops the logger: `last` and `best` are looked for under the logger's folder.
        self.ckpt_path = self._resolve_ckpt_path(self.config)
        if trainer.barebones:
            # Lightning's barebones mode turns off all that costs speed and refuses each of them when asked for.
            # The project sets them by default, and here a default cannot be told from an explicit flag: all are
            # turned off. Nothing is written, not even the config.
            for key in ("logger", "enable_checkpointing", "enable_progress_bar", "enable_model_summary"):
                trainer[key] = False
            trainer.num_sanity_val_steps = trainer.log_every_n_steps = 0
            self.save_config_callback = None
        self._check_logs_writable(self.config)
        if trainer.precision is None:
            trainer.precision = default_precision(str(trainer.accelerator))
        callbacks = list(trainer.callbacks or [])
        given = {callback.class_path.rsplit(".", 1)[-1] for callback in callbacks}

        def add(class_path: str, **init_args: Any) -> None:
            if not given & {class_path.rsplit(".", 1)[-1], *init_args.pop("instead_of", ())}:
                callbacks.append(Namespace(class_path=class_path, init_args=Namespace(**init_args)))

        if trainer.enable_progress_bar is not False:
            add(
                "pytorch_lightning.callbacks.TQDMProgressBar",
                refresh_rate=PROGRESS_BAR_REFRESH_STEPS,
                process_position=0,
                leave=False,
                instead_of=("RichProgressBar",),
            )
        if trainer.enable_model_summary is not False:
            add(
                "lightning_app.training.console.NetworkSummary",
                max_depth=1,
                instead_of=("ModelSummary", "RichModelSummary"),
            )
        if trainer.get("logger") not in (False, None) and self.trainer_overrides.get("logger") is not False:
            add("pytorch_lightning.callbacks.LearningRateMonitor", logging_interval=None)
        trainer.callbacks = callbacks

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except ValueError as err:  # a core class refused a setting: name the flag
            raise as_flag_error(err, self.config) from None

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        # Fail on missing or broken data before the Trainer exists, so a data problem leaves no empty run folder.
        # Only one process per machine may download (torchrun/SLURM start all ranks at once); Lightning's own
        # prepare_data, which waits for it, serves the others.
        if int(os.environ.get("LOCAL_RANK", 0)) == 0:
            try:
                self.datamodule.prepare_data()
            except ValueError as err:
                raise as_flag_error(err, self.config) from None
        config = {**self._get(self.config_init, "trainer"), **self.trainer_overrides, **kwargs}
        plugins = config.get("plugins") or []
        plugins = plugins if isinstance(plugins, list) else [plugins]
        if not any(isinstance(plugin, CheckpointIO) for plugin in plugins):
            config["plugins"] = [*plugins, AtomicCheckpointIO()]
        callbacks: list[Callback] = [self._get(self.config_init, key) for key in self.parser.callback_keys]
        if config.get("enable_checkpointing") is False:  # Lightning refuses checkpoint callbacks then
            callbacks = [callback for callback in callbacks if not isinstance(callback, ModelCheckpoint)]
        try:
            trainer = self._instantiate_trainer(config, callbacks)
        except (MisconfigurationException, ModuleNotFoundError, ValueError, RuntimeError) as err:
            advice = (
                "Change the setting it names; for devices, check --trainer.accelerator, --trainer.devices, "
                "--trainer.strategy and --trainer.precision against what this machine has (--trainer.accelerator auto "
                "and --trainer.precision null pick what is there)."
            )
            raise UserError(lightning_refusal(err, advice)) from None
        launcher = trainer.strategy.launcher
        if isinstance(launcher, _MultiProcessingLauncher) and not isinstance(launcher, _XLALauncher):
            strategy = self.config.trainer.strategy
            name = strategy if isinstance(strategy, str) and strategy != "auto" else type(trainer.strategy).__name__
            raise UserError(
                f"--trainer.strategy {name} trains in processes started from this one, which "
                f"hand back only the weights when they end: the run's checkpoint records, figures and summary would be "
                f"lost with them. Use --trainer.strategy ddp, the same data-parallel training in processes of their "
                f"own (Lightning's recommended way)."
            )
        self._check_schedule_length(trainer)
        check_precision(trainer, self.model)
        return trainer

    def _check_schedule_length(self, trainer: Trainer) -> None:
        """Refuse a schedule sized in steps (OneCycleLR) for a run of no set length (max_epochs -1 alone)."""
        scheduler = getattr(self.model, "scheduler", None)
        if scheduler is not None and sized_by_the_run(scheduler) and trainer.max_steps == trainer.max_epochs == -1:
            name = str(self.config.model.scheduler.get("class_path", "")).rsplit(".", 1)[-1] or "the schedule"
            raise UserError(
                f"--model.scheduler {name} is sized in optimizer steps, and --trainer.max_epochs -1 gives the run no "
                f"length: set --trainer.max_steps N or --trainer.max_epochs N, or the schedule's own "
                f"--model.scheduler.total_steps."
            )

    @property
    def best_checkpoint(self) -> ModelCheckpoint | None:
        """The callback that keeps the run's best checkpoint (``--checkpoint.*``), if checkpointing is on.

        Not ``trainer.checkpoint_callback``, which is whichever checkpoint callback comes first: a user may add their
        own, monitoring something else.
        """
        callback = self._get(self.config_init, "checkpoint")  # LightningCLI's own lookup, as in instantiate_trainer
        return callback if any(callback is other for other in self.trainer.checkpoint_callbacks) else None

    def _resolve_ckpt_path(self, config: Namespace) -> str | None:
        """Turn --ckpt_path into a file (``ckpt_paths`` for several), and point the logger at the run folder that the
        file continues."""
        spec = config.get("ckpt_path")
        self.ckpt_paths: list[str] = []
        if not spec:
            return None
        root = self._runs_root(config)
        if self.several_checkpoints:
            self.ckpt_paths = [
                str(path)
                for item in ([spec] if isinstance(spec, str) else spec)
                for path in run_folder.find_all(item, root)
            ]
            return self.ckpt_paths[0]
        path = run_folder.find(spec, root)
        network = config.model.get("network")
        loading.check_network(
            path, network.as_dict() if isinstance(network, Namespace) else None, resume=self.resumes_training
        )
        # Continuing a run's last.ckpt continues that run's folder: the same logger run, the same checkpoints.
        # Any other checkpoint starts a new run folder, so that no run gets two curves over the same steps.
        run = run_folder.run_of(path)
        if self.resumes_training and path.stem == run_folder.LAST and run is not None and run.parent == root:
            for init_args in self._logger_init_args(config):
                if "version" in init_args and self._root_of(init_args) == root:
                    init_args.version = run.name
                    self.save_config_kwargs = {**self.save_config_kwargs, "continuing_run": True}
        return str(path)

    @staticmethod
    def _logger_init_args(config: Namespace) -> list[Namespace]:
        """The ``init_args`` of each configured logger, in order (none with ``--trainer.logger false``)."""
        loggers = config.trainer.get("logger")
        loggers = loggers if isinstance(loggers, list) else [loggers]
        return [logger.init_args for logger in loggers if getattr(logger, "init_args", None) is not None]

    @staticmethod
    def _root_of(init_args: Namespace) -> Path | None:
        """Where a logger keeps its runs: ``save_dir/name``."""
        if not init_args.get("save_dir"):
            return None
        return (Path(init_args.save_dir) / str(init_args.get("name") or "")).resolve()

    def _runs_root(self, config: Namespace) -> Path:
        """The folder under which the first logger keeps its runs (the run folders' parent), or the Trainer's root."""
        loggers = self._logger_init_args(config)
        root = self._root_of(loggers[0]) if loggers else None
        return root or Path(config.trainer.get("default_root_dir") or ".").resolve()

    def _check_logs_writable(self, config: Namespace) -> None:
        """Fail before training, not after the first epoch, when the run folder cannot be written."""
        if self.trainer_overrides.get("logger") is False:
            return
        root = self._runs_root(config)
        existing = next(parent for parent in [root, *root.parents] if parent.exists())
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise UserError(
                f"Cannot write runs under {root}: {existing} is not a writable folder. Change its permissions, or "
                f"write elsewhere with --trainer.logger.init_args.save_dir DIR."
            )
