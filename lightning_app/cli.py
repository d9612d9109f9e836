"""The LightningCLI shared by the entry points: configs, checkpoints, TensorBoard run folders and resuming."""

import os
from pathlib import Path
from typing import Any

import torch
from jsonargparse import ArgumentError, Namespace
from pytorch_lightning import LightningModule, Trainer
from lightning_fabric.plugins import CheckpointIO
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback

from lightning_app import checkpoints
from lightning_app.callbacks import EpochSummary, GracefulStop, LastCheckpoint, RNGState
from lightning_app.checkpoint_io import AtomicCheckpointIO
from lightning_app.data import MNISTDataModule
from lightning_app.errors import UserError, require
from lightning_app.module import MNISTClassifier

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "default.yaml"
# Lightning's bar redraws after every step by default, which costs about 0.5 ms a step (4% on this CPU);
# ten times a second is as smooth to the eye.
PROGRESS_BAR_REFRESH_STEPS = 10


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (x86 AVX512-BF16 or AMX, read from /proc/cpuinfo on Linux)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def default_precision(accelerator: str) -> str:
    """bf16 mixed precision where the device computes in bf16 natively, else full 32-bit precision.

    On CPUs without native bf16 autocast emulates it and runs slower than float32.
    """
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "32-true"
    if accelerator in ("auto", "cpu"):
        return "bf16-mixed" if cpu_has_native_bf16() else "32-true"
    return "32-true"


class ResumableSaveConfig(SaveConfigCallback):
    """Save the resolved config as ``config.yaml`` in the run folder, but keep the original when resuming that run."""

    def __init__(self, *args: Any, resuming_run: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.resuming_run = resuming_run

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self.resuming_run and os.path.isfile(os.path.join(trainer.log_dir, self.config_filename)):
            self.already_saved = True
        super().setup(trainer, pl_module, stage)


class MNISTCLI(LightningCLI):
    """LightningCLI for this project: configs/default.yaml is read first, and --ckpt_path selects a checkpoint."""

    # Trainer arguments that this entry point fixes whatever the config says (evaluation writes no run folder).
    trainer_overrides: dict[str, Any] = {}
    # Whether --ckpt_path continues training (and so needs the optimizer and loop state) or only evaluates.
    resumes_training = True

    def __init__(self, args: list[str] | None = None, save_config_callback=ResumableSaveConfig, **kwargs: Any) -> None:
        default_configs = [str(DEFAULT_CONFIG)] if DEFAULT_CONFIG.is_file() else []
        try:
            self._init_cli(args, save_config_callback, default_configs, **kwargs)
        except ArgumentError as err:
            # jsonargparse would print the whole usage (a screenful) above the one line that matters.
            message = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
            raise UserError(f"{message.rstrip('.')}. Run with --help to list the options and their types.") from None

    def _init_cli(self, args, save_config_callback, default_configs, **kwargs: Any) -> None:
        super().__init__(
            MNISTClassifier,
            MNISTDataModule,
            save_config_callback=save_config_callback,
            trainer_defaults={
                "logger": {"class_path": "lightning_app.loggers.HParamsTensorBoardLogger"},
                "callbacks": [EpochSummary(), RNGState(), GracefulStop()],
            },
            parser_kwargs={"default_config_files": default_configs, "exit_on_error": False},
            auto_configure_optimizers=False,
            args=args,
            run=False,
            **kwargs,
        )

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--ckpt_path",
            type=str | None,
            default=None,
            help="Checkpoint to start from: a file, or 'last' / 'best' for the newest run's last or best checkpoint.",
        )
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/acc",
                "checkpoint.mode": "max",
                "checkpoint.filename": "best-epoch={epoch:02d}-val_acc={val/acc:.4f}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )
        # A second checkpoint callback rather than `save_last=True`: with a monitored `save_top_k`, Lightning
        # rewrites last.ckpt only in epochs that produce a new best, so it could lag behind the run.
        parser.add_lightning_class_args(LastCheckpoint, "last_checkpoint")

    def before_instantiate_classes(self) -> None:
        trainer = self.config.trainer
        require(trainer.max_epochs is None or trainer.max_epochs >= 0,
                f"--trainer.max_epochs must be 0 or more (got {trainer.max_epochs}); the write-up trains 10.")
        self._check_logs_writable(self.config)
        if trainer.precision is None:
            trainer.precision = default_precision(str(trainer.accelerator))
        callbacks = trainer.callbacks or []
        if trainer.enable_progress_bar is not False and not any("ProgressBar" in c.class_path for c in callbacks):
            bar = Namespace(class_path="pytorch_lightning.callbacks.TQDMProgressBar",
                            init_args=Namespace(refresh_rate=PROGRESS_BAR_REFRESH_STEPS, process_position=0,
                                                leave=False))
            trainer.callbacks = [*callbacks, bar]
        self.ckpt_path = self._resolve_ckpt_path(self.config)

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        # Fail on missing or broken data before the Trainer exists, so a data problem leaves no empty run folder.
        # Only one process per machine may download (torchrun/SLURM start all ranks at once); Lightning's own
        # prepare_data, which waits for it, serves the others.
        if int(os.environ.get("LOCAL_RANK", 0)) == 0:
            self.datamodule.prepare_data()
        plugins = self._get(self.config_init, "trainer").get("plugins") or []
        plugins = plugins if isinstance(plugins, list) else [plugins]
        if not any(isinstance(plugin, CheckpointIO) for plugin in plugins):
            kwargs.setdefault("plugins", [*plugins, AtomicCheckpointIO()])
        return super().instantiate_trainer(**{**self.trainer_overrides, **kwargs})

    def _resolve_ckpt_path(self, config) -> str | None:
        """Turn --ckpt_path into a file, and point the logger at the run folder that the file continues."""
        ckpt_path = config.get("ckpt_path")
        if not ckpt_path:
            return None
        root = self._logger_root(config)
        path = checkpoints.resolve(ckpt_path, root)
        checkpoints.check_architecture(path, config.model, resume=self.resumes_training)
        # Resuming a run's last checkpoint continues that run's folder: same TensorBoard run, same checkpoints.
        # Any other checkpoint starts a new run folder, so no run gets two curves over the same steps.
        folder = path.resolve().parent.parent
        if root is not None and path.name == checkpoints.LAST and folder.parent == root.resolve():
            config.trainer.logger.init_args.version = int(folder.name.split("_")[1])
            self.save_config_kwargs = {**self.save_config_kwargs, "resuming_run": True}
        return str(path)

    def _check_logs_writable(self, config) -> None:
        """Fail before training, not after the first epoch, when the run folder cannot be written."""
        root = self._logger_root(config)
        if root is None or self.trainer_overrides.get("logger") is False:
            return
        existing = next(parent for parent in [root, *root.parents] if parent.exists())
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise UserError(
                f"Cannot write runs under {root}: {existing} is not a writable folder. Change its permissions, or "
                f"write elsewhere with --trainer.logger.init_args.save_dir DIR."
            )

    @staticmethod
    def _logger_root(config) -> Path | None:
        logger = config.trainer.get("logger")
        init_args = getattr(logger, "init_args", None)
        if init_args is None or "version" not in init_args or "save_dir" not in init_args:
            return None
        return Path(init_args.save_dir) / (init_args.get("name") or "")
