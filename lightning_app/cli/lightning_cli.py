"""The LightningCLI shared by the commands: configs/default.yaml first, ``--ckpt_path``, the run's callbacks, errors.

The commands build a ``MNISTCLI`` and then call the Trainer themselves (``run=False``), as Lightning's examples do.
"""

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from jsonargparse import ArgumentError
from lightning_fabric.plugins import CheckpointIO
from pytorch_lightning import Trainer
from pytorch_lightning.callbacks import Callback, ModelCheckpoint
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI
from pytorch_lightning.utilities.exceptions import MisconfigurationException
from torch import nn

from lightning_app.cli import logger_folders, refusals
from lightning_app.cli.callbacks import CONFIGURED, run_callbacks
from lightning_app.cli.checkpoint_choice import checkpoint_paths, read_to_resume
from lightning_app.cli.flag_errors import as_flag_error, as_parse_error
from lightning_app.cli.run_config import RunConfig
from lightning_app.cli.short_help import command_parser
from lightning_app.data.datamodule import MNISTDataModule
from lightning_app.data.idx_files import MNISTFilesError
from lightning_app.errors import UserError, lightning_refusal
from lightning_app.model.classifier import MNISTClassifier
from lightning_app.reports.figures_callback import RunFigures
from lightning_app.training import run_folder
from lightning_app.training.atomic_checkpoint_io import AtomicCheckpointIO
from lightning_app.training.console import quiet_lightning
from lightning_app.training.last_checkpoint import LastCheckpoint
from lightning_app.training.memory import tune_memory
from lightning_app.training.precision import check_precision, default_precision
from lightning_app.training.process_group import destroy_process_group_at_exit

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "default.yaml"
DEVICE_ADVICE = (
    "Change the setting it names; for devices, check --trainer.accelerator, --trainer.devices, --trainer.strategy and "
    "--trainer.precision against what this machine has (--trainer.accelerator auto and --trainer.precision null pick "
    "what is there)."
)


def built_by_the_checkpoint(class_type: type, *args: Any, **kwargs: Any) -> None:
    """jsonargparse instantiator for commands whose model comes from its checkpoint: the config's is not built."""
    return None


