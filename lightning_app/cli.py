"""The LightningCLI shared by the entry points: configs, callbacks, run folders, resuming, and errors as flags."""

import os
import re
from pathlib import Path
from typing import Any, ClassVar

from jsonargparse import ArgumentError, Namespace
from lightning_fabric.plugins import CheckpointIO
from pytorch_lightning import LightningModule, Trainer
from pytorch_lightning.callbacks import Callback, ModelCheckpoint
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback

# To refuse strategies that train in processes started from this one (ddp_spawn, ddp_fork): Lightning has no
# public way to tell how a strategy starts its processes. XLA's launcher is one of them, but TPUs need it.
from pytorch_lightning.strategies.launchers import _MultiProcessingLauncher, _XLALauncher
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from lightning_app import checkpoints, runs
from lightning_app.checkpoint_io import AtomicCheckpointIO
from lightning_app.console import EpochSummary, quiet_lightning
from lightning_app.data import MNISTDataModule
from lightning_app.errors import UserError, lightning_refusal
from lightning_app.memory import tune_memory
from lightning_app.module import MNISTClassifier, sized_by_the_run
from lightning_app.precision import check_precision, default_precision
from lightning_app.resume import ExactResume, GracefulStop, LastCheckpoint

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "default.yaml"
# Lightning's bar redraws after every step by default, which costs about 0.5 ms a step on a CPU; ten times a second
# is as smooth to the eye.
PROGRESS_BAR_REFRESH_STEPS = 10


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


class RunConfig(SaveConfigCallback):
    """Save the resolved config as ``config.yaml`` in the run folder; keep the original when continuing that run."""

    def __init__(self, *args: Any, continuing_run: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.continuing_run = continuing_run

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self.already_saved:
            return
        path = runs.run_dir(trainer) / self.config_filename
        if trainer.is_global_zero and not (self.continuing_run and path.is_file()):
            path.parent.mkdir(parents=True, exist_ok=True)
            self.parser.save(self.config, path, skip_none=False, overwrite=True, multifile=self.multifile)
        self.already_saved = True


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
                    "logger": {"class_path": "lightning_app.loggers.HParamsTensorBoardLogger"},
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
                "checkpoint.filename": runs.BEST,
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
            add("lightning_app.console.NetworkSummary", max_depth=1, instead_of=("ModelSummary", "RichModelSummary"))
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
                str(path) for item in ([spec] if isinstance(spec, str) else spec) for path in runs.find_all(item, root)
            ]
            return self.ckpt_paths[0]
        path = runs.find(spec, root)
        network = config.model.get("network")
        checkpoints.check_network(
            path, network.as_dict() if isinstance(network, Namespace) else None, resume=self.resumes_training
        )
        # Continuing a run's last.ckpt continues that run's folder: the same logger run, the same checkpoints.
        # Any other checkpoint starts a new run folder, so that no run gets two curves over the same steps.
        run = runs.run_of(path)
        if self.resumes_training and path.stem == runs.LAST and run is not None and run.parent == root:
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
