"""Which checkpoint(s) ``--ckpt_path`` names; one to resume is read once and checked against the run to start."""

from pathlib import Path
from typing import Any

from jsonargparse import Namespace

from lightning_app import MOVED
from lightning_app.cli.logger_folders import runs_root
from lightning_app.errors import UserError
from lightning_app.model.loading import CHECKPOINT_HINT, read_checkpoint
from lightning_app.training import run_folder
from lightning_app.training.resume import trained_to_the_end


class NothingToTrain(UserError):
    """The checkpoint to resume has already reached the run's epochs or steps."""


def checkpoint_paths(config: Namespace, several: bool) -> list[str]:
    """The files ``--ckpt_path`` names: ``last``/``best`` of the newest run, a file, or (``several``) patterns and
    lists of them."""
    spec = config.get("ckpt_path")
    if not spec:
        return []
    root = runs_root(config)
    if not several:
        return [str(run_folder.find(spec, root))]
    return [
        str(path) for item in ([spec] if isinstance(spec, str) else spec) for path in run_folder.find_all(item, root)
    ]


def read_to_resume(path: str, config: Namespace) -> dict[str, Any]:
    """Read a checkpoint to continue training from, refusing one that this run cannot continue or that has nothing
    left to train."""
    checkpoint = read_checkpoint(path)
    network = config.model.get("network")
    check_resumable(Path(path), checkpoint, network.as_dict() if isinstance(network, Namespace) else None)
    trainer = config.trainer
    if trained_to_the_end(checkpoint, trainer.max_epochs, trainer.max_steps) and not trainer.fast_dev_run:
        raise NothingToTrain(
            f"Nothing to train: {path} has already reached --trainer.max_epochs {trainer.max_epochs} (or "
            f"--trainer.max_steps {trainer.max_steps}). Raise it to train further."
        )
    return checkpoint


def check_resumable(path: Path, checkpoint: dict[str, Any], configured: dict[str, Any] | None) -> None:
    """Refuse, before anything runs, a checkpoint that the configured run cannot continue."""
    if "loops" not in checkpoint or "optimizer_states" not in checkpoint:
        raise UserError(f"{path} holds weights only, not the training state needed to resume. {CHECKPOINT_HINT}")
    saved = checkpoint.get("hyper_parameters", {}).get("network")
    if not isinstance(saved, dict) or configured is None:
        return
    if class_name(saved) != class_name(configured):
        raise UserError(
            f"{path} holds a {saved.get('class_path')} network, but {configured.get('class_path')} is configured. "
            f"Continue with the settings it was trained with: --config <its run folder>/config.yaml."
        )
    there, now = plain(saved.get("init_args") or {}), plain(configured.get("init_args") or {})
    differences = [f"{key} {there[key]} there, {now.get(key)} now" for key in there if there[key] != now.get(key)]
    if differences:
        raise UserError(
            f"{path} holds a network of other settings than the one configured ({'; '.join(differences)}). "
            f"Continue with the settings it was trained with: --config <its run folder>/config.yaml, or the "
            f"--model.network options."
        )


def class_name(network: dict[str, Any]) -> str:
    """A network's class path as today's package names it (a run written before its folders were made names
    ``lightning_app.network.MNISTCNN``)."""
    module, _, name = str(network.get("class_path", "")).rpartition(".")
    package, _, old = module.partition(".")
    if package == "lightning_app" and old in MOVED:
        module = f"lightning_app.{MOVED[old]}"
    return f"{module}.{name}"


def plain(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings with tuples as lists, as a checkpoint saves them, so that the two compare equal."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in settings.items()}