class MNISTCLI(LightningCLI):
    """``python -m lightning_app.fit``'s command line; the other commands take the same options.

    Args:
        args: The command-line arguments (default: ``sys.argv[1:]``).
        callbacks: Callbacks of the caller's to add to the run (a search's pruning), besides the configured ones.
        trainer: Trainer arguments of the caller's that win over the config's, objects allowed (a trial's logger).
    """

    program: ClassVar[str] = "python -m lightning_app.fit"
    description: ClassVar[str] = "Train the MNIST CNN, test it, and draw the run's figures."
    # Trainer arguments this command fixes whatever the config says (evaluation writes no run folder).
    trainer_overrides: ClassVar[dict[str, Any]] = {}
    # Whether --ckpt_path continues training (one checkpoint, with the optimizer and loops), or names models to use
    # as they are (several may answer together: a list, or a pattern).
    resumes_training: ClassVar[bool] = True
    # Whether the run's figures are drawn (``--figures.*``).
    draws_figures: ClassVar[bool] = True

    def __init__(
        self,
        args: list[str] | None = None,
        callbacks: list[Callback] = (),
        trainer: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        quiet_lightning()
        tune_memory()
        destroy_process_group_at_exit()
        self.extra_callbacks = list(callbacks)
        self.trainer_settings = {**self.trainer_overrides, **(trainer or {})}
        self.checkpoint: dict[str, Any] | None = None  # the --ckpt_path checkpoint, read once
        self.ckpt_paths: list[str] = []
        kwargs.setdefault("save_config_callback", RunConfig)
        try:
            super().__init__(
                MNISTClassifier,
                MNISTDataModule,
                trainer_defaults={
                    "logger": {"class_path": "lightning_app.training.tensorboard_logger.HParamsTensorBoardLogger"}
                },
                parser_kwargs={
                    "usage": f"{self.program} [--config FILE] [--ckpt_path CKPT] [--GROUP.OPTION VALUE ...]",
                    "description": f"{self.description} Every option can also be set in a YAML file given to "
                    f"--config; configs/default.yaml is read first. Your own network: --model.network "
                    f"my_module.MyNet (README: Your own network).",
                    "default_config_files": [str(DEFAULT_CONFIG)] if DEFAULT_CONFIG.is_file() else [],
                    "exit_on_error": False,
                },
                parser_class=command_parser(self.program),
                auto_configure_optimizers=False,
                args=args,
                run=False,
                **kwargs,
            )
        except ArgumentError as err:
            raise as_parse_error(err) from None

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        if not self.resumes_training:
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
                help="Checkpoint to continue: a file, or 'last' / 'best' for the newest run's. A run's own config.yaml "
                "is read first, so that it continues with its settings; options given here override them.",
            )
        # Class options rather than `add_lightning_class_args`: run_callbacks hands every callback to the Trainer.
        parser.add_class_arguments(ModelCheckpoint, "checkpoint", fail_untyped=False, sub_configs=True)
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
        parser.add_class_arguments(LastCheckpoint, "last_checkpoint", fail_untyped=False, sub_configs=True)
        if self.draws_figures:
            parser.add_class_arguments(RunFigures, "figures", fail_untyped=False, sub_configs=True)

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Parse; when continuing a run without ``--config``, parse again with the run's own config.yaml first."""
        super().parse_arguments(parser, args)
        spec = self.config.get("ckpt_path")
        if not self.resumes_training or not spec or self.config.get("config"):
            return
        path = run_folder.find(spec, logger_folders.runs_root(self.config))
        run = run_folder.run_of(path)
        if run is not None and (run / run_folder.CONFIG).is_file():
            given = list(sys.argv[1:] if args is None else args)
            # The file found now, so that the run's config cannot lead to another run's checkpoint.
            super().parse_arguments(parser, ["--config", str(run / run_folder.CONFIG), *given, f"--ckpt_path={path}"])

    def before_instantiate_classes(self) -> None:
        trainer = self.config.trainer
        refusals.check_epochs(trainer)
        refusals.check_strategy(trainer.strategy)
        self._read_checkpoint()
        if trainer.barebones:
            # Lightning's barebones mode turns off all that costs speed and refuses each of them when asked for.
            # The project sets them by default, and here a default cannot be told from an explicit flag: all are
            # turned off. Nothing is written, not even the config.
            for key in ("logger", "enable_checkpointing", "enable_progress_bar", "enable_model_summary"):
                trainer[key] = False
            trainer.num_sanity_val_steps = trainer.log_every_n_steps = 0
            self.save_config_callback = None
        if self.trainer_settings.get("logger", True) is not False:
            logger_folders.check_writable(logger_folders.runs_root(self.config))
        if trainer.precision is None:
            trainer.precision = default_precision(str(trainer.accelerator))

    def _read_checkpoint(self) -> None:
        """Resolve --ckpt_path; read a checkpoint to resume (once: the Trainer is handed what was read) and check it."""
        self.ckpt_paths = checkpoint_paths(self.config, several=not self.resumes_training)
        if not self.ckpt_paths or not self.resumes_training:
            return  # models used as they are: the command loads each with its own network
        self.checkpoint = read_to_resume(self.ckpt_path, self.config)
        run = logger_folders.continued_run(Path(self.ckpt_path), self.config)
        if run is not None:
            logger_folders.continue_in(run, self.config)
            self.save_config_kwargs = {**self.save_config_kwargs, "continuing_run": True}

    @property
    def ckpt_path(self) -> str | None:
        """The checkpoint file that --ckpt_path names, if any."""
        return self.ckpt_paths[0] if self.ckpt_paths else None

    def instantiate_classes(self) -> None:
        try:
            if self.resumes_training:
                super().instantiate_classes()
                return
            # The model comes from the checkpoint(s): the config's is neither built nor checked.
            self.config_init = self.parser.instantiate_classes(
                self.config, instantiators=[(built_by_the_checkpoint, nn.Module, True)]
            )
            self.datamodule, self.model = self.config_init["data"], None
            self.trainer = self.instantiate_trainer()
        except ValueError as err:  # a core class refused a setting: name the flag
            raise as_flag_error(err, self.config) from None

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        trainer_config = {**self.config_init["trainer"], **self.trainer_settings, **kwargs}
        configured = {key: self.config_init.get(key) for key in CONFIGURED}
        callbacks = run_callbacks(trainer_config, configured, self.extra_callbacks)
        plugins = trainer_config.get("plugins") or []
        plugins = plugins if isinstance(plugins, list) else [plugins]
        if not any(isinstance(plugin, CheckpointIO) for plugin in plugins):
            read = {self.ckpt_path: self.checkpoint} if self.checkpoint is not None else {}
            plugins = [*plugins, AtomicCheckpointIO(read)]
        try:
            trainer = super().instantiate_trainer(
                **{**self.trainer_settings, **kwargs}, callbacks=callbacks, plugins=plugins
            )
        except (MisconfigurationException, ModuleNotFoundError, ValueError, RuntimeError) as err:
            raise UserError(lightning_refusal(err, DEVICE_ADVICE)) from None
        if self.model is not None:
            refusals.check_schedule_length(self.model, trainer, self.config)
            check_precision(trainer, self.model)
        return trainer

    @contextlib.contextmanager
    def data_errors_as_flags(self) -> Iterator[None]:
        """Name the flag in the data module's complaints, which come when the Trainer prepares the data."""
        try:
            yield
        except MNISTFilesError as err:
            raise as_flag_error(err, self.config) from None

    @property
    def best_checkpoint(self) -> ModelCheckpoint | None:
        """The callback that keeps the run's best checkpoint (``--checkpoint.*``), if checkpointing is on.

        Not ``trainer.checkpoint_callback``, which is whichever checkpoint callback comes first: a user may add their
        own, monitoring something else.
        """
        callback = self.config_init.get("checkpoint")
        return callback if any(callback is other for other in self.trainer.checkpoint_callbacks) else None
